"""A study's runs as Ray work: each run is one task, several at once.

The study driver chooses the runs; a task makes one (experiment.run in the
worker, with the run's own runtime: an inline run reserves its evaluator
workers as CPUs, a Ray run none, since its actors reserve their own) and
sends back its best-so-far curve, so the driver needs no access to the
worker's disk. Run directories are written where the request says, on the
worker's file system (a shared one on a cluster).
"""

from __future__ import annotations

from typing import Any

import ray

from funsearch.runtime.ray_cluster import connect


def _make_run(run_function: Any, request: Any) -> Any:
    return run_function(request)


class RayExecutor:
    """Submits runs as Ray tasks; hands them back as they finish."""

    def __init__(self, address: str, run_function: Any):
        self._ray = connect(address)  # owned: started or joined here, closed at the end
        self._run_function = run_function
        self._task = ray.remote(max_retries=0)(_make_run)
        self._running: dict[Any, Any] = {}  # object ref -> request

    def submit(self, request: Any) -> None:
        config = request.config
        cpus = config.evaluator.workers if config.runtime.kind == "inline" else 0
        ref = self._task.options(num_cpus=cpus).remote(self._run_function, request)
        self._running[ref] = request

    def next_done(self) -> tuple[Any, Any]:
        done, _ = ray.wait(list(self._running), num_returns=1)
        request = self._running.pop(done[0])
        try:
            return request, ray.get(done[0])
        except Exception as error:  # the task's error, or the worker lost
            return request, error

    def close(self) -> None:
        for ref in self._running:
            ray.cancel(ref, force=True)
        self._running.clear()
        self._ray.close()
