"""The run directory: resolved config, append-only event log, best program.

`events.jsonl` is the source of truth of a run: one JSON object per line for
every sample, rejection, evaluation, registration, discard, island reset and
scheduler decision (what each holds: funsearch/events.py). Reports read it
while the run is going; `resume` rebuilds the database from it. A line is
written whole and flushed at once, so a crash can at worst leave one
truncated last line, which readers skip with a warning.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EVENTS = "events.jsonl"
CONFIG = "config.json"
BEST = "best.py"
SUMMARY = "summary.json"


def new_run_dir(out: str | Path, name: str) -> Path:
    """A fresh `out/<name>-<UTC time>/`; a numeric suffix keeps names unique."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path(out) / f"{name}-{stamp}"
    path, suffix = base, 1
    while path.exists():
        suffix += 1
        path = base.with_name(f"{base.name}-{suffix}")
    path.mkdir(parents=True)
    return path


class RunLog:
    """Appends events to a run directory; safe to call from several threads.
    A log opened again (a resumed run) first gets a line cut short by a crash
    ended, so the events appended after it stay whole."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._started = time.time()
        _end_with_newline(self.dir / EVENTS)
        self._file = open(self.dir / EVENTS, "a", encoding="utf-8")

    def write_config(self, config: dict[str, Any]) -> None:
        _write_atomic(self.dir / CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Writes one event and returns it. `t` is Unix time of the event."""
        event = {"t": round(time.time(), 4), "kind": kind, **fields}
        line = json.dumps(event, default=_plain) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
        return event

    def write(self, event: Any) -> dict[str, Any]:
        """Writes an event declared in funsearch/events.py: its kind and fields."""
        return self.append(event.kind, **event.fields())

    def write_best(self, text: str) -> None:
        _write_atomic(self.dir / BEST, text)

    def write_file(self, name: str, text: str) -> None:
        """Another file of the run (the best program in a peer problem's format)."""
        _write_atomic(self.dir / name, text)

    def write_summary(self, summary: dict[str, Any]) -> None:
        _write_atomic(self.dir / SUMMARY, json.dumps(summary, indent=2, default=_plain) + "\n")

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                os.fsync(self._file.fileno())
                self._file.close()


def read_events(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The events of a run, also while it is being written. A line that does
    not parse (a crash mid-write) is skipped with a warning naming it."""
    path = Path(run_dir) / EVENTS
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {EVENTS} (not a run directory?)")
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                warnings.warn(f"{path}:{number}: skipped a truncated or malformed line",
                              stacklevel=2)


def read_config(run_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / CONFIG).read_text())


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and arrays; NaN/inf become strings, never invalid JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _end_with_newline(path: Path) -> None:
    """Ends a line cut short by a crash, so the events appended after it stay whole."""
    if not path.is_file():
        return
    with open(path, "rb+") as file:
        if file.seek(0, os.SEEK_END) and (file.seek(-1, os.SEEK_END), file.read(1))[1] != b"\n":
            file.write(b"\n")
