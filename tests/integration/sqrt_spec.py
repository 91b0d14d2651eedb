"""A fast spec for the runtime tests: evolve a formula close to sqrt(x).

An evaluation takes a few milliseconds, so a test can run hundreds of them;
the initial formula is poor, so the mutation proposer improves it quickly.
"""

import math

import funsearch


@funsearch.inputs
def train():
    return {f"x{x}": float(x) for x in (0.5, 1, 2, 3, 5, 8, 13, 21)}


@funsearch.run
def run(x):
    return float(f(x))


@funsearch.score
def score(x, output):
    return -abs(output - math.sqrt(x))


@funsearch.evolve
def f(x):
    """Approximates the square root of x > 0."""
    return 1.0 + 0.1 * x
