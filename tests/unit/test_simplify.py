"""best.py's program simplified: aliases and dead assignments gone, behaviour kept."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from funsearch.config import SamplerConfig
from funsearch.parsing import parse
from funsearch.prompt import build_query
from funsearch.samplers.mutation.proposer import MutationSampler
from funsearch.simplify import simplify
from tests.unit.test_mutation import TSP_LOOKAHEAD


def _simplified(body: str) -> str:
    return simplify("def f(x, d):\n" + textwrap.indent(textwrap.dedent(body), "    "))


def test_chains_of_aliases_and_unread_assignments_are_dropped():
    assert _simplified("""
        '''Doc.'''
        t4 = np.tanh(x)
        t3 = t4
        t1 = t3
        t5 = np.mean(d)
        t2 = x * 2
        t2 = x * 3
        return x + t1 * t2
    """) == "def f(x, d):\n    \"\"\"Doc.\"\"\"\n    t4 = np.tanh(x)\n    t2 = x * 3\n" \
           "    return x + t4 * t2\n"


@pytest.mark.parametrize("body", [
    "a = x\nx = x + 1\nreturn a + x\n",  # the copy's source bound again
    "a = x\ng = lambda: a\nx = 5\nreturn g()\n",  # read later, by a closure
    "a = x\nd.append(1)\nreturn len(locals())\n",  # the locals are looked at
    "t = d.pop()\nreturn x\n",  # a method call may have an effect
    "t = print(x)\nreturn x\n",  # so may a call that is not numpy or math
    "global g\ng = x\nreturn x\n",  # a global's value outlives the call
])
def test_code_whose_meaning_could_change_is_left_as_it_is(body):
    program = "def f(x, d):\n" + textwrap.indent(body, "    ")
    assert simplify(program) == parse_normal(program)


def parse_normal(program: str) -> str:
    import ast

    return ast.unparse(ast.parse(program)) + "\n"


def test_loops_keep_what_the_next_iteration_reads():
    program = _simplified("""
        s = 0
        for i in range(3):
            b = s
            s = s + i
            c = b
        prev = s
        s = prev * 2
        return s + prev
    """)
    assert "c = b" not in program and "b = s" not in program
    assert "prev = s" in program or "return s + " in program
    scope: dict = {}
    exec(program, scope)
    assert scope["f"](0, None) == 9


TSP = TSP_LOOKAHEAD


def _tour(function, matrix: np.ndarray) -> list[int]:
    tour, unvisited = [0], np.arange(1, len(matrix))
    while len(unvisited):
        node = int(function(tour[-1], 0, unvisited, matrix))
        tour.append(node)
        unvisited = unvisited[unvisited != node]
    return tour


def _behaviour(program: str, matrices: list[np.ndarray]) -> list:
    scope = {"np": np}
    exec(program, scope)
    out = []
    with np.errstate(all="ignore"):
        out += _tours(scope["select_next_node"], matrices)
    return out


def _tours(function, matrices: list[np.ndarray]) -> list:
    out = []
    for matrix in matrices:
        try:
            out.append(_tour(function, matrix))
        except Exception as error:  # noqa: BLE001 - the failure is the behaviour
            out.append(type(error).__name__)
    return out


def test_the_proposers_children_do_exactly_what_they_did_once_simplified():
    """Generations of the mutation proposer's children on TSP: each one
    simplified tours the same instances the same way (or fails the same way)."""
    rng = np.random.default_rng(0)
    matrices = []
    for n in (6, 9, 12):
        points = rng.random((n, 2))
        matrices.append(np.linalg.norm(points[:, None] - points[None], axis=-1))
    sampler = MutationSampler(SamplerConfig(name="m", settings={"mutations_per_child": 4}),
                              seed=3)
    population, changed = [TSP], 0
    for _ in range(12):
        query = build_query("import numpy as np\n", "select_next_node", population[-2:])
        for sample in sampler.sample(query, 8):
            program = (sample.parsed or parse(sample.text, query)).program
            if program is None:
                continue
            simpler = simplify(program)
            changed += simpler != program
            assert _behaviour(simpler, matrices) == _behaviour(program, matrices), program
            population.append(program)
    assert changed >= 10 and len(population) >= 60
