"""The Ray instance a run uses, and whether it has room for the run's actors.

`connect` joins a cluster or starts a quiet local instance. A local instance
gets a watchdog (ray_watchdog.py) so that none of its processes outlives the
driver by more than a moment, even after `kill -9`.

Ray waits forever for resources an actor asks for, without a word. So the
run checks the cluster's resources before it creates its actors (a local
instance cannot grow: too little is an error at once), then waits at most
`runtime.placement_timeout` for Ray to give each actor a worker, and stops
with a message naming the actor, what it needs and what the cluster has.
Starting a placed actor (a vLLM replica loading its model) is not counted.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ray

from funsearch.config import ConfigError

_WATCHDOG = Path(__file__).with_name("ray_watchdog.py")
_POLL = 0.25  # seconds between looks at the actors' placement
_PROBE_TIMEOUT = 10.0  # seconds to wait for a joined cluster's address to answer


@dataclasses.dataclass(frozen=True)
class Demand:
    """What one actor reserves, and how a message names it."""

    label: str  # e.g. "evaluator actor 1 of 2"
    cpus: float
    gpus: float = 0.0

    def text(self) -> str:
        parts = [_amount(self.cpus, "CPU")] + ([_amount(self.gpus, "GPU")] if self.gpus else [])
        return " and ".join(parts)


@dataclasses.dataclass
class Connection:
    """How this run holds Ray. `owned`: connect started or joined it, so close
    shuts it down. `fixed`: its resources cannot grow (not joined by address)."""

    owned: bool
    fixed: bool
    watchdog: subprocess.Popen | None = None

    def close(self) -> None:
        if self.owned and ray.is_initialized():
            ray.shutdown()
        self.owned = False
        if self.watchdog is not None:
            _stop_watchdog(self.watchdog)
            self.watchdog = None


def connect(address: str = "", num_cpus: int | None = None) -> Connection:
    """Joins the cluster at `address` ("auto", "ray://host:port") or starts a
    quiet local instance with a watchdog; joins nothing when Ray is already
    initialised (the caller's instance)."""
    if ray.is_initialized():
        return Connection(owned=False, fixed=not address)
    # Ray reads these at start-up: no usage-stats banner, no deduplication notes.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address:
        _probe(address)
        try:
            ray.init(address=address, **quiet)
        except ConnectionError as error:
            raise ConfigError(
                f"runtime.address {address!r}: {error}. Is the cluster up (`ray status` on its "
                "head node)? A cluster started with token authentication (what `ray start` "
                "does by default in Ray 2.60) also needs RAY_AUTH_MODE=token and its token "
                "(`ray get-auth-token`) in this environment.") from None
        return Connection(owned=True, fixed=False)
    # Started before Ray, so that no moment of the instance goes unwatched.
    watchdog = _start_watchdog()
    try:
        # "local": a new instance of our own, even when another one runs on this
        # machine (ray.init() without an address would join that one). No
        # dashboard: the run does not use it.
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **quiet)
    except BaseException:
        if watchdog is not None:
            _stop_watchdog(watchdog)
        raise
    connection = Connection(owned=True, fixed=True, watchdog=watchdog)
    if watchdog is not None:
        _tell_watchdog(watchdog, _session_dir())
    return connection


