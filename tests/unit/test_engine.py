"""The search loop end to end on one machine: real sandbox, real files.

The samplers here are scripted (they return chosen texts) so each test can
say exactly which samples are good, bad, duplicated or better; the mutation
proposer is exercised end to end in test_quickstart.
"""

import itertools
import json
import runpy
import textwrap
import time

import pytest

from funsearch import config as config_module
from funsearch import experiment, runlog
from funsearch.reports import rundata
from funsearch.samplers.base import Sample
from funsearch.spec import SpecError

SPEC = '''
"""Maximise -|f(x) - 3x| over a few inputs."""
import funsearch

@funsearch.inputs
def train():
    return [1.0, 2.0, 4.0]

@funsearch.inputs
def holdout():
    return [8.0, 16.0]

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
'''


class ScriptedSampler:
    """Returns the given texts in order, cycling."""

    def __init__(self, name, texts):
        self.name = name
        self._texts = itertools.cycle(texts)

    def sample(self, query, n):
        return [Sample(next(self._texts), self.name, latency=0.001) for _ in range(n)]


def make_config(tmp_path, samples, **extra):
    (tmp_path / "spec.py").write_text(textwrap.dedent(SPEC))
    data = {
        "name": "t", "seed": 1, "out": str(tmp_path / "runs"),
        "problem": {"spec": "spec.py", "inputs": "train", "holdout": ["holdout"]},
        "database": {"islands": 2, "functions_per_prompt": 2},
        "evaluator": {"workers": 2, "timeout": 10, "isolation": "process"},
        "samplers": [{"name": "scripted", "samples_per_prompt": 2}],
        "scheduler": {"budget": {"samples": samples}, "max_in_flight": 2},
        "runtime": {"kind": "inline"},
        "base_dir": str(tmp_path),
    }
    for key, value in extra.items():
        data[key] = value
    return config_module.from_dict(data)


def events_of(run_dir, kind):
    return [event for event in runlog.read_events(run_dir) if event["kind"] == kind]


def test_run_logs_every_sample_and_stops_at_the_sample_budget(tmp_path):
    texts = ["    return 2 * x\n", "    return 3 * x\n", "not code at all", "    return x / 0\n"]
    config = make_config(tmp_path, samples=12)
    result = experiment.run(config, samplers={"scripted": ScriptedSampler("scripted", texts)})
    assert result.stop_reason.startswith("sample budget reached")
    assert len(events_of(result.run_dir, "sample")) == 12
    rejections = events_of(result.run_dir, "rejection")
    assert len(rejections) == 3 and all("not code" in r["reason"] for r in rejections)
    failed = [e for e in events_of(result.run_dir, "evaluation") if e["status"] == "error"]
    assert failed and "ZeroDivisionError" in failed[0]["reason"]
    assert result.best_score == 0.0  # 3x is exact
    assert result.holdout == {"holdout": 0.0}
    assert result.counters["duplicates"] > 0  # the same bodies came back several times


def test_duplicates_reuse_the_cached_evaluation(tmp_path):
    config = make_config(tmp_path, samples=10)
    result = experiment.run(config, samplers={"scripted": ScriptedSampler(
        "scripted", ["    return 2 * x\n", "    # same program, other layout\n    return (2*x)\n"])})
    evaluations = [e for e in events_of(result.run_dir, "evaluation") if e["sample"] is not None]
    fresh = [e for e in evaluations if not e["duplicate"]]
    assert len(fresh) == 1 and len(evaluations) == 10
    assert {e["hash"] for e in evaluations} == {fresh[0]["hash"]}


def test_best_py_is_the_whole_spec_with_the_best_function_and_runs(tmp_path):
    config = make_config(tmp_path, samples=4)
    result = experiment.run(config, samplers={"scripted": ScriptedSampler(
        "scripted", ["    return 3 * x\n"])})
    namespace = runpy.run_path(str(result.run_dir / "best.py"))
    assert namespace["evaluate"](5.0) == 15.0
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["best_score"] == 0.0 and summary["holdout"] == {"holdout": 0.0}
    assert summary["scores"] == {"train": {"score": 0.0}, "holdout": {"score": 0.0}}
    header = (result.run_dir / "best.py").read_text().splitlines()[:3]
    assert "train" in header[1] and "holdout" in header[2] and "(held out)" in header[2]
    registrations = events_of(result.run_dir, "registration")
    initial = [r for r in registrations if r["sample"] is None]
    assert len(initial) == 2  # one copy per island
    assert any(r["score"] == 0.0 and r["parents"] for r in registrations)


