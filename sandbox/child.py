"""One evaluation as the worker sees it: a child forked ahead, started, read, judged.

The child is forked *ahead* of its evaluation: it jails itself at once and
then waits for its request on a pipe, so the fork, the jail and the exit of
the previous child are off the path from request to result. A request is the
program, the evolved function's name and the input ids; the instances are
already in the child's memory (the worker built them before the fork). What
runs in the child is in inside.py.

The child reports on its own result pipe (fd 3), one frame (see inside.py).
The result counts once the pipe is closed: a frame whose length does not match
was cut off (the child died while writing it) and does not count, and a frame
followed by more -- a program writing frames of its own to the pipe -- is
invalid output, whichever came first.

Imported by worker.py as a sibling module: standard library only.
"""

from __future__ import annotations

import json
import math
import os
import random
import select
import signal
import sys
import time
from typing import Any

import forking
import inside
import isolation
from errors import DETAIL_CHARS
from streams import LENGTH, Streams, overfull, whole

FORBIDDEN = "blocked system call (new process, exec, socket, signal or ptrace)"


class Child:
    """A forked child, waiting for its evaluation (or running it)."""

    def __init__(self, runner: Any, jail: isolation.Jail, lean: bool = False) -> None:
        # pipes: request (to the child), result, stdout, stderr (from it)
        pipes = [forking.pipe() for _ in range(4)]
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        self.pid = forking.lean_fork() if lean else os.fork()
        if self.pid == 0:  # never returns
            if not lean:  # os.fork reseeded `random` from the OS: back to the worker's seed
                random.seed(0)
            inside.child_main(runner, jail, pipes, parent)
        try:
            os.setpgid(self.pid, self.pid)  # also done by the child; whichever runs first
        except OSError:
            pass
        os.close(pipes[0][0])
        for _, write_end in pipes[1:]:
            os.close(write_end)
        self.request_fd = pipes[0][1]
        self.readers = [read_end for read_end, _ in pipes[1:]]
        self.pidfd = forking.pidfd(self.pid)
        self.status: int | None = None
        self.started = 0.0

    def alive(self) -> bool:
        if self.pidfd is not None:
            return not select.select([self.pidfd], [], [], 0)[0]
        return forking.reap(self.pid, block=False) is None

    def start(self, request: dict[str, Any]) -> None:
        """Hands the request to the child: the evaluation's clock starts."""
        self.started = time.monotonic()
        try:
            forking.write_all(self.request_fd, json.dumps(request).encode())
        except OSError:
            pass  # the child is gone; its status says how
        os.close(self.request_fd)
        self.request_fd = -1

    def result(self, limits: dict[str, Any]) -> tuple[dict, bytes]:
        """Waits for the evaluation (at most until its deadline) and judges it."""
        return self._collect(limits, self.started)

    def kill(self) -> None:
        """Ends the child and anything it left running; its exit is reaped later
        (finish), so its teardown overlaps the next request."""
        forking.kill(self.pid)

    def finish(self) -> None:
        """Kills the child (and anything it left running) and reaps it."""
        forking.kill(self.pid)
        if self.status is None:
            self.status = forking.reap(self.pid, block=True)
        for fd in self.readers + [self.request_fd] + [self.pidfd or -1]:
            if fd >= 0:
                os.close(fd)
        self.readers, self.request_fd, self.pidfd = [], -1, None

    def _collect(self, limits: dict[str, Any], start: float) -> tuple[dict, bytes]:
        """Drains the pipes under the deadline and the caps until a whole result
        is in, the child has ended, or it has printed past the output cap."""
        streams = Streams(self.readers, limits)
        deadline = start + limits["timeout"]
        poller = select.poll()
        for fd in streams.open:
            poller.register(fd, select.POLLIN)
        if self.pidfd is not None:
            poller.register(self.pidfd, select.POLLIN)
        verdict = None
        while verdict is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                verdict = "timeout"
                break
            wait_ms = math.ceil(remaining * 1000)
            if self.pidfd is None and not streams.open:
                wait_ms = min(wait_ms, 5)  # no pidfd: look again shortly
            for fd, _ in poller.poll(wait_ms):
                if fd == self.pidfd:
                    poller.unregister(fd)
                    self.status = forking.reap(self.pid, block=True)
                elif fd in streams.open and not streams.take(fd):
                    poller.unregister(fd)
            verdict = self._verdict(streams)
        if verdict == "done" and streams.result_whole():
            # The program returned: take what it printed so far; a thread it
            # left behind is killed with it, unread.
            streams.drain()
        return self._conclude(verdict, streams, time.monotonic() - start, limits)

    def _verdict(self, streams: Streams) -> str | None:
        """Whether to stop reading now, and why; None to read on."""
        if streams.result_too_big():
            return "too_big"
        if streams.flooded() is not None:
            return "output_limit"  # stopped now, not read and dropped until the deadline
        if streams.result_ended() and streams.result_whole():
            return "done"
        if self.status is not None and not streams.open:
            return "done"
        if self.pidfd is None and self.status is None and not streams.open:
            self.status = forking.reap(self.pid, block=False)
        return None

    def _conclude(
        self, verdict: str, streams: Streams, duration: float, limits: dict[str, Any]
    ) -> tuple[dict, bytes]:
        printed = streams.printed()
        flood = streams.flooded()
        if verdict == "timeout":
            detail = f"exceeded the {limits['timeout']:g} s wall-clock limit"
            return _header("timeout", detail, duration, *printed), b""
        if verdict == "too_big":
            detail = f"result larger than the limit of {limits['result_bytes']} bytes"
            return _header("invalid_output", detail, duration, *printed), b""
        if flood is not None:  # also when it returned but had printed past the cap
            return _header("output_limit", streams.flood_detail(flood), duration, *printed), b""
        return _judge(self.status, streams.result, duration, printed, limits)


