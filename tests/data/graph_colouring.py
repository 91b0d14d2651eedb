"""Greedy graph colouring on small random graphs: a spec whose initial program
is one tiny expression (`return degrees.astype(float)`).

Nodes are coloured one at a time, each with the smallest colour none of its
neighbours has; `priority(node, degrees, saturation)` decides the order: of
the uncoloured nodes, the one of highest priority goes next. Fewer colours
are better: the score is minus the number of colours used.
"""

import numpy as np

import funsearch


def random_graph(n: int, density: float, seed: int) -> np.ndarray:
    """A symmetric 0/1 adjacency matrix without loops."""
    upper = np.triu(np.random.default_rng(seed).random((n, n)) < density, k=1)
    return (upper | upper.T).astype(np.int64)


@funsearch.inputs
def train():
    return {f"g{seed}": random_graph(30, 0.3, seed) for seed in range(3)}


@funsearch.run
def colour(adjacency: np.ndarray) -> int:
    """The number of colours greedy colouring uses in the order priority gives."""
    n = len(adjacency)
    degrees = adjacency.sum(axis=1)
    colours = np.full(n, -1)
    last = -1
    for _ in range(n):
        neighbours = [adjacency[v] & (colours >= 0) for v in range(n)]
        saturation = np.array([len(set(colours[mask.astype(bool)])) for mask in neighbours])
        scores = np.asarray(priority(last, degrees.copy(), saturation), dtype=float)
        if scores.shape != (n,):
            raise ValueError("priority must return one number per node")
        scores = np.where(colours >= 0, -np.inf, np.nan_to_num(scores, nan=-np.inf))
        node = int(np.argmax(scores))
        if colours[node] >= 0:
            node = int(np.flatnonzero(colours < 0)[0])
        taken = set(colours[(adjacency[node] > 0) & (colours >= 0)].tolist())
        colours[node] = next(c for c in range(n) if c not in taken)
        last = node
    return int(colours.max()) + 1


@funsearch.score
def score(adjacency, used) -> float:
    return -float(used)


@funsearch.evolve
def priority(node: int, degrees: np.ndarray, saturation: np.ndarray) -> np.ndarray:
    """Priorities of the nodes for being coloured next (higher first).

    Args:
      node: the node coloured last (-1 before the first).
      degrees: each node's number of neighbours.
      saturation: each node's number of distinct colours among its neighbours.
    """
    return degrees.astype(float)