def test_a_failing_initial_program_is_a_clear_error(tmp_path):
    config = make_config(tmp_path, samples=2)
    (tmp_path / "spec.py").write_text(textwrap.dedent(SPEC).replace(
        '    """Guess 3x."""\n    return x', '    """Guess 3x."""\n    return x / 0'))
    with pytest.raises(SpecError, match=r"initial 'f' does not evaluate on 'train' \(error\): "
                                        r"ZeroDivisionError: .* \(at program:3 in f\)"):
        experiment.run(config, samplers={"scripted": ScriptedSampler("scripted", ["    return x\n"])})


def test_a_program_that_floods_its_output_is_a_failed_evaluation_and_the_run_goes_on(tmp_path):
    """The sandbox stops it at the output cap (before: a timeout, 10 s each)."""
    flood = "    while True:\n        print('flood', x)\n"
    config = make_config(tmp_path, samples=4)
    result = experiment.run(config, samplers={"scripted": ScriptedSampler(
        "scripted", [flood, "    return 3 * x\n"])})
    assert result.stop_reason.startswith("sample budget reached")
    (flooded,) = [e for e in events_of(result.run_dir, "evaluation")
                  if e["sample"] is not None and not e["duplicate"] and e["status"] != "ok"]
    assert flooded["status"] == "output_limit"
    assert "limit to stdout; it began: 'flood 1.0" in flooded["reason"]
    assert result.counters["failed"] == 2  # the flood and its duplicate
    assert result.best_score == 0.0


def test_target_score_stops_the_run(tmp_path):
    # A sample budget the run cannot reach while the exact program's evaluation
    # is out, however slow the sandbox (duplicates of it are free and fast).
    budget = 10**7
    config = make_config(tmp_path, samples=budget)
    config = config.model_copy(update={"scheduler": config.scheduler.model_copy(update={
        "budget": config_module.Budget(samples=budget, target_score=0.0)})})
    result = experiment.run(config, samplers={"scripted": ScriptedSampler(
        "scripted", ["    return 2 * x\n", "    return 3 * x\n"])})
    assert result.stop_reason.startswith("target score reached")
    assert result.best_score == 0.0


class BrokenSampler:
    """A backend that cannot serve: every request raises."""

    name = "scripted"

    def sample(self, query, n):
        raise ConnectionError("server at 127.0.0.1:9 refused the connection")


def test_a_sampler_that_keeps_failing_stops_the_run_with_its_error(tmp_path):
    from funsearch.engine import MAX_SAMPLER_FAILURES

    config = make_config(tmp_path, samples=10_000)
    result = experiment.run(config, samplers={"scripted": BrokenSampler()})
    assert "sampler 'scripted' failed" in result.stop_reason
    assert "refused the connection" in result.stop_reason
    errors = events_of(result.run_dir, "sampler_error")
    assert MAX_SAMPLER_FAILURES <= len(errors) < MAX_SAMPLER_FAILURES + 40  # in flight at the stop


def test_a_resumed_run_gives_the_scheduler_back_what_it_learnt(tmp_path):
    """Replaying the log feeds every finished sample to a new scheduler: its
    ledger (and with it the bandit's arms) is the one the run ended with."""
    from funsearch import resume
    from funsearch.scheduling.scheduler import Scheduler

    samplers = [{"name": "good", "samples_per_prompt": 2}, {"name": "poor", "samples_per_prompt": 2}]
    config = make_config(tmp_path, samples=24, samplers=samplers,
                         scheduler={"budget": {"samples": 24}, "max_in_flight": 2,
                                    "policy": "ucb", "min_pulls": 2})
    good = ScriptedSampler("good", ["    return 2 * x\n", "    return 3 * x\n",
                                    "    return 2.5 * x\n", "    return x / 0\n"])
    poor = ScriptedSampler("poor", ["    return x\n", "nonsense", "    return 2 * x\n"])
    result = experiment.run(config, samplers={"good": good, "poor": poor})
    ended = [e for e in events_of(result.run_dir, "scheduler") if e["action"] == "ledger"][-1]

    replayed = resume.replay(result.run_dir, resume.load_config(result.run_dir))
    scheduler = Scheduler(config.scheduler, config.samplers)
    for outcome in replayed.progress.outcomes:
        scheduler.learn(outcome)
    assert sum(ledger.improvements for ledger in scheduler.ledger.values()) > 0
    for name, ledger in scheduler.ledger.items():
        logged = ended["samplers"][name]
        assert (ledger.samples, ledger.improvements) == (logged["samples"], logged["improvements"])
        assert ledger.evaluation_seconds == pytest.approx(logged["evaluation_seconds"], abs=1e-3)
        assert ledger.cost == pytest.approx(logged["cost"], abs=1e-3)
    # The reports count the improvements the scheduler was rewarded for.
    run = rundata.read_run(result.run_dir)
    assert {name: stats.improvements for name, stats in run.samplers.items()} == {
        name: ended["samplers"][name]["improvements"] for name in ended["samplers"]}


