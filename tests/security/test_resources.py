"""Attacks on time, memory, output and the result channel."""

from __future__ import annotations

from tests.security.conftest import LIMITS, attack, choices


def test_endless_loop_times_out(quick_pool):
    outcome = attack(quick_pool, "while True:\n    pass")
    assert (outcome.status, outcome.detail) == ("timeout", "exceeded the 0.5 s wall-clock limit")
    assert outcome.outputs is None


def test_sleeping_past_the_deadline_times_out(quick_pool):
    outcome = attack(quick_pool, "import time\ntime.sleep(3600)")
    assert (outcome.status, outcome.detail) == ("timeout", "exceeded the 0.5 s wall-clock limit")


def test_one_huge_allocation_is_a_memory_outcome(pool):
    outcome = attack(pool, "return len(bytearray(1 << 34))")
    assert (outcome.status, outcome.detail) == ("memory", "MemoryError: out of memory [input near]")


def test_growing_memory_is_a_memory_outcome(pool):
    outcome = attack(pool, "hoard = []\nwhile True:\n    hoard.append(bytearray(1 << 24))")
    assert (outcome.status, outcome.detail) == ("memory", "MemoryError: out of memory [input near]")


def test_endless_recursion_is_an_error(pool):
    outcome = attack(pool, "return pick(items, target)")
    assert outcome.status == "error"
    assert outcome.detail == ("RecursionError: maximum recursion depth exceeded (at program:2 in pick) [input near]")


def test_printing_without_end_is_stopped_at_the_output_cap_with_its_first_bytes(pool):
    # Before, the flood was read and dropped until the deadline: a timeout.
    outcome = attack(pool, "while True:\n    print('flood', target)")
    assert outcome.status == "output_limit"
    assert outcome.detail == (
        f"printed more than the {LIMITS.output_bytes}-byte limit to stdout; "
        f"it began: {('flood 3' + chr(10)) * 15!r}"
    )
    assert outcome.outputs is None
    assert outcome.stdout == ("flood 3\n" * LIMITS.output_bytes)[: LIMITS.output_bytes] + (
        "\n[... truncated]"
    )


def test_printing_past_the_cap_then_returning_is_still_output_limit(pool):
    outcome = attack(
        pool,
        """
        import sys
        if target == 3:  # the first input
            sys.stderr.write("y" * 10_000_000)
        return min(items, key=lambda item: abs(item - target))
        """,
    )
    assert outcome.status == "output_limit"
    assert outcome.detail.startswith(
        f"printed more than the {LIMITS.output_bytes}-byte limit to stderr; it began: 'yyy"
    )
    assert outcome.stderr == "y" * LIMITS.output_bytes + "\n[... truncated]"


def test_printing_up_to_the_cap_is_kept_whole_with_the_result(pool):
    outcome = attack(
        pool,
        f"""
        import sys
        if target == 3:  # the first input
            sys.stdout.write("x" * {LIMITS.output_bytes})
        return min(items, key=lambda item: abs(item - target))
        """,
    )
    assert (outcome.status, choices(outcome)) == ("ok", [3, 6])
    assert outcome.stdout == "x" * LIMITS.output_bytes


# Split, fd 3 is the program's answer pipe, and a frame of the result pipe's is
# no answer (sandbox/program.py).
MALFORMED = "the program's process broke the protocol: a malformed answer (tag b'O')"


def test_a_result_over_the_cap_is_invalid_output(pool):
    outcome = attack(pool, f"return 'x' * {LIMITS.result_bytes + 1}")
    assert outcome.status == "invalid_output"
    if pool.split:  # what the program returned is over the cap already
        assert outcome.detail == (f"an answer of {LIMITS.result_bytes + 6} bytes from the "
                                  f"program, over the limit of {LIMITS.result_bytes}")
    else:
        assert outcome.detail.endswith("bytes is larger than the limit")


def test_a_result_forged_past_the_cap_on_the_result_pipe_is_invalid_output(pool):
    # The child's result pipe is fd 3; writing straight to it skips the
    # child's own size check, so the worker's cap must catch it.
    outcome = attack(
        pool,
        f"""
        import os
        os.write(3, b"O[" + b" " * {LIMITS.result_bytes + 10})
        os._exit(0)
        """,
    )
    assert outcome.status == "invalid_output"
    assert outcome.detail == (MALFORMED if pool.split else
                              f"result larger than the limit of {LIMITS.result_bytes} bytes")


def forged(result: bytes) -> str:
    """A body that writes `result` as its outputs straight to the result pipe (fd 3)."""
    return (
        f"import os\ndata = {result!r}\n"
        "os.write(3, b'O' + len(data).to_bytes(8, 'big') + data)\nos._exit(0)"
    )


def test_a_malformed_result_is_invalid_output(pool):
    outcome = attack(pool, forged(b"[{not json"))
    assert outcome.status == "invalid_output"
    assert outcome.detail.startswith(MALFORMED if pool.split else "not JSON: ")


def test_a_deeply_nested_result_is_invalid_output(pool):
    outcome = attack(pool, forged(b"[" * 200_000 + b"]" * 200_000))
    assert outcome.status == "invalid_output"
    assert outcome.detail.startswith(MALFORMED if pool.split else "not JSON: ")


def test_a_non_json_result_is_invalid_output(pool):
    outcome = attack(pool, "return object()")
    if pool.split:  # it cannot leave the program's process: the run function gets an error
        assert outcome.status == "error"
        assert outcome.detail.startswith(
            "TypeError: the program returned a value of type 'object' (only None, bool, int, ")
        return
    assert outcome.status == "invalid_output"
    assert outcome.detail == (
        "outputs are not JSON: TypeError: Object of type object is not JSON serializable"
    )


def fill(files: int) -> str:
    """A body that writes `files` files of 1 MB into its temporary folder."""
    return f"""
    import os, tempfile
    chunk = b"z" * (1 << 20)
    for number in range({files}):
        with open(os.path.join(tempfile.gettempdir(), f"fill-{{number}}"), "wb") as handle:
            handle.write(chunk)
    return [number, tempfile.gettempdir()]
    """


def test_filling_tmp_stops_at_its_size_and_is_cleaned_up(pool):
    if pool.isolation == "bwrap":
        # The private /tmp is a 64 MB tmpfs: the writes end there.
        outcome = attack(pool, fill(1000))
        assert outcome.status == "error"
        assert outcome.detail.startswith("OSError: [Errno 28] No space left on device")
    # What an evaluation leaves in its folder is removed before the next one
    # in that worker, so it has the space again. (Without bwrap there is no
    # size cap: bounded here.)
    again = attack(pool, fill(40))
    assert again.status == "ok"
    assert [number for number, _ in choices(again)] == [39, 39]
    for _ in range(3):  # each worker, whichever takes it
        after = attack(pool, "import os, tempfile\nreturn os.listdir(tempfile.gettempdir())")
        assert choices(after) == [[], []]


def test_a_thread_left_running_dies_with_the_evaluation(pool):
    outcome = attack(
        pool,
        """
        import threading

        def spin():
            while True:
                pass

        threading.Thread(target=spin, daemon=False).start()
        return threading.active_count()
        """,
    )
    assert outcome.status == "ok"
    assert choices(outcome) == [2, 3]  # the first input's thread was still spinning
    after = attack(pool, "import threading\nreturn threading.active_count()")
    assert (after.status, choices(after)) == ("ok", [1, 1])
