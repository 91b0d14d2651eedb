"""A warm sandbox worker: imports the spec once, forks one jailed child per evaluation.

Started by the pool as `python worker.py SPEC CONFIG_JSON` (inside bubblewrap
where available). It imports nothing from funsearch/: a stub `funsearch`
module provides the decorators, so the worker needs nothing installed beyond
what the spec itself imports.

Protocol, over the worker's original stdin/stdout (the worker moves them aside
first, so anything the spec prints goes to stderr instead):
- host -> worker: one JSON line per evaluation request
  {"program", "function", "input_set", "input_ids"};
- worker -> host: one JSON header line {"status", "detail", "duration",
  "stdout", "stderr", "payload": n} followed by n raw bytes, the outputs as
  JSON text exactly as the child wrote them (the host parses them). The first
  message after start is a hello: {"ready": true, ...} or {"ready": false,
  "error": ...}.

A child reports through its own result pipe: one tag byte, then data --
b"O" + the outputs as JSON, b"E" + an exception, b"M" + a memory error,
b"I" + why the output is not acceptable.
"""

from __future__ import annotations

import fcntl
import gc
import importlib.util
import json
import math
import os
import select
import shutil
import signal
import sys
import time
import types
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isolation  # noqa: E402  (a sibling file: the worker is run as a script)

sys.path.pop(0)

DETAIL_CHARS = 1000
# Imported once by the worker, so an evaluation that imports them pays nothing,
# and finds them even where its uid cannot read the interpreter's files
# (process isolation under a private home, e.g. pyenv in /root).
PRELOAD = (
    "array", "bisect", "collections", "copy", "dataclasses", "decimal", "enum", "fractions",
    "functools", "heapq", "itertools", "math", "numbers", "operator", "random", "re",
    "statistics", "string", "tempfile", "typing",
)  # fmt: skip
_READ = 1 << 20
_PIPE_BYTES = 1 << 20
_MAX_FD = 1 << 20  # close_range(2) makes a large bound cheap


def _stub_funsearch() -> types.ModuleType:
    """The decorators a spec uses, marking roles exactly like funsearch/__init__.py."""
    module = types.ModuleType("funsearch")

    def marker(role: str):
        def mark(function):
            function.__funsearch_role__ = role
            return function

        return mark

    for role in ("evolve", "run", "score", "inputs", "baseline", "summary"):
        setattr(module, role, marker(role))
    module.ROLE_ATTRIBUTE = "__funsearch_role__"
    return module


