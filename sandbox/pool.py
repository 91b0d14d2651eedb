"""The host side of the sandbox: a pool of warm workers that evaluate programs.

Each worker (sandbox/worker.py, started under bubblewrap where it works) has
imported the spec once; an evaluation is one fork of a worker, jailed, with a
deadline enforced from outside. While a worker evaluates, the next evaluation
already waits in its pipe, so it never waits for the host between two. The
pool survives anything a program does: a worker that dies or stops answering
is killed and replaced, and the queue of evaluations waiting for a worker is
never dropped.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import itertools
import json
import math
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sandbox import isolation as _isolation
from sandbox.connection import Outcome, WorkerHung, WorkerLost, WorkerProcess, outcome

WORKER_SCRIPT = Path(__file__).resolve().parent / "worker.py"

# How long a worker may take beyond the evaluation's own deadline before the
# host calls it hung: the worker reaps the child and ships the result.
ANSWER_GRACE = 5.0
# A worker builds an input set on its first use (trusted spec code, not timed
# by the evaluation's deadline); this much longer is allowed then.
INPUT_BUILD_GRACE = 120.0
START_TIMEOUT = 120.0
_POOLS = itertools.count()


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits of one evaluation (all requested inputs together).

    Attributes:
      timeout: wall-clock seconds, enforced from outside the evaluated process.
      cpu_seconds: RLIMIT_CPU; None derives it from the timeout (threads burn
        CPU faster than the wall clock, so this catches them early).
      memory_mb: RLIMIT_AS of the evaluated child (includes the warm worker's
        own mappings, about 100 MB with numpy).
      file_size_mb: RLIMIT_FSIZE; the private /tmp holds 4x this (at least 64 MB).
      open_files: RLIMIT_NOFILE.
      output_bytes: cap on each of the captured stdout and stderr.
      result_bytes: cap on the JSON result.
    """

    timeout: float = 30.0
    cpu_seconds: float | None = None
    memory_mb: int = 2048
    file_size_mb: int = 16
    open_files: int = 64
    output_bytes: int = 1 << 20
    result_bytes: int = 64 << 20

    def for_worker(self) -> dict[str, float]:
        values = dataclasses.asdict(self)
        if self.cpu_seconds is None:
            values["cpu_seconds"] = math.ceil(self.timeout) + 1
        return values


class SandboxError(RuntimeError):
    """The pool cannot work at all (e.g. the spec fails to import in a worker)."""


@dataclasses.dataclass
class _Job:
    request: dict[str, Any]
    future: concurrent.futures.Future[Outcome]
    cancelled: bool = False  # while it waited in a worker's pipe: its answer is dropped


