"""funsearch check | evaluate: a problem's programs scored in the sandbox.

`check` scores a problem's initial program and baselines (a spec file, native
or DeepMind's, an OpenEvolve folder, or an experiment file's problem), `evaluate` a program
file (a run's best.py) beside the baselines, on every input set or those
named, printing one table per input set as soon as the set is done. Each
evaluation gets a search's limits by default (its timeout and memory), so a
program that passes here fits in a search.
"""

from __future__ import annotations

import argparse
import ast
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from funsearch import config as config_module
from funsearch import experiment, formats, parsing
from funsearch import spec as spec_module
from funsearch.code import CodeError
from funsearch.evaluator import (
    SKIPPED,
    Evaluator,
    ProgramScore,
    Scoring,
    make_pool,
    score_input_sets,
)


def add_commands(commands: argparse._SubParsersAction, console: Callable[[], Console]) -> None:
    """check | evaluate, printing to `console()`."""
    spec_help = "the problem's spec file, e.g. problems/tsp.py"
    checking = commands.add_parser(
        "check", help="load a problem (a spec file, an OpenEvolve folder, or an experiment's "
                      "problem); score its initial program and baselines on every input set")
    checking.add_argument("spec", type=Path, help="the problem: a spec file (e.g. "
                          "problems/tsp.py, native or DeepMind's), an OpenEvolve folder, or an "
                          "experiment file (TOML) whose problem to check")
    checking.add_argument("--values",
                          help="a DeepMind spec file's inputs, e.g. '[8]' or '[(12, 7)]'")
    _add_scoring_flags(checking)
    checking.set_defaults(command=lambda arguments: check(arguments, console()))

    evaluating = commands.add_parser(
        "evaluate", help="score a program (e.g. a run's best.py) with the baselines beside it")
    evaluating.add_argument("spec", type=Path, help=spec_help)
    evaluating.add_argument("program", type=Path, help="a file defining the evolved function "
                            "(best.py, or the function)")
    evaluating.add_argument("--no-baselines", action="store_true",
                            help="score the program alone")
    _add_scoring_flags(evaluating)
    evaluating.set_defaults(command=lambda arguments: evaluate(arguments, console()))


def _add_scoring_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("--inputs", help="input sets, comma-separated (default: every set)")
    command.add_argument("--isolation", default="auto", choices=["auto", "bwrap", "process"],
                         help="sandbox isolation (default: auto, bwrap where it works)")
    command.add_argument("--split", default="auto", choices=["auto", "on", "off"],
                         help="run each program in a process apart from the run function, so "
                              "it cannot forge what that returns (auto: where the run function "
                              "returns the score itself; as [evaluator] split)")
    command.add_argument("--per-input", action="store_true", help="print every input's score")
    _add_limit_flags(command)


def _add_limit_flags(command: argparse.ArgumentParser) -> None:
    """check and evaluate: how long one evaluation may take, and what a failure stops."""
    command.add_argument("--timeout", help="wall-clock limit of one program on one input set, "
                         f"e.g. 10 or \"2m\" (default: {_default_timeout():g} s, as in a search)")
    command.add_argument("--keep-going", action="store_true",
                         help="run a program on the later input sets even after it failed")


def _default_timeout() -> float:
    return config_module.EvaluatorConfig.model_fields["timeout"].default


def _default_memory_mb() -> int:
    """A search's memory limit, so a program that passes `check` fits in a search."""
    return config_module.EvaluatorConfig.model_fields["memory_mb"].default


def _timeout(text: str | None) -> float:
    """--timeout in seconds; by default what one evaluation in a search gets."""
    if text is None:
        return _default_timeout()
    try:
        seconds = config_module.parse_duration(text)
    except ValueError as error:
        raise ValueError(f"--timeout: {error}") from None
    if seconds is None or seconds <= 0:
        raise ValueError(f"--timeout: must be more than 0 seconds, not {text!r}")
    return seconds


def check(arguments: argparse.Namespace, console: Console) -> int:
    """Loads a problem and scores its initial program and baselines; 1 if the
    initial one fails."""
    timeout = _timeout(arguments.timeout)
    with tempfile.TemporaryDirectory(prefix="funsearch-check-") as folder:
        problem = _problem(arguments.spec, arguments.values, Path(folder))
        spec = formats.load(problem)
        scoring = (f"on the host with '{spec.score_name}'" if spec.score_name
                   else "by its run function")
        console.print(f"spec {problem.path} ({problem.format}): evolves '{spec.evolve_name}', "
                      f"runs '{spec.run_name}', scores {scoring}")
        for note in problem.notes:
            console.print(f"note: {note}", markup=False)
        programs = {"initial": spec.initial_program,
                    **{f"baseline {name}": program for name, program in spec.baselines.items()}}
        failed = _print_scores(console, spec, programs, _input_sets(spec, arguments.inputs),
                               arguments, timeout)
    return 1 if "initial" in failed else 0


