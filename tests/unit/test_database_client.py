"""The loop's side of the database: batched calls to a database in another thread.

The remote database here is a real ProgramsDatabase behind a one-thread
executor, which runs calls in the order they were sent -- the contract the Ray
database actor keeps -- so the batching and ordering are tested without Ray
(the Ray runtime's tests run the same class against the actor).
"""

from __future__ import annotations

import concurrent.futures as cf
import time

from funsearch import database_client
from funsearch.config import DatabaseConfig
from funsearch.database import ProgramsDatabase


class ThreadedDatabase:
    """A database answering `submit` calls on its own thread, in order; counts the calls."""

    def __init__(self):
        config = DatabaseConfig(islands=2, functions_per_prompt=1, reset_every=None,
                                reset_period=None)
        self.database = ProgramsDatabase(config, seed=0)
        self.database.register_initial("def f(x):\n    return x\n", {"a": 1.0})
        self._executor = cf.ThreadPoolExecutor(max_workers=1)
        self.calls: list[tuple[str, int]] = []

    def submit(self, method: str, *args):
        self.calls.append((method, len(args[0]) if method == "register_many" else args[0]))
        return self._executor.submit(getattr(self.database, method), *args)


def _program(i: int) -> str:
    return f"def f(x):\n    return x + {i}\n"


def test_registrations_go_in_batches_and_are_answered_in_order():
    remote = ThreadedDatabase()
    client = database_client.RemoteDatabase(remote)
    answered: list[int] = []
    total = database_client.REGISTER_BATCH * 2 + 3
    for i in range(total):
        prompt = client.prompt()
        client.register((_program(i), {"a": 2.0 + i}, prompt, "s"),
                        lambda registration, i=i: answered.append((i, registration.program.source)))
        client.send()  # sends only a full batch (the delay has not passed)
    assert client.busy
    client.send(force=True)
    while client.waiting():
        cf.wait(client.waiting())
        client.deliver()
    assert [i for i, _ in answered] == list(range(total))
    assert all(source == _program(i) for i, source in answered)
    sizes = [size for method, size in remote.calls if method == "register_many"]
    assert sizes == [database_client.REGISTER_BATCH] * 2 + [3]
    assert len(remote.database.programs()) == 2 + total  # the initial program on each island
    assert not client.busy


def test_queued_registrations_are_due_after_the_delay():
    client = database_client.RemoteDatabase(ThreadedDatabase())
    assert client.wake_in() is None
    client.register((_program(1), {"a": 2.0}, client.prompt(), "s"), lambda registration: None)
    assert 0 < client.wake_in() <= database_client.REGISTER_DELAY
    time.sleep(database_client.REGISTER_DELAY)
    assert client.wake_in() == 0
    client.send()
    assert len(client.waiting()) == 1


def test_prompts_are_fetched_in_batches_the_next_asked_for_ahead():
    remote = ThreadedDatabase()
    client = database_client.RemoteDatabase(remote)
    batch = database_client.PROMPT_BATCH
    for _ in range(2 * batch):
        client.prompt()
    # Two batches used, and the third already asked for.
    assert remote.calls == [("prompts", batch)] * 3


def test_a_local_database_answers_at_once():
    remote = ThreadedDatabase()
    client = database_client.client(remote.database)
    answered = []
    client.register((_program(1), {"a": 2.0}, client.prompt(), "s"), answered.append)
    assert answered[0].program is not None
    assert not client.busy and client.waiting() == [] and client.wake_in() is None
