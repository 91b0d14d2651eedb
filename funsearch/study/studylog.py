"""The study's log, `study.jsonl`: its source of truth, as events.jsonl is a run's.

One JSON line per event: study_start (and one per resume), decision (the
run chosen and why), run_end (the run's best-so-far curve, so the log alone
is enough to refit), run_failed, fit (the laws and P(best at B) after each
run, for the record) and study_end. A line is written whole and flushed, so
a crash leaves at most one truncated last line, which the reader skips.
Folding the log gives the study back: the runs made and the runs decided
but not finished, which a resumed study makes again with the same seed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

from funsearch.study.observe import RunCurve

LOG = "study.jsonl"


class StudyLog:
    def __init__(self, study_dir: str | Path):
        self.dir = Path(study_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._file = open(self.dir / LOG, "a", encoding="utf-8")

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"t": round(time.time(), 3), "kind": kind, **fields}
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        return event

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> StudyLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def exists(study_dir: str | Path) -> bool:
    return (Path(study_dir) / LOG).is_file()


def read(study_dir: str | Path) -> list[dict[str, Any]]:
    """The events, skipping (with a warning) a line a crash cut short."""
    path = Path(study_dir) / LOG
    if not path.is_file():
        raise FileNotFoundError(f"{study_dir}: not a study directory (no {LOG})")
    events = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            warnings.warn(f"{path}:{number}: not a whole JSON line (cut short by a crash?); "
                          "skipped", stacklevel=2)
    return events


@dataclasses.dataclass
class RunRecord:
    """One run of the study: why it was chosen and, once done, what it showed."""

    run: int
    arm: str
    budget: float  # a fraction of B
    seed: int
    rule: str
    reason: str
    gain: float | None = None
    run_dir: str = ""
    curve: RunCurve | None = None
    stop_reason: str = ""
    failed: str = ""

    @property
    def done(self) -> bool:
        return self.curve is not None


@dataclasses.dataclass
class StudyState:
    definition: dict[str, Any] | None = None
    runs: dict[int, RunRecord] = dataclasses.field(default_factory=dict)
    fits: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    ended: str | None = None
    sessions: int = 0

    def done(self) -> list[RunRecord]:
        return [record for record in self.runs.values() if record.done]

    def unfinished(self) -> list[RunRecord]:
        """Decided and not done: in flight when the study stopped, or failed."""
        return [record for record in self.runs.values() if not record.done]

    def curves(self, arms: list[str]) -> dict[str, list[RunCurve]]:
        curves: dict[str, list[RunCurve]] = {arm: [] for arm in arms}
        for record in self.done():
            curves.setdefault(record.arm, []).append(record.curve)
        return curves

    @property
    def next_run(self) -> int:
        return max(self.runs, default=-1) + 1


def fold(events: list[dict[str, Any]]) -> StudyState:
    state = StudyState()
    for event in events:
        kind = event.get("kind")
        if kind == "study_start":
            state.definition = state.definition or event.get("definition")
            state.sessions += 1
            state.ended = None
        elif kind == "decision":
            state.runs[event["run"]] = RunRecord(
                event["run"], event["arm"], float(event["budget"]), int(event["seed"]),
                event.get("rule", ""), event.get("reason", ""), event.get("gain"),
                event.get("run_dir", ""))
        elif kind == "run_start" and event.get("run") in state.runs:
            state.runs[event["run"]].run_dir = event.get("run_dir", "")
        elif kind == "run_end" and event.get("run") in state.runs:
            record = state.runs[event["run"]]
            record.curve = RunCurve.from_json(event["curve"])
            record.stop_reason = event.get("stop_reason", "")
            record.run_dir = event.get("run_dir", record.run_dir)
            record.failed = ""
        elif kind == "run_failed" and event.get("run") in state.runs:
            state.runs[event["run"]].failed = event.get("reason", "?")
        elif kind == "fit":
            state.fits.append(event)
        elif kind == "study_end":
            state.ended = event.get("reason", "")
    return state
