"""Constructive heuristic for the travelling salesman problem.

A tour starts at node 0 and is built one city at a time: at each step
`select_next_node` is given the current node, the destination node (the start,
where the tour must return), the array of unvisited nodes and the full distance
matrix, and returns the unvisited node to visit next. Shorter tours are better;
the score of a tour is minus its length. Instances are random uniform points in
the unit square (Euclidean distances).
"""

import numpy as np

import funsearch

# Seeds of the input sets: disjoint ranges, so no held-out instance is ever trained on.
TRAIN_SEEDS = range(0, 16)
TRAIN_LARGE_SEEDS = range(200, 232)
VALID_SEEDS = range(100, 116)
HOLDOUT_SEEDS = range(1000, 1064)
HOLDOUT100_SEEDS = range(2000, 2064)


def random_instance(n: int, seed: int) -> np.ndarray:
    """n cities uniform in the unit square, as an (n, 2) coordinate array."""
    return np.random.default_rng(seed).random((n, 2))


def _random_set(n: int, seeds: range) -> dict:
    return {f"tsp{n}-s{seed}": random_instance(n, seed) for seed in seeds}


@funsearch.inputs
def train():
    """16 x TSP50: what the search optimises."""
    return _random_set(50, TRAIN_SEEDS)


@funsearch.inputs
def train_large():
    """32 x TSP50 of seeds of their own: a search on 16 instances learns
    their quirks (train gap ~3 points under held-out), and an evaluation
    costs mostly the sandbox's per-program overhead, so twice the instances
    cost far less than twice the time."""
    return _random_set(50, TRAIN_LARGE_SEEDS)


@funsearch.inputs
def valid():
    """16 x TSP50 from other seeds: overfitting to `train` shows here."""
    return _random_set(50, VALID_SEEDS)


@funsearch.inputs
def holdout():
    """64 x TSP50, never seen during a search."""
    return _random_set(50, HOLDOUT_SEEDS)


@funsearch.inputs
def holdout100():
    """64 x TSP100: does the heuristic generalise to larger instances?"""
    return _random_set(100, HOLDOUT100_SEEDS)


def instance_distances(instance) -> np.ndarray:
    """The instance's distances as a fresh float array.

    An instance is an (n, 2) coordinate array (Euclidean distances) or a dict
    with a "distances" (n, n) matrix, as the TSPLIB loader returns for edge
    weight types that are not plain Euclidean.
    """
    if isinstance(instance, dict):
        return np.array(instance["distances"], dtype=float)
    coords = np.asarray(instance, dtype=float)
    return np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(axis=-1))


def tour_length(tour, distances: np.ndarray) -> float:
    """Length of the closed tour (returning from the last city to the first)."""
    tour = np.asarray(tour, dtype=int)
    return float(distances[tour, np.roll(tour, -1)].sum())


@funsearch.run
def build_tour(instance) -> list:
    """The tour from node 0 chosen step by step by the evolved function."""
    distances = instance_distances(instance)  # a fresh copy: a program may scribble on it
    n = len(distances)
    start = 0
    tour = [start]
    unvisited = np.arange(1, n)
    current = start
    while len(unvisited) > 0:
        node = select_next_node(current, start, unvisited.copy(), distances)
        if not isinstance(node, (int, np.integer)):
            raise TypeError(f"select_next_node returned {node!r}, not a node index")
        keep = unvisited != node
        if keep.all():
            raise ValueError(f"select_next_node returned {int(node)}, not an unvisited node")
        unvisited = unvisited[keep]
        current = int(node)
        tour.append(current)
    return tour


def check_tour(instance, tour) -> list[int]:
    """The tour as a list of ints if it visits every city exactly once; else ValueError."""
    n = len(instance_distances(instance)) if isinstance(instance, dict) else len(instance)
    if not isinstance(tour, (list, tuple)):
        raise ValueError(f"a tour must be a list of city indices, not {type(tour).__name__}")
    if not all(isinstance(city, int) and not isinstance(city, bool) for city in tour):
        raise ValueError("a tour must contain only integer city indices")
    if len(tour) != n:
        raise ValueError(f"the tour has {len(tour)} cities, the instance {n}")
    missing = sorted(set(range(n)) - set(tour))
    if missing:
        repeated = sorted({city for city in tour if tour.count(city) > 1})
        raise ValueError(
            f"the tour misses cities {missing[:5]} and visits {repeated[:5]} more than once"
            if repeated
            else f"the tour misses cities {missing[:5]}"
        )
    return list(tour)


