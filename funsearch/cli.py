"""Command line: funsearch run | check.

Each command calls the same functions as the Python API; errors in a spec or
an experiment file are printed as one message naming the file and key or line,
never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from funsearch import code, experiment
from funsearch import config as config_module
from funsearch import spec as spec_module
from funsearch.code import CodeError
from funsearch.engine import Status
from funsearch.evaluator import (
    SKIPPED,
    Evaluator,
    ProgramScore,
    Scoring,
    make_pool,
    score_input_sets,
)

_USER_ERRORS = (config_module.ConfigError, spec_module.SpecError, CodeError, FileNotFoundError,
                ValueError)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    if not getattr(arguments, "command", None):
        parser.print_help()
        return 2
    try:
        return arguments.command(arguments)
    except _USER_ERRORS as error:
        _console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130


def _console(stderr: bool = False) -> Console:
    """A console that does not break lines when writing to a file or pipe, so
    messages and tables stay whole in logs and in what a test reads."""
    console = Console(stderr=stderr, soft_wrap=True)
    if not console.is_terminal:
        console = Console(stderr=stderr, soft_wrap=True, width=200)
    return console


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="funsearch", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(metavar="COMMAND")

    run = commands.add_parser("run", help="run an experiment (TOML file)")
    run.add_argument("experiment", type=Path)
    run.add_argument("--max-samples", type=int, help="stop after this many samples")
    run.add_argument("--seed", type=int, help="override the experiment's seed")
    run.add_argument("--out", help="directory for run directories (default: the config's)")
    run.add_argument("--runtime", choices=["inline", "ray"], help="override runtime.kind")
    run.add_argument("--address", help="Ray cluster address (auto, ray://host:port)")
    run.set_defaults(command=_run)

    resume = commands.add_parser(
        "resume", help="continue a stopped or killed run: replay its log, spend the budget left")
    resume.add_argument("run_dir", type=Path)
    resume.add_argument("--max-samples", type=int, help="a new sample budget (extends a run)")
    resume.add_argument("--runtime", choices=["inline", "ray"], help="override runtime.kind")
    resume.add_argument("--address", help="Ray cluster address (auto, ray://host:port)")
    resume.set_defaults(command=_resume)

    check = commands.add_parser("check", help="load a spec and score its initial program")
    check.add_argument("spec", type=Path)
    check.add_argument("--inputs", help="input sets, comma-separated (default: every set)")
    check.add_argument("--isolation", default="auto", choices=["auto", "bwrap", "process"])
    _add_split_flag(check)
    check.add_argument("--per-input", action="store_true", help="print every input's score")
    _add_limit_flags(check)
    check.set_defaults(command=_check)

    evaluate = commands.add_parser(
        "evaluate", help="score a program (e.g. a run's best.py) with the baselines beside it")
    evaluate.add_argument("spec", type=Path)
    evaluate.add_argument("program", type=Path,
                          help="a file defining the evolved function (best.py, or the function)")
    evaluate.add_argument("--inputs", help="input sets, comma-separated (default: every set)")
    evaluate.add_argument("--isolation", default="auto", choices=["auto", "bwrap", "process"])
    _add_split_flag(evaluate)
    evaluate.add_argument("--per-input", action="store_true", help="print every input's score")
    evaluate.add_argument("--no-baselines", action="store_true", help="score the program alone")
    _add_limit_flags(evaluate)
    evaluate.set_defaults(command=_evaluate)
    _add_report_commands(commands)
    return parser


def _add_split_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument("--split", default="auto", choices=["auto", "on", "off"],
                         help="run each program in a process apart from the run function, so "
                              "it cannot forge what that returns (auto: where the run function "
                              "returns the score itself; as [evaluator] split)")


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


# Command-line flags and the config keys they override.
_OVERRIDES = {"max_samples": "scheduler.budget.samples", "seed": "seed", "out": "out",
              "runtime": "runtime.kind", "address": "runtime.address"}


def _overrides(arguments: argparse.Namespace) -> dict[str, object]:
    """The config keys the given flags set (flags left out change nothing)."""
    overrides = {key: getattr(arguments, flag) for flag, key in _OVERRIDES.items()
                 if getattr(arguments, flag, None) is not None}
    if "out" in overrides:
        overrides["out"] = str(Path(overrides["out"]).resolve())
    return overrides


def _run(arguments: argparse.Namespace) -> int:
    config = config_module.load(arguments.experiment, **_overrides(arguments))
    console = _console()
    with _live_view(console) as show:
        result = experiment.run(config, on_status=show,
                                on_start=lambda start: _print_start(console, start))
    _print_result(console, config.problem.inputs, result)
    return 0


def _resume(arguments: argparse.Namespace) -> int:
    from funsearch.runtime import resume

    config = resume.load_config(arguments.run_dir, **_overrides(arguments))
    console = _console()
    with _live_view(console) as show:
        result = resume.resume(arguments.run_dir, on_status=show, config=config)
    _print_result(console, config.problem.inputs, result)
    return 0


def _print_result(console: Console, inputs: str, result: experiment.RunResult) -> None:
    console.print(f"stopped: {result.stop_reason}")
    console.print(f"best score on '{inputs}': {result.best_score:.6g}")
    for input_set, score in result.holdout.items():
        console.print(f"best score on '{input_set}': "
                      f"{'failed' if score is None else format(score, '.6g')}")
    console.print(f"sandbox isolation: {result.isolation}")
    console.print(f"run directory: {result.run_dir}  (best program: {result.run_dir}/best.py)")
    return 0


def _print_start(console: Console, start: dict) -> None:
    """The run's first lines: where programs run and what they could forge."""
    console.print(f"sandbox isolation: {start['isolation_detail'] or start['isolation']}",
                  highlight=False)
    _print_scoring(console, Scoring(start["split"], start["scoring"], start["forgeable"]))


