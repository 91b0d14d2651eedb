"""Cascades: stage rules, stopped programs, the adaptive thresholds, replays."""

import itertools
import textwrap

import pytest

from funsearch import cascades, events, experiment, resume, runlog
from funsearch import config as config_module
from funsearch.config import CascadeConfig, StageConfig
from funsearch.evaluator import Evaluation
from funsearch.samplers.base import Sample
from funsearch.scheduling.cascade_simulation import CascadeSimulation, World, cascade_config

IDS = ("a", "b", "c", "d")


def make_cascade(rule="margin", threshold=0.1, inputs=2, audit=0.0, mode="fixed"):
    stage = StageConfig(inputs=inputs, rule=rule, threshold=threshold)
    cascade = cascades.Cascade([stage], "train", audit, mode == "adaptive", 12, seed=0)
    cascade.apply(registration(0, {"a": -1.0, "b": -1.0, "c": -10.0, "d": -10.0}, None))
    return cascade


def registration(program_id, scores, sample, island=0):
    return events.Registration(program_id=program_id, island=island,
                               score=sum(scores.values()) / len(scores), scores=scores,
                               parents=[], sampler="s", program="", sample=sample,
                               hash=f"h{program_id}")


def stage_result(scores, input_set="train"):
    return Evaluation("ok", scores, duration=0.5, input_set=input_set)


def test_a_margin_rule_passes_within_the_margin_of_the_island_best_on_the_stage():
    cascade = make_cascade(rule="margin", threshold=0.1)
    assert cascade.job(0) == ("train", ["a", "b"])  # the first 2 in the database's order
    assert cascade.judge(0, 0, -1.05, sample=1).passed  # 5% below the stage best of -1
    verdict = cascade.judge(0, 0, -1.2, sample=1)
    assert not verdict.passed and verdict.reference == -1.0 and verdict.needs == pytest.approx(0.2)


def test_a_top_rule_passes_the_top_fraction_of_the_island_s_recent_programs():
    cascade = make_cascade(rule="top", threshold=0.5)
    assert cascade.judge(0, 0, -5.0, sample=1).passed  # too few programs to rank against
    for sample, score in enumerate([-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0]):
        cascade.apply(events.Stage(sample=sample, sampler="s", hash=f"x{sample}", island=0,
                                   stage=0, input_set="train", status="ok", score=score,
                                   scores={}, duration=0.1, reference=None, needs=None,
                                   threshold=0.5, passed=True, audit=False))
    assert cascade.judge(0, 0, -2.5, sample=9).passed  # 3rd of 8
    assert not cascade.judge(0, 0, -6.5, sample=9).passed  # 7th of 8
    assert cascade.judge(0, 1, -6.5, sample=9).passed  # another island: nothing to rank against


def test_a_stopped_program_ends_with_its_partial_scores_and_a_passing_one_runs_the_rest():
    cascade = make_cascade(rule="margin", threshold=0.1)
    underway = cascades.Underway(0, 0, 7, "s", "h7")
    stopped = cascade.advance(stage_result({"a": -3.0, "b": -3.0}), underway)
    assert stopped.event.passed is False and stopped.event.stage == 0
    assert stopped.final.status == "stopped" and stopped.final.scores == {"a": -3.0, "b": -3.0}
    going = cascade.advance(stage_result({"a": -1.0, "b": -1.0}), underway)
    assert going.final is None and going.underway.stage == 1
    assert cascade.job(1) == ("train", ["c", "d"])
    final = cascade.advance(stage_result({"c": -2.0, "d": -2.0}), going.underway).final
    assert final.status == "ok" and final.scores == {"a": -1.0, "b": -1.0, "c": -2.0, "d": -2.0}
    assert final.duration == 1.0  # both stages


def test_a_program_that_fails_a_stage_fails_without_scores():
    cascade = make_cascade()
    failed = cascade.advance(Evaluation("timeout", reason="slow", duration=3.0),
                             cascades.Underway(0, 0, 1, "s", "h1"))
    assert failed.final.status == "timeout" and failed.final.scores is None


