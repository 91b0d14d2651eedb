"""problems/cap_set.py: greedy construction and the host's line check."""

import itertools
from pathlib import Path

import pytest

from funsearch import spec as spec_module

SPEC = Path(__file__).parents[2] / "problems" / "cap_set.py"


@pytest.fixture()
def spec():
    return spec_module.load(SPEC)


def _build(spec, program: str, n: int):
    exec(program, spec.module.__dict__)
    return spec.function(spec.run_name)(n)


def _has_line(vectors) -> bool:
    """Brute force: three distinct vectors summing to 0 mod 3."""
    points = {tuple(v) for v in vectors}
    for a, b in itertools.combinations(points, 2):
        if tuple((-x - y) % 3 for x, y in zip(a, b, strict=True)) in points:
            return True
    return False


def test_spec_declares_priority_over_dimension_8(spec):
    assert spec.evolve_name == "priority"
    assert spec.inputs("train") == {"n8": 8}
    assert "trivial" in spec.baselines


def test_trivial_priority_gives_the_binary_cap_set(spec):
    """Equal priorities keep lexicographic order: greedy then takes {0, 1}^n."""
    cap = _build(spec, spec.baselines["trivial"], 8)
    assert len(cap) == 256 and all(set(v) <= {0, 1} for v in cap)
    assert spec.score(8, cap) == 256.0


@pytest.mark.parametrize("n", [3, 4, 5])
def test_greedy_result_is_a_cap_set_for_any_priority(spec, n):
    program = (
        "def priority(el, n):\n"
        "    return float(sum(x * (i + 1) for i, x in enumerate(el)) % 7)\n"
    )
    cap = _build(spec, program, n)
    assert not _has_line(cap)
    assert spec.score(n, cap) == len(cap)
    # Maximal: every vector left out completes a line with two in the set.
    for vector in itertools.product(range(3), repeat=n):
        if list(vector) not in cap:
            assert _has_line(cap + [list(vector)])


def test_score_accepts_a_product_of_cap_sets(spec):
    """The product of two caps is a cap: the checker must not find a line in it."""
    program = "def priority(el, n):\n    return float((el[0] * 5 + el[1] * 3 + el[2]) % 4)\n"
    cap3 = _build(spec, program, 3)
    cap6 = [a + b for a in cap3 for b in cap3]
    assert not _has_line(cap6)
    assert spec.score(6, cap6) == len(cap3) ** 2


@pytest.mark.parametrize(
    "vectors, reason",
    [
        ([[0, 0, 0], [1, 1, 1], [2, 2, 2]], "on a line"),
        ([[0, 0, 0], [0, 1, 2], [0, 2, 1]], "on a line"),
        ([[0, 0, 0], [0, 0, 0]], "more than once"),
        ([[0, 0, 3]], "0, 1 or 2"),
        ([[0, 0]], "3 coordinates"),
        ([[0, 0, 1.0]], "integers"),
    ],
)
def test_score_rejects_a_set_that_is_not_a_cap_set(spec, vectors, reason):
    with pytest.raises(ValueError, match=reason):
        spec.score(3, vectors)