def _probe(address: str, timeout: float = _PROBE_TIMEOUT) -> None:
    """Fails at once when nothing answers at a "host:port" or "ray://host:port"
    address: ray.init would retry the GCS connection for minutes without a word."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and the like: Ray finds the address itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else (
            error.strerror or str(error))
        raise ConfigError(
            f"runtime.address {address!r}: nothing answers at {host}:{port} ({reason} within "
            f"{timeout:g} s). Is the cluster up (`ray status` on its head node), and is this "
            "its GCS port (6379 unless `ray start --port` said otherwise; 10001 for "
            "ray://)?") from None


def _start_watchdog() -> subprocess.Popen | None:
    """The watchdog of a local instance; None where it cannot work (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    ray_dir = str(Path(ray.__file__).resolve().parent)
    # Where Ray 2.60 puts a session started without _temp_dir, on Linux.
    base = os.environ.get("RAY_TMPDIR", os.environ.get("TMPDIR", "/tmp"))
    temp_dir = os.path.join(base, "ray")
    # Its own session: the terminal's Ctrl-C and hang-up go to the driver only.
    return subprocess.Popen(
        [sys.executable, "-I", str(_WATCHDOG), str(os.getpid()), ray_dir, temp_dir],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)


def _session_dir() -> str:
    """The local instance's session directory (no public API names it)."""
    node = getattr(ray._private.worker, "_global_node", None)
    return os.path.realpath(node.get_session_dir_path()) if node is not None else ""


def _tell_watchdog(watchdog: subprocess.Popen, session: str) -> None:
    try:
        assert watchdog.stdin is not None
        watchdog.stdin.write(f"{session}\n".encode())
        watchdog.stdin.flush()
    except OSError:  # it died: the run goes on unwatched, as Ray alone would
        pass


def _stop_watchdog(watchdog: subprocess.Popen) -> None:
    """End-of-file tells it to sweep what Ray left and exit; waits for that."""
    try:
        assert watchdog.stdin is not None
        watchdog.stdin.close()
        watchdog.wait(timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        watchdog.kill()


# -- room for the actors --------------------------------------------------------


def check_room(demands: list[Demand], fixed: bool) -> None:
    """Raises ConfigError when a cluster that cannot grow has too few CPUs or
    GPUs for the run's actors, in all or on any one node, before any is created.
    A cluster joined by address may grow (an autoscaler): wait_placed judges it."""
    if not fixed:
        return
    total, largest = ray.cluster_resources(), _largest_node()
    whole = Demand("run's actors", sum(d.cpus for d in demands), sum(d.gpus for d in demands))
    short = [f"the {whole.label} need {whole.text()} in all"] if (
        whole.cpus > total.get("CPU", 0) or whole.gpus > total.get("GPU", 0)) else []
    short += [f"the {d.label} needs {d.text()} on one node" for d in demands
              if d.cpus > largest.get("CPU", 0) or d.gpus > largest.get("GPU", 0)]
    if short:
        raise ConfigError(f"the Ray instance cannot hold this run: {'; '.join(short[:3])}; "
                          f"{_cluster_text(whole.gpus > 0)}")


def wait_placed(actors: list[tuple[Demand, Any]], ready: list[Any], timeout: float,
                needs: str) -> None:
    """Waits until Ray has given every actor a worker; ConfigError naming the
    actors it could not place within `timeout` seconds. `ready`: each actor's
    ready() call, answered ones count as placed (all there is on Ray Client)."""
    deadline = time.monotonic() + timeout
    waiting = list(zip(actors, ready, strict=True))
    while waiting:
        waiting = [(actor, call) for actor, call in waiting if not _placed(actor[1], call)]
        if not waiting:
            return
        if time.monotonic() >= deadline:
            raise ConfigError(_unplaced_message([d for (d, _), _ in waiting], timeout, needs))
        time.sleep(_POLL)


def _placed(actor: Any, ready_call: Any) -> bool:
    """Whether Ray has leased the actor a worker (it is starting or up): the
    GCS's actor table has the worker's address once resources were granted."""
    done, _ = ray.wait([ready_call], timeout=0)
    if done:
        return True
    try:
        info = ray._private.state.actors(actor._actor_id.hex())
    except Exception:  # no GCS access (Ray Client): only the answer tells
        return False
    return info.get("State") in ("ALIVE", "DEAD") or bool(info.get("Address", {}).get("Port"))


def _unplaced_message(demands: list[Demand], timeout: float, needs: str) -> str:
    if len(demands) == 1:
        what = f"the {demands[0].label} within {timeout:g} s: it needs {demands[0].text()}"
    else:
        what = f"{len(demands)} actors within {timeout:g} s: " + "; ".join(
            f"the {d.label} needs {d.text()}" for d in demands[:3])
        what += f" (and {len(demands) - 3} more)" if len(demands) > 3 else ""
    gpus = any(d.gpus for d in demands)
    return (f"Ray cannot place {what}; {_cluster_text(gpus)}. {needs}. Add resources, ask for "
            "fewer, or give a cluster that is still adding nodes a longer "
            "runtime.placement_timeout")


def _cluster_text(gpus: bool) -> str:
    """What the cluster has now: free and total CPUs (and GPUs when the cluster
    has some or `gpus` asks), the largest node when there are several."""
    free, total = ray.available_resources(), ray.cluster_resources()
    kinds = ["CPU"] + (["GPU"] if gpus or total.get("GPU", 0) else [])
    text = "the cluster has " + " and ".join(
        f"{free.get(kind, 0):g} of {_amount(total.get(kind, 0), kind)}" for kind in kinds) + " free"
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    if len(nodes) > 1:
        largest = _largest_node()
        text += f" on {len(nodes)} nodes (the largest has " + " and ".join(
            _amount(largest.get(kind, 0), kind) for kind in kinds) + ")"
    return text


def _largest_node() -> dict[str, float]:
    """The most CPUs and the most GPUs any one live node has."""
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    return {kind: max((node.get(kind, 0.0) for node in nodes), default=0.0)
            for kind in ("CPU", "GPU")}


def _amount(value: float, unit: str) -> str:
    return f"{value:g} {unit}" + ("" if value == 1 else "s")