def test_the_audit_share_is_a_fixed_draw_per_sample():
    draws = [cascades.audit_draw(3, sample) for sample in range(4000)]
    assert draws == [cascades.audit_draw(3, sample) for sample in range(4000)]
    assert 0.08 < sum(draw < 0.1 for draw in draws) / len(draws) < 0.12
    cascade = make_cascade(rule="margin", threshold=0.01, audit=0.5)
    verdicts = [cascade.judge(0, 0, -9.0, sample) for sample in range(200)]
    assert not any(v.passed for v in verdicts) and 70 < sum(v.audit for v in verdicts) < 130


def test_stages_are_checked_against_the_spec_and_the_training_set(tmp_path):
    config = make_config(tmp_path, [{"inputs": "nope"}])
    with pytest.raises(config_module.ConfigError, match="cascade.stages.0.inputs.*nope"):
        experiment.run(config, samplers={"scripted": Scripted(["    return x\n"])})
    with pytest.raises(ValueError, match="top fraction is at most 1"):
        StageConfig(inputs=2, rule="top", threshold=2.0)
    cascade = make_cascade(inputs=2)
    with pytest.raises(config_module.ConfigError, match="9 inputs.*has 4"):
        cascades.Cascade([StageConfig(inputs=9)], "train", 0.0, False, 1, 0).apply(
            registration(0, dict.fromkeys(IDS, 0.0), None))
    assert cascade.train_ids == IDS


# -- end to end in the engine -----------------------------------------------------

SPEC = '''
import funsearch

@funsearch.inputs
def train():
    return [1.0, 2.0, 50.0, 100.0]

@funsearch.inputs
def small():
    return [1.0, 2.0]

@funsearch.run
def evaluate(x):
    return f(x)

@funsearch.score
def score(x, output):
    return -abs(output - 3 * x)

@funsearch.evolve
def f(x):
    """Guess 3x."""
    return x

@funsearch.cascade
def stages():
    return [{"inputs": 2, "rule": "margin", "threshold": 0.1}]
'''


class Scripted:
    def __init__(self, texts):
        self._texts = itertools.cycle(texts)

    def sample(self, query, n):
        return [Sample(next(self._texts), "scripted", latency=0.001) for _ in range(n)]


def make_config(tmp_path, stages=None, samples=6, **cascade):
    (tmp_path / "spec.py").write_text(textwrap.dedent(SPEC))
    return config_module.from_dict({
        "name": "t", "seed": 1, "out": str(tmp_path / "runs"),
        "problem": {"spec": "spec.py", "inputs": "train"},
        "database": {"islands": 1, "functions_per_prompt": 2},
        "evaluator": {"workers": 2, "timeout": 10, "isolation": "process"},
        "samplers": [{"name": "scripted", "samples_per_prompt": 2}],
        "scheduler": {"budget": {"samples": samples}, "max_in_flight": 1},
        "cascade": {"stages": stages or [], **cascade},
        "runtime": {"kind": "inline"}, "base_dir": str(tmp_path)})


def kinds(run_dir, kind):
    return [event for event in events.read(run_dir) if event.kind == kind]


def test_a_stopped_program_is_never_registered_and_never_outranks_a_fully_scored_one(tmp_path):
    # f(x) = 0 is 3 and 6 off on the first two inputs (the initial f(x) = x: 2 and 4):
    # stopped, though its partial mean (-4.5) is far above any full score (-19.125 at best).
    result = experiment.run(make_config(tmp_path), samplers={"scripted": Scripted(
        ["    return 0 * x\n", "    return 2.5 * x\n"])})
    stopped = [e for e in kinds(result.run_dir, "evaluation") if e.status == "stopped"]
    assert stopped and stopped[0].stage == 0 and stopped[0].score == -4.5
    assert set(stopped[0].scores) == {"0", "1"}
    registered = {e.sample for e in kinds(result.run_dir, "registration")}
    assert not registered & {e.sample for e in stopped}
    assert result.best_score == -19.125  # 2.5x on all four inputs, not the stopped -4.5
    assert all(best.score != -4.5 for best in kinds(result.run_dir, "best"))
    assert result.counters["stopped"] == len(stopped) and result.counters["failed"] == 0
    assert runlog.read_config(result.run_dir)["cascade"]["stages"][0]["inputs"] == 2  # the spec's