class _live_view:
    """A rich live table on a terminal; plain lines every few seconds otherwise."""

    def __init__(self, console: Console):
        self._console = console
        self._live: Live | None = None
        self._last_line = 0.0
        self._warned = 0  # status.warnings printed so far

    def __enter__(self) -> Callable[[Status], None]:
        if self._console.is_terminal:
            self._live = Live(Table(), console=self._console, refresh_per_second=4)
            self._live.__enter__()
        return self._show

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def _show(self, status: Status) -> None:
        for warning in status.warnings[self._warned:]:  # each once, as it comes
            self._console.print(f"[yellow]warning:[/] {warning}", highlight=False)
        self._warned = len(status.warnings)
        if self._live is not None:
            self._live.update(_status_table(status))
            return
        now = time.monotonic()
        if now - self._last_line >= 5 or status.stop_reason:
            self._last_line = now
            print(_status_line(status), flush=True)


def _status_line(status: Status) -> str:
    c = status.counters
    best = "-" if status.best_score is None else f"{status.best_score:.6g}"
    return (f"[{status.elapsed:7.1f}s] samples {c.samples} ({status.samples_per_second:.1f}/s) "
            f"valid {100 * c.valid_fraction:.0f}% duplicates {c.duplicates} "
            f"registered {c.registered} resets {c.resets} best {best}")


def _status_table(status: Status) -> Table:
    table = Table(title=_status_line(status), show_header=True, title_justify="left")
    table.add_column("island", justify="right")
    table.add_column("best score", justify="right")
    for island, score in enumerate(status.island_best):
        table.add_row(str(island), f"{score:.6g}")
    return table


def _check(arguments: argparse.Namespace) -> int:
    timeout = _timeout(arguments.timeout)
    spec = spec_module.load(arguments.spec)
    scoring = f"on the host with '{spec.score_name}'" if spec.score_name else "by its run function"
    console = _console()
    console.print(f"spec {spec.path}: evolves '{spec.evolve_name}', runs '{spec.run_name}', "
                  f"scores {scoring}")
    programs = {"initial": spec.initial_program,
                **{f"baseline {name}": program for name, program in spec.baselines.items()}}
    failed = _print_scores(console, spec, programs, _input_sets(spec, arguments.inputs),
                           arguments, timeout)
    return 1 if "initial" in failed else 0