@funsearch.score
def score(instance, tour) -> float:
    """Minus the tour length (higher is better), after checking the tour."""
    tour = check_tour(instance, tour)
    return -tour_length(tour, instance_distances(instance))


@funsearch.baseline
def nearest_neighbour(current_node, destination_node, unvisited_nodes, distance_matrix):
    """The closest unvisited city."""
    return unvisited_nodes[np.argmin(distance_matrix[current_node, unvisited_nodes])]


def farthest_insertion(instance) -> list[int]:
    """The farthest-insertion tour, starting at node 0.

    Not a `select_next_node` heuristic (it inserts cities between tour
    neighbours instead of appending them), so it is reported beside the
    baselines rather than run as one: the classic constructive reference,
    typically 5-10% above optimal on random uniform instances.
    """
    distances = instance_distances(instance)
    n = len(distances)
    if n <= 3:
        return list(range(n))
    far = int(np.argmax(distances[0]))
    tour = [0, far]
    in_tour = np.zeros(n, dtype=bool)
    in_tour[tour] = True
    # Distance of each city to its nearest tour city: the farthest one goes in next.
    nearest = np.minimum(distances[0], distances[far])
    for _ in range(n - 2):
        city = int(np.argmax(np.where(in_tour, -np.inf, nearest)))
        path = np.array(tour)
        following = np.roll(path, -1)
        added = distances[path, city] + distances[city, following] - distances[path, following]
        position = int(np.argmin(added))
        tour.insert(position + 1, city)
        in_tour[city] = True
        nearest = np.minimum(nearest, distances[city])
    return tour


# Whole-instance solvers that are not select_next_node heuristics, for reports:
# name -> function(instance) -> tour, scored like a program's output.
REFERENCE_SOLVERS = {"farthest_insertion": farthest_insertion}


@funsearch.summary
def summary(input_set: str, scores: dict[str, float]) -> dict[str, float]:
    """What a report shows beside the mean score: the mean gap to elkai/LKH, in percent."""
    return {"gap_percent": 100.0 * float(np.mean(list(gaps(input_set, scores).values())))}


def reference_lengths(input_set: str) -> dict[str, float]:
    """Near-optimal tour length per input of a set (elkai/LKH), cached on disk.

    Host-side only (reporting): imports the helper module next to this file.
    """
    instances = globals()[input_set]()
    return _helper("tsp_reference").reference_lengths(instances, instance_distances)


def gaps(input_set: str, scores: dict[str, float]) -> dict[str, float]:
    """Per-input gap (tour length / reference length - 1) from per-input scores."""
    references = reference_lengths(input_set)
    return {key: -score / references[key] - 1.0 for key, score in scores.items()}


def load_tsplib(path) -> dict:
    """A TSPLIB .tsp file (EUC_2D, CEIL_2D, ATT, GEO) as an instance of this spec."""
    return _helper("tsplib").load(path)


def _helper(name: str):
    """Imports a helper module of problems/ by path (this file is loaded by path too)."""
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


@funsearch.evolve
def select_next_node(
    current_node: int,
    destination_node: int,
    unvisited_nodes: np.ndarray,
    distance_matrix: np.ndarray,
) -> int:
    """Returns the next node to visit (one of `unvisited_nodes`).

    Args:
      current_node: the node the tour is at.
      destination_node: the node the tour must return to at the end.
      unvisited_nodes: numpy int array of the nodes not visited yet.
      distance_matrix: numpy (n, n) float array of distances between nodes.
    """
    return unvisited_nodes[np.argmin(distance_matrix[current_node, unvisited_nodes])]
