"""Any OpenAI-compatible server as a sampler: vllm serve, llama.cpp, Ollama, hosted APIs.

The official `openai` client does the HTTP; the retries are ours (the client
runs with max_retries=0) so that every failed attempt is counted by kind and
the backoff is set per experiment. A response body is parsed here rather than
by the client, because servers do send truncated or non-JSON bodies with a
200 status, and such a reply must be a counted retry, never a crash.
"""

from __future__ import annotations

import collections
import email.utils
import json
import logging
import os
import random
import threading
import time
from typing import Any

import openai
from pydantic import Field

from funsearch.config import Duration
from funsearch.samplers.backend import (
    COMPLETION_STOP,
    BusyShare,
    SamplerConfigError,
    Settings,
    parse_settings,
    split,
)
from funsearch.samplers.base import Sample, SamplerError

log = logging.getLogger(__name__)

# Used when no api_key_env is configured: local servers ignore the key, but
# the client insists on one.
PLACEHOLDER_KEY = "EMPTY"

# Failure kinds, as counted in `counters()`.
RATE_LIMITED, SERVER_ERROR, TIMEOUT, CONNECTION, MALFORMED = (
    "rate_limited", "server_error", "timeout", "connection", "malformed")


class OpenAISettings(Settings):
    """`settings` of the openai backend.

    timeout: seconds one HTTP request may take before it is abandoned and retried.
    retries: further attempts after a failed one (429, 5xx, timeout, connection
      error, malformed reply); then the request fails with SamplerError.
    backoff, backoff_max: the delay before retry k is backoff * 2**k, at most
      backoff_max, times a random factor in [0.5, 1] so that threads that failed
      together do not retry together; a server's Retry-After is honoured up
      to backoff_max.
    stop: stop sequences; by default the next top-level statement in
      completion mode and none in chat mode.
    one_request_per_sample: ask for one choice per request, for servers that
      ignore `n` (the sampler also tops up when a server returns fewer).
    extra_body: further request fields for the server (vLLM's top_k,
      repetition_penalty, ...).
    server_gpus: GPUs of the server (a `vllm serve` of your own), so that
      samples carry GPU-seconds: server_gpus x their share of the time this
      sampler had requests at the server. Not gpus_per_replica, which reserves
      GPUs for the sampler itself (an API client needs none).
    price_per_1k_prompt_tokens, price_per_1k_completion_tokens: dollars, for
      hosted APIs that price the two differently; when set they make each
      sample's `usd` (else the sampler's price_per_1k_tokens and
      price_per_gpu_hour apply).
    """

    timeout: Duration = Field(120.0, gt=0)
    retries: int = Field(6, ge=0)
    backoff: Duration = Field(1.0, ge=0)
    backoff_max: Duration = Field(60.0, ge=0)
    stop: list[str] | None = None
    one_request_per_sample: bool = False
    extra_body: dict[str, Any] = Field(default_factory=dict)
    server_gpus: float = Field(0.0, ge=0)
    price_per_1k_prompt_tokens: float = Field(0.0, ge=0)
    price_per_1k_completion_tokens: float = Field(0.0, ge=0)


