"""The search distributed with Ray: a database actor, sampler replicas, evaluator actors.

The driver runs the same engine loop as the inline runtime; this Backend
turns its calls into actor calls:

- one database actor holds the ProgramsDatabase (`backend.database` is a
  proxy that sends it calls without waiting; the loop's database client,
  funsearch/database_client.py, batches them);
- one sampler actor per replica of each sampler config, reserving the
  replica's GPUs (a CPU-only sampler reserves a small share of a CPU);
- `evaluator.actors` evaluator actors, each owning a sandbox pool of
  `evaluator.workers` processes and reserving that many CPUs, spread over
  the nodes. Evaluations go to the least busy actor.

Actors that die (a node lost, an OOM kill, `ray.kill`) are restarted by Ray.
The calls they had in flight are sent again, to another actor if one is up,
a few times with growing pauses (a lost node takes Ray seconds to notice);
an evaluation that still gets no answer comes back as an Evaluation with
status "lost" and the reason, so the engine logs it and goes on. Each retry
and loss is also an event in the run log. The database actor is not
restarted: its state is in the run log, and `funsearch resume` rebuilds it.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from funsearch import events
from funsearch import spec as spec_module
from funsearch.config import ConfigError, ExperimentConfig, SamplerConfig
from funsearch.database import ProgramsDatabase
from funsearch.evaluator import Evaluation, Evaluator, make_pool
from funsearch.prompt import Query
from funsearch.runtime.ray_cluster import Demand, check_room, connect, wait_placed
from funsearch.runtime.replicas import EventSink, Replicas, describe
from funsearch.samplers import make_sampler, sample_programs, threads
from funsearch.samplers.base import Sampler

# CPUs a sampler without GPUs reserves: proposing is light next to evaluating,
# and a whole CPU each would leave none for the evaluators on a laptop.
_SAMPLER_CPUS = 0.1
# How long evaluator actors may take to close their sandbox pools.
_CLOSE_TIMEOUT = 10.0
# Programs per evaluator call, in rounds of the actor's workers. An actor call
# costs about 1.2-1.7 ms of CPU over both ends and Ray's threads (measured on
# a 2-core VM), CPU the sandboxes then lack: two rounds per call halve that
# cost, and an answer comes back at most a round later.
_ROUNDS_PER_CALL = 2
_ROUNDS_HELD = 2 * _ROUNDS_PER_CALL  # evaluations in flight per worker


def cpus_needed(config: ExperimentConfig) -> float:
    """Logical CPUs the run's actors reserve."""
    samplers = sum(sampler.replicas * _sampler_cpus(sampler) for sampler in config.samplers)
    return config.evaluator.workers * config.evaluator.actors + samplers


def _sampler_cpus(config: SamplerConfig) -> float:
    """A GPU replica's driving CPU; a model on CPUs (vllm without GPUs) the
    cores its engine computes on; a light proposer or API client a little."""
    if config.gpus_per_replica > 0:
        return 1.0
    if config.backend == "vllm":
        from funsearch.samplers.vllm_engine import replica_cpus

        return float(replica_cpus(config))
    return _SAMPLER_CPUS


def _demands(config: ExperimentConfig) -> list[Demand]:
    """What each evaluator actor and then each sampler replica reserves, in
    the order RayBackend pairs them with its actors."""
    settings = config.evaluator
    evaluators = [Demand(f"evaluator actor {i + 1} of {settings.actors}", settings.workers)
                  for i in range(settings.actors)]
    samplers = [Demand(f"sampler '{s.name}' replica {i + 1} of {s.replicas}", _sampler_cpus(s),
                       s.gpus_per_replica)
                for s in config.samplers for i in range(s.replicas)]
    return evaluators + samplers


def _needs(config: ExperimentConfig) -> str:
    """The run's whole demand, and where each part comes from."""
    gpus = sum(sampler.gpus_per_replica * sampler.replicas for sampler in config.samplers)
    return (f"The run needs {cpus_needed(config):g} CPUs (evaluator.workers x evaluator.actors, "
            f"plus {_SAMPLER_CPUS:g} per sampler replica without GPUs, a vllm replica on CPUs "
            f"its cores, and 1 per replica with GPUs) "
            f"and {gpus:g} GPUs (gpus_per_replica x replicas)")


# -- actors ------------------------------------------------------------------


@ray.remote(num_cpus=0, max_restarts=0)
class _DatabaseActor:
    """Owns the ProgramsDatabase; one call at a time, as the database expects."""

    def __init__(self, database: ProgramsDatabase):
        self._database = database

    def call(self, method: str, args: tuple, kwargs: dict) -> Any:
        return getattr(self._database, method)(*args, **kwargs)


