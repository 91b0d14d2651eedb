"""Everything in one process: samplers on threads, evaluations in the sandbox pool.

For debugging a spec, unit tests and laptops without Ray. The engine sees
the same Backend interface as with Ray.
"""

from __future__ import annotations

import concurrent.futures as cf

from funsearch.config import ExperimentConfig
from funsearch.database import ProgramsDatabase
from funsearch.evaluator import Evaluator, make_pool
from funsearch.prompt import Query
from funsearch.samplers import make_sampler, sample_programs, threads
from funsearch.samplers.base import Sample, Sampler
from funsearch.spec import Specification


class InlineBackend:
    """Samplers run on a thread pool; the sandbox pool runs evaluations."""

    def __init__(self, config: ExperimentConfig, spec: Specification,
                 samplers: dict[str, Sampler] | None = None,
                 database: ProgramsDatabase | None = None):
        self.database = database or ProgramsDatabase(config.database, seed=config.seed)
        self._samplers = samplers or {
            sampler.name: make_sampler(sampler, seed=config.seed) for sampler in config.samplers
        }
        count = sum(threads(sampler) for sampler in config.samplers)
        self._threads = cf.ThreadPoolExecutor(max_workers=count, thread_name_prefix="sampler")
        settings = config.evaluator
        pool = make_pool(spec, settings.workers, settings.timeout, settings.memory_mb,
                         settings.isolation, settings.split)
        self._evaluator = Evaluator(spec, pool, config.problem.inputs)
        self._pool = pool
        self.isolation = pool.isolation
        self.isolation_detail = f"{pool.isolation_detail} ({pool.isolation_reason})"
        # Two evaluations per worker keep every worker busy while results return.
        self.evaluation_slots = 2 * settings.workers

    def submit_sample(self, sampler: str, query: Query, n: int) -> cf.Future:
        return self._threads.submit(self._sample, sampler, query, n)

    def _sample(self, sampler: str, query: Query, n: int) -> list[Sample]:
        return sample_programs(self._samplers[sampler], query, n)

    def submit_evaluation(self, program: str, input_set: str | None = None) -> cf.Future:
        return self._evaluator.submit(program, input_set)

    def submit_evaluations(self, programs: list[str], input_set: str | None = None,
                           input_ids: list[str] | None = None) -> list[cf.Future]:
        return [self._evaluator.submit(program, input_set, input_ids) for program in programs]

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        for sampler in self._samplers.values():
            close = getattr(sampler, "close", None)
            if close is not None:
                close()  # frees a vLLM engine's GPU memory, an HTTP client's sockets
        self._pool.close()
