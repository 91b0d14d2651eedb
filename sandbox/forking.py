"""Processes and pipes at the system-call level, for the worker and its children.

Shared by child.py (the worker forking an evaluation), inside.py (the
evaluation) and program.py (an evaluation forking the program's own process).
Imported as a sibling module: standard library only.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal

READ = 1 << 20
PIPE_BYTES = 1 << 20  # big messages pass in fewer context switches
MAX_FD = 1 << 20  # close_range(2) makes a large bound cheap


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


def pipe() -> tuple[int, int]:
    """A pipe with room for a large message in one write."""
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (AttributeError, OSError):
        pass
    return read_end, write_end


def read_all(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, READ):
        parts.append(chunk)
    return b"".join(parts)


def write_all(fd: int, message: bytes) -> None:
    written = os.write(fd, message)  # all of it, unless the pipe is full
    if written < len(message):
        view = memoryview(message)[written:]
        while view:
            view = view[os.write(fd, view) :]


def pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def reap(pid: int, block: bool) -> int | None:
    try:
        reaped, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return 0
    return status if reaped else None


def kill(pid: int) -> None:
    """SIGKILL to the process group `pid` leads, and to `pid` itself."""
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass
