"""A study runs, logs every run and decision, and goes on from its log after a crash."""

from pathlib import Path

import numpy as np
import pytest

from funsearch import cli
from funsearch.study import runner, studyfile, studylog, synthetic

ROOT = Path(__file__).resolve().parents[2]
WORLD = synthetic.World(400.0, {"one": synthetic.TrueArm(1.2, 0.2, 0.5, 0.05),
                                "four": synthetic.TrueArm(1.25, 0.2, 0.5, 0.05),
                                "cross": synthetic.TrueArm(1.1, 0.2, 0.5, 0.05)})


def write_study(folder: Path, count: int = 6, parallel: int = 1) -> studyfile.StudyFile:
    path = folder / "STUDY.toml"
    path.write_text(f"""
name = "proposers"
experiment = "{ROOT / 'experiments' / 'tsp_quickstart.toml'}"
unit = "samples"
budget = 400
overrides = {{ "runtime.kind" = "inline" }}
[runs]
count = {count}
parallel = {parallel}
[arms.one]
overrides = {{ "samplers.mutation.samples_per_prompt" = 1 }}
[arms.four]
[arms.cross]
overrides = {{ "samplers.0.settings.crossover_rate" = 0.6 }}
""")
    return studyfile.load(path)


class FakeRuns:
    """Curves from the law instead of searches; records what it was asked
    to run, and can be made to die (like a killed driver) at a given run."""

    def __init__(self, die_at: int | None = None):
        self.calls: list[tuple[int, str, int]] = []
        self.die_at = die_at

    def __call__(self, request: runner.RunRequest) -> runner.RunOutcome:
        if request.run == self.die_at:
            raise KeyboardInterrupt  # not an Exception: nothing logs it, as with SIGKILL
        self.calls.append((request.run, request.arm, request.seed))
        curve = WORLD.run(request.arm, request.budget, np.random.default_rng(request.seed))
        return runner.RunOutcome(curve, "sample budget reached", str(request.run_dir))


def test_a_study_makes_its_runs_and_logs_each_decision_and_curve(tmp_path):
    study = write_study(tmp_path)
    fake = FakeRuns()
    state = runner.run_study(study, tmp_path / "s", run_function=fake)
    assert len(state.done()) == 6 and state.ended.startswith("budget of runs spent")
    assert [arm for _, arm, _ in fake.calls[:3]] == ["one", "four", "cross"]  # initial design
    assert all(r.rule == "information gain" and r.gain is not None for r in state.done()[3:])
    kinds = [event["kind"] for event in studylog.read(tmp_path / "s")]
    assert kinds.count("decision") == kinds.count("run_end") == kinds.count("fit") == 6


def test_a_killed_study_goes_on_from_its_log_without_redoing_runs(tmp_path):
    study = write_study(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        runner.run_study(study, tmp_path / "s", run_function=FakeRuns(die_at=4))
    killed = studylog.fold(studylog.read(tmp_path / "s"))
    assert len(killed.done()) == 4 and [r.run for r in killed.unfinished()] == [4]
    decided = killed.runs[4]

    again = FakeRuns()
    state = runner.run_study(write_study(tmp_path), tmp_path / "s", run_function=again)
    assert again.calls[0] == (4, decided.arm, decided.seed)  # the cut run, as decided
    assert [run for run, _, _ in again.calls] == [4, 5]  # runs 0-3 are not made again
    assert len(state.done()) == 6 and state.sessions == 2


def test_a_failed_run_stops_the_study_and_is_made_again_on_resume(tmp_path):
    def broken(request):
        raise RuntimeError("sandbox unavailable")

    state = runner.run_study(write_study(tmp_path), tmp_path / "s", run_function=broken)
    assert "failed: RuntimeError: sandbox unavailable" in state.ended
    fake = FakeRuns()
    state = runner.run_study(write_study(tmp_path), tmp_path / "s", run_function=fake)
    assert fake.calls[0][0] == 0 and len(state.done()) == 6


def test_resuming_with_other_arms_is_an_error_that_says_so(tmp_path):
    runner.run_study(write_study(tmp_path, count=3), tmp_path / "s", run_function=FakeRuns())
    other = write_study(tmp_path)
    other = other.model_copy(update={"budget": 800.0})
    with pytest.raises(studyfile.StudyError, match="other budget"):
        runner.run_study(other, tmp_path / "s", run_function=FakeRuns())


def test_more_runs_extend_a_finished_study(tmp_path):
    runner.run_study(write_study(tmp_path, count=4), tmp_path / "s", run_function=FakeRuns())
    fake = FakeRuns()
    state = runner.run_study(write_study(tmp_path, count=6), tmp_path / "s", run_function=fake)
    assert [run for run, _, _ in fake.calls] == [4, 5] and len(state.done()) == 6


def test_parallel_slots_are_filled_with_different_questions(tmp_path):
    fake = FakeRuns()
    state = runner.run_study(write_study(tmp_path, count=7, parallel=2), tmp_path / "s",
                             run_function=fake)
    assert len(state.done()) == 7


def test_study_show_prints_the_laws_the_runs_and_writes_a_plot(tmp_path, capsys):
    runner.run_study(write_study(tmp_path), tmp_path / "s", run_function=FakeRuns())
    assert cli.main(["study", "show", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "P(best at B)" in out and "information gain" in out and "noise:" in out
    assert (tmp_path / "s" / "study.png").read_bytes()[:4] == b"\x89PNG"


def test_study_show_of_a_folder_without_a_log_is_one_line(tmp_path, capsys):
    assert cli.main(["study", "show", str(tmp_path)]) == 2
    assert "not a study directory" in capsys.readouterr().err


def test_a_real_inline_run_gives_its_best_so_far_curve_in_the_study_unit(tmp_path):
    study = write_study(tmp_path)
    config = studyfile.arm_config(study, "one", 0.05, seed=1, out=str(tmp_path))  # 20 samples
    request = runner.RunRequest(0, "one", 0.05, 1, tmp_path / "run", "samples", config)
    outcome = runner.run_inline(request)
    assert outcome.curve.extent == 20 and outcome.curve.points[0][0] == 0
    assert "sample budget reached" in outcome.stop_reason
    assert Path(outcome.run_dir) == tmp_path / "run"


@pytest.mark.slow  # three real 16-sample runs: a few seconds
def test_funsearch_study_runs_a_tiny_real_study_and_shows_it(tmp_path, capsys):
    path = tmp_path / "STUDY.toml"
    path.write_text(f"""
name = "tiny"
experiment = "{ROOT / 'experiments' / 'tsp_quickstart.toml'}"
budget = 16
overrides = {{ "runtime.kind" = "inline", "problem.holdout" = [] }}
[runs]
count = 3
[arms.four]
[arms.one]
overrides = {{ "samplers.mutation.samples_per_prompt" = 1 }}
""")
    assert cli.main(["study", str(path), "--dir", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "run 2:" in out and "budget of runs spent (3 runs)" in out and "P(best at B)" in out
    assert len(list((tmp_path / "s" / "runs").iterdir())) == 3