def _evaluate(arguments: argparse.Namespace) -> int:
    timeout = _timeout(arguments.timeout)
    spec = spec_module.load(arguments.spec)
    try:
        text = arguments.program.read_text()
    except OSError as error:
        raise FileNotFoundError(f"{arguments.program}: cannot read: {error.strerror}") from None
    try:
        program = code.function_source(text, spec.evolve_name)
    except CodeError as error:
        raise CodeError(f"{arguments.program}: {error}") from None
    programs = {arguments.program.name: program}
    if not arguments.no_baselines:
        programs.update({f"baseline {name}": source for name, source in spec.baselines.items()})
    failed = _print_scores(_console(), spec, programs, _input_sets(spec, arguments.inputs),
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
    that failed. Flags read: isolation, per_input, keep_going."""
    failed: set[str] = set()
    skipped = False
    with make_pool(spec, workers=2, timeout=timeout, memory_mb=_default_memory_mb(),
                   isolation=arguments.isolation, split=arguments.split) as pool:
        console.print(f"sandbox isolation: {pool.isolation_detail} ({pool.isolation_reason})")
        evaluator = Evaluator(spec, pool, input_sets[0])
        _print_scoring(console, evaluator.scoring("--split on"), arguments.split == "auto")
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


def _print_scoring(console: Console, scoring: Scoring, auto: bool = False) -> None:
    """Who scores, and what a program can still forge: a user who trusts a score
    should know what it rests on."""
    console.print(f"scoring: {scoring.by} (split {'on' if scoring.split else 'off'}"
                  f"{' by auto' if auto else ''})", highlight=False)
    if scoring.forgeable:
        console.print(f"[yellow]forgeable:[/] {scoring.forgeable}", highlight=False)
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


def _add_report_commands(commands: argparse._SubParsersAction) -> None:
    """show | compare | export: read run directories (live or finished), never write to them
    except for export's output file."""
    show = commands.add_parser("show", help="what one run did: best score, outcomes, samplers")
    show.add_argument("run_dir", type=Path)
    show.add_argument("--top", type=int, default=3, help="programs per island (default 3)")
    show.set_defaults(command=_show)

    compare = commands.add_parser(
        "compare", help="groups of runs at equal budgets, with bootstrap intervals over seeds")
    compare.add_argument("run_dirs", type=Path, nargs="+",
                         help="run directories, or folders holding run directories")
    compare.add_argument("--by", default="sampler",
                         help="sampler | policy | a dotted config KEY, e.g. samplers.0.model")
    compare.add_argument("--plot", type=Path, help="write best score vs budget as PNG")
    compare.add_argument("--html", type=Path, help="write a self-contained HTML report")
    compare.add_argument("--threshold", type=float,
                         help="score for the time-to-threshold rows (default: the lowest "
                              "final best score, which every run reached)")
    compare.add_argument("--samples", type=float, help="equal sample budget (default: the "
                         "most every run has spent); likewise --wall and --gpu-hours")
    compare.add_argument("--wall", type=config_module.parse_duration,
                         help="equal wall-time budget (e.g. 300, \"5m\")")
    compare.add_argument("--gpu-hours", type=float, help="equal GPU-hour budget")
    compare.add_argument("--bootstrap-seed", type=int, default=0)
    compare.set_defaults(command=_compare)

    export = commands.add_parser("export", help="the events of a run as one table")
    export.add_argument("run_dir", type=Path)
    export.add_argument("--format", choices=["csv", "parquet"], default="csv")
    export.add_argument("--out", type=Path, help="output file (default: RUN_DIR/events.FORMAT)")
    export.set_defaults(command=_export)


def _read_runs(paths: list[Path]) -> list:
    """Runs read with their warnings (a truncated last line) shown once, in words."""
    import warnings

    from funsearch import rundata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each run keeps its warnings; show/compare print them
        return [rundata.read_run(path) for path in rundata.find_runs(paths)]


def _show(arguments: argparse.Namespace) -> int:
    from funsearch import report

    report.show(_read_runs([arguments.run_dir])[0], _console(), top=arguments.top)
    return 0


def _compare(arguments: argparse.Namespace) -> int:
    from funsearch import compare

    runs = _read_runs(arguments.run_dirs)
    budgets = {"samples": arguments.samples, "wall": arguments.wall,
               "gpu_hours": arguments.gpu_hours}
    try:
        comparison = compare.compare(runs, by=arguments.by, budgets=budgets,
                                     threshold=arguments.threshold, seed=arguments.bootstrap_seed)
    except KeyError as error:
        raise ValueError(error.args[0]) from None
    console = _console()
    compare.render(comparison, console)
    png = compare.plot_png(comparison) if arguments.plot or arguments.html else None
    if arguments.plot:
        arguments.plot.write_bytes(png)
        console.print(f"plot: {arguments.plot}")
    if arguments.html:
        compare.write_html(comparison, arguments.html, png)
        console.print(f"html: {arguments.html}")
    return 0


def _export(arguments: argparse.Namespace) -> int:
    from funsearch import report

    out = report.export(arguments.run_dir, arguments.format, arguments.out)
    _console().print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
