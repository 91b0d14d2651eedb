"""Ends the processes of a local Ray instance once the driver that started it
is gone, even after `kill -9` of the driver.

Ray ties the processes the driver starts itself (gcs_server, raylet, the API
server, the monitors) to the driver with PR_SET_PDEATHSIG, but not what the
raylet starts: its dashboard and runtime-env agents notice the raylet's death
and then spend 60 s trying to report it to the dead GCS, and its workers take
seconds to notice. This script, which the driver starts in a session of its
own (ray_cluster.py), reads the session directory from its stdin and then
waits for end-of-file, which comes when the driver closes the pipe or dies.
It then kills every Ray process of that session and exits. A driver killed
while Ray was starting has not named its session yet: then the sessions Ray
named after the driver's pid (`session_<date>_<pid>` in Ray's temp directory).

A process of the session is one with a file open in the session directory
(Ray's processes all keep their logs open there) that is Ray's: a `ray::`
worker or agent, or a program of the Ray package -- or one whose stdout or
stderr is a session log: what a worker started (a vLLM engine renames itself
`VLLM::EngineCore` and outlives a killed actor). A user's `tail -f` of a Ray
log is left alone. Standard library only, run with `python -I`: it
starts in milliseconds and stays small.
"""

from __future__ import annotations

import glob
import os
import signal
import sys
import time
from collections.abc import Iterable

# How long the sweep goes on while it still finds processes (a dying raylet
# may start one more worker); in practice one round kills them all.
_PATIENCE = 10.0


def main(argv: list[str]) -> int:
    """`argv`: the driver's pid, the Ray package directory, Ray's temp directory."""
    driver, ray_dir, temp_dir = int(argv[1]), argv[2], argv[3]
    # Ctrl-C in the driver's terminal must not end the watch.
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    session = sys.stdin.readline().strip()
    while sys.stdin.read(4096):  # until end-of-file: the driver is done or dead
        pass
    sessions = [session] if session else glob.glob(f"{temp_dir}/session_*_{driver}")
    for path in sessions:
        sweep(os.path.realpath(path), ray_dir, exclude={os.getpid(), driver})
    return 0


def sweep(session: str, ray_dir: str, exclude: set[int]) -> None:
    """SIGKILLs the session's Ray processes until none is left (or patience runs out)."""
    deadline = time.monotonic() + _PATIENCE
    while time.monotonic() < deadline:
        found = [pid for pid in session_processes(session, ray_dir) if pid not in exclude]
        if not found:
            return
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:  # already gone
                pass
        time.sleep(0.1)


def session_processes(session: str, ray_dir: str) -> list[int]:
    """Ray processes (of this user: others' /proc entries are unreadable) with
    a file open in `session`."""
    prefix = session.rstrip("/") + "/"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if (_is_ray(pid, ray_dir) and _holds(pid, prefix)) or _writes_log(pid, prefix):
            found.append(pid)
    return found


def _is_ray(pid: int, ray_dir: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            command = file.read()
    except OSError:
        return False
    return command.startswith(b"ray::") or ray_dir.encode() + b"/" in command


def _writes_log(pid: int, prefix: str) -> bool:
    """Whether the process's stdout or stderr is a file in the session: a worker's child."""
    return _opens(pid, ("1", "2"), prefix)


def _holds(pid: int, prefix: str) -> bool:
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    return _opens(pid, descriptors, prefix)


def _opens(pid: int, descriptors: Iterable[str], prefix: str) -> bool:
    """Whether any of the process's `descriptors` is a file under `prefix`."""
    for descriptor in descriptors:
        try:
            if os.readlink(f"/proc/{pid}/fd/{descriptor}").startswith(prefix):
                return True
        except OSError:
            continue
    return False


if __name__ == "__main__":
    sys.exit(main(sys.argv))
