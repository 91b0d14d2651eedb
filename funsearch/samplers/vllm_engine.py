"""A vLLM engine in-process as a sampler: one engine per replica, on its GPUs.

vLLM is an optional dependency (`pip install 'funsearch[vllm]'`) and is
imported only when a vllm sampler is created, never when funsearch is
imported. The engine is vLLM's async engine (`AsyncLLMEngine`, an alias of
the V1 `AsyncLLM` in current releases): it batches the requests in flight,
so the sampler runs the engine's event loop in a background thread it owns,
and sample() (called from the search's threads) submits a request to it and
waits.

GPU time is attributed per sample as GPUs x the request's share of the
engine's busy time: requests batched together share the time they overlap,
so the GPU-seconds of all samples add up to GPUs x the time the engine was
busy, and a request alone is charged its whole latency.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import inspect
import itertools
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

# Share of a GPU's memory vLLM may take when the replica has the GPU to itself.
_MEMORY_SHARE = 0.9


class VLLMSettings(Settings):
    """`settings` of the vllm backend.

    gpu_memory_utilization: share of each GPU's memory for the engine; by
      default 0.9 x gpus_per_replica when a replica gets a fraction of a GPU
      (two 0.5-GPU replicas can then share one), else 0.9.
    max_model_len: context length (prompt + completion); smaller values leave
      more memory for batching.
    dtype, enforce_eager, seed: passed to the engine (seed: the experiment's
      seed when not set).
    stop: stop sequences (default: the next top-level statement in
      completion mode, none in chat mode).
    timeout: seconds one request may take before it is aborted (none by default).
    engine_args: further AsyncEngineArgs fields, e.g. {quantization = "awq"}
      (with tensor parallelism, distributed_executor_backend is "mp" unless set here).
    """

    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    max_model_len: int | None = Field(None, ge=1)
    dtype: str = "auto"
    enforce_eager: bool = False
    seed: int | None = None
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
            f"install it with: {INSTALL_HINT} (on a machine with a CUDA GPU)") from None
    return vllm


class VLLMSampler:
    """Samples from a vLLM engine that this object starts and owns.

    The engine starts when the sampler is created (loading the model takes a
    while, and a model that does not fit should fail the run at its start).
    Call close() to free the GPUs.
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
        self._gpus = config.gpus_per_replica or 1.0  # an engine holds at least one GPU
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
        with self._slots:
            token = self._busy.begin()
            try:
                output = self._run(self._generate(query, n), self._settings.timeout)
            finally:
                latency, busy = self._busy.end(token)
        return self._samples(output, latency, busy)

    def close(self) -> None:
        """Shuts the engine down and stops its event loop thread."""
        engine = getattr(self, "_engine", None)
        if engine is not None and hasattr(engine, "shutdown"):
            try:
                self._loop.call_soon_threadsafe(engine.shutdown)
            except RuntimeError:
                pass  # the loop is already closed
        self._stop_loop()

    def _engine_arguments(self, seed: int) -> dict[str, Any]:
        config, settings = self._config, self._settings
        gpus = config.gpus_per_replica
        if gpus > 1 and gpus != int(gpus):
            raise SamplerConfigError(
                f"samplers.{config.name}.gpus_per_replica: {gpus:g} GPUs cannot be split for "
                "tensor parallelism; use a whole number, or a fraction below 1 to share a GPU")
        memory = settings.gpu_memory_utilization
        if memory is None:
            memory = _MEMORY_SHARE * min(1.0, gpus) if 0 < gpus < 1 else _MEMORY_SHARE
        arguments: dict[str, Any] = {
            "model": config.model,
            "tensor_parallel_size": max(1, int(gpus)),
            "gpu_memory_utilization": round(memory, 4),
            "dtype": settings.dtype,
            "seed": seed if settings.seed is None else settings.seed,
        }
        if arguments["tensor_parallel_size"] > 1:
            # The replica's GPUs are already ours (Ray reserved them for this
            # actor): vLLM's own processes use them, instead of asking Ray for more.
            arguments["distributed_executor_backend"] = "mp"
        if settings.max_model_len is not None:
            arguments["max_model_len"] = settings.max_model_len
        if settings.enforce_eager:
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

    async def _generate(self, query: Any, n: int) -> Any:
        """The engine's final output for one request of n samples."""
        prompt = await self._prompt(query)
        params = self._vllm.SamplingParams(**self._sampling_arguments(n))
        request_id = f"{self.name}-{next(self._request_ids)}"
        final = None
        try:
            # Outputs are cumulative: the last one holds every sample in full.
            async for output in self._engine.generate(prompt, params, request_id):
                final = output
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise SamplerError(f"sampler '{self.name}': vLLM request {request_id} failed: "
                               f"{type(error).__name__}: {error}") from None
        if final is None or not getattr(final, "outputs", None):
            raise SamplerError(f"sampler '{self.name}': vLLM request {request_id} "
                               "ended without output")
        return final

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
        return arguments

    def _samples(self, output: Any, latency: float, busy: float) -> list[Sample]:
        completions = sorted(output.outputs, key=lambda completion: completion.index)
        count = len(completions)
        prompt_tokens = split(len(output.prompt_token_ids or ()), count)
        gpu_seconds = self._gpus * busy / count
        return [Sample(completion.text, self.name, latency, prompt,
                       len(completion.token_ids or ()), gpu_seconds)
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
