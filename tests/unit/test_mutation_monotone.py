"""Children that pack as best, worst or first fit in disguise are recognised
and redrawn (monotone.py)."""

import ast
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_mutation import programs, query_of, sampler  # noqa: E402

from funsearch.samplers.mutation.monotone import CONSTANT, DECREASING, INCREASING, trend  # noqa: E402

POSITIVE = frozenset({"item", "bins"})


def _trend(body: str, positive=POSITIVE):
    source = "def priority(item: float, bins: np.ndarray) -> np.ndarray:\n" + "".join(
        f"    {line}\n" for line in body.splitlines()
    )
    return trend(ast.parse(source).body[0], positive)


@pytest.mark.parametrize(
    "body, expected",
    [
        ("return -(bins - item)", DECREASING),
        ("return -((bins - item) * 1.144)", DECREASING),
        ("return -(bins / item ** 2)", DECREASING),
        ("t1 = item\nreturn -(bins / t1 - item - t1)", DECREASING),
        ("return -(bins - item) + np.mean(bins)", DECREASING),
        ("return item / bins", DECREASING),
        ("t1 = -np.sqrt(bins)\nt1 += item\nreturn t1 * np.max(bins)", DECREASING),
        ("return -(bins - item) ** 3", DECREASING),
        ("return np.roll(-bins, 0)", DECREASING),
        ("return bins - item", INCREASING),
        ("return np.maximum(bins, item + bins)", INCREASING),
        ("return -(bins - (bins + item)) * bins * 0.0", CONSTANT),
    ],
)
def test_monotone_maps_of_the_bins_are_recognised(body, expected):
    assert _trend(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        # e**item swallows the differences of the bins: ties, another policy.
        "return -(bins - item + np.exp(item))",
        "return (bins - item) * (item - 30.0)",  # the direction depends on the item
        "return np.maximum(bins, 5.0)",  # ties below 5
        "return bins - np.roll(bins, 1)",
        "return np.where(bins - item < 5, bins, -bins)",
        "return np.arange(len(bins)) * item",
        "s = -bins\ns[bins > item] = 0\nreturn s",
        "return -np.tanh(bins - item)",
        "return -(bins ** 9)",
    ],
)
def test_anything_else_is_unknown(body):
    assert _trend(body) is None


def test_without_known_signs_a_scalar_factor_has_no_direction():
    assert _trend("return -(bins / item)") == DECREASING
    assert _trend("return -(bins / item)", positive=frozenset()) is None


def _function(program: str) -> ast.FunctionDef:
    return next(n for n in ast.parse(program).body if isinstance(n, ast.FunctionDef))


def test_with_ranked_return_no_child_packs_as_best_worst_or_first_fit():
    query = query_of("bin_packing")
    settings = {"ranked_return": True, "positive_parameters": ["item", "bins"]}
    children = programs(sampler(seed=5, **settings), query, 200)
    assert not [c for c in children if trend(_function(c), POSITIVE) is not None]
    plain = programs(sampler(seed=5, ranked_return=True), query, 200)
    assert [c for c in plain if trend(_function(c), POSITIVE) is not None]
