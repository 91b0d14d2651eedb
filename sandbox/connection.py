"""The host's end of one sandbox worker: its process and its protocol (see
worker.py), down to the Outcome an answer means.

The worker is our code, but it runs the spec and sits next to untrusted
children, so its answers are read defensively: sizes are bounded, anything
unreadable counts as a lost worker, and a worker that does not answer by the
deadline is hung. Either way the pool kills it and starts another.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import signal
import subprocess
import threading
import time
from typing import Any

from sandbox import isolation

STATUSES = (
    "ok",
    "timeout",
    "memory",
    "crashed",
    "error",
    "invalid_output",
    "forbidden",
    "output_limit",
)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one evaluation came to.

    Attributes:
      status: "ok" | "timeout" | "memory" | "crashed" (a signal, or exiting
        without a result) | "error" (an exception) | "invalid_output" (not
        JSON, too big, wrong shape) | "forbidden" (a blocked system call) |
        "output_limit" (printed past the cap: stopped then, the detail holds
        the start of what it printed).
      outputs: one JSON value per requested input id, in order (status ok).
      detail: e.g. "ZeroDivisionError: division by zero [input 3]",
        "killed by SIGSEGV".
      duration: wall seconds of the evaluation.
      stdout, stderr: what the program printed, capped.
    """

    status: str
    outputs: list[Any] | None
    detail: str = ""
    duration: float = 0.0
    stdout: str = ""
    stderr: str = ""


class WorkerLost(Exception):
    """The worker died or broke the protocol."""


class WorkerHung(Exception):
    """The worker did not answer in time."""


class WorkerProcess:
    """One worker process and the host's end of its protocol."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=isolation.clean_environment(),
            start_new_session=True,  # its own group: killed as a whole
            cwd="/",
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._in = self.process.stdin
        self._out = self.process.stdout.fileno()
        self._buffer = bytearray()
        self._lock = threading.Lock()
        self.warm: set[str] = set()  # input sets this worker has built
        self.hello: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, message: dict[str, Any]) -> None:
        """One request; the worker takes it when it is done with those before it."""
        try:
            self._in.write(json.dumps(message).encode() + b"\n")
            self._in.flush()
        except (BrokenPipeError, OSError, ValueError) as error:
            raise WorkerLost(f"could not send the request: {error}") from None

    def receive(self, deadline: float, max_bytes: int) -> tuple[dict[str, Any], bytes]:
        """One answer: a header line and its payload, each at most `max_bytes`."""
        line = self._read(deadline, max_bytes, line=True)
        try:
            header = json.loads(line)
            size = int(header.get("payload", 0))
        except (ValueError, TypeError, AttributeError) as error:
            raise WorkerLost(f"unreadable answer: {error}") from None
        if not 0 <= size <= max_bytes:
            raise WorkerLost(f"an answer of {size} bytes")
        return header, self._read(deadline, max_bytes, size=size)

    def _read(self, deadline: float, max_bytes: int, line: bool = False, size: int = 0) -> bytes:
        while True:
            if line and (end := self._buffer.find(b"\n")) >= 0:
                data = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return data
            if line and len(self._buffer) > max_bytes:
                raise WorkerLost("an answer header without end")
            if not line and len(self._buffer) >= size:
                data = bytes(self._buffer[:size])
                del self._buffer[:size]
                return data
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerHung()
            readable, _, _ = select.select([self._out], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(self._out, 1 << 20)
            if not chunk:
                raise WorkerLost(f"the worker exited ({self._exit_status()})")
            self._buffer += chunk

    def _exit_status(self) -> str:
        try:
            code = self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "still running"
        if code >= 0:
            return f"exit status {code}"
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"

    def kill(self) -> None:
        with self._lock:
            if self.process.returncode is not None:
                return
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.process.kill()
            except OSError:
                pass

    def close(self) -> None:
        self.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass


def outcome(header: dict[str, Any], payload: bytes) -> Outcome:
    """The worker's answer as an Outcome; the outputs are parsed here, as data only."""
    status = header.get("status")
    fields = {
        "detail": str(header.get("detail", "")),
        "duration": float(header.get("duration", 0.0)),
        "stdout": str(header.get("stdout", "")),
        "stderr": str(header.get("stderr", "")),
    }
    if status not in STATUSES:
        return Outcome("error", None, **{**fields, "detail": f"unknown status {status!r}"})
    if status != "ok":
        return Outcome(status, None, **fields)
    try:
        outputs = json.loads(payload)
    except (ValueError, RecursionError) as error:
        return Outcome("invalid_output", None, **{**fields, "detail": f"not JSON: {error}"})
    expected = header.get("inputs")
    if not isinstance(outputs, list) or len(outputs) != expected:
        detail = f"expected a list of {expected} outputs"
        return Outcome("invalid_output", None, **{**fields, "detail": detail})
    return Outcome("ok", outputs, **fields)
