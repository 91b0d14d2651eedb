"""A small OpenAI-compatible HTTP server that answers from recorded completions.

Tests start it on 127.0.0.1 (port 0) in a thread, point the openai backend at
it, and check what really went over HTTP. It serves POST /v1/completions and
/v1/chat/completions (recorded texts in a fixed cyclic order, `n` choices per
request, token usage counted) and GET /v1/models, and it can misbehave on
request: faults queued with `fail()` are used one per request, in order.

Faults: "429" (with Retry-After), "500", "503", "400", "401", "slow" (reply
after `slow_seconds`, for client timeouts), "malformed" (truncated JSON with a
200 status), "no_choices" (a JSON error object with a 200 status), "html" (a
proxy's error page with a 200 status).

Run it by hand for an end-to-end search without a model:

    python -m tests.openai_server --port 8000 \
        --chat tests/data/recorded_tsp_chat.jsonl \
        --completion tests/data/recorded_tsp_completion.jsonl
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
FAULTS = ("429", "500", "503", "400", "401", "slow", "malformed", "no_choices", "html")


def count_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: words and punctuation marks."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def load_texts(path: str | Path) -> list[str]:
    """The `text` of every line of a recording (replay JSONL format)."""
    lines = Path(path).read_text().splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


class OpenAIServer:
    """The server and what it saw; use as a context manager or start()/stop().

    Attributes:
      requests: (path, JSON body, headers) of every POST, in arrival order.
      max_in_flight: the most completion requests handled at the same time.
      max_choices: at most this many choices per reply (None: as many as `n`),
        like servers that ignore `n`.
      slow_seconds: how long a "slow" fault waits before replying.
    """

    def __init__(self, completion: Iterable[str] = (), chat: Iterable[str] = (),
                 model: str = "recorded-model", port: int = 0):
        self.model = model
        self._texts = {"completion": list(completion), "chat": list(chat)}
        self._next = collections.Counter[str]()
        self._faults: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()
        self._gate = threading.Event()
        self._gate.set()
        self._stopping = threading.Event()
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.max_choices: int | None = None
        self.slow_seconds = 30.0
        self.usage = collections.Counter[str]()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The base_url for an OpenAI client."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> OpenAIServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        daemon=True, name="openai-test-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._gate.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def fail(self, *faults: str) -> None:
        """Queues faults: the next len(faults) requests misbehave, in this order."""
        for fault in faults:
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._faults.extend(faults)

    def hold(self) -> None:
        """Requests wait (counted as in flight) until release()."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]

    # What the handler calls, under the server's lock where state is shared.

    def _arrive(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> str | None:
        with self._lock:
            self.requests.append((path, body, headers))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self._faults.popleft() if self._faults else None

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _reply(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """A completion reply with recorded texts and counted usage."""
        n = int(body.get("n") or 1)
        if self.max_choices is not None:
            n = min(n, self.max_choices)
        with self._lock:
            texts = self._texts[kind]
            if not texts:
                raise LookupError(f"no recorded {kind} texts")
            start = self._next[kind]
            self._next[kind] += n
            chosen = [texts[(start + index) % len(texts)] for index in range(n)]
        if kind == "chat":
            prompt = "\n".join(str(message.get("content", "")) for message in body["messages"])
            choices = [{"index": i, "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop"} for i, text in enumerate(chosen)]
            kind_name = "chat.completion"
        else:
            prompt = str(body.get("prompt", ""))
            choices = [{"index": i, "text": text, "finish_reason": "stop", "logprobs": None}
                       for i, text in enumerate(chosen)]
            kind_name = "text_completion"
        prompt_tokens = count_tokens(prompt)
        completion_tokens = sum(count_tokens(text) for text in chosen)
        with self._lock:
            self.usage["prompt_tokens"] += prompt_tokens
            self.usage["completion_tokens"] += completion_tokens
        # Choices in reverse order: clients must not rely on the order of the list.
        return {"id": f"cmpl-{start}", "object": kind_name, "created": int(time.time()),
                "model": self.model, "choices": choices[::-1],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}


def _handler(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [
                    {"id": server.model, "object": "model", "owned_by": "tests"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            kinds = {"/v1/completions": "completion", "/v1/chat/completions": "chat"}
            kind = kinds.get(self.path)
            if kind is None:
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(400, {"error": {"message": "request body is not JSON"}})
                return
            fault = server._arrive(self.path, body, dict(self.headers.items()))
            left = False
            try:
                server._gate.wait(timeout=60)
                if fault == "slow":
                    server._stopping.wait(server.slow_seconds)
                # Leave before answering: once a client has read the reply, the
                # request no longer counts as in flight here either.
                if fault in (None, "slow"):
                    try:
                        payload = server._reply(kind, body)
                    except LookupError as error:
                        server._leave()
                        left = True
                        self._send(500, {"error": {"message": str(error)}})
                        return
                    server._leave()
                    left = True
                    self._send(200, payload)
                else:
                    server._leave()
                    left = True
                    self._fault(fault)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout) before the reply
            finally:
                if not left:
                    server._leave()

        def _fault(self, fault: str) -> None:
            if fault == "429":
                self._send(429, {"error": {"message": "Rate limit reached", "type": "requests"}},
                           {"Retry-After": "0"})
            elif fault in ("500", "503", "400", "401"):
                self._send(int(fault), {"error": {"message": f"injected {fault}"}})
            elif fault == "malformed":
                self._send_raw(200, b'{"id": "cmpl-x", "choices": [{"index": 0, "text": "    re',
                               "application/json")
            elif fault == "no_choices":
                self._send(200, {"object": "error", "message": "model overloaded", "code": 503})
            elif fault == "html":
                self._send_raw(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")

        def _send(self, status: int, payload: dict[str, Any],
                  headers: dict[str, str] | None = None) -> None:
            self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

        def _send_raw(self, status: int, data: bytes, content_type: str,
                      headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--chat", default=str(DATA / "recorded_tsp_chat.jsonl"))
    parser.add_argument("--completion", default=str(DATA / "recorded_tsp_completion.jsonl"))
    arguments = parser.parse_args(argv)
    server = OpenAIServer(load_texts(arguments.completion), load_texts(arguments.chat),
                          port=arguments.port)
    print(f"serving recorded completions at {server.url} (Ctrl-C stops)", flush=True)
    with server:
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
