"""The `funsearch study` command: run a study, or show one.

    funsearch study STUDY.toml [--dir DIR]     run or resume (DIR: OUT/NAME by default)
    funsearch study show DIR [--plot PNG]      tables and plot of a study

The CLI and the Python API (runner.run_study, show.show) are the same functions.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console


def add_commands(commands: argparse._SubParsersAction) -> None:
    study = commands.add_parser(
        "study", help="which configuration wins at a budget: run a study (STUDY.toml), "
                      "or `study show DIR`")
    study.add_argument("target", help="a study file (STUDY.toml), or `show`")
    study.add_argument("path", nargs="?", type=Path, help="with show: the study directory")
    study.add_argument("--dir", type=Path, help="the study directory (default: the study "
                       "file's `out`/`name`); a study there is resumed")
    study.add_argument("--plot", type=Path, help="show: where to write the PNG "
                       "(default DIR/study.png)")
    study.set_defaults(command=_study)


def _study(arguments: argparse.Namespace) -> int:
    from funsearch.study import show

    console = _console()
    if arguments.target == "show":
        if arguments.path is None:
            raise ValueError("funsearch study show DIR: name the study directory")
        show.show(arguments.path, console, arguments.plot)
        return 0
    return _run(Path(arguments.target), arguments.dir, console)


def _run(path: Path, study_dir: Path | None, console: Console) -> int:
    from funsearch.study import runner, show, studyfile

    study = studyfile.load(path)
    study_dir = study_dir or Path(study.out) / study.name
    console.print(f"study {study.name}: {len(study.arms)} arms, B = {study.budget:g} "
                  f"{study.unit}, up to {study.runs.count} runs; log: {study_dir}/study.jsonl")
    state = runner.run_study(study, study_dir, on_event=lambda event: _progress(console, event))
    show.show(study_dir, console)
    failed = state.ended is not None and "failed" in state.ended
    return 1 if failed else 0


def _progress(console: Console, event: dict[str, Any]) -> None:
    """One line per decision, finished run and fit."""
    kind = event["kind"]
    if kind == "study_start" and event.get("resumed"):
        console.print(f"resuming: {event['done']} runs already done")
    elif kind == "decision":
        console.print(f"run {event['run']}: {event['arm']} to {event['budget']:g} B "
                      f"(seed {event['seed']}) -- {event['reason']}", highlight=False)
    elif kind == "run_end":
        console.print(f"run {event['run']} ({event['arm']}) done: best {event['best_score']}, "
                      f"{event['stop_reason']}", highlight=False)
    elif kind == "fit":
        chances = ", ".join(f"{arm} {fit['p_best']:.2f}" for arm, fit in event["arms"].items())
        console.print(f"  P(best at B): {chances}", highlight=False)
    elif kind in ("run_failed", "run_stopped", "study_end"):
        console.print(f"{kind.replace('_', ' ')}: {event.get('reason', '')}", highlight=False)


def _console() -> Console:
    console = Console(soft_wrap=True)
    return console if console.is_terminal else Console(soft_wrap=True, width=200)
