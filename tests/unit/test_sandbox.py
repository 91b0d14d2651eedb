"""The sandbox pool in normal use: outputs, errors, deadlines, worker replacement,
concurrency and the isolation level it reports. Real worker processes throughout;
the hostile programs are in tests/security/."""

from __future__ import annotations

import os
import signal
import textwrap
import time

import pytest

from sandbox import isolation
from sandbox import pool as pool_module
from sandbox.pool import Limits, SandboxError, SandboxPool

SPEC = """
import numpy as np
import funsearch


@funsearch.inputs
def train():
    return {"a": [1, 2, 3], "b": [4, 5], "c": []}


@funsearch.inputs
def listed():
    return [[10], [20, 30]]


@funsearch.run
def solve(instance):
    return total(instance)


@funsearch.evolve
def total(numbers):
    return sum(numbers)
"""

LEVELS = [
    pytest.param(
        "bwrap",
        marks=pytest.mark.skipif(
            isolation.resolve("auto").level != "bwrap", reason=isolation.resolve("auto").reason
        ),
    ),
    "process",
]


def dead(pid: int) -> bool:
    """Exited (a zombie not yet reaped by its parent counts)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True


def program(body: str) -> str:
    return "def total(numbers):\n" + textwrap.indent(textwrap.dedent(body).strip(), "    ")


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("sandbox") / "totals.py"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module", params=LEVELS)
def pool(request, spec_path):
    with SandboxPool(
        spec_path, workers=2, limits=Limits(timeout=20.0), isolation=request.param
    ) as sandbox:
        yield sandbox


def test_outputs_come_one_per_requested_input_in_order(pool):
    outcome = pool.run(program("return sum(numbers) * 10"), "total", "train", ["c", "a"])
    assert (outcome.status, outcome.outputs, outcome.detail) == ("ok", [0, 60], "")
    assert outcome.duration > 0


def test_all_inputs_are_evaluated_when_no_ids_are_given(pool):
    assert pool.run(program("return len(numbers)"), "total", "train").outputs == [3, 2, 0]


def test_a_listed_input_set_has_its_indices_as_ids(pool):
    assert pool.run(program("return numbers[-1]"), "total", "listed", ["1"]).outputs == [30]


def test_numpy_results_come_back_as_plain_lists_and_numbers(pool):
    body = "return [np.array(numbers) * 2, np.float64(0.5), np.int64(len(numbers))]"
    outcome = pool.run(program(body), "total", "train", ["a"])
    assert outcome.outputs == [[[2, 4, 6], 0.5, 3]]


def test_an_exception_is_an_error_with_its_type_and_message(pool):
    outcome = pool.run(program("return 1 / len(numbers)"), "total", "train")
    assert outcome.status == "error"
    assert outcome.detail == "ZeroDivisionError: division by zero (at program:2 in total) [input c]"
    assert outcome.outputs is None


def test_a_long_exception_message_is_truncated(pool):
    outcome = pool.run(program("raise ValueError('v' * 100_000)"), "total", "train")
    assert outcome.status == "error"
    assert outcome.detail.startswith("ValueError: vvv")
    assert len(outcome.detail) < 1100


def test_a_syntax_error_in_the_program_is_an_error(pool):
    outcome = pool.run("def total(numbers):\n    return (", "total", "train")
    assert outcome.status == "error"
    assert outcome.detail.startswith("SyntaxError: ")


def test_a_program_without_the_evolved_function_is_an_error(pool):
    outcome = pool.run("def other(numbers):\n    return 0\n", "total", "train")
    assert (outcome.status, outcome.detail) == ("error", "the program does not define 'total'")


def test_an_unknown_input_set_or_input_id_is_an_error(pool):
    unknown_set = pool.run(program("return 0"), "total", "holdout")
    assert unknown_set.status == "error"
    assert unknown_set.detail == "LookupError: no input set 'holdout' (the spec has: train, listed)"
    unknown_id = pool.run(program("return 0"), "total", "train", ["a", "zz"])
    assert (unknown_id.status, unknown_id.detail) == (
        "error",
        "LookupError: input set 'train' has no input zz",
    )


def test_stdout_and_stderr_are_captured_per_evaluation(pool):
    body = "import sys\nprint('out', len(numbers))\nprint('err', file=sys.stderr)\nreturn 0"
    outcome = pool.run(program(body), "total", "train", ["a", "b"])
    assert (outcome.stdout, outcome.stderr) == ("out 3\nout 2\n", "err\nerr\n")
    assert pool.run(program("return 0"), "total", "train").stdout == ""


def test_the_evaluation_runs_in_a_clean_environment_and_its_own_folder(pool):
    body = "import os, tempfile\nreturn [sorted(os.environ), os.getcwd() == tempfile.gettempdir()]"
    names, own_folder = pool.run(program(body), "total", "train", ["a"]).outputs[0]
    assert "PATH" in names and "TMPDIR" in names
    assert not [name for name in names if name.startswith(("PYTEST", "CI", "USER"))]
    assert own_folder


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid is only dropped when the host is root")
def test_as_root_the_evaluation_runs_under_an_unprivileged_uid(pool):
    uid, gid = pool.run(
        program("import os\nreturn [os.getuid(), os.getgid()]"), "total", "train", ["a"]
    ).outputs[0]
    assert uid >= isolation.UID_BASE and gid == uid


@pytest.mark.parametrize("level", LEVELS)
def test_a_program_past_the_deadline_is_a_timeout(spec_path, level):
    with SandboxPool(spec_path, workers=1, limits=Limits(timeout=0.3), isolation=level) as pool:
        outcome = pool.run(program("import time\ntime.sleep(60)"), "total", "train")
        assert (outcome.status, outcome.detail) == (
            "timeout",
            "exceeded the 0.3 s wall-clock limit",
        )
        assert pool.run(program("return 1"), "total", "train", ["a"]).outputs == [1]


def test_cpu_time_past_its_limit_is_a_timeout(spec_path):
    limits = Limits(timeout=60.0, cpu_seconds=1)
    with SandboxPool(spec_path, workers=1, limits=limits, isolation="process") as pool:
        outcome = pool.run(program("while True:\n    pass"), "total", "train")
        assert (outcome.status, outcome.detail) == ("timeout", "exceeded the 1 s CPU time limit")


def test_a_killed_worker_is_replaced_and_no_queued_evaluation_is_lost(pool):
    sleepers = [
        pool.submit(program("import time\ntime.sleep(1)\nreturn 1"), "total", "train", ["a"])
        for _ in range(2)
    ]
    queued = [pool.submit(program(f"return {n}"), "total", "train", ["a"]) for n in range(4)]
    time.sleep(0.3)
    victim = pool.worker_pids()[0]
    os.killpg(victim, signal.SIGKILL)
    lost, finished = sorted((future.result() for future in sleepers), key=lambda o: o.status)
    assert lost.status == "crashed" and lost.detail.startswith("the sandbox worker was lost")
    assert finished.outputs == [1]
    # Every queued evaluation ran, on the surviving worker or the replacement.
    assert [future.result().outputs for future in queued] == [[0], [1], [2], [3]]
    assert victim not in pool.worker_pids() and len(pool.worker_pids()) == 2
    assert pool.run(program("return 7"), "total", "train", ["a"]).outputs == [7]


@pytest.mark.parametrize("level", LEVELS)
def test_a_worker_that_died_while_idle_is_replaced_before_the_next_evaluation(spec_path, level):
    with SandboxPool(spec_path, workers=1, isolation=level) as pool:
        [victim] = pool.worker_pids()
        os.killpg(victim, signal.SIGKILL)
        while not dead(victim):
            time.sleep(0.01)
        outcome = pool.run(program("return 1"), "total", "train", ["a"])
        assert (outcome.status, outcome.outputs) == ("ok", [1])
        assert pool.worker_pids() != [victim]


@pytest.mark.parametrize("level", LEVELS)
def test_a_worker_that_stops_answering_is_killed_and_replaced(spec_path, level, monkeypatch):
    monkeypatch.setattr(pool_module, "ANSWER_GRACE", 0.2)
    with SandboxPool(spec_path, workers=1, limits=Limits(timeout=0.3), isolation=level) as pool:
        pool.run(program("return 0"), "total", "train")  # built: no input-build grace now
        [stopped] = pool.worker_pids()
        os.killpg(stopped, signal.SIGSTOP)
        outcome = pool.run(program("return 0"), "total", "train")
        assert outcome.status == "timeout"
        assert outcome.detail == "the sandbox worker did not answer in time; it was replaced"
        assert pool.worker_pids() != [stopped]
        assert pool.run(program("return 2"), "total", "train", ["a"]).outputs == [2]


def test_workers_evaluate_side_by_side(pool):
    started = time.monotonic()
    futures = [
        pool.submit(program("import time\ntime.sleep(0.5)\nreturn 1"), "total", "train", ["a"])
        for _ in range(4)
    ]
    outcomes = [future.result() for future in futures]
    elapsed = time.monotonic() - started
    assert [outcome.outputs for outcome in outcomes] == [[1]] * 4
    # Four evaluations of at least 0.5 s each took less than their sum: they overlapped.
    assert sum(outcome.duration for outcome in outcomes) > elapsed


def test_random_draws_are_the_same_in_every_evaluation_on_every_worker(pool):
    """The generators are seeded in the worker before any child is forked, so a
    program that draws random numbers scores the same wherever it runs."""
    body = "import random\nreturn [random.random(), float(np.random.random())]"
    futures = [pool.submit(program(body), "total", "train", ["a"]) for _ in range(6)]
    outputs = [future.result().outputs for future in futures]
    assert len({repr(output) for output in outputs}) == 1
    assert 0 < outputs[0][0][0] < 1


def test_a_spec_that_runs_a_thread_is_forked_the_safe_way_with_the_same_draws(tmp_path):
    """A worker with a thread of its own forks with os.fork (the lean fork needs
    one thread); evaluations still work and still draw the same numbers."""
    (tmp_path / "threaded.py").write_text(SPEC.replace(
        "import funsearch\n",
        "import funsearch\nimport threading, time\n"
        "threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n"))
    body = "import random, threading\nreturn [random.random(), threading.active_count()]"
    with SandboxPool(tmp_path / "threaded.py", workers=1, isolation="process") as pool:
        outputs = [pool.run(program(body), "total", "train", ["a"]).outputs for _ in range(3)]
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0][0][1] == 1  # the spec's thread does not survive the fork


WHERE = "import os\nfolder = os.stat('.')\nreturn [folder.st_dev, folder.st_ino]"


def test_the_next_job_waits_in_the_worker_so_a_slow_host_does_not_delay_it(spec_path,
                                                                           monkeypatch):
    """The host takes 0.3 s over each answer here (a busy machine); the next
    job is already in the worker's pipe, so it starts when the last one ends."""
    answer = pool_module.outcome

    def slow(header, payload):
        time.sleep(0.3)
        return answer(header, payload)

    with SandboxPool(spec_path, workers=1, isolation="process") as sandbox:
        sandbox.run(program("return 0"), "total", "train", ["a"])  # input set built
        monkeypatch.setattr(pool_module, "outcome", slow)
        first = sandbox.submit(program("import time\ntime.sleep(0.2)\nreturn time.time()"),
                               "total", "train", ["a"])
        second = sandbox.submit(program("import time\nreturn time.time()"),
                                "total", "train", ["a"])
        [first_ended], [second_started] = first.result().outputs, second.result().outputs
    assert 0 < second_started - first_ended < 0.2


