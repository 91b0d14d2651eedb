"""Children that rank as their parent does are redrawn (neutral.py)."""

import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_mutation import programs, query_of, sampler  # noqa: E402

from funsearch import code  # noqa: E402
from funsearch.samplers.mutation.neutral import ranking_form  # noqa: E402


def _function(source: str) -> ast.FunctionDef:
    return ast.parse(source).body[0]


BEST_FIT = "def priority(item: float, bins: np.ndarray):\n    return -(bins - item)\n"


def test_increasing_maps_of_a_ranked_return_share_its_form():
    parent = ranking_form(_function(BEST_FIT), ranked_return=True)
    for disguise in ("np.sqrt(-(bins - item))", "-(bins - item) + 3.0", "2.0 * -(bins - item)",
                     "np.arctan(-(bins - item) / 4.0) + item"):
        child = BEST_FIT.replace("-(bins - item)", disguise)
        assert ranking_form(_function(child), ranked_return=True) == parent, disguise
    for different in ("-(bins - item) * bins", "np.abs(-(bins - item) - 3.0)", "-(bins - item) * -1.0"):
        child = BEST_FIT.replace("-(bins - item)", different)
        assert ranking_form(_function(child), ranked_return=True) != parent, different
    # Without ranked_return, the return value's own text counts.
    wrapped = BEST_FIT.replace("-(bins - item)", "np.sqrt(-(bins - item))")
    assert ranking_form(_function(wrapped), False) != ranking_form(_function(BEST_FIT), False)


def test_inside_argmin_an_increasing_map_changes_nothing():
    source = ("def f(current: int, unvisited: np.ndarray, d: np.ndarray) -> int:\n"
              "    return unvisited[np.argmin(d[current, unvisited])]\n")
    wrapped = source.replace("np.argmin(d[current, unvisited])",
                             "np.argmin(np.log1p(d[current, unvisited]) * 2.0)")
    assert ranking_form(_function(source), False) == ranking_form(_function(wrapped), False)


def _stripped(program: str) -> str:
    function = ast.parse(program).body[0]
    function.body = function.body[1:]  # the docstring
    return ranking_form(function, ranked_return=True)


def test_with_ranked_return_no_child_ranks_as_its_parent_by_form():
    query = query_of("bin_packing")
    parent = _stripped(query.versions[-1])
    children = programs(sampler(seed=11, ranked_return=True), query, 300)
    assert len({code.normal_hash(c) for c in children}) > 250
    assert not [c for c in children if _stripped(c) == parent]
    # The same sampler without the setting proposes such disguises.
    plain = programs(sampler(seed=11), query, 300)
    assert [c for c in plain if _stripped(c) == parent]
