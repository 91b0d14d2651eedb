"""The watchdog's sweep: what a Ray worker started goes with the session, a
reader of the session's logs stays."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from funsearch.runtime import ray_watchdog

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

SLEEP = "import sys, time; sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(600)"


def test_a_workers_child_writing_a_session_log_is_killed_and_a_reader_is_not(tmp_path):
    session = tmp_path / "session_x"
    (session / "logs").mkdir(parents=True)
    log = session / "logs" / "worker-1.out"
    # Like a vLLM engine a worker started: no Ray in its command line, its
    # stdout the worker's log.
    with log.open("w") as out:
        child = subprocess.Popen([sys.executable, "-c", SLEEP], stdout=out, stderr=subprocess.STDOUT)
    reader = subprocess.Popen(["tail", "-f", str(log)], stdout=subprocess.DEVNULL)
    try:
        _wait_for(lambda: log.read_text() == "up\n")
        ray_watchdog.sweep(str(session), "/nonexistent/ray", exclude=set())
        assert child.wait(timeout=60) == -9
        assert reader.poll() is None  # a user's tail -f of a Ray log is left alone
    finally:
        for process in (child, reader):
            process.kill()
            process.wait()


def _wait_for(condition) -> None:
    """Polls until the condition holds (the child has started and written)."""
    while not condition():
        time.sleep(0.05)
