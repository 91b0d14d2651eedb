"""Attacks through processes and signals: all refused by the seccomp filter or the uid."""

from __future__ import annotations

from tests.security.conftest import attack

FORBIDDEN = "blocked system call (new process, exec, socket, signal or ptrace)"


def test_fork_bomb_is_forbidden(pool):
    outcome = attack(pool, "import os\nwhile True:\n    os.fork()")
    assert (outcome.status, outcome.detail) == ("forbidden", FORBIDDEN)


def test_subprocess_is_forbidden(pool):
    outcome = attack(pool, "import subprocess\nreturn subprocess.run(['true']).returncode")
    assert (outcome.status, outcome.detail) == ("forbidden", FORBIDDEN)


def test_os_system_is_forbidden(pool):
    outcome = attack(pool, "import os\nreturn os.system('true')")
    assert (outcome.status, outcome.detail) == ("forbidden", FORBIDDEN)


def test_exec_in_place_is_forbidden(pool):
    outcome = attack(pool, "import os, sys\nos.execv(sys.executable, [sys.executable, '-V'])")
    assert (outcome.status, outcome.detail) == ("forbidden", FORBIDDEN)


def test_killing_the_parent_is_forbidden_and_the_worker_lives(pool):
    workers = pool.worker_pids()
    outcome = attack(pool, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")
    assert (outcome.status, outcome.detail) == ("forbidden", FORBIDDEN)
    assert pool.worker_pids() == workers


def test_signals_to_another_thread_group_are_forbidden(pool):
    for call in ("tgkill(os.getppid(), os.getppid(), 9)", "sigqueue(os.getppid(), 9, 0)"):
        outcome = attack(pool, f"import ctypes, os\nctypes.CDLL(None).{call}\nreturn 1")
        assert (outcome.status, outcome.detail) == ("forbidden", FORBIDDEN)


def test_signals_to_its_own_threads_pass(pool):
    outcome = attack(pool, """
        import signal, threading
        got = []
        signal.signal(signal.SIGUSR1, lambda *_: got.append(1))
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
        return len(got)
        """)
    assert (outcome.status, [output["choice"] for output in outcome.outputs]) == ("ok", [1, 1])
    aborted = attack(pool, "import os\nos.abort()")
    assert (aborted.status, aborted.detail) == ("crashed", "killed by SIGABRT")


def test_os_exit_inside_the_function_is_a_crash(pool):
    outcome = attack(pool, "import os\nos._exit(0)")
    assert outcome.status == "crashed"
    assert outcome.detail == "exited with status 0 before returning a result"


def test_sys_exit_inside_the_function_is_an_error(pool):
    outcome = attack(pool, "import sys\nsys.exit(3)")
    assert (outcome.status, outcome.detail) == ("error", "SystemExit: 3 (at program:3 in pick) [input near]")


def test_a_segfault_through_ctypes_is_a_crash(pool):
    outcome = attack(pool, "import ctypes\nreturn ctypes.string_at(0)")
    assert (outcome.status, outcome.detail) == ("crashed", "killed by SIGSEGV")


def test_a_thread_bomb_ends_at_the_process_limit(pool):
    outcome = attack(
        pool,
        """
        import threading, time
        while True:
            threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        """,
    )
    assert outcome.status == "error"
    assert outcome.detail == "RuntimeError: can't start new thread (at program:4 in pick) [input near]"