class DatabaseProxy:
    """The database actor as database_client.RemoteDatabase sees it: one method
    that sends a call and returns a future."""

    def __init__(self, actor: Any):
        self._actor = actor

    def submit(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Calls a database method without waiting; a concurrent.futures.Future.
        The actor runs calls in the order they were sent."""
        return self._actor.call.remote(method, args, kwargs).future()


@ray.remote
class _SamplerActor:
    """One replica of a sampler (a model on its GPUs, an API client, the mutation proposer)."""

    def __init__(self, sampler: SamplerConfig | Sampler, seed: int):
        self._sampler = (make_sampler(sampler, seed=seed) if isinstance(sampler, SamplerConfig)
                         else sampler)

    def ready(self) -> str:
        return self._sampler.name

    def sample(self, query: Query, n: int) -> list:
        """The samples, made into programs here (in parallel with the driver)."""
        return sample_programs(self._sampler, query, n)


@ray.remote
class _EvaluatorActor:
    """A sandbox pool and the host-side scoring of one spec. Calls run on the
    actor's threads (max_concurrency: the calls in flight, and one for the
    rest) and wait for their evaluations; the pool runs them side by side up
    to its workers, the rest waiting in the pool. (An asyncio actor costs a
    third more CPU per evaluation: a loop wake-up per program and Ray's
    coroutine plumbing.)"""

    def __init__(self, spec_path: str, input_set: str, workers: int, timeout: float,
                 memory_mb: int, isolation: str, split: str = "auto"):
        spec = spec_module.load(spec_path)
        self._pool = make_pool(spec, workers, timeout, memory_mb, isolation, split)
        self._evaluator = Evaluator(spec, self._pool, input_set)

    def ready(self) -> str:
        return self._evaluator.isolation

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def evaluate(self, programs: list[str], input_set: str | None,
                 input_ids: list[str] | None = None) -> list[Evaluation]:
        """Several programs in one call (actor calls are dear: see _ROUNDS_PER_CALL)."""
        futures = [self._evaluator.submit(program, input_set, input_ids) for program in programs]
        return [future.result() for future in futures]

    def close(self) -> None:
        self._pool.close()


# -- the backend ---------------------------------------------------------------


class RayBackend:
    """The engine's Backend on a Ray cluster (a local one without an address)."""

    def __init__(self, config: ExperimentConfig, spec: spec_module.Specification,
                 samplers: dict[str, Sampler] | None = None,
                 database: ProgramsDatabase | None = None,
                 on_event: EventSink | None = None):
        self._on_event = on_event or (lambda event: None)
        local_cpus = None if config.runtime.address else max(
            os.cpu_count() or 1, math.ceil(cpus_needed(config)))
        self._ray = connect(config.runtime.address, local_cpus)
        self._actors: list[Any] = []
        try:
            self._start(config, spec, samplers or {},
                        database or ProgramsDatabase(config.database, seed=config.seed))
        except BaseException:
            self.close()  # the caller logs why the run could not start (start_failed)
            raise

    def _start(self, config: ExperimentConfig, spec: spec_module.Specification,
               samplers: dict[str, Sampler], database: ProgramsDatabase) -> None:
        demands = _demands(config)
        check_room(demands, self._ray.fixed)
        # The database stays next to the driver: both are lost together or not at all.
        # (Not soft: Ray spreads soft-pinned zero-CPU actors over the nodes.)
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        database_actor = _DatabaseActor.options(scheduling_strategy=here).remote(database)
        self._actors.append(database_actor)
        self.database = DatabaseProxy(database_actor)

        self._samplers: dict[str, Replicas] = {}
        for sampler in config.samplers:
            options = {"num_cpus": _sampler_cpus(sampler), "num_gpus": sampler.gpus_per_replica,
                       "max_concurrency": threads(sampler), "max_restarts": -1,
                       "max_task_retries": 0}
            replicas = [
                _SamplerActor.options(**options).remote(
                    samplers.get(sampler.name, sampler), config.seed + 1000 * replica)
                for replica in range(sampler.replicas)
            ]
            self._actors.extend(replicas)
            self._samplers[sampler.name] = Replicas("sampler", replicas, self._on_event)

        settings = config.evaluator
        evaluators = [
            _EvaluatorActor.options(
                num_cpus=settings.workers, max_restarts=-1, max_task_retries=0,
                max_concurrency=_ROUNDS_HELD // _ROUNDS_PER_CALL + 1, scheduling_strategy="SPREAD",
            ).remote(str(spec.path), config.problem.inputs, settings.workers, settings.timeout,
                     settings.memory_mb, settings.isolation, settings.split)
            for _ in range(settings.actors)
        ]
        self._actors.extend(evaluators)
        # Each actor holds at most _ROUNDS_HELD rounds of its workers (see
        # evaluation_slots), so an answer later than this means it is gone for good.
        deadline = 2 * _ROUNDS_HELD * settings.timeout + 120
        self._evaluators = Replicas("evaluation", evaluators, self._on_event, deadline)

        sampler_actors = [actor for group in self._samplers.values() for actor in group.actors]
        self.isolation = self._wait_ready(
            config, list(zip(demands, evaluators + sampler_actors, strict=True)))
        # A call takes _ROUNDS_PER_CALL rounds of an actor's workers and two calls
        # per actor keep its workers busy while one's results return; the
        # scheduler adds what the evaluators consume while prompts are out.
        self.evaluation_workers = settings.workers * settings.actors
        self._batch = _ROUNDS_PER_CALL * settings.workers
        self.evaluation_slots = _ROUNDS_HELD * self.evaluation_workers

    def _wait_ready(self, config: ExperimentConfig, actors: list[tuple[Demand, Any]]) -> str:
        """Waits for Ray to place the actors (runtime.placement_timeout), then
        for them to start (runtime.start_timeout); the first evaluator's
        isolation. A failure is a ConfigError with the reason, never a wait
        without end."""
        calls = [actor.ready.remote() for _, actor in actors]
        self._ready_calls = calls
        wait_placed(actors, calls, config.runtime.placement_timeout, _needs(config))
        limit = config.runtime.start_timeout
        try:
            return ray.get(calls, timeout=limit)[0]
        except GetTimeoutError:
            done, _ = ray.wait(calls, num_returns=len(calls), timeout=0)
            waiting = [demand.label for (demand, _), call in zip(actors, calls, strict=True)
                       if call not in done]
            raise ConfigError(
                f"Ray placed the run's actors, but {', '.join(waiting)} did not start within "
                f"{limit:g} s (runtime.start_timeout: loading a large model, or a machine "
                "busy with other work, may need longer)") from None
        except RayActorError as error:
            raise ConfigError(f"a Ray actor failed to start: {describe(error)}") from None

    def submit_sample(self, sampler: str, query: Query, n: int) -> cf.Future:
        return self._samplers[sampler].call("sample", query, n)

    def submit_evaluation(self, program: str, input_set: str | None = None) -> cf.Future:
        """An Evaluation always: one whose actors failed has status "lost"."""
        return self.submit_evaluations([program], input_set)[0]

    def submit_evaluations(self, programs: list[str], input_set: str | None = None,
                           input_ids: list[str] | None = None) -> list[cf.Future]:
        """submit_evaluation for each program, in one actor call per
        _ROUNDS_PER_CALL rounds of an actor's workers: they come back together
        (actor calls are dear; see _ROUNDS_PER_CALL)."""
        size = self._batch
        return [future for start in range(0, len(programs), size)
                for future in self._submit_batch(programs[start:start + size], input_set,
                                                 input_ids)]

    def _submit_batch(self, programs: list[str], input_set: str | None,
                      input_ids: list[str] | None) -> list[cf.Future]:
        results: list[cf.Future] = [cf.Future() for _ in programs]

        def done(call: cf.Future) -> None:
            error = call.exception()
            if error is None:
                for result, evaluation in zip(results, call.result(), strict=True):
                    result.set_result(evaluation)
                return
            why = f"evaluator failed: {describe(error)}"
            for result in results:
                self._on_event(events.EvaluationLost(reason=why, input_set=input_set))
                result.set_result(Evaluation("lost", reason=why, input_set=input_set or ""))

        call = self._evaluators.call("evaluate", programs, input_set, input_ids,
                                     weight=len(programs))
        call.add_done_callback(done)
        return results

    @property
    def evaluator_actors(self) -> list[Any]:
        """The evaluator actors' handles (for fault-injection tests)."""
        return list(self._evaluators.actors)

    def evaluations_in_flight(self) -> list[int]:
        """Evaluations sent to each evaluator actor and not answered yet."""
        return self._evaluators.busy()

    def evaluator_nodes(self) -> list[str]:
        """The Ray node id each evaluator actor runs on."""
        return ray.get([actor.node.remote() for actor in self._evaluators.actors])

    def _started_evaluators(self) -> list[Any]:
        """The evaluator actors that answered ready(): only they have a pool to
        close (asking one Ray never placed would wait out _CLOSE_TIMEOUT)."""
        evaluators = getattr(self, "_evaluators", None)
        calls = getattr(self, "_ready_calls", [])
        if evaluators is None or not calls:
            return []
        calls = calls[:len(evaluators.actors)]  # evaluators come first
        done, _ = ray.wait(calls, num_returns=len(calls), timeout=0)
        return [actor for actor, call in zip(evaluators.actors, calls, strict=True)
                if call in done]

    def close(self) -> None:
        for group in [*getattr(self, "_samplers", {}).values(),
                      getattr(self, "_evaluators", None)]:
            if group is not None:
                group.close()
        # Sandbox pools stop their workers and remove their folders; then the kill.
        try:
            ray.get([actor.close.remote() for actor in self._started_evaluators()],
                    timeout=_CLOSE_TIMEOUT)
        except Exception:  # gone or stuck: the kill below ends it anyway
            pass
        for actor in self._actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already gone
                pass
        self._actors = []
        self._ray.close()