def test_a_job_cancelled_while_waiting_in_a_worker_is_dropped(spec_path):
    with SandboxPool(spec_path, workers=1, isolation="process") as sandbox:
        running = sandbox.submit(program("import time\ntime.sleep(0.5)\nreturn 1"),
                                 "total", "train", ["a"])
        waiting = sandbox.submit(program("return 2"), "total", "train", ["a"])
        while not running.running():
            time.sleep(0.01)
        time.sleep(0.1)  # the waiting job is in the worker's pipe by now
        assert waiting.cancel()
        assert running.result().outputs == [1]
        assert sandbox.run(program("return 3"), "total", "train", ["a"]).outputs == [3]
        assert waiting.cancelled()


def test_evaluations_one_at_a_time_go_to_the_worker_that_was_free_last(pool):
    """Each worker evaluates in a folder of its own (its own /tmp under bwrap)."""
    concurrent = [
        pool.submit(program("import time\ntime.sleep(0.3)\n" + WHERE), "total", "train", ["a"])
        for _ in range(4)
    ]
    assert len({repr(future.result().outputs) for future in concurrent}) == 2
    one_at_a_time = [pool.run(program(WHERE), "total", "train", ["a"]).outputs for _ in range(6)]
    assert len({repr(outputs) for outputs in one_at_a_time}) == 1


