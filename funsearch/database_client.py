"""How the search loop talks to the programs database: in place, or in batches.

The inline runtime's database lives in the loop's own process and is called
directly. The Ray database lives in an actor, and every actor call costs the
driver about as much as handling a sample; so registrations are sent in
batches without waiting for the answer, and prompts are fetched a few at a
time, the next few asked for before they are needed. Either way the loop
sees the same two operations: take a prompt, register a program (its
answer handled by a callback, in the order the database applied them, so
the run log replays to the same state).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import time
from collections.abc import Callable
from typing import Any

from funsearch.database import Prompt, Registration

# Registrations wait for this many, or this long, and prompts are fetched this many at a time.
REGISTER_BATCH = 8
REGISTER_DELAY = 0.02
PROMPT_BATCH = 2

Answer = Callable[[Registration], None]


class LocalDatabase:
    """A database in this process: every call answered at once."""

    def __init__(self, database: Any):
        self._database = database

    def prompt(self) -> Prompt:
        return self._database.prompt()

    def register(self, arguments: tuple, answer: Answer) -> None:
        answer(self._database.register(*arguments))

    def waiting(self) -> list[cf.Future]:
        return []

    def wake_in(self) -> float | None:
        return None

    def deliver(self) -> None:
        pass

    def send(self, force: bool = False) -> None:
        pass

    @property
    def busy(self) -> bool:
        return False


class RemoteDatabase:
    """A database behind a proxy with `submit(method, *args) -> Future` that
    runs calls in the order they were sent (the Ray database actor)."""

    def __init__(self, database: Any):
        self._database = database
        self._to_register: list[tuple[tuple, Answer]] = []
        self._first_to_register = 0.0  # time.monotonic() of the oldest of them
        self._registering: collections.deque[tuple[cf.Future, list[Answer]]] = (
            collections.deque())
        self._prompts: collections.deque[Prompt] = collections.deque()
        self._prompts_coming: cf.Future | None = None

    def prompt(self) -> Prompt:
        """A prompt from the batch fetched ahead; the next batch is asked for
        as the last one is taken, so the loop seldom waits."""
        if not self._prompts:
            if self._prompts_coming is None:
                self._prompts_coming = self._database.submit("prompts", PROMPT_BATCH)
            self._prompts.extend(self._prompts_coming.result())
            self._prompts_coming = None
        chosen = self._prompts.popleft()
        if not self._prompts:
            self._prompts_coming = self._database.submit("prompts", PROMPT_BATCH)
        return chosen

    def register(self, arguments: tuple, answer: Answer) -> None:
        """Queues a registration; `answer` gets the Registration once the
        database has applied it (see deliver)."""
        if not self._to_register:
            self._first_to_register = time.monotonic()
        self._to_register.append((arguments, answer))

    def waiting(self) -> list[cf.Future]:
        """The registration batches sent and not answered yet."""
        return [future for future, _ in self._registering]

    def wake_in(self) -> float | None:
        """Seconds until the queued registrations are due to be sent."""
        if not self._to_register:
            return None
        return max(0.0, self._first_to_register + REGISTER_DELAY - time.monotonic())

    def deliver(self) -> None:
        """Hands answered registrations to their callbacks, oldest batch first:
        the order the database applied them."""
        while self._registering and self._registering[0][0].done():
            future, answers = self._registering.popleft()
            for registration, answer in zip(future.result(), answers, strict=True):
                answer(registration)

    def send(self, force: bool = False) -> None:
        """Sends the queued registrations in one call, without waiting for the
        answer: the loop goes on while the database works. They go once there
        are REGISTER_BATCH, the oldest has waited REGISTER_DELAY, or `force`
        (nothing else is in flight)."""
        due = time.monotonic() - self._first_to_register >= REGISTER_DELAY
        if self._to_register and (force or due or len(self._to_register) >= REGISTER_BATCH):
            arguments = [arguments for arguments, _ in self._to_register]
            answers = [answer for _, answer in self._to_register]
            self._registering.append((self._database.submit("register_many", arguments),
                                      answers))
            self._to_register = []

    @property
    def busy(self) -> bool:
        """Registrations queued or sent and not yet answered."""
        return bool(self._to_register or self._registering)


def client(database: Any) -> LocalDatabase | RemoteDatabase:
    """The client for a database object or a proxy of one."""
    return RemoteDatabase(database) if hasattr(database, "submit") else LocalDatabase(database)
