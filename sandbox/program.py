"""A split evaluation: the program in a process of its own, apart from the run function.

Why: a program that shares a process with the run function can change what
that function returns -- patch its globals or builtins, or write a result in
the sandbox's own format to the result pipe it finds in /proc/self/fd. Where
the run function returns the score itself, that is a forged score. Split, the
evaluation's child (inside.py) forks, before it jails itself, one more process
for the program: jailed the same way, non-dumpable, with only its own ends of
two pipes (answers out on fd 3, calls in on fd 4), the output pipes and
/dev/null as stdin. In the run function's process the evolved function's name
is a stub that sends the arguments and reads the answer -- one write and one
read per call, to the same program process all evaluation long. Nothing of the
run function's memory, globals or file descriptors is in the program's process.

Calls go out pickled, or as plain data (wire.py) where that is cheaper; they
come from the trusted side. Answers come back as plain data only, size-capped
and read defensively: b"R" + a value, b"E" + an exception [module, type, text,
description], b"X" + why a value cannot cross. An answer that breaks the
protocol, or the program's process ending, ends the evaluation whatever the
run function does about it.

Imported as a sibling module: standard library only.
"""

from __future__ import annotations

import builtins
import fcntl
import os
import pickle
import random
import sys
import threading
from typing import Any

import errors
import forking
import isolation
import wire

_HEADER = 9  # a tag byte and an 8-byte big-endian length
_SERVE_FAILED = 72  # the program's process broke its own end of the protocol
_CALLS = 4  # the program's fd for calls; stdin reads /dev/null, as unsplit


class ProgramBroke(BaseException):
    """The program's process died or broke the protocol: the evaluation ends.

    A BaseException, so a run function's `except Exception` does not swallow it
    (and if it does anyway, the evaluation still reports it: ProgramProcess.broken)."""


class ProgramError(Exception):
    """An exception of the program whose type the run function's side does not know."""


