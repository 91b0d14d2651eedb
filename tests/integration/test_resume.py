"""Resume by replaying the event log: the rebuilt database is the one the run
had, and a run whose driver was SIGKILLed goes on to its budget."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from funsearch import config as config_module
from funsearch import experiment, resume, runlog
from funsearch import spec as spec_module
from funsearch.engine import Engine
from funsearch.runtime.inline import InlineBackend
from tests.integration.log_helpers import kept_programs

ROOT = Path(__file__).resolve().parents[2]
SQRT_SPEC = Path(__file__).with_name("sqrt_spec.py")


def _config_data(out: Path, samples: int, runtime: str) -> dict:
    return {
        "name": "resumed", "seed": 0, "out": str(out),
        "problem": {"spec": str(SQRT_SPEC), "inputs": "train"},
        # Resets every few registrations, so the log has resets to replay.
        "database": {"islands": 4, "reset_every": 12},
        "evaluator": {"workers": 1, "timeout": "20s"},
        "samplers": [{"name": "mutation", "backend": "mutation", "samples_per_prompt": 4}],
        "scheduler": {"max_in_flight": 2, "budget": {"samples": samples}},
        "runtime": {"kind": runtime},
    }


def _assert_database_matches_log(database, events) -> None:
    kept = kept_programs(events)
    programs = database.programs()
    assert {p.id: (p.island, p.source, p.score) for p in programs} == {
        pid: (e["island"], e["program"], e["score"]) for pid, e in kept.items()}
    best_logged = max(e["score"] for e in events if e["kind"] == "best")
    assert database.best().score == best_logged


def test_replay_rebuilds_the_database_and_counters_the_run_had(tmp_path):
    config = config_module.from_dict(_config_data(tmp_path, samples=80, runtime="inline"))
    spec = spec_module.load(config.spec_path())
    log = runlog.RunLog(tmp_path / "run")
    log.write_config(config.model_dump(mode="json"))
    log.append("run_start", spec=str(spec.path))
    backend = InlineBackend(config, spec)
    try:
        engine = Engine(config, spec, backend, log)
        engine.initialize()
        engine.run()
    finally:
        backend.close()
        log.close()

    replayed = resume.replay(log.dir, resume.load_config(log.dir))
    assert engine.counters.resets > 0, "the run should have reset islands"
    assert replayed.database.snapshot() == backend.database.snapshot()
    assert replayed.progress.counters == engine.counters
    spent, logged = engine._spent, replayed.progress.spent  # the log rounds durations
    assert (logged.samples, logged.tokens) == (spent.samples, spent.tokens) == (80, 0)
    assert logged.evaluation_seconds == pytest.approx(spent.evaluation_seconds, abs=1e-3)
    assert logged.gpu_seconds == spent.gpu_seconds and logged.usd == spent.usd
    assert replayed.progress.next_sample == 80
    assert replayed.unfinished == 0


def test_resume_skips_a_truncated_last_line_and_extends_a_finished_run(tmp_path):

    config = config_module.from_dict(_config_data(tmp_path, samples=24, runtime="inline"))
    run_dir = experiment.run(config).run_dir
    with open(run_dir / runlog.EVENTS, "a") as file:
        file.write('{"t": 1.0, "kind": "registra')  # a write cut short by a crash

    with pytest.warns(UserWarning, match="truncated"):
        result = experiment.resume(run_dir, **{"scheduler.budget.samples": 40})
    with pytest.warns(UserWarning, match="truncated"):  # the cut line stays, alone
        events = list(runlog.read_events(run_dir))
    assert result.stop_reason == "sample budget reached (40 samples)"
    samples = [e["sample"] for e in events if e["kind"] == "sample"]
    assert sorted(samples) == list(range(40))
    assert [e["kind"] for e in events].count("resume") == 1
    assert json.loads((run_dir / runlog.SUMMARY).read_text())["counters"]["samples"] == 40


@pytest.mark.ray
def test_driver_killed_mid_run_is_resumed_with_its_database(ray_cluster, tmp_path):
    experiment_file = tmp_path / "killed.toml"
    data = _config_data(tmp_path / "runs", samples=240, runtime="ray")
    experiment_file.write_text(_toml(data))
    driver = subprocess.Popen(
        [sys.executable, "-m", "funsearch.cli", "run", str(experiment_file),
         "--address", ray_cluster.address],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        run_dir = _wait_for(tmp_path / "runs", driver, registrations=30, resets=1)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    events = list(runlog.read_events(run_dir))
    assert not any(e["kind"] == "run_end" for e in events), "killed before the end"

    replayed = resume.replay(run_dir, resume.load_config(run_dir))
    _assert_database_matches_log(replayed.database, events)
    epochs = {e["island"]: e["epoch"] for e in events if e["kind"] == "reset"}
    for island, epoch in epochs.items():
        assert replayed.database.stats()["islands"][island]["epoch"] == epoch

    result = experiment.resume(run_dir)  # joins the session's cluster, the budget left
    events = list(runlog.read_events(run_dir))
    assert result.stop_reason == "sample budget reached (240 samples)"
    samples = [e["sample"] for e in events if e["kind"] == "sample"]
    assert len(samples) == len(set(samples)) == 240
    resumed = next(e for e in events if e["kind"] == "resume")
    assert resumed["programs"] == len(kept_programs(events[:events.index(resumed)]))
    assert result.best_score >= replayed.progress.best_score


def _wait_for(runs: Path, driver: subprocess.Popen, registrations: int, resets: int) -> Path:
    """The run directory once its log has this many registrations and resets."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if driver.poll() is not None:
            pytest.fail(f"funsearch run exited early: {driver.stderr.read().decode()[-2000:]}")
        for events_file in runs.glob(f"*/{runlog.EVENTS}"):
            kinds = [json.loads(line)["kind"] for line in events_file.read_text().splitlines()
                     if line.endswith("}")]
            if kinds.count("registration") >= registrations and kinds.count("reset") >= resets:
                return events_file.parent
        time.sleep(0.2)
    pytest.fail("the run did not get far enough in 120 s")


def _toml(data: dict) -> str:
    """A TOML file of the test's config (flat tables, one array of tables)."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in data.items()
             if not isinstance(value, (dict, list))]
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {_value(v)}" for k, v in value.items()]
        elif isinstance(value, list):
            for item in value:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _value(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)