def _judge(status: int | None, result: bytes, duration: float, printed: list[str], limits):
    if whole(result):
        tag, body = result[:1], result[1 + LENGTH :]
        if tag == b"O":
            return _header("ok", "", duration, *printed, payload=len(body)), body
        if tag == b"P" and body.isdigit():  # a split program's process ended (program.py)
            return _ended(int(body), duration, printed, limits)
        kind = {b"E": "error", b"M": "memory"}.get(tag, "invalid_output")
        detail = body[: DETAIL_CHARS * 4].decode("utf-8", errors="replace")[:DETAIL_CHARS]
        return _header(kind, detail, duration, *printed), b""
    if overfull(result):
        detail = "more than one result on the result pipe (the program wrote one of its own)"
        return _header("invalid_output", detail, duration, *printed), b""
    assert status is not None
    return _ended(status, duration, printed, limits)


def _ended(status: int, duration: float, printed: list[str], limits: dict[str, Any]):
    """A process that ended without a result, judged by its wait status."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number == signal.SIGSYS:
            return _header("forbidden", FORBIDDEN, duration, *printed), b""
        if number == signal.SIGXCPU:
            detail = f"exceeded the {limits['cpu_seconds']:g} s CPU time limit"
            return _header("timeout", detail, duration, *printed), b""
        detail = f"killed by {_signal_name(number)}"
        if number == signal.SIGKILL:  # not by the worker: its kills are timeouts
            detail += " (past the hard CPU time limit, or the system ran out of memory)"
        return _header("crashed", detail, duration, *printed), b""
    detail = f"exited with status {os.WEXITSTATUS(status)} before returning a result"
    return _header("crashed", detail, duration, *printed), b""


# --- helpers ----------------------------------------------------------------------


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _header(status: str, detail: str = "", duration: float = 0.0, stdout: str = "",
            stderr: str = "", payload: int = 0) -> dict[str, Any]:  # fmt: skip
    return {"status": status, "detail": detail, "duration": duration,
            "stdout": stdout, "stderr": stderr, "payload": payload}  # fmt: skip