def test_evaluations_done_together_are_logged_in_the_order_they_were_sent(tmp_path,
                                                                           monkeypatch):
    """A slow log (0.05 s an evaluation) lets the one worker finish several of a
    prompt's evaluations while the loop writes; they are still handled, logged
    and registered in sample order, so the same samples give the same run."""
    append = runlog.RunLog.append

    def slow(self, kind, **fields):
        if kind == "evaluation":
            time.sleep(0.05)
        return append(self, kind, **fields)

    monkeypatch.setattr(runlog.RunLog, "append", slow)
    texts = [f"    return {k} * x\n" for k in range(2, 10)]
    config = make_config(tmp_path, samples=8, evaluator={"workers": 1, "timeout": 10,
                                                         "isolation": "process"},
                         samplers=[{"name": "scripted", "samples_per_prompt": 8}])
    result = experiment.run(config, samplers={"scripted": ScriptedSampler("scripted", texts)})
    logged = [e["sample"] for e in events_of(result.run_dir, "evaluation")
              if e["sample"] is not None]
    assert logged == list(range(8))
    registered = [e["sample"] for e in events_of(result.run_dir, "registration")
                  if e["sample"] is not None]
    assert registered == sorted(registered) and len(registered) == 8


class SequenceSampler:
    """Returns the given texts once each, in order, on one thread."""

    def __init__(self, name, texts):
        self.name = name
        self._texts = iter(texts)

    def sample(self, query, n):
        return [Sample(next(self._texts), self.name, latency=0.001) for _ in range(n)]


def _one_thread(tmp_path, samples):
    return make_config(tmp_path, samples=samples, samplers=[
        {"name": "scripted", "samples_per_prompt": 2, "max_concurrency": 1}])


def test_a_sampler_that_only_repeats_or_fails_is_warned_about_once(tmp_path):
    """Its parent again and again, or text that is not code: a stall event
    names the sampler and the reasons once, not at every sample, and the live
    status carries the warning."""
    from funsearch.stall import DUPLICATE_OF_PARENT, STALL_SAMPLES

    statuses = []
    config = _one_thread(tmp_path, samples=3 * STALL_SAMPLES)
    result = experiment.run(config, on_status=statuses.append, samplers={
        "scripted": ScriptedSampler("scripted", ["    return x\n", "not code at all"])})
    (stall,) = events_of(result.run_dir, "stall")
    assert stall["sampler"] == "scripted" and stall["count"] == STALL_SAMPLES
    assert stall["reasons"][DUPLICATE_OF_PARENT] == STALL_SAMPLES // 2
    assert any(reason.startswith("not code") for reason in stall["reasons"])
    assert "sampler 'scripted' stalled" in stall["message"]
    assert statuses[-1].warnings == [stall["message"]]


def test_a_new_program_ends_a_stall_and_the_next_one_is_warned_about_again(tmp_path):
    from funsearch.stall import STALL_SAMPLES

    junk = ["not code at all"] * (STALL_SAMPLES + 10)
    texts = [*junk, "    return 2 * x\n", "    return 3 * x\n", *junk]
    config = _one_thread(tmp_path, samples=len(texts))
    result = experiment.run(config, samplers={"scripted": SequenceSampler("scripted", texts)})
    last_sample, after = None, []  # the sample each stall was noticed at
    for event in runlog.read_events(result.run_dir):
        if event["kind"] == "sample":
            last_sample = event["sample"]
        elif event["kind"] == "stall":
            after.append(last_sample)
    assert after == [STALL_SAMPLES - 1, len(junk) + 1 + STALL_SAMPLES]
    assert [stall["count"] for stall in events_of(result.run_dir, "stall")] == [STALL_SAMPLES] * 2


class LossySampler:
    """Returns one sample fewer than asked for (one at least): a backend that loses samples."""

    name = "scripted"

    def sample(self, query, n):
        return [Sample("    return 3 * x\n", self.name, latency=0.001) for _ in range(max(1, n - 1))]


def test_sample_events_name_their_request_and_what_was_asked(tmp_path):
    config = make_config(tmp_path, samples=6, samplers=[{"name": "scripted",
                                                          "samples_per_prompt": 3}])
    result = experiment.run(config, samplers={"scripted": LossySampler()})
    requests: dict[int, list[dict]] = {}
    for event in events_of(result.run_dir, "sample"):
        requests.setdefault(event["request_id"], []).append(event)
    # A request is named by its first sample's id; what it was asked and what it
    # returned show the samples lost.
    assert (3, 2) in {(e["asked"], e["request"]) for e in requests[0]}
    for request_id, events in requests.items():
        assert request_id == events[0]["sample"]
        assert len({(e["asked"], e["request"]) for e in events}) == 1
        assert events[0]["request"] == len(events) == max(1, events[0]["asked"] - 1)
