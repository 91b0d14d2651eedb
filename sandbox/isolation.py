"""How a worker and its evaluations are jailed.

Two layers, both described here so the whole boundary can be read in one place:

- the *worker* (warm, trusted code: ours and the spec's) runs under bubblewrap
  where it works -- no network, read-only root, a private size-capped /tmp, its
  own pid namespace, killed with its parent -- or as a plain process otherwise;
- every *evaluation* is a child forked from the worker that jails itself before
  the untrusted program runs: own process group, clean environment, rlimits,
  (as root) an unprivileged uid/gid, not dumpable, and a seccomp filter that
  refuses new processes, exec, sockets and signals to other processes while
  threads keep working.

The worker imports this file as a sibling module (`import isolation`), so it
must use only the standard library; pyseccomp is optional and only used to
compile the filter once per worker.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import functools
import os
import resource
import shutil
import struct
import subprocess
import sys

LEVELS = ("auto", "bwrap", "process")

# Hidden under bwrap (private empty file systems), apart from what must be seen.
MASKED_HOMES = ("/root", "/home")

# Per-pool uids for evaluations (as root): one per worker slot, so concurrent
# evaluations cannot read each other's files or count against each other's
# process limit. Far above any uid a distribution hands out.
UID_BASE = 200_000

# Capabilities the jailed worker keeps (as root): enough to chown the
# evaluation's directory, drop to its uid, kill it and clean up after it.
WORKER_CAPABILITIES = (
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_KILL",
)

# Threads may go on; everything below is refused.
_CLONE_THREAD = 0x00010000
# These end the evaluation (status "forbidden"): new processes, exec, sockets,
# and the calls that reach other processes or change the jail itself.
_KILLED_SYSCALLS = (
    "fork", "vfork", "execve", "execveat",
    "socket",
    "kill", "tkill", "ptrace", "process_vm_readv", "process_vm_writev",
    "pidfd_open", "pidfd_getfd", "pidfd_send_signal",
    "setpgid", "setsid", "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
)  # fmt: skip
# Signals to a thread group other than its own end the evaluation too; to its
# own threads they pass (abort(), signal.pthread_kill). The group is each
# child's own pid, written into the compiled filter where this stands.
_SIGNAL_SYSCALLS = ("tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")
_OWN_PID = 0x3FFFFFF1  # above any pid (pid_max is at most 2**22)


class IsolationError(RuntimeError):
    """The requested isolation level cannot be used on this machine."""


@dataclasses.dataclass(frozen=True)
class Choice:
    """What an isolation request resolved to.

    Attributes:
      level: "bwrap" or "process".
      reason: why, in words (shown by `funsearch check` and the run log).
    """

    level: str
    reason: str


def resolve(requested: str, visible: tuple[str, ...] = ()) -> Choice:
    """The strongest level available for `requested` ("auto" | "bwrap" | "process").

    `bwrap` must actually start a sandbox here (inside a container without user
    namespaces it may be installed and still fail); the probe runs once.
    """
    if requested not in LEVELS:
        raise IsolationError(f"isolation must be one of {', '.join(LEVELS)}, not '{requested}'")
    if requested == "process":
        return Choice("process", "process isolation requested")
    problem = _bwrap_problem(tuple(visible) + interpreter_paths())
    if problem is None:
        return Choice("bwrap", "bubblewrap works here")
    if requested == "bwrap":
        raise IsolationError(f"isolation 'bwrap' is not available: {problem}")
    return Choice("process", f"bubblewrap unusable ({problem}); fell back to process")


@functools.lru_cache(maxsize=8)
def _bwrap_problem(visible: tuple[str, ...]) -> str | None:
    if shutil.which("bwrap") is None:
        return "bwrap not found on PATH"
    command = bwrap_command([sys.executable, "-c", "pass"], visible, tmp_mb=1)
    try:
        probe = subprocess.run(command, capture_output=True, timeout=30, env=clean_environment())
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap probe failed: {error}"
    if probe.returncode != 0:
        message = probe.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap probe failed: {message[-1] if message else f'exit {probe.returncode}'}"
    return None


def bwrap_command(command: list[str], visible: tuple[str, ...], tmp_mb: int) -> list[str]:
    """`command` wrapped in bubblewrap.

    As root no user namespace is made (uid 0 stays real, so the worker can
    drop each evaluation to its own uid); otherwise bwrap maps the caller's uid.
    /tmp, /dev/shm and the home folders are replaced by empty file systems
    (so no secret of the host's users is readable); the paths in `visible`
    that lie under them (the interpreter, the spec, this folder) are mounted
    back read-only.
    """
    bwrap = shutil.which("bwrap") or "bwrap"
    args = [bwrap, "--die-with-parent", "--unshare-pid", "--unshare-net", "--unshare-ipc"]
    args += ["--unshare-uts", "--unshare-cgroup-try"]
    if os.geteuid() != 0:
        args += ["--unshare-user"]
    args += ["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
    # Root-owned and not world-writable: an evaluation writes only in its own
    # directory, which the worker makes and removes.
    for tmpfs, size_mb in (("/tmp", tmp_mb), ("/dev/shm", 1)):
        args += ["--perms", "0755", "--size", str(size_mb << 20), "--tmpfs", tmpfs]
    for home in MASKED_HOMES:
        if os.path.isdir(home):
            args += ["--perms", "0755", "--size", str(1 << 20), "--tmpfs", home]
    made: set[str] = set()
    for path in _outermost(p for p in visible if _masked(p)):
        # bwrap would make the missing parents 0700; evaluations must pass them.
        for parent in reversed(_parents_below_mask(path)):
            if parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", parent]
        args += ["--ro-bind", path, path]
    if os.geteuid() == 0:
        args += ["--cap-drop", "ALL"]
        for capability in WORKER_CAPABILITIES:
            args += ["--cap-add", capability]
    args += ["--chdir", "/"]
    return args + ["--"] + command


def interpreter_paths() -> tuple[str, ...]:
    """What this Python needs to start and import its installed packages."""
    import site
    import sysconfig

    paths = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    paths.add(os.path.dirname(os.path.realpath(sys.executable)))
    paths.update(sysconfig.get_paths().values())
    paths.update(site.getsitepackages())
    paths.add(site.getusersitepackages())
    return tuple(sorted(p for p in paths if p and os.path.isabs(p) and os.path.exists(p)))


def spec_folder(spec_path: os.PathLike[str] | str) -> str:
    """What of a spec's surroundings a worker sees: its folder (helper modules and
    data beside it), or the file alone when the folder is a whole /tmp or home."""
    folder = os.path.dirname(os.path.abspath(spec_path))
    return str(spec_path) if folder in _MASKED_ROOTS else folder


_MASKED_ROOTS = ("/tmp", "/dev/shm") + MASKED_HOMES


def _masked(path: str) -> bool:
    return any(path == root or path.startswith(root + "/") for root in _MASKED_ROOTS)


def _parents_below_mask(path: str) -> list[str]:
    parents = []
    parent = os.path.dirname(path)
    while _masked(parent) and parent not in _MASKED_ROOTS:
        parents.append(parent)
        parent = os.path.dirname(parent)
    return parents


def _outermost(paths) -> list[str]:
    """The paths without those inside another one of them."""
    kept: list[str] = []
    for path in sorted({os.path.realpath(p) for p in paths}):
        if not any(path.startswith(outer.rstrip("/") + "/") for outer in kept):
            kept.append(path)
    return kept


def clean_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a worker: nothing inherited from the host.

    One BLAS/OpenMP thread: evaluations are single-threaded by design (the pool
    runs several side by side), and threads made before a fork do not survive it.
    """
    environment = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": "/tmp",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    environment.update(extra or {})
    return environment