class SandboxPool:
    """A pool of warm sandbox workers for one spec file.

    Attributes:
      isolation: what the requested level resolved to, "bwrap" or "process".
      isolation_reason: why, in words (bubblewrap missing, probe failure, ...).
      isolation_detail: the layers in force, e.g. "bwrap; seccomp on;
        evaluations as uid 200123" (filled in once the workers have started).
      split: programs run in a process apart from the run function (program.py).
      own_uid: evaluations run under uids of their own (the host is root).
    """

    def __init__(
        self,
        spec_path: str | os.PathLike[str],
        workers: int = 2,
        limits: Limits = Limits(),
        isolation: str = "auto",
        split: bool = False,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.spec_path = Path(spec_path).resolve()
        if not self.spec_path.is_file():
            raise SandboxError(f"{self.spec_path}: spec file not found")
        self.limits = limits
        self.split = split
        # Under bwrap these stay visible even where they lie in /tmp or /root:
        # the spec's folder (helpers and data beside it), this folder.
        visible = (_isolation.spec_folder(self.spec_path), str(WORKER_SCRIPT.parent))
        choice = _resolve(isolation, visible)
        self.isolation = choice.level
        self.isolation_reason = choice.reason
        self.isolation_detail = choice.level
        self._visible = visible + _isolation.interpreter_paths()
        self._tmp: str | None = None
        if self.isolation == "process":
            self._tmp = tempfile.mkdtemp(prefix="funsearch-sandbox-")
            os.chmod(self._tmp, 0o711)  # evaluations (other uids) enter their own dirs only
        # As root, every worker slot of every pool in this process has a uid of its own.
        block = (os.getpid() % 4096) * 256 + next(_POOLS) % 256
        self._uid_base = _isolation.UID_BASE + block * 1024 if os.geteuid() == 0 else None
        self.own_uid = self._uid_base is not None
        # The largest answer a worker can rightly send: the result, or the
        # captured output JSON-escaped (up to 6 bytes a byte), plus room.
        self._answer_bytes = max(limits.result_bytes, 12 * limits.output_bytes) + (1 << 20)
        # Jobs wait in the backlog until a worker slot is free; a free slot
        # waits on its own inbox. The slot that became free last is served
        # first: its worker and its spare child are warm in the caches, so
        # evaluations one at a time all go to the same worker.
        self._backlog: collections.deque[_Job] = collections.deque()
        self._idle: list[int] = []
        self._inbox: list[queue.SimpleQueue[_Job | None]] = [
            queue.SimpleQueue() for _ in range(workers)
        ]
        self._closed = False
        self._lock = threading.Lock()
        self._workers: list[WorkerProcess | None] = [None] * workers
        self._started = [threading.Event() for _ in range(workers)]
        self._start_errors: list[str | None] = [None] * workers
        self._threads = [
            threading.Thread(target=self._serve, args=(slot,), daemon=True, name=f"sandbox-{slot}")
            for slot in range(workers)
        ]
        for thread in self._threads:
            thread.start()
        for event in self._started:
            event.wait()
        errors = [error for error in self._start_errors if error]
        if errors:
            self.close()
            raise SandboxError(f"{self.spec_path}: sandbox worker failed to start: {errors[0]}")

    # --- public API ------------------------------------------------------------

    def submit(
        self,
        program: str,
        function_name: str,
        input_set: str,
        input_ids: list[str] | None = None,
    ) -> concurrent.futures.Future[Outcome]:
        """Queues one evaluation: `program` run on `input_ids` of `input_set` (all if None)."""
        future: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        request = {
            "program": program,
            "function": function_name,
            "input_set": input_set,
            "input_ids": None if input_ids is None else [str(i) for i in input_ids],
        }
        with self._lock:
            if self._closed:
                raise RuntimeError("the sandbox pool is closed")
            self._hand_out(_Job(request, future))
        return future

    def run(
        self,
        program: str,
        function_name: str,
        input_set: str,
        input_ids: list[str] | None = None,
    ) -> Outcome:
        return self.submit(program, function_name, input_set, input_ids).result()

    def worker_pids(self) -> list[int]:
        """Host pids of the live worker processes (bwrap's, under bubblewrap)."""
        return [worker.pid for worker in self._workers if worker is not None]

    def close(self) -> None:
        """Stops the workers; evaluations still queued are cancelled."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            backlog, self._backlog = list(self._backlog), collections.deque()
        for job in backlog:
            job.future.cancel()
        for inbox in self._inbox:
            inbox.put(None)
        for worker in list(self._workers):
            if worker is not None:
                worker.kill()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=30)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- one thread per worker slot -------------------------------------------

    def _serve(self, slot: int) -> None:
        # The worker is started from this long-lived thread on purpose: bwrap's
        # --die-with-parent (PR_SET_PDEATHSIG) fires when the *thread* that
        # started it ends.
        try:
            self._workers[slot] = self._start(slot)
        except SandboxError as error:
            self._start_errors[slot] = str(error)
        finally:
            self._started[slot].set()
        try:
            self._feed(slot)
        finally:
            worker = self._workers[slot]
            self._workers[slot] = None
            if worker is not None:
                worker.close()

    def _feed(self, slot: int) -> None:
        """Runs the slot's jobs until the pool closes.

        While the worker evaluates one job, the next one from the backlog
        already waits in its pipe, so the worker starts it the moment it has
        answered: the host's turn-around (this thread waking, reading the
        answer, handing out work; slow when the machine is busy) is off the
        worker's path. A job waiting there starts (its future runs) only when
        the one before it has been answered; if the worker is lost first, it
        never ran and goes back to the backlog."""
        sent: collections.deque[_Job] = collections.deque()  # in the worker, oldest first
        job = self._claim(slot) or self._inbox[slot].get()
        while job is not None or sent:
            if job is not None:
                if job.future.set_running_or_notify_cancel():
                    failed = self._send(slot, job)
                    if failed is None:
                        sent.append(job)
                    else:
                        job.future.set_result(failed)
                job = None if sent else (self._claim(slot) or self._inbox[slot].get())
                continue
            if len(sent) == 1:
                self._send_ahead(slot, sent)
            head = sent.popleft()
            answered, replaced = self._answer(slot, head)
            if replaced:  # what waited in the lost worker's pipe never ran
                while sent:
                    self._requeue(sent.pop())
            elif sent and not sent[0].future.set_running_or_notify_cancel():
                sent[0].cancelled = True  # it runs anyway; nobody hears of it
            if not sent:
                job = self._claim(slot)  # idle again before the caller hears
            if not head.cancelled:
                head.future.set_result(answered)
            if not sent and job is None:
                job = self._inbox[slot].get()

    def _claim(self, slot: int) -> _Job | None:
        """The next job from the backlog, or None with the slot marked idle."""
        with self._lock:
            if self._backlog and not self._closed:
                return self._backlog.popleft()
            self._idle.append(slot)
            return None

    def _send_ahead(self, slot: int, sent: collections.deque[_Job]) -> None:
        """Puts the next job from the backlog, if any, behind the running one."""
        with self._lock:
            if not self._backlog or self._closed:
                return
            job = self._backlog.popleft()
        worker = self._workers[slot]
        try:
            assert worker is not None  # the running job was sent to it
            worker.send(job.request)
        except WorkerLost:  # the running job's answer will say so
            self._requeue(job)
            return
        sent.append(job)

    def _requeue(self, job: _Job) -> None:
        """A job that never ran, first in line again."""
        with self._lock:
            if not self._closed:
                self._hand_out(job, first=True)
                return
        job.future.cancel()

    def _hand_out(self, job: _Job, first: bool = False) -> None:
        """To an idle slot if one waits, else into the backlog (at its head if
        `first`). The caller holds the lock."""
        if self._idle:
            self._inbox[self._idle.pop()].put(job)
        elif first:
            self._backlog.appendleft(job)
        else:
            self._backlog.append(job)

    def _send(self, slot: int, job: _Job) -> Outcome | None:
        """Hands the job to the slot's worker (started anew if it is gone);
        the Outcome if that failed."""
        worker = self._workers[slot]
        if worker is not None and worker.process.poll() is not None:
            self._replace(slot, worker)  # died while idle: not this evaluation's doing
            worker = self._workers[slot]
        if worker is None:
            try:
                worker = self._workers[slot] = self._start(slot)
            except SandboxError as error:
                return Outcome("error", None, f"sandbox worker could not start: {error}")
        try:
            worker.send(job.request)
        except WorkerLost as error:
            self._replace(slot, worker)
            return Outcome("crashed", None, f"the sandbox worker was lost ({error})")
        return None

    def _answer(self, slot: int, job: _Job) -> tuple[Outcome, bool]:
        """The worker's answer to its oldest job, and whether the worker was
        replaced (lost, or no answer in time)."""
        worker = self._workers[slot]
        assert worker is not None  # the job was sent to it
        input_set = job.request["input_set"]
        grace = ANSWER_GRACE + (0.0 if input_set in worker.warm else INPUT_BUILD_GRACE)
        began = time.monotonic()
        try:
            deadline = began + self.limits.timeout + grace
            header, payload = worker.receive(deadline, self._answer_bytes)
        except (WorkerLost, WorkerHung) as error:
            self._replace(slot, worker)
            duration = time.monotonic() - began
            if self._closed:
                return Outcome("error", None, "the sandbox pool was closed", duration), True
            if isinstance(error, WorkerHung):
                detail = "the sandbox worker did not answer in time; it was replaced"
                return Outcome("timeout", None, detail, duration), True
            detail = f"the sandbox worker was lost ({error})"
            return Outcome("crashed", None, detail, duration), True
        worker.warm.add(input_set)
        return outcome(header, payload), False

    def _replace(self, slot: int, worker: WorkerProcess) -> None:
        worker.close()
        self._workers[slot] = None
        if not self._closed:
            try:
                self._workers[slot] = self._start(slot)
            except SandboxError:
                pass  # the next evaluation in this slot tries again and says why

    def _start(self, slot: int) -> WorkerProcess:
        uid = None if self._uid_base is None else self._uid_base + slot
        config = {
            "limits": self.limits.for_worker(),
            "uid": uid,
            "split": self.split,
            # Under bwrap each worker has its own /tmp; otherwise one folder per slot.
            "folder": "/tmp/evaluation" if self.isolation == "bwrap" else f"{self._tmp}/{slot}",
        }
        script, spec = str(WORKER_SCRIPT), str(self.spec_path)
        command = [sys.executable, "-B", script, spec, json.dumps(config)]
        if self.isolation == "bwrap":
            tmp_mb = max(64, 4 * self.limits.file_size_mb)
            command = _isolation.bwrap_command(command, self._visible, tmp_mb)
        try:
            worker = WorkerProcess(command)
        except OSError as error:
            raise SandboxError(f"cannot start {command[0]}: {error}") from None
        try:
            hello, _ = worker.receive(time.monotonic() + START_TIMEOUT, self._answer_bytes)
        except (WorkerLost, WorkerHung) as error:
            worker.close()
            raise SandboxError(f"no hello from the worker: {error or 'timed out'}") from None
        if not hello.get("ready"):
            worker.close()
            raise SandboxError(str(hello.get("error", "unknown error")))
        worker.hello = hello
        who = f"evaluations as uid {uid}" if uid is not None else "evaluations under the host's uid"
        self.isolation_detail = f"{self.isolation}; {hello.get('seccomp')}; {who}"
        return worker


def _resolve(requested: str, bind_paths: tuple[str, ...]) -> _isolation.Choice:
    try:
        return _isolation.resolve(requested, bind_paths)
    except _isolation.IsolationError as error:
        raise SandboxError(str(error)) from None