def _import_spec(path: str) -> types.ModuleType:
    sys.modules["funsearch"] = _stub_funsearch()
    spec = importlib.util.spec_from_file_location("funsearch_spec", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["funsearch_spec"] = module
    spec.loader.exec_module(module)
    return module


def _roles(module: types.ModuleType) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in vars(module).items():
        role = getattr(value, "__funsearch_role__", None)
        if isinstance(role, str) and callable(value):
            found.setdefault(role, []).append(name)
    return found


def _as_named(instances: Any, name: str) -> dict[str, Any]:
    """Input ids as funsearch/spec.py `_as_named` makes them."""
    if isinstance(instances, dict):
        return {str(key): value for key, value in instances.items()}
    if isinstance(instances, (list, tuple)):
        return {str(index): value for index, value in enumerate(instances)}
    kind = type(instances).__name__
    raise TypeError(f"input set '{name}' must return a dict or a list, not {kind}")


def _describe(error: BaseException) -> str:
    try:
        text = f"{type(error).__name__}: {error}"
    except Exception:  # a hostile __str__
        text = f"{type(error).__name__}: <unprintable>"
    return text[:DETAIL_CHARS]


def _to_json(value: Any) -> Any:
    """numpy values as plain lists and numbers; anything else is not JSON."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            return value.tolist()
        if isinstance(value, numpy.generic):
            return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class Worker:
    """The spec, its input sets (built on first use, then kept) and the jail."""

    def __init__(self, spec_path: str, config: dict[str, Any]) -> None:
        self.limits = config["limits"]
        self.uid: int | None = config.get("uid")
        # One folder for this worker's evaluations, its cwd, HOME and TMPDIR:
        # set here once, so a child inherits them and pays nothing.
        self.folder: str = config["folder"]
        shutil.rmtree(self.folder, ignore_errors=True)  # a replaced worker's leftovers
        self._make_folder()
        os.chdir(self.folder)
        os.environ.update({"HOME": self.folder, "TMPDIR": self.folder})
        for name in PRELOAD:
            importlib.import_module(name)
        self.module = _import_spec(spec_path)
        roles = _roles(self.module)
        if not roles.get("run"):
            raise LookupError(f"{spec_path}: no function is marked @funsearch.run")
        self.run_name = roles["run"][0]
        self.input_functions = roles.get("inputs", [])
        self.inputs: dict[str, dict[str, Any]] = {}
        bpf, self.seccomp = isolation.seccomp_program()
        self.jail = isolation.Jail(limits=self.limits, uid=self.uid, bpf=bpf)
        self.jail.worker_setup()
        gc.collect()
        gc.freeze()

    def _make_folder(self) -> None:
        os.mkdir(self.folder, 0o700)
        if self.uid is not None:
            os.chown(self.folder, self.uid, self.uid)

    def _clear_folder(self) -> None:
        """Leaves the folder empty and private again for the next evaluation."""
        with os.scandir(self.folder) as entries:
            dirty = any(True for _ in entries)
        if dirty or os.stat(self.folder).st_mode & 0o7777 != 0o700:
            os.chdir("/")
            shutil.rmtree(self.folder, ignore_errors=True)
            self._make_folder()
            os.chdir(self.folder)

    def input_set(self, name: str) -> dict[str, Any]:
        if name not in self.inputs:
            if name not in self.input_functions:
                known = ", ".join(self.input_functions) or "none"
                raise LookupError(f"no input set '{name}' (the spec has: {known})")
            self.inputs[name] = _as_named(getattr(self.module, name)(), name)
            # Everything built so far is kept for the worker's life: move it out
            # of the collector's sight, so children do not copy its pages.
            gc.collect()
            gc.freeze()
        return self.inputs[name]

    def evaluate(self, request: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        try:
            instances = self.input_set(request["input_set"])
            ids = request.get("input_ids")
            ids = list(instances) if ids is None else [str(i) for i in ids]
            missing = [i for i in ids if i not in instances]
            if missing:
                raise LookupError(
                    f"input set '{request['input_set']}' has no input {', '.join(missing[:5])}"
                )
        except Exception as error:
            return _header("error", _describe(error)), b""
        try:
            header, payload = self._fork(request, [(i, instances[i]) for i in ids])
        finally:
            self._clear_folder()
        header["inputs"] = len(ids)
        return header, payload

    def _fork(self, request: dict[str, Any], items: list) -> tuple[dict, bytes]:
        pipes = [os.pipe() for _ in range(3)]  # result, stdout, stderr
        for read_end, _ in pipes:
            _widen(read_end)
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            _child(self, request, items, pipes, parent)
        try:
            os.setpgid(pid, pid)  # also done by the child; whichever runs first
        except OSError:
            pass
        for _, write_end in pipes:
            os.close(write_end)
        readers = [read_end for read_end, _ in pipes]
        try:
            return self._collect(pid, readers, start)
        finally:
            for fd in readers:
                os.close(fd)

    def _collect(self, pid: int, readers: list[int], start: float) -> tuple[dict, bytes]:
        """Drains the child's pipes under the deadline and the caps, then reaps it."""
        output_cap = self.limits["output_bytes"]
        caps = [self.limits["result_bytes"] + 1, output_cap, output_cap]
        data = [bytearray(), bytearray(), bytearray()]
        truncated = [False, False, False]
        deadline = start + self.limits["timeout"]
        poller = select.poll()
        open_fds = {}
        for index, fd in enumerate(readers):
            poller.register(fd, select.POLLIN)
            open_fds[fd] = index
        child_fd = _pidfd(pid)
        if child_fd is not None:
            poller.register(child_fd, select.POLLIN)
        status: int | None = None
        timed_out = too_big = False
        try:
            while open_fds or status is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                wait_ms = math.ceil(remaining * 1000)
                if child_fd is None and not open_fds:
                    wait_ms = min(wait_ms, 5)  # no pidfd: look again shortly
                for fd, _ in poller.poll(wait_ms):
                    if fd == child_fd:
                        poller.unregister(child_fd)
                        os.close(child_fd)
                        child_fd = None
                        status = _reap(pid, block=True)
                        continue
                    index = open_fds[fd]
                    chunk = os.read(fd, _READ)
                    if not chunk:
                        poller.unregister(fd)
                        del open_fds[fd]
                        continue
                    room = caps[index] - len(data[index])
                    if room > 0:
                        data[index] += chunk[:room]
                    if len(chunk) > room:
                        truncated[index] = True
                if truncated[0]:
                    too_big = True
                    break
                if child_fd is None and status is None and not open_fds:
                    status = _reap(pid, block=False)
        finally:
            _kill(pid)
            if status is None:
                status = _reap(pid, block=True)
            if child_fd is not None:
                os.close(child_fd)
        duration = time.monotonic() - start
        outputs = [_text(data[1], truncated[1]), _text(data[2], truncated[2])]
        if timed_out:
            detail = f"exceeded the {self.limits['timeout']:g} s wall-clock limit"
            return _header("timeout", detail, duration, *outputs), b""
        if too_big:
            detail = f"result larger than the limit of {self.limits['result_bytes']} bytes"
            return _header("invalid_output", detail, duration, *outputs), b""
        return self._judge(status, bytes(data[0]), duration, outputs)

    def _judge(self, status: int, result: bytes, duration: float, outputs: list[str]):
        if os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            name = _signal_name(number)
            if number == signal.SIGSYS:
                detail = "blocked system call (new process, exec, socket, signal or ptrace)"
                return _header("forbidden", detail, duration, *outputs), b""
            if number == signal.SIGXCPU:
                detail = f"exceeded the {self.limits['cpu_seconds']:g} s CPU time limit"
                return _header("timeout", detail, duration, *outputs), b""
            return _header("crashed", f"killed by {name}", duration, *outputs), b""
        if not result:
            code = os.WEXITSTATUS(status)
            detail = f"exited with status {code} before returning a result"
            return _header("crashed", detail, duration, *outputs), b""
        tag, body = result[:1], result[1:]
        if tag == b"O":
            return _header("ok", "", duration, *outputs, payload=len(body)), body
        kind = {b"E": "error", b"M": "memory", b"I": "invalid_output"}.get(tag, "invalid_output")
        detail = body[:DETAIL_CHARS * 4].decode("utf-8", errors="replace")[:DETAIL_CHARS]
        return _header(kind, detail, duration, *outputs), b""


def _child(worker: Worker, request: dict, items: list, pipes, parent: int):
    """Runs in the forked child: jail, exec the program, run, report. Never returns."""
    code = 0
    try:
        result_fd = pipes[0][1]
        os.setpgid(0, 0)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(pipes[1][1], 1)
        os.dup2(pipes[2][1], 2)
        os.dup2(result_fd, 3)
        os.closerange(4, _MAX_FD)
        os.umask(0o077)
        worker.jail.enter(parent)
    except BaseException as error:
        try:
            _report(3, b"E" + f"sandbox setup failed: {_describe(error)}".encode())
        finally:
            os._exit(70)
    try:
        _report(3, _evaluate(worker, request, items))
    except BaseException:
        code = 71
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _evaluate(worker: Worker, request: dict, items: list) -> bytes:
    module = worker.module
    function_name = request["function"]
    input_id = None
    try:
        module.__dict__.pop(function_name, None)  # the spec's own version must not stand in
        exec(compile(request["program"], "<program>", "exec"), module.__dict__)
        if not callable(module.__dict__.get(function_name)):
            return b"E" + f"the program does not define '{function_name}'".encode()
        run = getattr(module, worker.run_name)
        outputs = []
        for input_id, instance in items:  # noqa: B007  (read by the handlers below)
            outputs.append(run(instance))
    except MemoryError:
        where = "" if input_id is None else f" [input {input_id}]"
        return b"M" + f"MemoryError: out of memory{where}".encode()
    except BaseException as error:
        where = "" if input_id is None else f" [input {input_id}]"
        return b"E" + (_describe(error) + where).encode()
    try:
        text = json.dumps(outputs, default=_to_json)
    except MemoryError:
        return b"M" + b"MemoryError while encoding the outputs"
    except BaseException as error:
        return b"I" + f"outputs are not JSON: {_describe(error)}".encode()
    data = text.encode()  # ASCII: json.dumps escapes the rest
    if len(data) > worker.limits["result_bytes"]:
        return b"I" + f"result of {len(data)} bytes is larger than the limit".encode()
    return b"O" + data


def _report(fd: int, message: bytes) -> None:
    view = memoryview(message)
    while view:
        view = view[os.write(fd, view) :]
    os.close(fd)


def _widen(fd: int) -> None:
    """A 1 MB pipe buffer: big outputs and results pass in fewer context switches."""
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


def _text(data: bytearray, truncated: bool) -> str:
    text = data.decode("utf-8", errors="replace")
    return text + "\n[... truncated]" if truncated else text


def _header(status: str, detail: str = "", duration: float = 0.0, stdout: str = "",
            stderr: str = "", payload: int = 0) -> dict[str, Any]:  # fmt: skip
    return {"status": status, "detail": detail, "duration": duration,
            "stdout": stdout, "stderr": stderr, "payload": payload}  # fmt: skip


class _Channel:
    """The worker's end of the protocol, on file descriptors of its own."""

    def __init__(self) -> None:
        self.incoming = os.fdopen(os.dup(0), "rb")
        self.outgoing = os.dup(1)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)  # whatever the spec prints must not reach the protocol

    def receive(self) -> dict[str, Any] | None:
        line = self.incoming.readline()
        return json.loads(line) if line else None

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        _report_all(self.outgoing, json.dumps(header).encode() + b"\n" + payload)


def _report_all(fd: int, message: bytes) -> None:
    view = memoryview(message)
    while view:
        view = view[os.write(fd, view) :]


def main() -> None:
    channel = _Channel()
    spec_path, config = sys.argv[1], json.loads(sys.argv[2])
    try:
        worker = Worker(spec_path, config)
    except BaseException as error:
        channel.send({"ready": False, "error": _describe(error)})
        raise SystemExit(1) from None
    channel.send({"ready": True, "pid": os.getpid(), "uid": worker.uid, "seccomp": worker.seccomp})
    while (request := channel.receive()) is not None:
        header, payload = worker.evaluate(request)
        channel.send(header, payload)


if __name__ == "__main__":
    main()
