"""A tiny spec and a sandbox pool per isolation level, unsplit and split (the
program in a process of its own: sandbox/program.py), shared by the attack tests.

Every attack runs beside an honest evaluation on the other worker, and is
followed by one: the test asserts the attack's exact outcome and that the
honest evaluations were not affected.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from sandbox import isolation
from sandbox.pool import Limits, Outcome, SandboxPool

SECRET = "s3cret-host-token"

SPEC = '''
"""Pick the item closest to a target; the host scores the pick itself."""
import numpy as np
import funsearch

WEIGHTS = [1.0, 2.0, 3.0]


def closeness(instance, choice):
    """A helper the run function reports with; a program may try to replace it."""
    return -abs(choice - instance["target"])


@funsearch.inputs
def train():
    return {"near": {"target": 3, "items": [1, 2, 3]}, "far": {"target": 7, "items": [4, 5, 6]}}


@funsearch.run
def solve(instance):
    choice = pick(instance["items"], instance["target"])
    numeric = isinstance(choice, (int, float))
    return {"choice": choice, "claimed": closeness(instance, choice) if numeric else None}


@funsearch.score
def score(instance, output):
    return -abs(output["choice"] - instance["target"])


@funsearch.evolve
def pick(items, target):
    return min(items, key=lambda item: abs(item - target))
'''

HONEST = "def pick(items, target):\n    return min(items, key=lambda item: abs(item - target))\n"
HONEST_OUTPUTS = [{"choice": 3, "claimed": 0}, {"choice": 6, "claimed": -1}]

# Generous on time: this machine is shared, and only the deadline tests (on
# their own quick pool) should ever reach it.
LIMITS = Limits(
    timeout=10.0, memory_mb=768, file_size_mb=4, output_bytes=1 << 16, result_bytes=1 << 20
)
QUICK = Limits(timeout=0.5, memory_mb=768)


def levels() -> list:
    """Both isolation levels; bwrap is skipped (with the reason) only where it cannot run."""
    choice = isolation.resolve("auto")
    bwrap = pytest.param(
        "bwrap",
        marks=pytest.mark.skipif(choice.level != "bwrap", reason=choice.reason),
    )
    return [bwrap, "process"]


@pytest.fixture(scope="session")
def spec_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("security") / "pick.py"
    path.write_text(textwrap.dedent(SPEC))
    return path


def modes() -> list:
    """(level, split) for both levels, each unsplit and split."""
    found = []
    for level in levels():
        name, marks = (level.values[0], level.marks) if hasattr(level, "values") else (level, ())
        for split in (False, True):
            found.append(pytest.param((name, split), marks=marks,
                                      id=f"{name}-split" if split else name))
    return found


@pytest.fixture(scope="module", params=modes())
def pool(request, spec_path):
    level, split = request.param
    with pytest.MonkeyPatch.context() as patch:
        # Put a secret in the host's environment before the workers start.
        patch.setenv("FUNSEARCH_TEST_SECRET", SECRET)
        sandbox = SandboxPool(spec_path, workers=2, limits=LIMITS, isolation=level, split=split)
    assert (sandbox.isolation, sandbox.split) == (level, split)
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="module", params=modes())
def quick_pool(request, spec_path):
    """A pool with a half-second deadline, for the attacks on time."""
    level, split = request.param
    with SandboxPool(spec_path, workers=2, limits=QUICK, isolation=level, split=split) as sandbox:
        yield sandbox


def needs_own_uid(pool: SandboxPool) -> None:
    """Skips where only a uid of its own protects (process isolation) and the host
    is not root, so evaluations keep the host's uid (see sandbox/__init__.py)."""
    if pool.isolation == "process" and os.geteuid() != 0:
        pytest.skip("process isolation without root: evaluations keep the host's uid")


def program(body: str) -> str:
    """The evolved function `pick` with `body` (dedented) as its body."""
    return "def pick(items, target):\n" + textwrap.indent(textwrap.dedent(body).strip(), "    ")


def attack(pool: SandboxPool, body: str) -> Outcome:
    """Runs a hostile `pick` beside an honest one, then checks the pool still works."""
    hostile = pool.submit(program(body), "pick", "train")
    honest = pool.submit(HONEST, "pick", "train")
    assert_honest(honest.result())
    outcome = hostile.result()
    assert_honest(pool.run(HONEST, "pick", "train"))
    return outcome


def assert_honest(outcome: Outcome) -> None:
    assert (outcome.status, outcome.detail) == ("ok", "")
    assert outcome.outputs == HONEST_OUTPUTS


def choices(outcome: Outcome) -> list | None:
    """What `pick` returned for each input (the run function wraps it)."""
    return None if outcome.outputs is None else [output["choice"] for output in outcome.outputs]
