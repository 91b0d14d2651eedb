"""The openai backend against a real OpenAI-compatible HTTP server on 127.0.0.1.

The server (tests/openai_server.py) answers from recorded completions and
misbehaves on request; these tests check what went over HTTP and what the
sampler made of it. Backoffs are set to milliseconds so retries are fast.
"""

from __future__ import annotations

import threading
import time

import pytest

from funsearch import prompt
from funsearch.config import SamplerConfig
from funsearch.samplers import make_sampler
from funsearch.samplers.backend import SamplerConfigError
from funsearch.samplers.base import SamplerError
from funsearch.samplers.openai_api import COMPLETION_STOP, OpenAISampler
from tests.openai_server import DATA, OpenAIServer, count_tokens, load_texts

PROGRAM = '''def select_next_node(current_node, destination_node, unvisited_nodes, distance_matrix):
    """Returns the next node to visit."""
    return unvisited_nodes[np.argmin(distance_matrix[current_node, unvisited_nodes])]
'''
FAST = {"backoff": "1ms", "backoff_max": "5ms"}


def _query(versions: int = 2) -> prompt.Query:
    return prompt.build_query("import numpy as np\n", "select_next_node", [PROGRAM] * versions)


def _sampler(server: OpenAIServer, **fields) -> OpenAISampler:
    fields.setdefault("settings", FAST)
    config = SamplerConfig(name=fields.pop("name", "local"), backend="openai",
                           base_url=server.url, **fields)
    sampler = make_sampler(config)
    assert isinstance(sampler, OpenAISampler)
    return sampler


@pytest.fixture
def server():
    completion = load_texts(DATA / "recorded_tsp_completion.jsonl")
    chat = load_texts(DATA / "recorded_tsp_chat.jsonl")
    with OpenAIServer(completion, chat) as running:
        yield running


@pytest.fixture
def completion_texts():
    return load_texts(DATA / "recorded_tsp_completion.jsonl")


def test_completion_mode_posts_the_program_to_continue(server, completion_texts):
    sampler = _sampler(server, model="coder-base", temperature=0.7, top_p=0.9, max_tokens=300)
    query = _query()
    samples = sampler.sample(query, 3)
    assert server.paths() == ["/v1/completions"]
    _, body, _ = server.requests[0]
    assert body["prompt"] == query.completion
    assert (body["model"], body["n"], body["temperature"], body["top_p"], body["max_tokens"]) == (
        "coder-base", 3, 0.7, 0.9, 300)
    assert body["stop"] == list(COMPLETION_STOP)
    # The server lists choices in reverse; the sampler restores their order.
    assert [sample.text for sample in samples] == completion_texts[:3]
    assert {sample.sampler for sample in samples} == {"local"}


def test_chat_mode_posts_messages_and_returns_whole_replies(server):
    sampler = _sampler(server, model="coder-instruct", mode="chat")
    query = _query()
    samples = sampler.sample(query, 2)
    assert server.paths() == ["/v1/chat/completions"]
    _, body, _ = server.requests[0]
    assert body["messages"] == [dict(message) for message in query.messages]
    assert "stop" not in body
    chat = load_texts(DATA / "recorded_tsp_chat.jsonl")
    assert [sample.text for sample in samples] == chat[:2]
    assert samples[0].text.startswith("Here's an improved version")  # prose and fence kept


def test_token_usage_is_recorded_and_split_over_the_samples(server):
    sampler = _sampler(server, mode="chat", settings={
        **FAST, "price_per_1k_prompt_tokens": 0.5, "price_per_1k_completion_tokens": 1.5})
    query = _query()
    samples = sampler.sample(query, 3)
    prompt_tokens = count_tokens("\n".join(m["content"] for m in query.messages))
    assert sum(sample.prompt_tokens for sample in samples) == prompt_tokens
    assert sum(sample.completion_tokens for sample in samples) == sum(
        count_tokens(sample.text) for sample in samples)
    assert max(s.prompt_tokens for s in samples) - min(s.prompt_tokens for s in samples) <= 1
    total_usd = sum(sample.usd for sample in samples)
    expected = (prompt_tokens * 0.5 + server.usage["completion_tokens"] * 1.5) / 1000
    assert total_usd == pytest.approx(expected)
    assert all(sample.latency > 0 for sample in samples)
    assert all(sample.gpu_seconds == 0 for sample in samples)  # no GPUs configured


def test_gpu_seconds_count_the_servers_gpus(server):
    sampler = _sampler(server, settings={**FAST, "server_gpus": 2})
    samples = sampler.sample(_query(), 2)
    assert samples[0].gpu_seconds > 0
    assert samples[0].gpu_seconds == samples[1].gpu_seconds
    # Alone at the server, a request is charged GPUs x its time, at most its latency.
    assert sum(sample.gpu_seconds for sample in samples) <= 2 * samples[0].latency
    assert samples[0].usd == 0  # priced by the sampler's price_per_gpu_hour downstream


@pytest.mark.parametrize("fault, kind", [
    ("429", "rate_limited"), ("500", "server_error"), ("503", "server_error"),
    ("malformed", "malformed"), ("no_choices", "malformed"), ("html", "malformed")])
def test_a_failed_attempt_is_retried_and_counted(server, completion_texts, fault, kind):
    sampler = _sampler(server)
    server.fail(fault)
    samples = sampler.sample(_query(), 2)
    assert [sample.text for sample in samples] == completion_texts[:2]
    assert len(server.requests) == 2
    assert sampler.counters() == {"requests": 2, "retries": 1, kind: 1}


def test_a_slow_reply_times_out_and_is_retried(server, completion_texts):
    sampler = _sampler(server, settings={**FAST, "timeout": "300ms"})
    server.slow_seconds = 10
    server.fail("slow")
    samples = sampler.sample(_query(), 1)
    assert [sample.text for sample in samples] == completion_texts[:1]
    assert sampler.counters()["timeout"] == 1
    assert len(server.requests) == 2


def test_several_failures_in_a_row_are_retried_with_backoff(server):
    sampler = _sampler(server, settings={**FAST, "retries": 4})
    server.fail("429", "500", "malformed", "429")
    assert len(sampler.sample(_query(), 1)) == 1
    counters = sampler.counters()
    assert (counters["rate_limited"], counters["server_error"], counters["malformed"]) == (2, 1, 1)
    assert counters["requests"] == 5


def test_retries_are_bounded_then_sampler_error_names_the_reason(server):
    sampler = _sampler(server, name="tiny", settings={**FAST, "retries": 2})
    server.fail("500", "429", "malformed", "500")
    with pytest.raises(SamplerError) as error:
        sampler.sample(_query(), 1)
    message = str(error.value)
    assert "'tiny'" in message and "3 attempts" in message and "not JSON" in message
    assert len(server.requests) == 3
    # The sampler stopped asking: the fourth fault meets the next request.
    assert len(sampler.sample(_query(), 1)) == 1
    assert len(server.requests) == 5


def test_a_refused_request_is_not_retried(server):
    sampler = _sampler(server)
    server.fail("400")
    with pytest.raises(SamplerError, match=r"refused the request \(400\): injected 400"):
        sampler.sample(_query(), 1)
    assert len(server.requests) == 1


def test_an_unreachable_server_is_a_connection_failure():
    server = OpenAIServer(["    return 0\n"])  # bound, then closed: nothing listens there
    url = server.url
    server._httpd.server_close()
    config = SamplerConfig(name="gone", backend="openai", base_url=url, model="m",
                           settings={**FAST, "retries": 1})
    sampler = make_sampler(config)
    with pytest.raises(SamplerError, match="connection failed"):
        sampler.sample(_query(), 1)
    assert sampler.counters()["connection"] == 2


def test_concurrency_limit_is_honoured_across_threads(server):
    sampler = _sampler(server, max_concurrency=2)
    server.hold()
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(len(sampler.sample(_query(), 1))))
               for _ in range(6)]
    for thread in threads:
        thread.start()
    _wait_for(lambda: server.in_flight == 2)
    time.sleep(0.3)  # room for a third request to arrive if the limit leaked
    assert server.in_flight == 2
    server.release()
    for thread in threads:
        thread.join(timeout=10)
    assert results == [1] * 6
    assert server.max_in_flight == 2
    assert len(server.requests) == 6


def test_a_server_that_ignores_n_is_asked_again(server, completion_texts):
    server.max_choices = 1  # like servers without `n` support
    sampler = _sampler(server)
    samples = sampler.sample(_query(), 3)
    assert [sample.text for sample in samples] == completion_texts[:3]
    assert [body["n"] for _, body, _ in server.requests] == [3, 2, 1]


def test_one_request_per_sample_when_configured(server):
    sampler = _sampler(server, settings={**FAST, "one_request_per_sample": True})
    assert len(sampler.sample(_query(), 3)) == 3
    assert [body["n"] for _, body, _ in server.requests] == [1, 1, 1]


def test_the_api_key_comes_from_the_named_environment_variable(server, monkeypatch):
    monkeypatch.setenv("FUNSEARCH_TEST_KEY", "sk-test-123")
    sampler = _sampler(server, api_key_env="FUNSEARCH_TEST_KEY")
    sampler.sample(_query(), 1)
    headers = {key.lower(): value for key, value in server.requests[0][2].items()}
    assert headers["authorization"] == "Bearer sk-test-123"


def test_a_missing_key_variable_is_an_error_naming_the_config_key(server, monkeypatch):
    monkeypatch.delenv("FUNSEARCH_MISSING_KEY", raising=False)
    with pytest.raises(SamplerConfigError,
                       match=r"samplers\.hosted\.api_key_env.*'FUNSEARCH_MISSING_KEY' is not set"):
        _sampler(server, name="hosted", api_key_env="FUNSEARCH_MISSING_KEY")


def test_without_a_key_variable_a_placeholder_key_is_sent(server):
    _sampler(server).sample(_query(), 1)
    headers = {key.lower(): value for key, value in server.requests[0][2].items()}
    assert headers["authorization"] == "Bearer EMPTY"


def test_an_empty_model_is_the_first_one_the_server_lists(server):
    sampler = _sampler(server, model="")
    sampler.sample(_query(), 1)
    assert server.requests[0][1]["model"] == server.model


def test_settings_errors_name_the_key():
    base = {"name": "remote", "backend": "openai", "base_url": "http://127.0.0.1:9/v1"}
    with pytest.raises(SamplerConfigError, match=r"unknown key 'samplers\.remote\.settings\.retry'"):
        make_sampler(SamplerConfig(**base, settings={"retry": 3}))
    with pytest.raises(SamplerConfigError, match=r"key 'samplers\.remote\.settings\.timeout'"):
        make_sampler(SamplerConfig(**base, settings={"timeout": "soon"}))


def test_extra_body_fields_reach_the_server(server):
    sampler = _sampler(server, settings={**FAST, "extra_body": {"top_k": 20}, "stop": ["\n\n\n"]})
    sampler.sample(_query(), 1)
    body = server.requests[0][1]
    assert body["top_k"] == 20 and body["stop"] == ["\n\n\n"]


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)
