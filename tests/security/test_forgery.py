"""Programs that try to forge their score (issue 24), through the evaluator.

Where the run function returns the score itself, evaluations are split by
default: every attack scores what its `solve` really returns, or is rejected
with a reason. Where the host scores, they are not split by default: a program
can replace the outputs, and the host's score still bounds what they are worth.
Without a split, a self-scoring spec is forgeable, as `check` says.
"""

from __future__ import annotations

import pytest

from funsearch import spec as spec_module
from funsearch.evaluator import Evaluation, Evaluator, scoring, splits
from sandbox.pool import SandboxPool
from tests.security.conftest import LIMITS, levels
from tests.security.forgery import (
    ATTACKS,
    FORGED,
    HONEST,
    HONEST_SCORES,
    HOST_SCORED,
    SELF_SCORED,
    program,
    spec_text,
)
from tests.security.test_processes import FORBIDDEN

BROKE = "the program's process broke the protocol: "

# Split, the run function scores: what each attack comes to.
SPLIT = {
    "result_frame": ("invalid_output", BROKE + "a malformed answer (tag b'O')"),
    "result_frame_then_exit": ("invalid_output", BROKE + "a malformed answer (tag b'O')"),
    "answer_frame": ("ok", [0.0, 0.0]),
    "patched_global": ("ok", [0.0, 0.0]),
    "patched_builtin": ("ok", [1.0, 1.0]),
    "replaced_run_code": ("ok", [0.0, 0.0]),
    "caller_locals": ("ok", [0.0, 0.0]),  # a claim of 1e9: false, so 0
    "float_subclass": ("ok", [0.0, 0.0]),
    "numpy_subclass": ("ok", [0.0, 0.0]),
    "proc_of_others": ("ok", [0.0, 0.0]),
    "shared_memory": ("ok", [0.0, 0.0]),
    "hostile_exception": ("error", "Lie: <unprintable> (at program:"),
    "huge_return": ("invalid_output", "an answer of 80000005 bytes from the program, over the "
                                      f"limit of {LIMITS.result_bytes}"),
    "deep_return": ("error", "TypeError: the program returned a value nested more than 100 deep, "
                             "which cannot leave the program's process (at "),
    "closed_answer_pipe": ("crashed", "exited with status 72 before returning a result"),
    "kill_parent": ("forbidden", FORBIDDEN),
    "tgkill_parent": ("forbidden", FORBIDDEN),
    "ptrace_parent": ("forbidden", FORBIDDEN),
    "output_frame": ("ok", [0.0, 0.0]),
    "process_vm_writev_parent": ("forbidden", FORBIDDEN),
    "steal_fd": ("forbidden", FORBIDDEN),
}


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> dict[str, spec_module.Specification]:
    folder = tmp_path_factory.mktemp("forgery")
    loaded = {}
    for name, text in (("self_scored", SELF_SCORED), ("host_scored", HOST_SCORED)):
        path = folder / f"{name}.py"
        path.write_text(spec_text(text))
        loaded[name] = spec_module.load(path)
    return loaded


def evaluator(spec: spec_module.Specification, level: str, split: str = "auto") -> Evaluator:
    pool = SandboxPool(spec.path, workers=2, limits=LIMITS, isolation=level,
                       split=splits(spec, split))
    return Evaluator(spec, pool, "train")


@pytest.fixture(scope="module", params=levels())
def self_scored(request, specs):
    judge = evaluator(specs["self_scored"], request.param)
    yield judge
    judge._pool.close()


@pytest.fixture(scope="module", params=levels())
def host_scored(request, specs):
    judge = evaluator(specs["host_scored"], request.param)
    yield judge
    judge._pool.close()


def attempt(judge: Evaluator, attack: str) -> Evaluation:
    """The attack beside an honest evaluation, and an honest one after it: the
    evaluator goes on scoring honest programs as before."""
    hostile = judge.submit(program(attack))
    honest = judge.submit(program(HONEST))
    assert list(honest.result().scores.values()) == HONEST_SCORES
    evaluation = hostile.result()
    assert list(judge.evaluate(program(HONEST)).scores.values()) == HONEST_SCORES
    return evaluation


def test_auto_splits_where_the_run_function_scores_and_not_where_the_host_does(specs):
    assert splits(specs["self_scored"], "auto") and not splits(specs["host_scored"], "auto")
    assert splits(specs["host_scored"], "on") and not splits(specs["self_scored"], "off")


@pytest.mark.parametrize("attack", sorted(SPLIT))
def test_split_a_self_scored_program_scores_what_it_returns_or_is_rejected(self_scored, attack):
    evaluation = attempt(self_scored, attack)
    status, expected = SPLIT[attack]
    assert evaluation.status == status, evaluation.reason
    if status == "ok":
        assert list(evaluation.scores.values()) == expected
    else:
        assert evaluation.reason.startswith(expected)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_host_scored_outputs_a_program_forges_are_bounded_by_the_host_score(host_scored, attack):
    evaluation = attempt(host_scored, attack)
    if evaluation.ok:  # at most n for n = 3 and 5: what an honest claim can score
        assert all(score <= n for score, n in zip(evaluation.scores.values(), (3, 5), strict=True))
    else:
        assert evaluation.reason


def test_issue_24_frame_is_rejected_even_unsplit(host_scored):
    evaluation = attempt(host_scored, "result_frame")
    assert (evaluation.status, evaluation.reason) == (
        "invalid_output", "more than one result on the result pipe (the program wrote one of its own)")


def test_unsplit_a_self_scored_spec_is_forgeable_as_its_scoring_says(specs):
    spec = specs["self_scored"]
    judge = evaluator(spec, "process", split="off")
    try:
        forged = attempt(judge, "patched_builtin")
        note = judge.scoring()
    finally:
        judge._pool.close()
    assert list(forged.scores.values()) == [FORGED, FORGED]
    assert not note.split
    assert note.forgeable.startswith("the score itself: 'run' returns it in the program's")


def test_split_nothing_is_forgeable_and_unsplit_the_host_checked_outputs_are(specs):
    split = scoring(specs["self_scored"], True, "bwrap", own_uid=False)
    assert (split.by, split.forgeable) == (
        "the run function 'run', the program in a process of its own", "")
    host = scoring(specs["host_scored"], False, "bwrap", own_uid=False)
    assert host.forgeable.startswith("the outputs (any that 'score' accepts")
    unsafe = scoring(specs["self_scored"], True, "process", own_uid=False)
    assert unsafe.forgeable.startswith("everything: under process isolation without root")
