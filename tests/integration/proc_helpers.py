"""Which processes belong to a Ray session, read from /proc (Linux).

Independent of the watchdog's own test on purpose: here a process of the
session is any process (Ray's or not, e.g. a sandbox worker) with a file open
in the session directory, or a descendant of the driver seen while it ran.
A pid counts as the same process only while its start time is unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

Process = tuple[int, int]  # (pid, start time in clock ticks)


def session_of(pid: int) -> str | None:
    """The Ray session directory the process has files open in, if any."""
    for target in _open_files(pid):
        marker = target.find("/session_2")
        if marker >= 0:
            end = target.find("/", marker + 1)
            return target if end < 0 else target[:end]
    return None


def session_processes(session: str) -> set[Process]:
    """Every live process with a file open in `session`."""
    prefix = session.rstrip("/") + "/"
    found = set()
    for pid in _pids():
        if any(target.startswith(prefix) for target in _open_files(pid)):
            started = _start_time(pid)
            if started is not None:
                found.add((pid, started))
    return found


def descendants(root: int) -> set[Process]:
    """The live descendants of `root`."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        parent = _stat(pid, 1)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    found, todo = set(), list(children.get(root, []))
    while todo:
        pid = todo.pop()
        started = _start_time(pid)
        if started is not None:
            found.add((pid, started))
        todo.extend(children.get(pid, []))
    return found


def alive(processes: set[Process]) -> set[Process]:
    """Those still running (not zombies), by pid and start time."""
    return {(pid, started) for pid, started in processes
            if _start_time(pid) == started and _stat(pid, 0) != "Z"}


def describe(processes: set[Process]) -> str:
    return ", ".join(f"{pid} {_command(pid)}" for pid, _ in sorted(processes)) or "none"


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _open_files(pid: int) -> list[str]:
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    targets = []
    for name in names:
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{name}"))
        except OSError:
            continue
    return targets


def _stat(pid: int, field: int) -> int | str | None:
    """A field of /proc/pid/stat after the command: 0 state, 1 ppid, 19 start time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[field] if field == 0 else int(fields[field])


def _start_time(pid: int) -> int | None:
    started = _stat(pid, 19)
    return started if isinstance(started, int) else None


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80].strip()
    except OSError:
        return "?"
