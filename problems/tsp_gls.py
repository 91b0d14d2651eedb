"""Guided local search for the travelling salesman problem.

A tour is improved by local search (2-opt and single-city moves). Whenever it
is stuck in a local optimum, `update_edge_distance` is shown the distance
matrix, the local-optimum tour and how often each edge has been in a local
optimum so far, and returns a guided distance matrix (made symmetric): local
search on the guided distances moves the tour away from the edges it penalises
to the next local optimum. After each round a copy of the tour is polished by
local search on the true distances, and the shortest tour found within a fixed
number of rounds is kept; the score is minus its length. Instances are random
uniform points in the unit square (Euclidean distances).
"""

import numpy as np

import funsearch

# Rounds of guidance per instance: the fixed budget every heuristic gets.
ROUNDS = 30
# Candidate new edges in local search: from each city to its this many nearest ones.
NEIGHBOURS = 12

TRAIN_SEEDS = range(3000, 3008)
VALID_SEEDS = range(3100, 3108)
HOLDOUT_SEEDS = range(4000, 4064)
HOLDOUT200_SEEDS = range(5000, 5016)


def random_instance(n: int, seed: int) -> np.ndarray:
    """n cities uniform in the unit square, as an (n, 2) coordinate array."""
    return np.random.default_rng(seed).random((n, 2))


def _random_set(n: int, seeds: range) -> dict:
    return {f"tsp{n}-s{seed}": random_instance(n, seed) for seed in seeds}


@funsearch.inputs
def train():
    """8 x TSP100."""
    return _random_set(100, TRAIN_SEEDS)


@funsearch.inputs
def valid():
    """8 x TSP100 from other seeds."""
    return _random_set(100, VALID_SEEDS)


@funsearch.inputs
def holdout():
    """64 x TSP100, never seen during a search."""
    return _random_set(100, HOLDOUT_SEEDS)


@funsearch.inputs
def holdout200():
    """16 x TSP200: does the guidance generalise to larger instances?"""
    return _random_set(200, HOLDOUT200_SEEDS)


def instance_distances(instance) -> np.ndarray:
    """An (n, 2) coordinate array (Euclidean) or a dict with "distances"."""
    if isinstance(instance, dict):
        return np.array(instance["distances"], dtype=float)
    coords = np.asarray(instance, dtype=float)
    return np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(axis=-1))


def tour_length(tour: np.ndarray, distances: np.ndarray) -> float:
    return float(distances[tour, np.roll(tour, -1)].sum())


def nearest_neighbour_tour(distances: np.ndarray) -> np.ndarray:
    n = len(distances)
    tour = np.empty(n, dtype=np.int64)
    visited = np.zeros(n, dtype=bool)
    tour[0], visited[0] = 0, True
    for step in range(1, n):
        row = np.where(visited, np.inf, distances[tour[step - 1]])
        tour[step] = np.argmin(row)
        visited[tour[step]] = True
    return tour


