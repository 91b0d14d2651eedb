"""The command line as a person meets it: help, version, flags, the live line."""

from __future__ import annotations

import argparse
import json
import textwrap

import pytest

from funsearch import cli, cli_live, runlog
from funsearch.progress import Counters, Status
from tests.unit.test_start_errors import GOOD_SPEC

COMMANDS = ("run", "resume", "check", "evaluate", "show", "compare", "export")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_help_lists_every_command_with_what_it_does(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "funsearch run | check" not in out
    for command in COMMANDS:
        line = next(line for line in out.splitlines() if line.strip().startswith(command + " "))
        assert len(line.split()) > 2, line  # the command and words saying what it does


def test_every_argument_of_every_command_says_what_it_is():
    missing = [f"{name} {action.dest}" for name, command in _subparsers(cli._parser()).items()
               for action in command._actions
               if not isinstance(action, argparse._HelpAction) and not action.help]
    assert missing == []


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("funsearch ")


def test_run_flags_and_set_become_config_keys():
    arguments = cli._parser().parse_args(
        ["run", "x.toml", "--isolation", "process", "--set", "scheduler.budget.wall=5m",
         "--set", "database.islands=8", "--max-samples", "9"])
    assert cli._overrides(arguments) == {"scheduler.budget.wall": "5m", "database.islands": 8,
                                         "evaluator.isolation": "process",
                                         "scheduler.budget.samples": 9}
    resumed = cli._parser().parse_args(["resume", "runs/x", "--set", "runtime.kind=inline"])
    assert cli._overrides(resumed) == {"runtime.kind": "inline"}


SPEC = GOOD_SPEC

EXPERIMENT = textwrap.dedent('''
    name = "tiny"
    [problem]
    spec = "tiny.py"
    [evaluator]
    workers = 1
    [scheduler]
    budget = { samples = 4 }
    [runtime]
    kind = "inline"
''')


def test_run_prints_its_directory_first_and_applies_set(tmp_path, capsys):
    (tmp_path / "tiny.py").write_text(SPEC)
    (tmp_path / "tiny.toml").write_text(EXPERIMENT)
    assert cli.main(["run", str(tmp_path / "tiny.toml"), "--out", str(tmp_path / "runs"),
                     "--isolation", "process", "--set", "database.islands=3"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    out = capsys.readouterr().out
    assert out.startswith(f"run directory: {run_dir}  (funsearch show {run_dir}")
    config = json.loads((run_dir / runlog.CONFIG).read_text())
    assert config["database"]["islands"] == 3 and config["evaluator"]["isolation"] == "process"


def _status(best=-6.642594, samples=1234, elapsed=75.0):
    counters = Counters(samples=samples, rejected=10, failed=40, duplicates=123,
                        registered=1000, resets=4)
    return Status(elapsed, counters, best, [best], 16.45)


def test_the_live_line_says_valid_programs_and_keeps_the_best_score_in_80_columns():
    line = cli_live.status_line(_status(), width=80)
    assert len(line) <= 80
    assert line.startswith("best -6.64259  samples 1234 (16.4/s)  valid programs 96%")
    full = cli_live.status_line(_status())
    assert "registered 1000" in full and "duplicates 123" in full
    assert "valid 96%" not in full.replace("valid programs", "")