def _problem(path: Path, values: str | None, folder: Path) -> formats.Problem:
    """The problem `check` is given: an experiment file's, or a spec file or
    folder as it is (a DeepMind file with its inputs from --values)."""
    if path.suffix == ".toml":
        return experiment.prepare_problem(config_module.load(path), folder)
    given = None
    if values is not None:
        try:
            given = list(ast.literal_eval(values))
        except (ValueError, SyntaxError, TypeError):
            raise config_module.ConfigError(f"--values {values!r}: not a Python list") from None
    return formats.prepare(path, folder, values=given)


def evaluate(arguments: argparse.Namespace, console: Console) -> int:
    """Scores a program file beside the baselines; 1 if the program fails."""
    timeout = _timeout(arguments.timeout)
    spec = spec_module.load(arguments.spec)
    try:
        text = arguments.program.read_text()
    except OSError as error:
        raise FileNotFoundError(f"{arguments.program}: cannot read: {error.strerror}") from None
    try:
        program = parsing.function_source(text, spec.evolve_name)
    except CodeError as error:
        raise CodeError(f"{arguments.program}: {error}") from None
    programs = {arguments.program.name: program}
    if not arguments.no_baselines:
        programs.update({f"baseline {name}": source for name, source in spec.baselines.items()})
    failed = _print_scores(console, spec, programs, _input_sets(spec, arguments.inputs),
                           arguments, timeout)
    return 1 if arguments.program.name in failed else 0


def _input_sets(spec: spec_module.Specification, names: str | None) -> list[str]:
    sets = names.split(",") if names else list(spec.input_sets)
    if not sets:
        raise spec_module.SpecError(f"{spec.path}: no @funsearch.inputs function")
    for name in sets:
        spec.inputs(name)  # an unknown name is a SpecError that lists the known ones
    return sets


def _print_scores(console: Console, spec: spec_module.Specification, programs: dict[str, str],
                  input_sets: list[str], arguments: argparse.Namespace,
                  timeout: float) -> set[str]:
    """Prints one table per input set as soon as the set is done (a program that
    loops shows after one timeout, not at the very end); returns the labels
    that failed. Flags read: isolation, split, per_input, keep_going."""
    failed: set[str] = set()
    skipped = False
    with make_pool(spec, workers=2, timeout=timeout, memory_mb=_default_memory_mb(),
                   isolation=arguments.isolation, split=arguments.split) as pool:
        console.print(f"sandbox isolation: {pool.isolation_detail} ({pool.isolation_reason})")
        evaluator = Evaluator(spec, pool, input_sets[0])
        print_scoring(console, evaluator.scoring("--split on"), arguments.split == "auto")
        console.print(f"timeout: {timeout:g} s per program and input set")
        for rows in score_input_sets(evaluator, programs, input_sets, arguments.keep_going):
            table = Table("input set", "program", "mean score", "summary", "time")
            for row in rows:
                if not row.evaluation.ok:
                    failed.add(row.label)
                skipped |= row.evaluation.status == SKIPPED
                table.add_row(*_score_cells(row, arguments.per_input))
            console.print(table)
    if skipped:
        console.print("(--keep-going runs a program on the later input sets after a failure)")
    return failed


def print_scoring(console: Console, scoring: Scoring, auto: bool = False) -> None:
    """Who scores, and what a program can still forge: a user who trusts a score
    should know what it rests on."""
    console.print(f"scoring: {scoring.by} (split {'on' if scoring.split else 'off'}"
                  f"{' by auto' if auto else ''})", highlight=False)
    if scoring.forgeable:  # plain text: it names [evaluator] keys, which are no markup
        console.print(Text.assemble(("forgeable:", "yellow"), f" {scoring.forgeable}"))
    else:
        console.print("forgeable: nothing but the program's own answers", highlight=False)


def _score_cells(row: ProgramScore, per_input: bool) -> tuple[str | Text, ...]:
    """The table cells of one program on one input set. A reason is program
    output (a flood's first bytes): shown as plain text, never as markup."""
    evaluation = row.evaluation
    score: str | Text
    if evaluation.ok:
        score = f"{evaluation.score:.6g}"
        if per_input:
            score += "\n" + " ".join(f"{value:.4g}" for value in evaluation.scores.values())
    elif evaluation.status == SKIPPED:
        score = Text(f"skipped: {evaluation.reason}", style="yellow")
    else:
        score = Text(f"{evaluation.status}: {evaluation.reason[:200]}", style="red")
    summary = ", ".join(f"{key} {value:.4g}" for key, value in row.summary.items())
    seconds = "-" if evaluation.status == SKIPPED else f"{evaluation.duration:.2f}s"
    return row.input_set, row.label, score, summary, seconds
