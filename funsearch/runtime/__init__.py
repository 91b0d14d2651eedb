"""Where the search loop's work runs: threads in one process (inline.py), or
actors on Ray (ray_runtime.py, the only Ray imports). Both are a Backend."""

from __future__ import annotations

import concurrent.futures as cf
from typing import Any, Protocol

from funsearch.prompt import Query


class Backend(Protocol):
    """Where samplers and evaluations run (threads, or actors with Ray).
    `input_ids`: only those inputs of the set (a cascade's stage)."""

    database: Any  # a ProgramsDatabase, or a proxy whose submit(method, *args) calls one
    isolation: str
    evaluation_slots: int  # evaluations that can usefully be queued at once

    def submit_sample(self, sampler: str, query: Query, n: int) -> cf.Future: ...
    def submit_evaluation(self, program: str, input_set: str | None = None) -> cf.Future: ...
    def submit_evaluations(self, programs: list[str], input_set: str | None = None,
                           input_ids: list[str] | None = None) -> list[cf.Future]: ...
    def close(self) -> None: ...
