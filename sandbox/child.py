"""One evaluation: a child forked from the warm worker, jailed, run, judged.

The child is forked *ahead* of its evaluation: it jails itself at once and
then waits for its request on a pipe, so the fork, the jail and the exit of
the previous child are off the path from request to result. A request is the
program, the evolved function's name and the input ids; the instances are
already in the child's memory (the worker built them before the fork).

A child reports on its own result pipe (fd 3): one tag byte, the length of
what follows (8 bytes, big-endian), then the data -- b"O" + the outputs as
JSON, b"E" + an exception, b"M" + a memory error, b"I" + why the outputs are
not acceptable. A result whose length does not match was cut off (the child
died while writing it) and does not count.

Imported by worker.py as a sibling module: standard library only.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import math
import os
import random
import select
import signal
import sys
import time
from typing import Any

import isolation
from streams import LENGTH, READ, Streams, whole

DETAIL_CHARS = 1000
FORBIDDEN = "blocked system call (new process, exec, socket, signal or ptrace)"
_PIPE_BYTES = 1 << 20  # big outputs pass in fewer context switches
_MAX_FD = 1 << 20  # close_range(2) makes a large bound cheap


class Child:
    """A forked child, waiting for its evaluation (or running it)."""

    def __init__(self, runner: Any, jail: isolation.Jail, lean: bool = False) -> None:
        # pipes: request (to the child), result, stdout, stderr (from it)
        pipes = [os.pipe() for _ in range(4)]
        for read_end, _ in pipes[1:]:
            _widen(read_end)
        _widen(pipes[0][1])
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        self.pid = lean_fork() if lean else os.fork()
        if self.pid == 0:  # never returns
            if not lean:  # os.fork reseeded `random` from the OS: back to the worker's seed
                random.seed(0)
            _child_main(runner, jail, pipes, parent)
        try:
            os.setpgid(self.pid, self.pid)  # also done by the child; whichever runs first
        except OSError:
            pass
        os.close(pipes[0][0])
        for _, write_end in pipes[1:]:
            os.close(write_end)
        self.request_fd = pipes[0][1]
        self.readers = [read_end for read_end, _ in pipes[1:]]
        self.pidfd = _pidfd(self.pid)
        self.status: int | None = None
        self.started = 0.0

    def alive(self) -> bool:
        if self.pidfd is not None:
            return not select.select([self.pidfd], [], [], 0)[0]
        return _reap(self.pid, block=False) is None

    def start(self, request: dict[str, Any]) -> None:
        """Hands the request to the child: the evaluation's clock starts."""
        self.started = time.monotonic()
        try:
            _write_all(self.request_fd, json.dumps(request).encode())
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
        _kill(self.pid)

    def finish(self) -> None:
        """Kills the child (and anything it left running) and reaps it."""
        _kill(self.pid)
        if self.status is None:
            self.status = _reap(self.pid, block=True)
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
                    self.status = _reap(self.pid, block=True)
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
        if streams.result_whole() or (self.status is not None and not streams.open):
            return "done"
        if self.pidfd is None and self.status is None and not streams.open:
            self.status = _reap(self.pid, block=False)
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
        kind = {b"E": "error", b"M": "memory"}.get(tag, "invalid_output")
        detail = body[: DETAIL_CHARS * 4].decode("utf-8", errors="replace")[:DETAIL_CHARS]
        return _header(kind, detail, duration, *printed), b""
    assert status is not None
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


def lean_fork() -> int:
    """fork(2) through libc, without CPython's own fork protocol.

    os.fork() runs the interpreter's after-fork work in the child (thread and
    lock re-initialisation, the at-fork callbacks: random's reseeding,
    threading's bookkeeping); in a warm worker that writes ~160 pages the child
    shares with the worker, each one a copy-on-write fault -- more than half of
    what a bare fork costs. That work exists for threads other than the forking
    one, so this is only for a process with one thread (the worker checks), and
    the GIL stays held across the call (PyDLL), as it is in os.fork.
    """
    pid = _LIBC_FORK()
    if pid < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"fork failed: {os.strerror(code)}")
    return pid


_LIBC_FORK = ctypes.PyDLL(None, use_errno=True).fork
_LIBC_FORK.restype = ctypes.c_int
_LIBC_FORK.argtypes = []


# --- in the child ----------------------------------------------------------------