def nearest(distances: np.ndarray, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """(n, k) array: each city's k nearest other cities, the candidate new edges."""
    count = min(neighbours, len(distances) - 1)
    away = distances.copy()
    np.fill_diagonal(away, np.inf)
    return np.argpartition(away, count - 1, axis=1)[:, :count]


def two_opt(
    tour: np.ndarray, distances: np.ndarray, near: np.ndarray, max_passes: int = 200
) -> np.ndarray:
    """2-opt until no move shortens the tour (under `distances`, symmetric).

    Vectorised over candidate moves: replacing edges (a, b) and (c, d) of the
    tour (b after a, d after c) with (a, c) and (b, d) changes its length by
    d(a, c) + d(b, d) - d(a, b) - d(c, d); the candidates pair each city a with
    its nearest cities c (`near`), as new edges are short ones. A pass
    applies the best move and every other improving move (best first) whose
    edges and reversed segment are disjoint from those already taken: such
    moves do not change each other's gains, and a pass costs more than a move.
    """
    tour = tour.copy()
    n, count = near.shape
    near_distance = np.take_along_axis(distances, near, axis=1)
    rows = np.arange(n)
    position = np.empty(n, dtype=np.int64)
    for _ in range(max_passes):
        position[tour] = rows
        successor = np.concatenate((tour[1:], tour[:1]))  # np.roll costs 10x more
        tour_edge = distances[tour, successor]  # d(t_i, t_i+1)
        c = near[tour]  # (n, count) candidate cities for each tour position
        j = position[c]
        gain = (
            near_distance[tour]
            + distances[successor[:, None], successor[j]]
            - tour_edge[:, None]
            - tour_edge[j]
        )
        flat = gain.ravel()
        improving = np.flatnonzero(flat < -1e-10)
        if len(improving) == 0:
            break
        if len(improving) > 32:
            improving = improving[np.argpartition(flat[improving], 32)[:32]]
        improving = improving[np.argsort(flat[improving], kind="stable")]
        starts, ends = improving // count, j.ravel()[improving]
        taken = bytearray(n)  # tour edges of the moves taken in this pass
        for first, last in zip(
            np.minimum(starts, ends).tolist(), np.maximum(starts, ends).tolist(), strict=True
        ):
            if 1 in taken[first : last + 1]:
                continue
            taken[first : last + 1] = b"\x01" * (last + 1 - first)
            tour[first + 1 : last + 1] = tour[first + 1 : last + 1][::-1].copy()
    return tour


def relocate(tour: np.ndarray, distances: np.ndarray, near: np.ndarray):
    """The tour with its best single-city move applied (or None if no move shortens it).

    Moving city x from between a and b to between c and e changes the length by
    d(a, b) - d(a, x) - d(x, b) + d(c, x) + d(x, e) - d(c, e); c runs over the
    nearest cities of x (`near`), e over the tour neighbours of c.
    """
    n, count = near.shape
    position = np.empty(n, dtype=np.int64)
    position[tour] = np.arange(n)
    after = np.concatenate((tour[1:], tour[:1]))  # after[i]: the city after t_i
    before = np.concatenate((tour[-1:], tour[:-1]))
    x = tour[:, None]
    a, b = before[:, None], after[:, None]
    removal = distances[a, b] - distances[a, x] - distances[x, b]  # (n, 1)
    c = near[tour]  # (n, count)
    best_delta, best_move = -1e-10, None
    for e, side in ((after[position[c]], 1), (before[position[c]], 0)):
        delta = removal + distances[c, x] + distances[x, e] - distances[c, e]
        # Degenerate moves: x next to itself (e == x) or back where it was.
        delta[(e == x) | ((c == a) & (e == b)) | ((c == b) & (e == a))] = np.inf
        k = int(delta.argmin())
        if delta.flat[k] < best_delta:
            best_delta, best_move = delta.flat[k], (k // count, int(c.flat[k]), side)
    if best_move is None:
        return None
    row, city, side = best_move
    moved = int(tour[row])
    rest = np.delete(tour, row)
    where = int(np.flatnonzero(rest == city)[0]) + side
    return np.insert(rest, where, moved)


def local_search(tour: np.ndarray, distances: np.ndarray, max_rounds: int = 200) -> np.ndarray:
    """2-opt and single-city moves until neither shortens the tour."""
    near = nearest(distances)
    for _ in range(max_rounds):
        tour = two_opt(tour, distances, near)
        moved = relocate(tour, distances, near)
        if moved is None:
            break
        tour = moved
    return tour


@funsearch.run
def solve(instance) -> list:
    """The best tour of guided local search from the nearest-neighbour tour."""
    distances = instance_distances(instance)
    n = len(distances)
    edge_n_used = np.zeros((n, n))
    tour = local_search(nearest_neighbour_tour(distances), distances)
    best, best_length = tour, tour_length(tour, distances)
    for _ in range(ROUNDS):
        successors = np.roll(tour, -1)
        edge_n_used[tour, successors] += 1
        edge_n_used[successors, tour] += 1
        guided = np.asarray(
            update_edge_distance(distances.copy(), tour.copy(), edge_n_used.copy()), dtype=float
        )
        if guided.shape != distances.shape:
            raise ValueError(f"update_edge_distance returned shape {guided.shape}, not {(n, n)}")
        # 2-opt's gains assume symmetric distances: a program's matrix is made so.
        guided = np.nan_to_num((guided + guided.T) / 2, nan=np.inf)
        # The search follows the guided distances; a copy polished under the
        # true ones is the candidate for the best tour.
        tour = local_search(tour, guided)
        polished = local_search(tour, distances)
        length = tour_length(polished, distances)
        if length < best_length:
            best, best_length = polished, length
    return best.tolist()


@funsearch.score
def score(instance, tour) -> float:
    """Minus the tour length (higher is better), after checking the tour."""
    tsp = _helper("tsp")
    tour = tsp.check_tour(instance, tour)
    return -tsp.tour_length(tour, instance_distances(instance))


@funsearch.summary
def summary(input_set: str, scores: dict[str, float]) -> dict[str, float]:
    """What a report shows beside the mean score: the mean gap to elkai/LKH, in percent."""
    return {"gap_percent": 100.0 * float(np.mean(list(gaps(input_set, scores).values())))}


def reference_lengths(input_set: str) -> dict[str, float]:
    """Near-optimal tour length per input of a set (elkai/LKH), cached on disk."""
    instances = globals()[input_set]()
    return _helper("tsp_reference").reference_lengths(instances, instance_distances)


def gaps(input_set: str, scores: dict[str, float]) -> dict[str, float]:
    """Per-input gap (tour length / reference length - 1) from per-input scores."""
    references = reference_lengths(input_set)
    return {key: -score / references[key] - 1.0 for key, score in scores.items()}


def _helper(name: str):
    """Imports a sibling module of problems/ by path (host side only)."""
    import importlib.util
    import pathlib
    import sys

    key = f"_funsearch_problems_{name}"  # private: never shadows an installed package
    if key in sys.modules:
        return sys.modules[key]
    path = pathlib.Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


@funsearch.baseline
def local_search_only(edge_distance, local_opt_tour, edge_n_used):
    """No guidance: the tour stays in its first 2-opt local optimum."""
    return edge_distance


@funsearch.evolve
def update_edge_distance(edge_distance, local_opt_tour, edge_n_used):
    """Returns the guided distance matrix for the next round of local search.

    Args:
      edge_distance: numpy (n, n) float array of the true distances.
      local_opt_tour: numpy int array, the current local optimum (a permutation).
      edge_n_used: numpy (n, n) float array: how many local optima used each edge.
    """
    # Penalise edges in proportion to how often local optima used them.
    average_edge = edge_distance[local_opt_tour, np.roll(local_opt_tour, -1)].mean()
    return edge_distance + 0.03 * average_edge * edge_n_used
