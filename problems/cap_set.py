"""Cap sets in dimension n (FunSearch, Nature 2023).

A cap set is a set of vectors in {0, 1, 2}^n with no three distinct vectors on
a line, that is, no three distinct a, b, c with a + b + c = 0 (mod 3). The
cap set is built greedily: every vector gets a priority from
`priority(vector, n)` and, from the highest priority down, each vector joins
the set unless it completes a line with two vectors already in it. Larger cap
sets are better: the score is the size of the set (the largest known in
dimension 8 is 512).
"""

import itertools

import numpy as np

import funsearch


@funsearch.inputs
def train():
    """Dimension 8, FunSearch's headline setting."""
    return {"n8": 8}


@funsearch.inputs
def small():
    """Dimensions 3 to 7 (largest cap sets known: 9, 20, 45, 112, 236)."""
    return {f"n{n}": n for n in range(3, 8)}


@funsearch.run
def build_cap_set(n: int) -> list:
    """The greedy cap set in dimension n, as a list of vectors (lists of 0/1/2)."""
    vectors = np.array(list(itertools.product((0, 1, 2), repeat=n)), dtype=np.int64)
    # A vector's index in `vectors` is its base-3 value: the third point on the
    # line through a and b, -(a + b) mod 3, is found by arithmetic, not search.
    powers = 3 ** np.arange(n - 1, -1, -1)
    priorities = np.array(
        [priority(vector, n) for vector in map(tuple, vectors.tolist())], dtype=float
    )
    if priorities.shape != (len(vectors),):
        raise ValueError("priority must return one number per vector")
    priorities[np.isnan(priorities)] = -np.inf
    blocked = np.zeros(len(vectors), dtype=bool)
    chosen: list[int] = []
    for index in np.argsort(-priorities, kind="stable").tolist():
        if blocked[index]:
            continue
        vector = vectors[index]
        if chosen:
            thirds = ((-vectors[chosen] - vector) % 3) @ powers
            blocked[thirds] = True
        blocked[index] = True
        chosen.append(index)
    return vectors[chosen].tolist()


def check_cap_set(n: int, vectors) -> np.ndarray:
    """The vectors as an array if they form a cap set in dimension n; else ValueError."""
    if not isinstance(vectors, (list, tuple)) or not all(
        isinstance(vector, (list, tuple)) and len(vector) == n for vector in vectors
    ):
        raise ValueError(f"a cap set is a list of vectors of {n} coordinates each")
    if not all(type(x) is int for vector in vectors for x in vector):
        raise ValueError("coordinates must be integers")
    points = np.array(vectors, dtype=np.int64).reshape(len(vectors), n)
    if ((points < 0) | (points > 2)).any():
        raise ValueError("coordinates must be 0, 1 or 2")
    powers = 3 ** np.arange(n - 1, -1, -1)
    codes = points @ powers
    if len(np.unique(codes)) != len(codes):
        raise ValueError("the cap set lists a vector more than once")
    present = np.zeros(3**n, dtype=bool)
    present[codes] = True
    for i in range(len(points) - 1):
        thirds = ((-points[i] - points[i + 1 :]) % 3) @ powers
        on_line = np.flatnonzero(present[thirds])
        if len(on_line):
            j = i + 1 + int(on_line[0])
            third = ((-points[i] - points[j]) % 3).tolist()
            raise ValueError(
                f"{points[i].tolist()}, {points[j].tolist()} and {third} are on a line"
            )
    return points


@funsearch.score
def score(n, vectors) -> float:
    """The size of the cap set, after checking that no three vectors are on a line."""
    return float(len(check_cap_set(n, vectors)))


@funsearch.baseline
def trivial(el, n):
    """Every vector alike: the greedy set in lexicographic order (FunSearch's start)."""
    return 0.0


@funsearch.evolve
def priority(el, n):
    """Returns the priority with which vector `el` should join the cap set.

    Args:
      el: a tuple of n ints, each 0, 1 or 2.
      n: the dimension.
    """
    return 0.0