# --- inside the worker: compiled once ------------------------------------------


def seccomp_program() -> tuple[bytes | None, str]:
    """The evaluation's seccomp filter as raw BPF, or (None, why not).

    Compiled once per worker with libseccomp (through pyseccomp) and loaded by
    each child with one prctl, so a fork pays nothing for the compilation.
    glibc's fork is a `clone` without CLONE_THREAD, so that is what gets
    refused; `clone3` answers ENOSYS (its flags live in memory where the filter
    cannot see them), which makes glibc fall back to `clone` for threads too.
    """
    try:
        import pyseccomp as seccomp
    except (ImportError, RuntimeError, OSError) as error:  # RuntimeError: no libseccomp
        return None, f"seccomp unavailable: {error}"
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    rules.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.add_rule(
        seccomp.KILL_PROCESS, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, _CLONE_THREAD, 0)
    )
    for name in _KILLED_SYSCALLS:
        try:
            rules.add_rule(seccomp.KILL_PROCESS, name)
        except (OSError, ValueError):  # not a system call on this architecture
            pass
    for name in _SIGNAL_SYSCALLS:
        rules.add_rule(seccomp.KILL_PROCESS, name, seccomp.Arg(0, seccomp.NE, _OWN_PID))
    memory = os.memfd_create("seccomp-bpf")
    try:
        with open(memory, "wb", closefd=False) as handle:
            rules.export_bpf(handle)
        return os.pread(memory, 1 << 20, 0), "seccomp on"
    finally:
        os.close(memory)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_SECCOMP = 22
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_MODE_FILTER = 2