class _Failure(Exception):
    """One failed attempt that is worth retrying."""

    def __init__(self, kind: str, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.kind = kind
        self.retry_after = retry_after


class _Reply:
    """The texts of one successful request and what it cost."""

    def __init__(self, texts: list[str], prompt_tokens: int, completion_tokens: int):
        self.texts = texts
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


class OpenAISampler:
    """Samples from an OpenAI-compatible server, in completion or chat mode.

    Thread-safe: the engine calls sample() from several threads, and at most
    `max_concurrency` requests of this sampler are at the server at once.
    """

    def __init__(self, config: Any):
        self.name: str = config.name
        self._config = config
        self._settings = parse_settings(OpenAISettings, config)
        self._client = openai.OpenAI(
            base_url=config.base_url or None, api_key=_api_key(config),
            timeout=self._settings.timeout, max_retries=0)
        self._model: str | None = config.model or None
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        self._busy = BusyShare()
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()
        self._rng = random.Random()
        self._closed = threading.Event()

    @property
    def url(self) -> str:
        return str(self._client.base_url).rstrip("/")

    def counters(self) -> dict[str, int]:
        """Requests, retries and failed attempts by kind, since the start."""
        with self._lock:
            return dict(self._counts)

    def sample(self, query: Any, n: int) -> list[Sample]:
        """n samples for the query; the text is the raw completion or chat reply.

        A sample's latency runs from this call to the reply that carried it,
        waiting for a free slot and retries included: what the search waited.
        """
        started = time.monotonic()
        model = self._resolve_model()
        samples: list[Sample] = []
        while len(samples) < n:
            want = 1 if self._settings.one_request_per_sample else n - len(samples)
            reply, busy = self._request(query, model, want)
            texts = reply.texts[:want]
            latency = time.monotonic() - started
            samples.extend(self._samples(texts, reply, busy, latency))
        return samples

    def close(self) -> None:
        """Stops retrying (a waiting retry raises SamplerError) and closes the client."""
        self._closed.set()
        self._client.close()

    def _samples(self, texts: list[str], reply: _Reply, busy: float,
                 latency: float) -> list[Sample]:
        count = len(texts)
        prompt_tokens = split(reply.prompt_tokens, count)
        completion_tokens = split(reply.completion_tokens, count)
        gpu_seconds = self._settings.server_gpus * busy / count
        settings = self._settings
        samples = []
        for text, prompt, completion in zip(texts, prompt_tokens, completion_tokens, strict=True):
            usd = (prompt * settings.price_per_1k_prompt_tokens
                   + completion * settings.price_per_1k_completion_tokens) / 1000
            samples.append(Sample(text, self.name, latency, prompt, completion, gpu_seconds, usd))
        return samples

    def _request(self, query: Any, model: str, want: int) -> tuple[_Reply, float]:
        """One request, retried; returns the reply and the busy time it took."""
        attempts = self._settings.retries + 1
        busy = 0.0
        for attempt in range(attempts):
            if self._closed.is_set():
                raise SamplerError(f"sampler '{self.name}': closed")
            self._count("requests")
            try:
                with self._slots:
                    token = self._busy.begin()
                    try:
                        body = self._post(query, model, want)
                    finally:
                        busy += self._busy.end(token)[1]
                return self._parse(body), busy
            except _Failure as failure:
                self._count(failure.kind)
                if attempt + 1 == attempts:
                    raise SamplerError(
                        f"sampler '{self.name}': gave up after {attempts} attempts at "
                        f"{self.url}: last failure: {failure}") from None
                delay = self._delay(attempt, failure.retry_after)
                log.warning("sampler '%s': %s; retry %d/%d in %.2f s", self.name, failure,
                            attempt + 1, attempts - 1, delay)
                self._count("retries")
                if self._closed.wait(delay):
                    raise SamplerError(f"sampler '{self.name}': closed") from None
        raise AssertionError("unreachable")

    def _post(self, query: Any, model: str, want: int) -> str:
        """The body of the server's reply, or _Failure for what may pass."""
        config, settings = self._config, self._settings
        arguments: dict[str, Any] = dict(
            model=model, n=want, temperature=config.temperature, top_p=config.top_p,
            max_tokens=config.max_tokens)
        stop = settings.stop
        if stop is None and config.mode == "completion":
            stop = list(COMPLETION_STOP)
        if stop:
            arguments["stop"] = stop
        if settings.extra_body:
            arguments["extra_body"] = settings.extra_body
        try:
            if config.mode == "chat":
                raw = self._client.chat.completions.with_raw_response.create(
                    messages=[dict(message) for message in query.messages], **arguments)
            else:
                raw = self._client.completions.with_raw_response.create(
                    prompt=query.completion, **arguments)
            return raw.http_response.text
        except openai.RateLimitError as error:
            raise _Failure(RATE_LIMITED, f"rate limited (429): {_message(error)}",
                           _retry_after(error.response.headers)) from None
        except openai.APITimeoutError:
            raise _Failure(TIMEOUT, f"no reply within {settings.timeout:g} s") from None
        except openai.APIConnectionError as error:
            raise _Failure(CONNECTION, f"connection failed: {error.__cause__ or error}") from None
        except openai.APIStatusError as error:
            status = error.status_code
            if status >= 500 or status in (408, 409):
                raise _Failure(SERVER_ERROR, f"server error ({status}): {_message(error)}",
                               _retry_after(error.response.headers)) from None
            raise SamplerError(
                f"sampler '{self.name}': {self.url} refused the request ({status}): "
                f"{_message(error)}" + _hint(status, config)) from None
        except (UnicodeDecodeError, ValueError) as error:
            raise _Failure(MALFORMED, f"unreadable reply: {error}") from None

    def _parse(self, body: str) -> _Reply:
        """Texts and token counts from a reply body; _Failure if it is not one."""
        try:
            data = json.loads(body)
        except ValueError:
            raise _Failure(MALFORMED, f"reply is not JSON: {body[:80]!r}") from None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices:
            raise _Failure(MALFORMED, f"reply has no choices: {body[:80]!r}")
        texts = []
        for choice in sorted(choices, key=_index):
            text = _choice_text(choice, self._config.mode)
            if text is None:
                raise _Failure(MALFORMED, f"reply has a choice without text: {choice!r:.80}")
            texts.append(text)
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return _Reply(texts, _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")))

    def _resolve_model(self) -> str:
        """The configured model, else the first model the server lists."""
        with self._lock:
            if self._model:
                return self._model
            try:
                listed = [model.id for model in self._client.models.list()]
            except openai.OpenAIError as error:
                raise SamplerError(
                    f"sampler '{self.name}': samplers.{self.name}.model is empty and "
                    f"{self.url}/models could not be listed: {error}") from None
            if not listed:
                raise SamplerError(f"sampler '{self.name}': samplers.{self.name}.model is empty "
                                   f"and {self.url}/models lists no model")
            self._model = listed[0]
            return self._model

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        settings = self._settings
        delay = min(settings.backoff_max, settings.backoff * 2**attempt)
        with self._lock:
            delay *= 0.5 + 0.5 * self._rng.random()
        if retry_after is not None:
            delay = max(delay, min(retry_after, settings.backoff_max))
        return delay

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1


def _api_key(config: Any) -> str:
    if not config.api_key_env:
        return PLACEHOLDER_KEY
    key = os.environ.get(config.api_key_env)
    if not key:
        raise SamplerConfigError(
            f"samplers.{config.name}.api_key_env: the environment variable "
            f"'{config.api_key_env}' is not set (export it, or remove api_key_env for a "
            "local server that needs no key)")
    return key


def _choice_text(choice: Any, mode: str) -> str | None:
    """A choice's text; None when the choice has none of the expected shape.

    A chat reply whose content is null (a model that only "thought", or a
    refusal) is an empty text: a rejection later, not a broken reply."""
    if not isinstance(choice, dict):
        return None
    if mode == "chat":
        message = choice.get("message")
        if not isinstance(message, dict):
            return None
        content = message.get("content")
        return "" if content is None else content if isinstance(content, str) else None
    text = choice.get("text")
    return text if isinstance(text, str) else None


def _index(choice: Any) -> int:
    index = choice.get("index") if isinstance(choice, dict) else None
    return index if isinstance(index, int) else 0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(error.message)[:300]


def _hint(status: int, config: Any) -> str:
    if status in (401, 403):
        return (f" (check the key in ${config.api_key_env})" if config.api_key_env
                else f" (set samplers.{config.name}.api_key_env to the variable holding the key)")
    if status == 404:
        return f" (is samplers.{config.name}.model '{config.model}' served at this base_url?)"
    return ""


def _retry_after(headers: Any) -> float | None:
    """Seconds a server asked us to wait (Retry-After: seconds or an HTTP date)."""
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
