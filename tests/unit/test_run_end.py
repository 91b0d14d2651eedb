"""The end of a run: what summary.json and best.py say, and a finished run resumed."""

from __future__ import annotations

import json
import runpy
import textwrap

import pytest

from funsearch import cli, experiment, runlog
from tests.unit.test_engine import SPEC as ENGINE_SPEC
from tests.unit.test_engine import ScriptedSampler, make_config

# test_engine's problem with a baseline: 3x is right, twice is 2x.
SPEC = ENGINE_SPEC + """
@funsearch.baseline
def twice(x):
    return 2 * x
"""


def _run(tmp_path, *texts, samples=4):
    config = make_config(tmp_path, samples, database={"islands": 2})
    (tmp_path / "spec.py").write_text(textwrap.dedent(SPEC))
    return experiment.run(config, samplers={"scripted": ScriptedSampler("scripted", list(texts))})


ALIASES = "    t4 = 3 * x\n    t3 = t4\n    t1 = t3\n    return t1\n"


def test_best_py_has_no_dead_aliases_and_scores_exactly_as_the_best_program(tmp_path):
    result = _run(tmp_path, ALIASES)
    assert "t3 = t4" in result.best_program  # the search keeps what it evaluated
    text = (result.run_dir / "best.py").read_text()
    function = text[text.index("def f(x):"):]
    assert "t3" not in function and "t1" not in function
    assert "simplified: same scores on every input" in text.splitlines()[0]
    namespace = runpy.run_path(str(result.run_dir / "best.py"))
    assert [namespace["evaluate"](x) for x in (1.0, 8.0, 16.0)] == [3.0, 24.0, 48.0]
    summary = json.loads((result.run_dir / runlog.SUMMARY).read_text())
    assert summary["best_py_simplified"] is True


def test_best_py_keeps_the_program_as_it_was_when_the_simplified_one_scores_otherwise(tmp_path):
    """The dead `t5` divides by zero at x = 8, on the held-out set: dropping it
    would turn the held-out failure into a score."""
    result = _run(tmp_path, "    t5 = 1.0 / (x - 8.0)\n    return 3 * x\n")
    text = (result.run_dir / "best.py").read_text()
    assert "t5 = 1.0 / (x - 8.0)" in text
    summary = json.loads((result.run_dir / runlog.SUMMARY).read_text())
    assert summary["best_py_simplified"] is False and summary["holdout"] == {"holdout": None}


def test_summary_has_the_initial_program_and_baselines_scores_and_the_sessions(tmp_path):
    result = _run(tmp_path, "    return 3 * x\n")
    summary = json.loads((result.run_dir / runlog.SUMMARY).read_text())
    assert summary["initial"] == {"train": {"score": pytest.approx(-14 / 3)},
                                  "holdout": {"score": -24.0}}
    assert summary["baselines"] == {"twice": {"train": {"score": pytest.approx(-7 / 3)},
                                              "holdout": {"score": -12.0}}}
    assert summary["scores"]["train"] == {"score": 0.0}
    assert summary["sessions"] == 1 and summary["resumed"] == 0
    assert summary["wall_seconds"] > 0
    header = (result.run_dir / "best.py").read_text().splitlines()[:5]
    assert header[3] == "# initial program: train -4.66667, holdout -24"
    assert header[4] == "# baseline twice: train -2.33333, holdout -12"


def _files(run_dir):
    return {path.name: path.read_bytes() for path in sorted(run_dir.iterdir())}


def test_resuming_a_finished_run_without_a_larger_budget_changes_nothing(tmp_path, capsys):
    result = _run(tmp_path, "    return 2 * x\n")
    before = _files(result.run_dir)
    assert cli.main(["resume", str(result.run_dir)]) == 2
    err = capsys.readouterr().err
    assert "the run already finished (sample budget reached (4 samples))" in err
    assert "nothing was changed" in err and "--max-samples 8" in err
    assert _files(result.run_dir) == before
    with pytest.raises(experiment.AlreadyFinished):
        experiment.resume(result.run_dir)
    assert _files(result.run_dir) == before


def test_a_finished_run_resumed_with_a_larger_budget_says_it_was_resumed(tmp_path):
    result = _run(tmp_path, "    return 2 * x\n")
    resumed = experiment.resume(result.run_dir, **{"scheduler.budget.samples": 8,
                                                   "samplers.0.backend": "mutation"})
    summary = json.loads((resumed.run_dir / runlog.SUMMARY).read_text())
    assert summary["sessions"] == 2 and summary["resumed"] == 1
    assert summary["counters"]["samples"] == 8
    kinds = [event["kind"] for event in runlog.read_events(result.run_dir)]
    assert kinds.count("resume") == 1 and kinds.count("run_end") == 2


def test_show_puts_the_initial_program_and_baselines_beside_the_best(tmp_path, capsys):
    result = _run(tmp_path, "    return 3 * x\n")
    assert cli.main(["show", str(result.run_dir)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("initial program"))
    assert line.split()[2:] == ["-4.66667", "(train),", "-24", "(holdout)"]
    assert "baseline twice" in out and "-2.33333 (train), -12 (holdout)" in out