def _child_main(runner: Any, jail: isolation.Jail, pipes: list, parent: int) -> None:
    """Jails itself, waits for the request, evaluates, reports. Never returns."""
    code = 0
    try:
        os.setpgid(0, 0)
        os.dup2(pipes[0][0], 0)
        os.dup2(pipes[2][1], 1)
        os.dup2(pipes[3][1], 2)
        os.dup2(pipes[1][1], 3)
        os.closerange(4, _MAX_FD)
        os.umask(0o077)
        jail.enter(parent)
        _warm_up()
        request = json.loads(_read_all(0))
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    except BaseException as error:
        try:
            _report(_tagged(b"E", f"sandbox setup failed: {_describe(error)}".encode()))
        finally:
            os._exit(70)
    try:
        result = _evaluate(runner, request)
        sys.stdout.flush()
        sys.stderr.flush()
        _report(result)
    except BaseException:
        code = 71
    os._exit(code)


def _warm_up() -> None:
    """Runs the machinery of an evaluation once on nothing, while waiting: the
    memory pages it writes are copied (fork's copy-on-write) before the request."""
    exec(compile("def _f(x):\n    return [x, 1.5]\n", "<warm-up>", "exec"), {})
    json.loads(json.dumps([{"a": [0, 1.5, "x", None]}]))


def _evaluate(runner: Any, request: dict[str, Any]) -> bytes:
    module = runner.module
    function_name = request["function"]
    instances = runner.inputs[request["input_set"]]
    input_id = None
    try:
        module.__dict__.pop(function_name, None)  # the spec's own version must not stand in
        exec(compile(request["program"], "<program>", "exec"), module.__dict__)
        if not callable(module.__dict__.get(function_name)):
            return _tagged(b"E", f"the program does not define '{function_name}'".encode())
        run = getattr(module, runner.run_name)
        outputs = []
        for input_id in request["input_ids"]:
            outputs.append(run(instances[input_id]))
    except MemoryError:
        where = "" if input_id is None else f" [input {input_id}]"
        return _tagged(b"M", f"MemoryError: out of memory{where}".encode())
    except BaseException as error:
        where = "" if input_id is None else f" [input {input_id}]"
        spec_file = getattr(module, "__file__", None)
        return _tagged(b"E", (_describe(error, spec_file) + where).encode())
    try:
        text = json.dumps(outputs, default=_to_json)
    except MemoryError:
        return _tagged(b"M", b"MemoryError while encoding the outputs")
    except BaseException as error:
        return _tagged(b"I", f"outputs are not JSON: {_describe(error)}".encode())
    data = text.encode()  # ASCII: json.dumps escapes the rest
    if len(data) > runner.limits["result_bytes"]:
        return _tagged(b"I", f"result of {len(data)} bytes is larger than the limit".encode())
    return _tagged(b"O", data)


def _to_json(value: Any) -> Any:
    """numpy values as plain lists and numbers; anything else is not JSON."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            return value.tolist()
        if isinstance(value, numpy.generic):
            return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _describe(error: BaseException, spec_file: str | None = None) -> str:
    try:
        text = f"{type(error).__name__}: {error}"
    except Exception:  # a hostile __str__
        text = f"{type(error).__name__}: <unprintable>"
    where = _where(error, spec_file)
    return (text[: DETAIL_CHARS - len(where)] + where)[:DETAIL_CHARS]


def _where(error: BaseException, spec_file: str | None) -> str:
    """Where the error was raised in code the user wrote -- the spec file or the
    program, not numpy's internals: ' (at tsp.py:42 in run)'. A spec author
    otherwise gets an error with no line to look at."""
    last = ""
    try:
        traceback = error.__traceback__
        while traceback is not None:
            code = traceback.tb_frame.f_code
            if code.co_filename in ("<program>", spec_file):
                name = code.co_filename
                name = "program" if name == "<program>" else os.path.basename(name)
                last = f" (at {name}:{traceback.tb_lineno} in {code.co_name})"
            traceback = traceback.tb_next
    except Exception:  # a hostile traceback: the error's text is enough
        return ""
    return last[:200]


def _tagged(tag: bytes, data: bytes) -> bytes:
    return tag + len(data).to_bytes(LENGTH, "big") + data


def _report(message: bytes) -> None:
    _write_all(3, message)
    os.close(3)


# --- helpers ----------------------------------------------------------------------


def _read_all(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, READ):
        parts.append(chunk)
    return b"".join(parts)


def _write_all(fd: int, message: bytes) -> None:
    view = memoryview(message)
    while view:
        view = view[os.write(fd, view) :]


def _widen(fd: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (AttributeError, OSError):
        pass


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _reap(pid: int, block: bool) -> int | None:
    try:
        reaped, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return 0
    return status if reaped else None


def _kill(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _header(status: str, detail: str = "", duration: float = 0.0, stdout: str = "",
            stderr: str = "", payload: int = 0) -> dict[str, Any]:  # fmt: skip
    return {"status": status, "detail": detail, "duration": duration,
            "stdout": stdout, "stderr": stderr, "payload": payload}  # fmt: skip