@dataclasses.dataclass
class Jail:
    """What a forked evaluation applies to itself before the program runs.

    Built in the worker (ctypes and the filter buffer prepared in advance), so
    the child only makes system calls.
    """

    limits: dict[str, float]  # memory_mb, cpu_seconds, file_size_mb, open_files
    uid: int | None  # drop to this uid/gid (as root), else keep the worker's
    bpf: bytes | None

    def __post_init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._buffer = ctypes.create_string_buffer(self.bpf or b"", len(self.bpf or b""))
        self._program = _SockFprog(len(self.bpf or b"") // 8, ctypes.addressof(self._buffer))
        # Where the filter compares with the child's own pid: each instruction
        # is 8 bytes, its constant the last 4.
        self._own_pid_at = [at + 4 for at in range(0, len(self.bpf or b""), 8)
                            if struct.unpack_from("=I", self.bpf, at + 4)[0] == _OWN_PID]

    def worker_setup(self) -> None:
        """Once in the worker: no core dumps and no ptrace/proc-mem access to it
        from evaluations running under the same uid (non-root hosts)."""
        self._prctl(_PR_SET_DUMPABLE, 0)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    def enter(self, parent: int) -> None:
        """In the child, in this order: limits, credentials, then the filter."""
        megabyte = 1 << 20
        cpu = int(self.limits["cpu_seconds"])
        self._limit(resource.RLIMIT_CPU, cpu, cpu + 1)
        self._limit(resource.RLIMIT_AS, int(self.limits["memory_mb"]) * megabyte)
        self._limit(resource.RLIMIT_FSIZE, int(self.limits["file_size_mb"]) * megabyte)
        self._limit(resource.RLIMIT_NOFILE, int(self.limits["open_files"]))
        self._limit(resource.RLIMIT_CORE, 0)
        if self.uid is not None:
            # Threads only (forks are refused anyway); counted per uid, and the
            # uid is this worker slot's own.
            self._limit(resource.RLIMIT_NPROC, 64)
            os.setgroups([])
            os.setresgid(self.uid, self.uid, self.uid)
            os.setresuid(self.uid, self.uid, self.uid)
        # Set after the uid change, which clears it; then make sure the worker
        # did not die before it was set.
        self._prctl(_PR_SET_PDEATHSIG, 9)
        if os.getppid() != parent:
            os._exit(1)
        # Not dumpable (a uid change resets it from a sysctl): another process of
        # the same uid -- a split evaluation's program -- cannot open this one's
        # /proc/<pid>/mem, fd/ or environ.
        self._prctl(_PR_SET_DUMPABLE, 0)
        self._prctl(_PR_SET_NO_NEW_PRIVS, 1)
        for at in self._own_pid_at:
            struct.pack_into("=I", self._buffer, at, os.getpid())
        if self.bpf:
            self._prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(self._program))

    @staticmethod
    def _limit(kind: int, soft: int, hard: int | None = None) -> None:
        hard = soft if hard is None else hard
        current_soft, current_hard = resource.getrlimit(kind)
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(kind, (soft, hard))

    def _prctl(self, option: int, value: int, pointer: int = 0) -> None:
        if self._libc.prctl(option, ctypes.c_ulong(value), ctypes.c_void_p(pointer), 0, 0) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"prctl({option}) failed: {os.strerror(code)}")
