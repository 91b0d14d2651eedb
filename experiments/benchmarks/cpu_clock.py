"""CPU clocks the benchmarks read from /proc: the whole machine's, and a
sandbox pool's (its workers and every process under them).

Shared by the benchmark scripts, which import it as a sibling module (a
script's own folder is on sys.path when it runs).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU time of every process on the machine so far (user + system)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def pool_cpu(pool: Any, base: Callable[[], float] = lambda: 0.0) -> Callable[[], float]:
    """A clock of every process under the pool's workers (bwrap, the worker,
    its children; a reaped child counts in its parent's children time), plus
    `base` (e.g. the host process's own CPU)."""

    def cpu() -> float:
        total, pending = base(), list(pool.worker_pids())
        while pending:
            pid = pending.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += sum(int(value) for value in fields[11:15]) / _TICK
                for task in Path(f"/proc/{pid}/task").iterdir():
                    pending += [int(child) for child in (task / "children").read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
        return total

    return cpu
