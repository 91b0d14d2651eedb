"""The vllm sampler on a real vLLM engine (its CPU build), in this process.

One engine for the module (see conftest.py). The model is random, so its
text is nonsense; a stop string that is common in it ("e") ends completions
after different numbers of tokens, which is what lost samples on vLLM V1.
"""

from __future__ import annotations

import concurrent.futures as cf
import time

import pytest

from funsearch import prompt
from funsearch.config import SamplerConfig
from funsearch.samplers import Sample, make_sampler

PROGRAM = '''def priority(item, bins):
    """Returns a priority per bin."""
    return -(bins - item)
'''
MAX_TOKENS = 32
CPUS = 1


@pytest.fixture(scope="module")
def sampler(model_dir, vllm_env):
    config = SamplerConfig(
        name="tiny", backend="vllm", model=str(model_dir), gpus_per_replica=0,
        samples_per_prompt=4, max_tokens=MAX_TOKENS, max_concurrency=20,
        settings={"max_model_len": 2048, "dtype": "float32", "stop": ["e"], "cpus": CPUS})
    sampler = make_sampler(config, seed=0)
    try:
        yield sampler
    finally:
        sampler.close()


def _query(step: int = 0) -> prompt.Query:
    program = PROGRAM.replace("item)", f"item) + {step}")
    return prompt.build_query("import numpy as np\n", "priority", [PROGRAM, program])


def _union(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one interval."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def test_every_request_of_n_returns_n_samples_with_their_tokens_and_costs(sampler, tokenizer):
    queries = [_query(step) for step in range(20)]

    def timed(query: prompt.Query) -> tuple[float, list[Sample], float]:
        # The request's own interval: it ended now, after its latency (a thread
        # that starts late under load would stretch an interval timed from here).
        samples = sampler.sample(query, 4)
        stopped = time.monotonic()
        return stopped - samples[0].latency, samples, stopped

    with cf.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(timed, queries))
    lengths = set()
    for query, (_, samples, _) in zip(queries, results, strict=True):
        assert len(samples) == 4
        assert sum(s.prompt_tokens for s in samples) == len(tokenizer(query.completion).input_ids)
        assert all(1 <= s.completion_tokens <= MAX_TOKENS for s in samples)
        assert all("e" not in s.text for s in samples)  # the stop string ended each one
        assert len({s.latency for s in samples}) == 1
        lengths.update(s.completion_tokens for s in samples)
    assert len(lengths) > 3, f"completions did not end at different lengths: {lengths}"
    everything = [s for _, samples, _ in results for s in samples]
    assert all(s.gpu_seconds == 0 for s in everything)
    # CPU-seconds add up to the cores x the time the engine was busy.
    busy = _union([(started, stopped) for started, _, stopped in results])
    charged = sum(s.cpu_seconds for s in everything)
    assert charged == pytest.approx(CPUS * busy, rel=0.05)


def test_a_request_alone_is_charged_its_latency(sampler):
    samples = sampler.sample(_query(), 4)
    assert sum(s.cpu_seconds for s in samples) == pytest.approx(CPUS * samples[0].latency,
                                                                rel=1e-6)


def test_chat_mode_renders_the_models_chat_template(sampler):
    # The same engine in chat mode: the sampler reads its mode per request.
    completion_config = sampler._config
    sampler._config = completion_config.model_copy(update={"mode": "chat"})
    try:
        samples = sampler.sample(_query(), 2)
    finally:
        sampler._config = completion_config
    assert len(samples) == 2
    chat = sampler._tokenizer.apply_chat_template(
        [dict(m) for m in _query().messages], tokenize=False, add_generation_prompt=True)
    assert chat.endswith("<|assistant|>\n")
    assert sum(s.prompt_tokens for s in samples) == len(sampler._tokenizer(chat).input_ids)
