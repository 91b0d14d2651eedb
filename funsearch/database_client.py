"""How the search loop talks to the programs database: in place, or in batches.

The loop (and the experiment around it) reaches the database only through a
client here, with the same methods either way: register the initial program,
take a prompt, register a program, the best program and each island's best
score. The inline runtime's database lives in the loop's own process and is
called directly. The Ray database lives in an actor, and an actor call is dear: on
a 2-core machine about 1.2-1.7 ms of CPU over the caller, the actor and
Ray's threads, more than a sample costs the loop to handle. So the loop
calls it seldom: each call is an `exchange` that applies the registrations
queued since the last one and returns a few prompts for later. A call goes
when the last prompt fetched ahead is taken (the registrations ride along)
or when the registrations have waited REGISTER_DELAY or filled a batch,
without waiting for the answer, and its answer brings each island's best
score along for the live view. A registration's answer is handled by a
callback, in the order the database applied them, so the run log replays to
the same state.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import time
from collections.abc import Callable
from typing import Any

from funsearch.programs import Program, Prompt, Registration

# Registrations wait for this many, or this long, unless a prompt fetch takes
# them first; prompts are fetched this many at a time. At the rates of a fast
# proposer (tens of prompts a second) a fetch goes every ~0.1 s, so most
# registrations ride along with one.
REGISTER_BATCH = 32
REGISTER_DELAY = 0.1
PROMPT_BATCH = 4

Answer = Callable[[Registration], None]


class LocalDatabase:
    """A database in this process: every call answered at once."""

    def __init__(self, database: Any):
        self._database = database

    def register_initial(self, source: str, scores: dict[str, float],
                         program_hash: str) -> list[Program]:
        return self._database.register_initial(source, scores, program_hash)

    def prompt(self) -> Prompt:
        return self._database.prompt()

    def register(self, arguments: tuple, answer: Answer) -> None:
        answer(self._database.register(*arguments))

    def best(self) -> Program:
        return self._database.best()

    def island_best_scores(self) -> list[float]:
        return self._database.island_best_scores()

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
        # Exchanges sent and not yet delivered, with the answers their registrations await.
        self._registering: collections.deque[tuple[cf.Future, list[Answer]]] = (
            collections.deque())
        self._prompts: collections.deque[Prompt] = collections.deque()
        self._prompts_coming: cf.Future | None = None
        self._island_best: list[float] | None = None  # as of the last answer

    def register_initial(self, source: str, scores: dict[str, float],
                         program_hash: str) -> list[Program]:
        """Waits for the answer: nothing else can happen before it."""
        programs = self._call("register_initial", source, scores, program_hash)
        self._island_best = [program.score for program in programs]
        return programs

    def best(self) -> Program:
        """The best program once the database has applied every call sent before."""
        return self._call("best")

    def island_best_scores(self) -> list[float]:
        """Each island's best score as of the last exchange answered (asked for
        once, and waited for, before the first)."""
        if self._island_best is None:
            self._island_best = self._call("island_best_scores")
        return self._island_best

    def prompt(self) -> Prompt:
        """A prompt from the batch fetched ahead; the next batch is asked for
        as the last one is taken, so the loop seldom waits."""
        if not self._prompts:
            coming = self._prompts_coming or self._exchange(PROMPT_BATCH)
            self._prompts.extend(coming.result()[1])
            self._prompts_coming = None
        chosen = self._prompts.popleft()
        if not self._prompts:
            self._prompts_coming = self._exchange(PROMPT_BATCH)
        return chosen

    def register(self, arguments: tuple, answer: Answer) -> None:
        """Queues a registration; `answer` gets the Registration once the
        database has applied it (see deliver)."""
        if not self._to_register:
            self._first_to_register = time.monotonic()
        self._to_register.append((arguments, answer))

    def waiting(self) -> list[cf.Future]:
        """The exchanges sent and not delivered yet."""
        return [future for future, _ in self._registering]

    def wake_in(self) -> float | None:
        """Seconds until the queued registrations are due to be sent."""
        if not self._to_register:
            return None
        return max(0.0, self._first_to_register + REGISTER_DELAY - time.monotonic())

    def deliver(self) -> None:
        """Hands answered registrations to their callbacks, oldest exchange
        first: the order the database applied them."""
        while self._registering and self._registering[0][0].done():
            future, answers = self._registering.popleft()
            registrations, _, self._island_best = future.result()
            for registration, answer in zip(registrations, answers, strict=True):
                answer(registration)

    def send(self, force: bool = False) -> None:
        """Sends the queued registrations without waiting for the answer (the
        loop goes on while the database works) once there are REGISTER_BATCH,
        the oldest has waited REGISTER_DELAY, or `force` (nothing else is in
        flight)."""
        due = time.monotonic() - self._first_to_register >= REGISTER_DELAY
        if self._to_register and (force or due or len(self._to_register) >= REGISTER_BATCH):
            self._exchange(0)

    def _exchange(self, prompts: int) -> cf.Future:
        """One call: the queued registrations, then `prompts` prompts."""
        arguments = [arguments for arguments, _ in self._to_register]
        future = self._database.submit("exchange", arguments, prompts)
        self._registering.append((future, [answer for _, answer in self._to_register]))
        self._to_register = []
        return future

    def _call(self, method: str, *args: Any) -> Any:
        """One call, waited for (the database runs calls in the order sent)."""
        return self._database.submit(method, *args).result()

    @property
    def busy(self) -> bool:
        """Registrations queued or sent and not yet delivered."""
        return bool(self._to_register or self._registering)


def client(database: Any) -> LocalDatabase | RemoteDatabase:
    """The client for a database object or a proxy of one."""
    return RemoteDatabase(database) if hasattr(database, "submit") else LocalDatabase(database)
