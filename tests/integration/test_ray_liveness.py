"""Nothing hangs and nothing is left behind: a run whose actors Ray cannot
place ends with a message naming what is missing, and a killed driver's local
Ray instance does not outlive it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from funsearch import config as config_module
from funsearch import experiment, runlog
from funsearch.config import ConfigError
from funsearch.runtime import ray_cluster as ray_cluster_module
from tests.integration import proc_helpers

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.ray

SQRT_SPEC = Path(__file__).with_name("sqrt_spec.py")


def _experiment(tmp_path: Path, workers: int = 1, samples: int = 20,
                **runtime) -> dict:
    return {
        "name": "liveness", "seed": 0, "out": str(tmp_path / "runs"),
        "problem": {"spec": str(SQRT_SPEC), "inputs": "train"},
        "database": {"islands": 2},
        "evaluator": {"workers": workers, "actors": 1, "timeout": "20s"},
        "samplers": [{"name": "mutation", "backend": "mutation", "samples_per_prompt": 4}],
        "scheduler": {"max_in_flight": 2, "budget": {"samples": samples}},
        "runtime": {"kind": "ray", **runtime},
    }


def _toml(tmp_path: Path, workers: int, samples: int, runtime: str = "") -> str:
    """_experiment as an experiment file, for the command line."""
    return f"""name = "liveness"
out = "{tmp_path / 'runs'}"
[problem]
spec = "{SQRT_SPEC}"
[database]
islands = 2
[evaluator]
workers = {workers}
timeout = "20s"
[[samplers]]
name = "mutation"
backend = "mutation"
[scheduler]
max_in_flight = 2
budget = {{ samples = {samples} }}
[runtime]
kind = "ray"
{runtime}
"""


def _run_events(tmp_path: Path) -> list[dict]:
    (run_dir,) = (tmp_path / "runs").iterdir()
    return list(runlog.read_events(run_dir))


@ray.remote
class _Holder:
    """Holds the CPUs it was created with, so that the run's actors find none free."""

    def ready(self) -> bool:
        return True


def test_unplaceable_evaluator_ends_the_run_naming_what_is_missing(ray_cluster, tmp_path):
    # The instance has 4 CPUs; the holder takes 3, the sampler 0.1: the
    # evaluator's 2 CPUs fit the instance but not what is free.
    holder = _Holder.options(num_cpus=3).remote()
    ray.get(holder.ready.remote())
    config = config_module.from_dict(_experiment(tmp_path, workers=2, placement_timeout="3s"))
    started = time.monotonic()
    try:
        with pytest.raises(ConfigError) as raised:
            experiment.run(config)
    finally:
        ray.kill(holder)
    assert time.monotonic() - started < 60, "the run did not end within the placement timeout"
    message = str(raised.value)
    assert message.startswith("Ray cannot place the evaluator actor 1 of 1 within 3 s: "
                              "it needs 2 CPUs; the cluster has "), message
    assert " of 4 CPUs free" in message, message
    (event,) = [e for e in _run_events(tmp_path) if e["kind"] == "start_failed"]
    assert event["reason"] == message


def test_actors_that_do_not_start_in_time_are_named(ray_cluster, tmp_path):
    # No actor starts within 10 ms: a worker process imports funsearch first,
    # and an evaluator starts its sandbox pool.
    config = config_module.from_dict(_experiment(tmp_path, start_timeout="0.01s"))
    with pytest.raises(ConfigError) as raised:
        experiment.run(config)
    message = str(raised.value)
    assert message.startswith("Ray placed the run's actors, but evaluator actor 1 of 1"), message
    assert message.endswith("did not start within 0.01 s (runtime.start_timeout: loading a "
                            "large model, or a machine busy with other work, may need longer)")
    (event,) = [e for e in _run_events(tmp_path) if e["kind"] == "start_failed"]
    assert event["reason"] == message


