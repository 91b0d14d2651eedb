"""hoist.py: a repeated costly expression computed once, the function unchanged."""

from __future__ import annotations

import ast
import itertools
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from test_mutation import DISTANCES, TSP_LOOKAHEAD, programs, query_of, sampler  # noqa: E402

from funsearch.samplers.mutation.hoist import hoist  # noqa: E402
from funsearch.samplers.mutation.numeric import Modules  # noqa: E402

NP = Modules(numpy="np")
ROW = "np.mean(m[u][:, u], axis=1)"


def hoisted(body: str) -> str:
    function = ast.parse(f"def f(m, u, c):\n    {body}\n").body[0]
    names = (f"h{i}" for i in itertools.count())
    hoist(function, NP, lambda: next(names))
    return "\n".join(ast.unparse(statement) for statement in function.body)


def test_a_repeat_in_one_statement_is_computed_once():
    assert hoisted(f"return u[np.argmin(m[c, u] * {ROW} + {ROW})]") == (
        "h0 = np.mean(m[u][:, u], axis=1)\nreturn u[np.argmin(m[c, u] * h0 + h0)]")


def test_a_repeat_across_statements_goes_before_the_first_use():
    text = hoisted(f"t = {ROW} * 2\n    s = m[c, u]\n    return u[np.argmin(s - {ROW})]")
    assert text.splitlines()[0] == "h0 = np.mean(m[u][:, u], axis=1)"
    assert text.count("np.mean") == 1


def test_the_holder_goes_first_and_its_parts_follow():
    text = hoisted(f"return u[np.argmin(np.exp({ROW}) + np.exp({ROW}) + {ROW})]")
    assert text.splitlines()[:2] == ["h0 = np.mean(m[u][:, u], axis=1)", "h1 = np.exp(h0)"]


def test_a_matrix_reduced_along_an_axis_is_never_a_local_of_its_own():
    text = hoisted("t = np.std(m[u][:, u], axis=1)\n    return u[np.argmin(np.max(m[u][:, u], axis=1) + t)]")
    assert "= m[u][:, u]" not in text


@pytest.mark.parametrize("body", [
    f"return u[np.argmin({ROW} if c > 0 else {ROW} + 1)]",  # maybe not evaluated
    f"t = {ROW}\n    u = u[1:]\n    return u[np.argmin({ROW} + t)]",  # u changes between
    f"t = {ROW}\n    m[0, 0] = 5.0\n    return u[np.argmin({ROW} + t)]",  # m changes in place
    f"t = {ROW}\n    np.copyto(m, 0.5)\n    return u[np.argmin({ROW} + t)]",
    f"t = {ROW}\n    m.sort()\n    return u[np.argmin({ROW} + t)]",  # a method call may too
    "return u[np.argmin(np.random.rand(len(u)) + np.random.rand(len(u)))]",  # not pure
    "return u[np.argmin(m[c] + m[c])]",  # too small to be worth a local
])
def test_nothing_is_hoisted_where_it_could_change_the_result(body):
    assert hoisted(body) == "\n".join(line.strip() for line in body.split("\n"))


def test_children_compute_the_same_tours_after_hoisting():
    """The proposer's own children of a TSP prompt, run with and without it."""
    children = programs(sampler(seed=5, hoist_repeats=False), query_of("tsp_two_versions"), 300)
    changed = 0
    for child in children:
        function = ast.parse(child).body[0]
        names = (f"h{i}" for i in itertools.count())
        if not hoist(function, NP, lambda names=names: next(names)):
            continue
        changed += 1
        results = [_tour(program) for program in (child, ast.unparse(function))]
        assert results[0] == results[1], child
    assert changed >= 5


def test_the_sampler_hoists_by_default():
    children = programs(sampler(seed=5), query_of("tsp_two_versions"), 300)
    row = "distance_matrix[unvisited_nodes, destination_node]"
    assert not any(child.count(row) > 1 for child in children)
    assert TSP_LOOKAHEAD.count(row) == 1


def _tour(program: str):
    namespace = {"np": np}
    exec(program, namespace)  # noqa: S102 - the proposer's children of our own test program
    function = namespace["select_next_node"]
    unvisited, tour, current = list(range(1, 12)), [0], 0
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            while unvisited:
                node = int(function(current, 0, np.array(unvisited), DISTANCES.copy()))
                unvisited.remove(node)
                tour.append(current := node)
        except Exception as error:  # noqa: BLE001 - a child may fail; the same way both times
            return type(error).__name__
    return tour
