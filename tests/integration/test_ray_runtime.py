"""The Ray runtime on a real local Ray cluster: a search improves, and it
survives losing an evaluator actor or a whole node."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from funsearch import config as config_module
from funsearch import database_client, events, experiment, runlog
from funsearch import spec as spec_module
from funsearch.config import DatabaseConfig
from funsearch.database import ProgramsDatabase
from funsearch.engine import Engine
from tests.integration.log_helpers import kept_programs

ray = pytest.importorskip("ray")
from funsearch.runtime.ray_runtime import DatabaseProxy, RayBackend, _DatabaseActor  # noqa: E402

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
SQRT_SPEC = Path(__file__).with_name("sqrt_spec.py")


def _config(tmp_path: Path, spec: Path, samples: int | None, target: float | None = None,
            **evaluator) -> config_module.ExperimentConfig:
    return config_module.from_dict({
        "name": "ray-test", "seed": 0, "out": str(tmp_path),
        "problem": {"spec": str(spec), "inputs": "train"},
        "database": {"islands": 2},
        "evaluator": {"workers": 1, "actors": 1, "timeout": "20s", **evaluator},
        "samplers": [{"name": "mutation", "backend": "mutation", "samples_per_prompt": 4}],
        "scheduler": {"max_in_flight": 2,
                      "budget": {"samples": samples, "target_score": target}},
        "runtime": {"kind": "ray"},
    })


def _search(config, on_status: Callable[..., bool], on_event: Callable[..., None] | None = None):
    """experiment.run's steps, with the backend in reach of `on_status(backend,
    status)`; the run stops when it returns True. `on_event(event)` hears
    what the backend logs (retries, lost evaluations) as it happens."""
    spec = spec_module.load(config.spec_path())
    log = runlog.RunLog(runlog.new_run_dir(config.out, config.name))

    def logged(event: events.Event) -> None:
        log.write(event)
        if on_event is not None:
            on_event(event)

    backend = RayBackend(config, spec, on_event=logged)
    try:
        engine = Engine(config, spec, backend, log,
                        lambda status: on_status(backend, status) and engine.stop())
        engine.initialize()
        reason = engine.run()
        programs = backend.database.submit("programs").result()
    finally:
        backend.close()
        log.close()
    return reason, programs, list(runlog.read_events(log.dir))


def _no_sample_dropped(events) -> None:
    """Every sample ended as a rejection or an evaluation (possibly 'lost')."""
    samples = {e["sample"] for e in events if e["kind"] == "sample"}
    ended = {e["sample"] for e in events if e["kind"] in ("rejection", "evaluation")}
    assert samples == ended - {None}


def test_the_database_client_reaches_the_database_actor(ray_cluster):
    """The loop's one interface to the database, over the actor: the initial
    program, a registration answered through the batched exchange, a program
    already on its island answered `known`, the best and the island bests."""
    config = DatabaseConfig(islands=2, reset_every=None, reset_period=None)
    actor = _DatabaseActor.remote(ProgramsDatabase(config, seed=7))
    client = database_client.RemoteDatabase(DatabaseProxy(actor))
    try:
        initial = client.register_initial("def f(x):\n    return x\n", {"a": 1.0}, "h0")
        assert [program.island for program in initial] == [0, 1]
        assert client.island_best_scores() == [1.0, 1.0]
        prompt, answered = client.prompt(), []
        better = "def f(x):\n    return 2 * x\n"
        for _ in range(2):
            client.register((better, {"a": 2.0}, prompt, "s", "h1"), answered.append)
        client.send(force=True)
        while client.busy:
            cf.wait(client.waiting())
            client.deliver()
        assert answered[0].program.source == better and answered[1].known
        assert client.best() == answered[0].program
        assert sorted(client.island_best_scores()) == [1.0, 2.0]
    finally:
        ray.kill(actor)


def test_search_on_local_ray_improves_the_tsp_score(ray_cluster, tmp_path):
    # Nearest neighbour, the initial program, scores -7.0116 on 'train': the run
    # stops as soon as it beats -7.0, or after 600 samples without doing so.
    config = _config(tmp_path, ROOT / "problems" / "tsp.py", samples=600, target=-7.0,
                     workers=2)
    result = experiment.run(config)
    events = list(runlog.read_events(result.run_dir))
    initial = next(e for e in events if e["kind"] == "evaluation" and e["sample"] is None)
    assert result.best_score > initial["score"]
    assert result.stop_reason.startswith("target score reached")
    assert next(e for e in events if e["kind"] == "run_start")["runtime"] == "ray"


def test_killed_evaluator_actor_loses_nothing_registered(ray_cluster, tmp_path):
    # No budget: the run ends when the test says so, after an actor was killed
    # with evaluations in flight, the retry was logged, and ten more programs were
    # registered. It cannot end before the kill, however slow the machine. (An
    # actor whose calls all answered just before the kill gives no retry: it is
    # killed again, busy, after a few more registrations.)
    config = _config(tmp_path, SQRT_SPEC, samples=None, actors=2)
    killed: list[tuple[int, int]] = []  # (actor, registrations at the kill)
    retried = threading.Event()
    registered_at_retry: list[int] = []
    give_up = time.monotonic() + 240

    def kill_then_stop(backend: RayBackend, status) -> bool:
        registered = status.counters.registered
        if time.monotonic() > give_up:
            return True
        if not retried.is_set():
            busy = backend.evaluations_in_flight()
            if max(busy) > 0 and (not killed or registered >= killed[-1][1] + 5):
                index = busy.index(max(busy))
                killed.append((index, registered))
                ray.kill(backend.evaluator_actors[index], no_restart=False)  # Ray restarts it
            return False
        if not registered_at_retry:
            registered_at_retry.append(registered)
        return registered >= registered_at_retry[0] + 10

    reason, programs, events = _search(
        config, kill_then_stop, on_event=lambda event: event.kind == "evaluation_retry" and retried.set())
    assert killed, "no evaluator actor had evaluations in flight in 240 s"
    assert retried.is_set(), f"no retry in 240 s after killing actors {killed}"
    assert reason == "stopped"
    retries = [e for e in events if e["kind"] == "evaluation_retry"]
    assert retries and all(e["actor"] in {index for index, _ in killed} for e in retries)
    _no_sample_dropped(events)
    kept = kept_programs(events)
    assert {p.id for p in programs} == set(kept)
    registered_after_kill = [e for e in events if e["kind"] == "registration"
                             and e["t"] > retries[0]["t"]]
    assert len(registered_after_kill) >= 10, "the run went on registering after the kill"


@pytest.mark.slow
def test_run_goes_on_when_a_node_is_removed(ray_cluster, tmp_path):
    node = ray_cluster.add_node(num_cpus=2)
    ray_cluster.wait_for_nodes()
    # No budget: the run ends after ten registrations past the removal, so it
    # cannot end before it.
    config = _config(tmp_path, SQRT_SPEC, samples=None, actors=2)
    removed_at: list[int] = []  # registrations when the node was removed

    def remove_node_then_stop(backend: RayBackend, status) -> bool:
        registered = status.counters.registered
        if not removed_at and registered >= 10:
            nodes = backend.evaluator_nodes()
            assert node.node_id in nodes, f"no evaluator on the second node: {nodes}"
            ray_cluster.remove_node(node, allow_graceful=False)
            removed_at.append(registered)
        return bool(removed_at) and registered >= removed_at[0] + 10

    reason, programs, events = _search(config, remove_node_then_stop)
    assert removed_at, "the node was never removed"
    assert reason == "stopped"
    _no_sample_dropped(events)
    assert {p.id for p in programs} == set(kept_programs(events))
