"""A benchmark spec whose evaluation takes about 10 ms: pipeline throughput.

The evolved function is cheap; the run function pads every evaluation to a
fixed time, either sleeping (`sleep10`: the worker waits, as on an I/O- or
GPU-bound evaluation, and leaves the CPU to the rest of the pipeline) or
spinning (`busy10`: the worker burns a CPU for the whole time). The score is
how close f(x) comes to x**2 + 1, so the mutation proposer keeps finding new
programs and few samples are duplicates.
"""

import time

import funsearch

_PAD_SECONDS = 0.010


@funsearch.inputs
def sleep10():
    return {"sleep": ("sleep", 1.5)}


@funsearch.inputs
def busy10():
    return {"busy": ("busy", 1.5)}


@funsearch.run
def run(instance):
    how, x = instance
    end = time.perf_counter() + _PAD_SECONDS
    value = float(f(x))
    if how == "sleep":
        time.sleep(max(0.0, end - time.perf_counter()))
    else:
        while time.perf_counter() < end:
            pass
    return value


@funsearch.score
def score(instance, output):
    x = instance[1]
    return -abs(output - (x * x + 1.0))


@funsearch.evolve
def f(x):
    """Approximates x squared plus one."""
    return 0.5 * x + 0.25 * x * x + 1.0
