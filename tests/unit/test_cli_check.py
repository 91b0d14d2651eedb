"""`funsearch check` and `evaluate` on programs that never end: they stop at
the timeout or the output cap, say so per input set, and skip the later sets.

Before, `check` waited 300 s per evaluation on every set; the pytest timeouts
here (the run's own timeout plus a minute) fail such a run, without timing it.
"""

import textwrap

import pytest

from funsearch import cli

SPEC = '''
import funsearch


@funsearch.inputs
def train():
    return {"a": 1.0, "b": 2.0}


@funsearch.inputs
def valid():
    return {"c": 3.0}


@funsearch.run
def solve(x):
    return step(x)


@funsearch.evolve
def step(x):
    BODY


@funsearch.baseline
def double(x):
    return 2 * x
'''

LOOP = "while True:\n        x += 1"
FLOOD = "while True:\n        print('flood', x)"


def write_spec(tmp_path, body: str):
    path = tmp_path / "spec.py"
    path.write_text(textwrap.dedent(SPEC).replace("BODY", body))
    return path


def tables(out: str) -> list[list[str]]:
    """The table rows of the output (the tables of every input set), as cells;
    a cell wrapped over several lines is joined again."""
    rows: list[list[str]] = []
    for line in out.splitlines():
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.strip("│").split("│")]
            if cells[0] or not rows:
                rows.append(cells)
            else:
                rows[-1] = [" ".join(filter(None, pair)) for pair in zip(rows[-1], cells, strict=True)]
    return rows


@pytest.mark.timeout(5 + 60)
def test_a_looping_program_times_out_on_the_first_set_and_is_skipped_on_the_next(
        tmp_path, capsys):
    spec = write_spec(tmp_path, LOOP)
    assert cli.main(["check", str(spec), "--timeout", "5s", "--isolation", "process"]) == 1
    out = capsys.readouterr().out
    assert "timeout: 5 s per program and input set" in out
    rows = tables(out)
    assert [row[:4] for row in rows] == [
        ["train", "initial", "timeout: exceeded the 5 s wall-clock limit", ""],
        ["train", "baseline double", "3", ""],
        ["valid", "initial", "skipped: timed out on 'train'", ""],
        ["valid", "baseline double", "6", ""],
    ]
    assert rows[2][4] == "-"  # not run
    assert "--keep-going" in out


@pytest.mark.timeout(30 + 60)
def test_a_flooding_program_is_stopped_at_the_output_cap_and_skipped_on_the_next_set(
        tmp_path, capsys):
    spec = write_spec(tmp_path, FLOOD)
    assert cli.main(["check", str(spec), "--isolation", "process"]) == 1
    out = capsys.readouterr().out
    assert "timeout: 30 s per program and input set" in out  # the search's default
    rows = tables(out)
    assert rows[0][:2] == ["train", "initial"]
    assert rows[0][2].startswith("output_limit: printed more than the 1048576-byte limit to "
                                 "stdout; it began: 'flood 1.0")
    assert ["valid", "initial", "skipped: printed past the output limit on 'train'", "", "-"] in rows


@pytest.mark.timeout(30 + 60)
def test_evaluate_with_keep_going_runs_a_failed_program_on_every_set(tmp_path, capsys):
    spec = write_spec(tmp_path, "return x")
    program = tmp_path / "mine.py"
    program.write_text(f"def step(x):\n    {FLOOD}\n")
    arguments = ["evaluate", str(spec), str(program), "--no-baselines", "--keep-going",
                 "--timeout", "30", "--isolation", "process"]
    assert cli.main(arguments) == 1
    rows = tables(capsys.readouterr().out)
    assert [row[:2] for row in rows] == [["train", "mine.py"], ["valid", "mine.py"]]
    assert all(row[2].startswith("output_limit: ") for row in rows)


@pytest.mark.parametrize(("value", "message"), [
    ("soon", "error: --timeout: not a duration: 'soon'"),
    ("0", "error: --timeout: must be more than 0 seconds, not '0'"),
])
def test_a_bad_timeout_is_one_error_line(tmp_path, capsys, value, message):
    spec = write_spec(tmp_path, "return x")
    assert cli.main(["check", str(spec), "--timeout", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and len(err.strip().splitlines()) == 1