def test_instance_too_small_for_the_run_is_an_error_before_any_actor(ray_cluster, tmp_path):
    config = config_module.from_dict(_experiment(tmp_path, workers=5))
    with pytest.raises(ConfigError, match="the Ray instance cannot hold this run: the run's "
                       "actors need 5.1 CPUs in all; the evaluator actor 1 of 1 needs 5 CPUs "
                       "on one node; the cluster has .* of 4 CPUs free"):
        experiment.run(config)


def test_cli_on_a_cluster_without_room_prints_one_error_line(ray_cluster, tmp_path):
    # Joined by address the cluster might grow (an autoscaler), so the run
    # waits runtime.placement_timeout for room, then says what is missing.
    path = tmp_path / "experiment.toml"
    path.write_text(_toml(tmp_path, workers=5, samples=20, runtime='placement_timeout = "3s"'))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "funsearch.cli", "run", str(path), "--address",
         ray_cluster.address], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: Ray cannot place the evaluator actor 1 of 1 within 3 s: it needs 5 CPUs; "
        "the cluster has "), result.stderr
    assert " of 4 CPUs free" in lines[0]
    assert elapsed < 120
    assert [e["kind"] for e in _run_events(tmp_path)] == ["start_failed"]


def test_cli_joining_an_address_where_nothing_answers_is_one_error_line(tmp_path):
    # Before, ray.init retried the GCS connection for minutes without a word.
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = tmp_path / "experiment.toml"
    path.write_text(_toml(tmp_path, workers=1, samples=20))
    result = subprocess.run(
        [sys.executable, "-m", "funsearch.cli", "run", str(path), "--address",
         f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: runtime.address '127.0.0.1:{port}': nothing answers at 127.0.0.1:{port} "
        "(Connection refused within 10 s). Is the cluster up (`ray status` on its head node), "
        "and is this its GCS port (6379 unless `ray start --port` said otherwise; 10001 for "
        "ray://)?"]
    assert [e["kind"] for e in _run_events(tmp_path)] == ["start_failed"]


def test_an_address_that_answers_passes_the_probe():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        ray_cluster_module._probe(f"127.0.0.1:{server.getsockname()[1]}")
        ray_cluster_module._probe(f"ray://127.0.0.1:{server.getsockname()[1]}")
    ray_cluster_module._probe("auto")  # Ray finds that address itself


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_driver_leaves_no_process_of_its_local_ray(tmp_path):
    # The driver starts its own local instance (no address). Killed with
    # SIGKILL, it runs no cleanup: whatever ends the instance's processes must
    # do so from outside it.
    path = tmp_path / "experiment.toml"
    path.write_text(_toml(tmp_path, workers=1, samples=1_000_000))
    driver = subprocess.Popen([sys.executable, "-m", "funsearch.cli", "run", str(path)],
                              cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        session = _wait_running(driver, tmp_path)
        processes = proc_helpers.session_processes(session) | proc_helpers.descendants(
            driver.pid)
        assert len(processes) > 5, proc_helpers.describe(processes)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    deadline = time.monotonic() + 30
    left = processes
    while time.monotonic() < deadline:
        left = proc_helpers.alive(processes) | proc_helpers.session_processes(session)
        if not left:
            return
        time.sleep(0.2)
    pytest.fail(f"30 s after kill -9 of the driver, left: {proc_helpers.describe(left)}")


def _wait_running(driver: subprocess.Popen, tmp_path: Path) -> str:
    """The driver's Ray session once its run has registered a sampled program."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert driver.poll() is None, f"the driver exited with {driver.returncode}"
        runs = list((tmp_path / "runs").glob("*/events.jsonl")) if (
            tmp_path / "runs").is_dir() else []
        if runs and any(e["kind"] == "registration" and e["sample"] is not None
                        for e in runlog.read_events(runs[0].parent)):
            session = proc_helpers.session_of(driver.pid)
            assert session, "the driver has no Ray session directory open"
            return os.path.realpath(session)
        time.sleep(0.5)
    pytest.fail("the run registered no program in 180 s")
