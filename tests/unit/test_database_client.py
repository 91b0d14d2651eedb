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
        self.calls: list[tuple[int, int]] = []  # (registrations, prompts) of each exchange
        self.others: list[str] = []  # the other methods called

    def submit(self, method: str, *args):
        if method == "exchange":
            registrations, prompts = args
            self.calls.append((len(registrations), prompts))
        else:
            self.others.append(method)
        return self._executor.submit(getattr(self.database, method), *args)


def _program(i: int) -> str:
    return f"def f(x):\n    return x + {i}\n"


def _drain(client: database_client.RemoteDatabase) -> None:
    client.send(force=True)
    while client.waiting():
        cf.wait(client.waiting())
        client.deliver()


def test_registrations_ride_with_prompt_fetches_and_are_answered_in_order():
    remote = ThreadedDatabase()
    client = database_client.RemoteDatabase(remote)
    answered: list[tuple[int, str]] = []
    batch = database_client.PROMPT_BATCH
    total = 3 * batch + 1
    for i in range(total):
        prompt = client.prompt()
        client.register((_program(i), {"a": 2.0 + i}, prompt, "s", f"h{i}"),
                        lambda registration, i=i: answered.append((i, registration.program.source)))
        client.send()  # neither a full batch nor due: they wait for the next fetch
    _drain(client)
    assert [i for i, _ in answered] == list(range(total))
    assert all(source == _program(i) for i, source in answered)
    # The first prompt waits for a fetch; from then on a fetch goes as the last
    # prompt fetched ahead is taken, with the registrations queued by then.
    assert remote.calls == [(0, batch), (batch - 1, batch), (batch, batch), (batch, batch),
                            (2, 0)]
    assert len(remote.database.programs()) == 2 + total  # the initial program on each island
    assert not client.busy


def test_a_full_batch_of_registrations_goes_without_waiting_for_a_fetch():
    remote = ThreadedDatabase()
    client = database_client.RemoteDatabase(remote)
    prompt = client.prompt()
    for i in range(database_client.REGISTER_BATCH + 1):
        client.register((_program(i), {"a": 2.0 + i}, prompt, "s", f"h{i}"), lambda registration: None)
        client.send()
    assert remote.calls[1:] == [(database_client.REGISTER_BATCH, 0)]
    _drain(client)
    assert remote.calls[-1] == (1, 0)


def test_prompts_show_the_registrations_sent_with_their_fetch():
    remote = ThreadedDatabase()
    client = database_client.RemoteDatabase(remote)
    prompts = [client.prompt() for _ in range(database_client.PROMPT_BATCH - 1)]
    best = "def f(x):\n    return x * 100\n"
    for prompt in prompts:  # a much better program on every island
        client.register((best, {"a": 100.0}, prompt, "s", "best"), lambda registration: None)
    client.register((best, {"a": 100.0}, client.prompt(), "s", "best"), lambda registration: None)
    # The fetch ahead went as the batch's last prompt was taken, carrying the
    # registrations of the first ones: the islands they reached show them.
    islands = {prompt.island for prompt in prompts}
    shown = [max(parent.score for parent in prompt.parents)
             for prompt in [client.prompt() for _ in range(database_client.PROMPT_BATCH)]
             if prompt.island in islands]
    assert shown and all(score == 100.0 for score in shown)
    _drain(client)


def test_queued_registrations_are_due_after_the_delay():
    client = database_client.RemoteDatabase(ThreadedDatabase())
    prompt = client.prompt()
    _drain(client)  # the fetch ahead
    assert client.wake_in() is None
    client.register((_program(1), {"a": 2.0}, prompt, "s", "h1"), lambda registration: None)
    assert 0 < client.wake_in() <= database_client.REGISTER_DELAY
    client.send()
    assert client.waiting() == []
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
    assert remote.calls == [(0, batch)] * 3


def test_a_local_database_answers_at_once():
    remote = ThreadedDatabase()
    client = database_client.client(remote.database)
    answered = []
    client.register((_program(1), {"a": 2.0}, client.prompt(), "s", "h1"), answered.append)
    assert answered[0].program is not None
    assert not client.busy and client.waiting() == [] and client.wake_in() is None


def test_the_remote_client_answers_as_a_local_one_with_island_bests_riding_along():
    """Best, island bests and a program already on its island: the same answers
    in place and remote; the island bests come with the exchanges' answers."""
    remote = ThreadedDatabase()
    clients = {"local": database_client.LocalDatabase(ThreadedDatabase().database),
               "remote": database_client.RemoteDatabase(remote)}
    answers = {}
    for name, client in clients.items():
        answered = []
        prompt = client.prompt()
        for _ in range(2):
            client.register((_program(7), {"a": 5.0}, prompt, "s", "h7"), answered.append)
        if name == "remote":
            _drain(client)
        answers[name] = ([(r.known, r.program and r.program.id) for r in answered],
                         client.island_best_scores(), client.best().source)
    assert answers["local"] == answers["remote"]
    assert answers["remote"][0] == [(False, 2), (True, None)]
    assert sorted(answers["remote"][1]) == [1.0, 5.0] and answers["remote"][2] == _program(7)
    assert remote.others == ["best"]
