"""Children that would return a scalar where a priority per bin is due are
redrawn by the proposer (carry.py), and the neighbour difference FunSearch's
bin packing heuristics rely on is one insertion away (vocabulary.py)."""

import ast
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_mutation import DISTANCES, programs, query_of, run, sampler  # noqa: E402

from funsearch.samplers.mutation.carry import carried, returns_carry  # noqa: E402
from funsearch.samplers.mutation.numeric import Modules  # noqa: E402

NP = Modules(numpy="np")


def _function(source: str) -> ast.FunctionDef:
    return ast.parse(source).body[0]


def test_reductions_carry_nothing_and_locals_carry_what_they_are_built_from():
    source = (
        "def priority(item, bins):\n"
        "    top = np.max(bins)\n"
        "    score = (bins - top) ** 2 / item\n"
        "    score[1:] -= score[:-1]\n"
        "    if item > top:\n"
        "        return top - item\n"
        "    return score\n"
    )
    assert set(returns_carry(_function(source), NP)) == {frozenset({"item"}),
                                                         frozenset({"bins", "item"})}
    assert carried(_function(source), NP) == frozenset({"item"})


def test_a_subscript_carries_its_array_but_not_an_argmin_inside_it():
    source = (
        "def select_next_node(current, destination, unvisited, distances):\n"
        "    return unvisited[np.argmin(distances[current, unvisited])]\n"
    )
    assert carried(_function(source), NP) == frozenset({"unvisited"})
    scalar = "def select_next_node(current, destination, unvisited, distances):\n    return current\n"
    assert carried(_function(scalar), NP) == frozenset({"current"})


def test_builtin_max_of_one_array_reduces_but_of_two_values_does_not():
    one = "def f(item, bins):\n    return max(bins) - item\n"
    two = "def f(item, bins):\n    return max(bins, item)\n"
    assert carried(_function(one), NP) == frozenset({"item"})
    assert carried(_function(two), NP) == frozenset({"bins", "item"})


def _shape(program: str):
    namespace = {"np": np}
    exec(program, namespace)  # noqa: S102 - our own generated test programs
    with np.errstate(all="ignore"):
        return np.shape(namespace["priority"](30.0, np.array([40.0, 55.0, 100.0])))


def test_no_bin_packing_child_returns_a_scalar():
    for name in ("bin_packing", "bin_packing_two_versions"):
        scalars = []
        for program in programs(sampler(seed=3), query_of(name), 300):
            try:
                if _shape(program) == ():
                    scalars.append(program)
            except Exception:  # noqa: BLE001 - failing at run time is another matter
                pass
        assert scalars == [], scalars[:3]


def _neighbour_differences(program: str) -> int:
    """How many `e - np.roll(e, 1)` the program holds."""
    found = 0
    for node in ast.walk(ast.parse(program)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):
            right = node.right
            if (isinstance(right, ast.Call) and ast.unparse(right.func) == "np.roll"
                    and ast.unparse(right.args[0]) == ast.unparse(node.left)):
                found += 1
    return found


def test_insertion_offers_the_difference_of_neighbouring_bins():
    query = query_of("bin_packing")
    children = programs(sampler(seed=5, weights={"insert": 1.0, "constant": 0, "binop": 0,
                                                 "compare": 0, "minmax": 0, "name": 0,
                                                 "replace": 0, "delete": 0, "statement": 0}),
                        query, 200)
    with_difference = [c for c in children if _neighbour_differences(c)]
    assert len(with_difference) >= 3
    assert all(run(c, "import numpy as np\n", lambda f: _shape_of(f) == (3,))
               for c in with_difference)


def _shape_of(function):
    return np.shape(function(30.0, np.array([40.0, 55.0, 100.0])))


def test_tsp_children_can_read_how_far_each_candidate_is_from_the_others():
    query = query_of("tsp")
    children = [c for seed in (9, 10, 11) for c in programs(sampler(seed=seed), query, 200)]
    rows = [c for c in children if "np.mean(distance_matrix[unvisited_nodes][:, unvisited_nodes], axis=1)" in c]
    assert rows
    check = lambda f: int(f(0, 0, np.arange(1, 12), DISTANCES.copy())) in range(12)  # noqa: E731
    assert sum(_runs(c, check) for c in rows) >= 0.8 * len(rows)


def _runs(program, check) -> bool:
    try:
        return run(program, "import numpy as np\n", check)
    except Exception:  # noqa: BLE001 - a child may fail at run time; it must not often
        return False


def test_parameters_annotated_as_scalars_carry_nothing():
    source = "def priority(item: float, bins: np.ndarray) -> np.ndarray:\n    return -(bins - item)\n"
    assert carried(_function(source), NP) == frozenset({"bins"})
    scalar = "def priority(item: float, bins: np.ndarray) -> np.ndarray:\n    return item * 2\n"
    assert carried(_function(scalar), NP) == frozenset()


def test_scalars_are_never_shifted_as_if_they_were_arrays():
    rolled = []
    for program in programs(sampler(seed=10), query_of("bin_packing"), 300):
        for node in ast.walk(ast.parse(program)):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "np.roll":
                rolled.append(ast.unparse(node.args[0]))
    assert rolled
    assert not [a for a in rolled if a == "item" or a.startswith(("np.max(", "np.min(", "np.mean("))]