def test_mode_off_evaluates_every_program_on_the_whole_training_set(tmp_path):
    result = experiment.run(make_config(tmp_path, mode="off"), samplers={
        "scripted": Scripted(["    return 0 * x\n"])})
    assert not kinds(result.run_dir, "stage")
    assert {e.status for e in kinds(result.run_dir, "evaluation")} == {"ok"}


def replayed_decisions(log, cascade):
    """Each stage event's verdict judged again from the fold of the events before it."""
    mismatches = []
    for event in log:
        if isinstance(event, events.Stage) and event.status == "ok":
            verdict = cascade.judge(event.stage, event.island, event.score, event.sample)
            if (verdict.passed, verdict.threshold) != (event.passed, event.threshold):
                mismatches.append(event.sample)
        cascade.apply(event)
    return mismatches


def test_a_replay_of_the_log_takes_every_decision_the_run_took():
    world = World(noise=0.02)
    config = cascade_config("adaptive", threshold=0.9, min_band=6)
    simulation = CascadeSimulation(world, config, seed=3)
    result = simulation.run(600)
    assert result.cascade.tuner.stages[0].changes > 0  # the thresholds moved meanwhile
    fresh = cascades.Cascade(list(config.stages), "train", config.audit, True, 6, seed=3)
    assert replayed_decisions(result.events, fresh) == []
    assert fresh.summary() == result.cascade.summary()


def test_a_resumed_run_goes_on_deciding_as_the_log_says(tmp_path):
    texts = [f"    return {k / 8} * x\n" for k in range(40)]
    config = make_config(tmp_path, [{"inputs": 2, "rule": "top", "threshold": 0.5}],
                         samples=30, audit=0.3, min_band=2)
    first = experiment.run(config, samplers={"scripted": Scripted(texts)})
    more = resume.load_config(first.run_dir, **{"scheduler.budget.samples": 60})
    experiment.run(more, run_dir=first.run_dir, resume=resume.replay(first.run_dir, more),
                   samplers={"scripted": Scripted(texts[7:])})
    log = list(events.read(first.run_dir))
    assert any(isinstance(e, events.Resume) for e in log)
    assert len([e for e in log if isinstance(e, events.Stage)]) > 30
    fresh = cascades.Cascade.of(config_module.from_dict(runlog.read_config(first.run_dir)))
    assert replayed_decisions(log, fresh) == []


# -- the adaptive thresholds in simulated worlds ---------------------------------


def final_threshold(world, start, seed):
    simulation = CascadeSimulation(world, cascade_config("adaptive", start), seed=seed)
    simulation.run(1500)
    return simulation.cascade.tuner.threshold(0)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_scheduler_tightens_a_first_stage_that_predicts_the_outcome(seed):
    assert final_threshold(World(noise=0.02), start=0.9, seed=seed) < 0.5


@pytest.mark.parametrize("seed", [1, 2])
def test_the_scheduler_loosens_a_first_stage_that_says_nothing(seed):
    # Every program scores alike on the first 4 inputs: stopping on them loses improvements.
    assert final_threshold(World(noise=0.02, head=4), start=0.15, seed=seed) > 0.5


def test_the_audit_share_measures_the_improvements_stops_lose():
    truth = estimate = 0.0
    for seed in range(4):
        config = CascadeConfig(mode="fixed", audit=0.3,
                               stages=[StageConfig(inputs=4, threshold=0.5)])
        result = CascadeSimulation(World(noise=0.02, head=4), config, seed=seed).run(1500)
        truth += result.lost
        estimate += result.estimated_lost
    assert truth > 50
    assert estimate == pytest.approx(truth, rel=0.25)