class ProgramProcess:
    """The run function's end of the program's own process.

    Attributes:
      broken: once the process died or broke the protocol, the result frame
        that says so (b"P" + its wait status, or b"I" + why); else None.
      raised: the last exception rebuilt from the program's, and its description
        as the program's process wrote it (with the program's line).
    """

    def __init__(self, module: Any, jail: isolation.Jail, limits: dict[str, Any],
                 lean: bool) -> None:
        calls, answers = forking.pipe(), forking.pipe()
        parent = os.getpid()
        self.pid = forking.lean_fork() if lean else os.fork()
        if self.pid == 0:  # never returns
            if not lean:
                random.seed(0)  # os.fork reseeded it: back to the worker's seed
            _serve(module, jail, parent, calls[0], answers[1])
        os.close(calls[0])
        os.close(answers[1])
        self._calls, self._answers = calls[1], answers[0]
        self._module = module
        self._cap = int(limits["result_bytes"])
        self._pending = b""
        self._lock = threading.Lock()
        self.broken: bytes | None = None
        self.raised: tuple[BaseException, str] | None = None

    def load(self, program: str, name: str) -> bytes | None:
        """Defines the program in its process; None, or the error frame saying why not."""
        try:
            self._send((program, name), {})
            tag, body = self._receive()
            if tag == b"R":
                return None
            if tag == b"E":
                return b"E" + self._exception_fields(body)[3].encode()
            self._break(f"a malformed answer to the program (tag {tag[:1]!r})")
        except ProgramBroke:
            pass
        return self.broken

    def stub(self, name: str) -> Any:
        """What the run function calls in place of the evolved function."""

        def evolved(*args: Any, **kwargs: Any) -> Any:
            return self.call(args, kwargs)

        evolved.__name__ = evolved.__qualname__ = name
        return evolved

    def call(self, args: tuple, kwargs: dict) -> Any:
        with self._lock:  # one call at a time, should the run function use threads
            if self.broken is not None:
                raise ProgramBroke()
            self._send(args, kwargs)
            tag, body = self._receive()
        if tag == b"R":
            return self._decoded(body)
        if tag == b"E":
            raise self._rebuilt(body)
        if tag == b"X":
            reason = self._decoded(body)
            if not isinstance(reason, str):
                self._break("a malformed answer (the reason a value cannot cross)")
            raise TypeError(f"the program returned {reason[:errors.DETAIL_CHARS]}")
        self._break(f"a malformed answer (tag {tag[:1]!r})")

    # --- the protocol -----------------------------------------------------------

    def _send(self, args: tuple, kwargs: dict) -> None:
        """Pickled (this side is trusted: the other may unpickle), but arguments
        with a numpy array as wire.py encodes them: half the cost of pickle's."""
        data = None
        if not kwargs and any(type(value).__module__ == "numpy" for value in args):
            try:
                data = b"w" + wire.encode(args)
            except wire.Unencodable:
                pass
        try:
            data = data or b"p" + pickle.dumps((args, kwargs), pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # the spec's arguments, not the program's doing
            raise TypeError(
                f"the run function passed a value that cannot reach the program's own "
                f"process ({errors.text_of(error)[:200]}); pass plain data, or evaluate "
                f"with split off") from None
        try:
            forking.write_all(self._calls, len(data).to_bytes(8, "big") + data)
        except OSError:  # it closed its end, or died
            self._ended()

    def _receive(self) -> tuple[bytes, bytes]:
        """The next answer: usually one read of the pipe."""
        data = self._fill(self._pending, _HEADER)
        if data[:1] not in (b"R", b"E", b"X"):
            self._break(f"a malformed answer (tag {data[:1]!r})")
        size = int.from_bytes(data[1:_HEADER], "big")
        if size > self._cap:
            self._break(f"an answer of {size} bytes from the program, over the limit of "
                        f"{self._cap}", broke=False)
        end = _HEADER + size
        data = self._fill(data, end)
        self._pending = data[end:]
        return data[:1], data[_HEADER:end]

    def _fill(self, data: bytes, size: int) -> bytes:
        """`data` and what the pipe has next, `size` bytes at least."""
        if len(data) >= size:
            return data
        parts, have = [data], len(data)
        while have < size:
            chunk = os.read(self._answers, min(max(size - have, 1 << 16), forking.READ))
            if not chunk:
                self._ended()
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def _decoded(self, body: bytes) -> Any:
        try:
            return wire.decode(body)
        except wire.WireError as error:
            self._break(f"a malformed answer ({error})")

    def _exception_fields(self, body: bytes) -> list[str]:
        fields = self._decoded(body)
        if not (isinstance(fields, list) and len(fields) == 4
                and all(isinstance(field, str) for field in fields)):
            self._break("a malformed answer (an exception)")
        return [field[: errors.DETAIL_CHARS] for field in fields]

    def _rebuilt(self, body: bytes) -> BaseException:
        """The program's exception as one the run function can catch as usual:
        the same type where it is a builtin or the spec's own, else ProgramError."""
        module, name, text, description = self._exception_fields(body)
        home = {"builtins": builtins, self._module.__name__: self._module}.get(module)
        kind = getattr(home, name, None) if home is not None else None
        error: BaseException = ProgramError(text)
        if isinstance(kind, type) and issubclass(kind, BaseException):
            try:
                error = kind(text)
            except Exception:  # needs other arguments
                pass
        self.raised = (error, description)
        return error

    def _break(self, why: str, broke: bool = True) -> None:
        """Ends the evaluation as invalid output; `broke`: the answer was not
        one the program's side writes (a program writing to its answer pipe)."""
        if broke:
            why = f"the program's process broke the protocol: {why}"
        self.broken = b"I" + why.encode()
        raise ProgramBroke()

    def _ended(self) -> None:
        """Its end of a pipe closed: it died, or closed it (and is waited for,
        up to the evaluation's deadline)."""
        status = forking.reap(self.pid, block=True)
        self.broken = b"P" + str(status).encode()
        raise ProgramBroke()


# --- in the program's process --------------------------------------------------


def _serve(module: Any, jail: isolation.Jail, parent: int, calls: int, answers: int) -> None:
    """Jails itself, defines the program, answers calls until the run function's
    side closes its end. Never returns."""
    try:
        answers, calls = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (answers, calls))
        os.dup2(answers, 3)  # from above 10: neither is on the other's place
        os.dup2(calls, _CALLS)
        os.closerange(_CALLS + 1, forking.MAX_FD)  # the run function's ends and pipes
        null = os.open(os.devnull, os.O_RDONLY)  # the run function's request pipe goes
        os.dup2(null, 0)
        os.close(null)
        jail.enter(parent)
        warm_up()
        channel = _Channel()
        function = _define(module, channel)
        while (message := channel.receive()) is not None:
            args, kwargs = message
            channel.answer(*_call(function, args, kwargs, module))
    except BaseException:
        os._exit(_SERVE_FAILED)
    os._exit(0)