def test_auto_isolation_takes_bwrap_where_it_works_and_says_so(spec_path):
    expected = isolation.resolve("auto")
    with SandboxPool(spec_path, workers=1, isolation="auto") as pool:
        assert pool.isolation == expected.level
        assert pool.isolation_reason == expected.reason
        assert pool.isolation_detail.startswith(f"{expected.level}; seccomp on; ")
    if os.geteuid() == 0 and os.path.exists("/usr/bin/bwrap"):
        assert expected.level == "bwrap", expected.reason


def test_without_bwrap_auto_falls_back_to_process_and_bwrap_is_refused(spec_path, monkeypatch):
    monkeypatch.setattr(isolation.shutil, "which", lambda name: None)
    isolation._bwrap_problem.cache_clear()
    try:
        with SandboxPool(spec_path, workers=1, isolation="auto") as pool:
            assert pool.isolation == "process"
            assert pool.isolation_reason == (
                "bubblewrap unusable (bwrap not found on PATH); fell back to process"
            )
        with pytest.raises(SandboxError, match="isolation 'bwrap' is not available"):
            SandboxPool(spec_path, workers=1, isolation="bwrap")
    finally:
        isolation._bwrap_problem.cache_clear()


@pytest.mark.parametrize("level", LEVELS)
def test_a_spec_reads_files_beside_it_and_new_roles_need_no_sandbox_change(tmp_path, level):
    (tmp_path / "numbers.txt").write_text("4 5 6")
    (tmp_path / "beside.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            import funsearch

            @funsearch.inputs
            def train():
                return [[int(n) for n in Path(__file__).with_name("numbers.txt").read_text().split()]]

            @funsearch.run
            def solve(instance):
                return total(instance)

            @funsearch.some_future_role
            def note():
                return "the worker's funsearch stub marks any role"

            @funsearch.evolve
            def total(numbers):
                return sum(numbers)
            """
        )
    )
    with SandboxPool(tmp_path / "beside.py", workers=1, isolation=level) as pool:
        assert pool.run(program("return sum(numbers)"), "total", "train").outputs == [15]


def test_an_unknown_isolation_level_is_refused(spec_path):
    with pytest.raises(SandboxError, match="isolation must be one of auto, bwrap, process"):
        SandboxPool(spec_path, isolation="docker")


def test_a_spec_that_fails_to_import_in_the_worker_is_a_sandbox_error(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import funsearch\nraise RuntimeError('no data here')\n")
    with pytest.raises(SandboxError, match="RuntimeError: no data here"):
        SandboxPool(path, workers=1, isolation="process")


def test_close_cancels_queued_evaluations_and_refuses_new_ones(spec_path):
    pool = SandboxPool(spec_path, workers=1, isolation="process")
    running = pool.submit(program("import time\ntime.sleep(30)"), "total", "train")
    queued = [pool.submit(program("return 0"), "total", "train") for _ in range(3)]
    while not running.running():
        time.sleep(0.01)
    pool.close()
    assert all(future.cancelled() for future in queued)
    assert (running.result().status, running.result().detail) == (
        "error",
        "the sandbox pool was closed",
    )
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(program("return 0"), "total", "train")
