"""Calls to a group of Ray actors that serve the same calls, and what to do
when one of them dies.

A call goes to the least busy actor that is up. A call whose actor died (a
node lost, an OOM kill, `ray.kill`) is sent again after a pause, to another
actor when one is up; the pauses grow, and together they outlast the seconds
Ray takes to notice a lost node and restart its actors. Each retry is an
event for the run log. A call that still fails, or gets no answer by its
deadline, fails its future with the error, so the caller decides what a lost
call means (an Evaluation with status "lost", a logged sampler error).
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Callable
from typing import Any

from ray.exceptions import RayActorError, RayTaskError

from funsearch import events

EventSink = Callable[[events.Event], Any]  # RunLog.write

# Pauses before a call whose actor died is sent again.
_RETRY_PAUSES = (0.2, 1.0, 2.0, 4.0, 8.0, 16.0)


class Replicas:
    """Actors that serve the same calls. A call goes to the least busy actor
    that is up; a call whose actor died is sent again after a pause, to
    another actor when one is up, until the pauses run out. A call without an
    answer by its deadline fails with TimeoutError, so nothing waits forever
    on an actor that cannot be restarted."""

    def __init__(self, kind: str, actors: list[Any], on_event: EventSink,
                 deadline: float | None = None):
        self.kind = kind
        self.actors = actors
        self._on_event = on_event
        self._deadline = deadline
        self._busy = [0] * len(actors)
        self._down_until = [0.0] * len(actors)
        self._lock = threading.Lock()
        self._waiting: dict[cf.Future, float] = {}  # result -> deadline (monotonic)
        self._closed = threading.Event()
        if deadline is not None:
            threading.Thread(target=self._watch, name=f"{kind}-deadlines", daemon=True).start()

    def call(self, method: str, *args: Any, weight: int = 1) -> cf.Future:
        """`weight`: how much work the call is (evaluations in a batch), for the
        choice of the least busy actor."""
        result: cf.Future = cf.Future()
        if self._deadline is not None:
            with self._lock:
                self._waiting[result] = time.monotonic() + self._deadline
            result.add_done_callback(self._forget)
        self._send(result, method, args, attempt=0, weight=weight)
        return result

    def busy(self) -> list[int]:
        with self._lock:
            return list(self._busy)

    def close(self) -> None:
        self._closed.set()

    def _pick(self, weight: int) -> int:
        now = time.monotonic()
        with self._lock:
            up = [i for i in range(len(self.actors)) if self._down_until[i] <= now]
            index = min(up or range(len(self.actors)),
                        key=lambda i: (self._busy[i], self._down_until[i]))
            self._busy[index] += weight
        return index

    def _send(self, result: cf.Future, method: str, args: tuple, attempt: int,
              weight: int = 1) -> None:
        if result.done():  # its deadline passed while it waited to be sent again
            return
        index = self._pick(weight)
        try:
            reply = getattr(self.actors[index], method).remote(*args).future()
        except Exception as error:  # e.g. the actor handle is gone for good
            failed: cf.Future = cf.Future()
            failed.set_exception(error)
            reply = failed
        reply.add_done_callback(
            lambda done: self._on_reply(done, index, result, method, args, attempt, weight))

    def _on_reply(self, reply: cf.Future, index: int, result: cf.Future, method: str,
                  args: tuple, attempt: int, weight: int) -> None:
        with self._lock:
            self._busy[index] -= weight
        error = reply.exception()
        if result.done():
            return
        if error is None:
            _settle(result, value=reply.result())
            return
        if isinstance(error, RayTaskError):  # the method raised: its own exception
            _settle(result, error=_cause(error))
            return
        if not isinstance(error, RayActorError) or attempt >= len(_RETRY_PAUSES):
            _settle(result, error=error)
            return
        pause = _RETRY_PAUSES[attempt]
        with self._lock:
            self._down_until[index] = time.monotonic() + pause
            others_up = any(until <= time.monotonic() for until in self._down_until)
        retry = events.SamplerRetry if self.kind == "sampler" else events.EvaluationRetry
        self._on_event(retry(actor=index, attempt=attempt + 1, reason=describe(error)))
        # Sent from a timer thread, never from Ray's callback thread.
        timer = threading.Timer(0.0 if others_up else pause, self._send,
                                args=(result, method, args, attempt + 1, weight))
        timer.daemon = True
        timer.start()

    def _forget(self, result: cf.Future) -> None:
        with self._lock:
            self._waiting.pop(result, None)

    def _watch(self) -> None:
        while not self._closed.wait(1.0):
            now = time.monotonic()
            with self._lock:
                late = [result for result, deadline in self._waiting.items() if deadline < now]
            for result in late:
                _settle(result, error=TimeoutError(
                    f"no {self.kind} actor answered within {self._deadline:.0f} s"))


def _settle(result: cf.Future, value: Any = None, error: BaseException | None = None) -> None:
    """Completes a future unless a deadline or a retry got there first."""
    try:
        if error is None:
            result.set_result(value)
        else:
            result.set_exception(error)
    except cf.InvalidStateError:
        pass


def _cause(error: RayTaskError) -> BaseException:
    """The exception an actor method raised, as if it had been raised here."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


def describe(error: BaseException) -> str:
    """The error's type and first line: Ray's messages run to tracebacks."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first_line}"[:300]