def warm_up() -> None:
    """A call's machinery run once on nothing, while waiting for the program:
    the pages it writes are copied (fork's copy-on-write) before the clock runs.
    Both sides run it."""
    exec(compile("def _f(x):\n    return [x, 1.5]\n", "<warm-up>", "exec"), {})
    for value in ((1, 1.5, "x"), {"a": [0, None]}):
        wire.decode(wire.encode(value))
        pickle.loads(pickle.dumps((value, {}), pickle.HIGHEST_PROTOCOL))


def _define(module: Any, channel: _Channel) -> Any:
    """Runs the program in this process's copy of the spec's module."""
    message = channel.receive()
    if message is None:
        os._exit(0)
    (program, name), _ = message
    try:
        module.__dict__.pop(name, None)  # the spec's own version must not stand in
        exec(compile(program, "<program>", "exec"), module.__dict__)
        function = module.__dict__.get(name)
        if not callable(function):
            error = LookupError(f"the program does not define '{name}'")
            channel.answer(b"E", _exception(error, module, f"{error}"))
            os._exit(0)  # the run function's side reports it
    except BaseException as error:
        channel.answer(b"E", _exception(error, module))
        os._exit(0)
    channel.answer(b"R", wire.encode(None))
    return function


def _call(function: Any, args: tuple, kwargs: dict, module: Any) -> tuple[bytes, bytes]:
    try:
        value = function(*args, **kwargs)
    except BaseException as error:
        return b"E", _exception(error, module)
    try:
        return b"R", wire.encode(value)
    except wire.Unencodable as error:
        return b"X", wire.encode(f"{error}, which cannot leave the program's process")
    except BaseException as error:  # a hostile subclass's method, out of memory
        return b"E", _exception(error, module)


def _exception(error: BaseException, module: Any, description: str | None = None) -> bytes:
    try:
        kind = type(error)
        fields = [str(kind.__module__), str(kind.__name__), errors.text_of(error),
                  description or errors.describe(error, getattr(module, "__file__", None))]
        return wire.encode([field[: errors.DETAIL_CHARS] for field in fields])
    except BaseException:  # out of memory, or a hostile type: the words we have
        return _OUT_OF_MEMORY if isinstance(error, MemoryError) else _UNDESCRIBED


_OUT_OF_MEMORY = wire.encode(["builtins", "MemoryError", "", "MemoryError: out of memory"])
_UNDESCRIBED = wire.encode(["program", "ProgramError", "",
                            "the program raised an exception that cannot be described"])


class _Channel:
    """The program's end: answers on fd 3, calls on fd 4."""

    def __init__(self) -> None:
        self._pending = b""

    def receive(self) -> Any:
        """The next message, or None when the run function's side closed its end."""
        data = self._fill(self._pending, 8)
        if data is None:
            return None
        end = 8 + int.from_bytes(data[:8], "big")
        data = self._fill(data, end)
        if data is None:
            return None
        self._pending = data[end:]
        body = data[9:end]
        return (wire.decode(body), {}) if data[8:9] == b"w" else pickle.loads(body)

    def answer(self, tag: bytes, body: bytes) -> None:
        for stream in (sys.stdout, sys.stderr):  # what it printed goes before the answer
            try:
                stream.flush()
            except BaseException:
                pass
        forking.write_all(3, tag + len(body).to_bytes(8, "big") + body)

    @staticmethod
    def _fill(data: bytes, size: int) -> bytes | None:
        if len(data) >= size:
            return data
        parts, have = [data], len(data)
        while have < size:
            chunk = os.read(_CALLS, min(max(size - have, 1 << 16), forking.READ))
            if not chunk:
                return None
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)
