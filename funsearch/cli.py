"""Command line: funsearch run | resume | check | evaluate | show | compare | export.

Each command calls the same functions as the Python API; errors in a spec or
an experiment file are printed as one message naming the file and key or line,
never as a traceback, and warnings about settings that do nothing as one
`warning:` line each.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from funsearch import cli_check, experiment, resume
from funsearch import config as config_module
from funsearch import spec as spec_module
from funsearch.cli_live import LiveView
from funsearch.code import CodeError
from funsearch.formats import openevolve_config

_USER_ERRORS = (config_module.ConfigError, spec_module.SpecError, CodeError, FileNotFoundError,
                ValueError)
_DESCRIPTION = ("Evolutionary program search in the style of FunSearch: run an experiment, "
                "check a problem spec, and read, compare or export the runs.")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    if not getattr(arguments, "command", None):
        parser.print_help()
        return 2
    try:
        with _warnings_in_words(_console(stderr=True)):
            return arguments.command(arguments)
    except _USER_ERRORS as error:
        _console(stderr=True).print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130


class _warnings_in_words:
    """A setting that does nothing (config.ConfigWarning) is one `warning:`
    line, printed as it is found; other warnings go their usual way."""

    def __init__(self, console: Console):
        self._console = console
        self._context = warnings.catch_warnings()

    def __enter__(self) -> None:
        self._context.__enter__()
        warnings.simplefilter("always", config_module.ConfigWarning)
        previous = warnings.showwarning

        def show(message, category, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
            if issubclass(category, config_module.ConfigWarning):
                self._console.print(f"[yellow]warning:[/] {escape(str(message))}",
                                    highlight=False)
            else:
                previous(message, category, *args, **kwargs)

        warnings.showwarning = show

    def __exit__(self, *exc: object) -> None:
        self._context.__exit__(*exc)


def _console(stderr: bool = False) -> Console:
    """A console that does not break lines when writing to a file or pipe, so
    messages and tables stay whole in logs and in what a test reads."""
    console = Console(stderr=stderr, soft_wrap=True)
    if not console.is_terminal:
        console = Console(stderr=stderr, soft_wrap=True, width=200)
    return console


def _version() -> str:
    try:
        return metadata.version("funsearch")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="funsearch", description=_DESCRIPTION,
        epilog="`funsearch COMMAND --help` lists the arguments of a command.")
    parser.add_argument("--version", action="version", version=f"funsearch {_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_run_commands(commands)
    cli_check.add_commands(commands, _console)
    _add_report_commands(commands)
    _add_study_commands(commands)
    return parser


def _add_study_commands(commands: argparse._SubParsersAction) -> None:
    """funsearch study STUDY.toml | funsearch study show DIR (funsearch/study/commands.py)."""
    from funsearch.study.commands import add_commands

    add_commands(commands)


def _add_run_commands(commands: argparse._SubParsersAction) -> None:
    """run | resume: a search, started or continued."""
    run = commands.add_parser(
        "run", help="run an experiment (a TOML file, or an OpenEvolve folder with its "
                    "config.yaml) to its budget",
        description="Runs an experiment to its budget. The run directory is printed at the "
                    "start; `funsearch show DIR` reads it live.")
    run.add_argument("experiment", type=Path, help="the experiment file (TOML), e.g. "
                     "experiments/tsp_quickstart.toml, or an OpenEvolve problem folder")
    run.add_argument("--max-samples", type=int, metavar="N",
                     help="sample budget (scheduler.budget.samples)")
    run.add_argument("--seed", type=int, help="the experiment's seed (seed)")
    run.add_argument("--out", metavar="DIR",
                     help="folder for run directories (out; default: the config's, runs/)")
    run.add_argument("--isolation", choices=["auto", "bwrap", "process"],
                     help="sandbox isolation (evaluator.isolation; default: the config's)")
    _add_runtime_flags(run)
    run.set_defaults(command=_run)

    resume = commands.add_parser(
        "resume", help="continue a stopped or killed run: replay its log, spend the budget left",
        description="Continues a run from its event log with the budget left. A finished "
        "run needs a larger budget (--max-samples, or --set scheduler.budget.KEY=VALUE).")
    resume.add_argument("run_dir", type=Path, help="the run directory to continue")
    resume.add_argument("--max-samples", type=int, metavar="N",
                        help="a new sample budget, to extend a finished run")
    _add_runtime_flags(resume)
    resume.set_defaults(command=_resume)


def _add_runtime_flags(command: argparse.ArgumentParser) -> None:
    """run and resume: where the run goes, and any setting of the experiment."""
    command.add_argument("--runtime", choices=["inline", "ray"],
                         help="runtime.kind: inline (one process) or ray")
    command.add_argument("--address", help="Ray cluster to join (runtime.address): auto, "
                         "HOST:PORT or ray://HOST:10001")
    command.add_argument("--set", dest="settings", action="append", default=[],
                         metavar="KEY=VALUE", type=_assignment,
                         help="set any experiment key, as in the TOML file (repeatable), e.g. "
                         "--set scheduler.budget.wall=5m --set database.islands=8 --set "
                         "samplers.mutation.settings.crossover_rate=0.5")


def _assignment(text: str) -> tuple[str, object]:
    try:
        return config_module.parse_assignment(text)
    except config_module.ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# Command-line flags and the config keys they set.
_OVERRIDES = {"max_samples": "scheduler.budget.samples", "seed": "seed", "out": "out",
              "isolation": "evaluator.isolation", "runtime": "runtime.kind",
              "address": "runtime.address"}


def _overrides(arguments: argparse.Namespace) -> dict[str, object]:
    """The config keys the given flags and --set assignments set (flags left
    out change nothing; a flag wins over a --set of the same key)."""
    overrides = dict(getattr(arguments, "settings", None) or [])
    overrides.update({key: getattr(arguments, flag) for flag, key in _OVERRIDES.items()
                      if getattr(arguments, flag, None) is not None})
    if isinstance(overrides.get("out"), str):
        overrides["out"] = str(Path(overrides["out"]).resolve())
    return overrides


def _run(arguments: argparse.Namespace) -> int:
    if arguments.experiment.is_dir():  # an OpenEvolve folder, with its config.yaml
        config = _folder_config(arguments.experiment, _overrides(arguments))
    else:
        config = config_module.load(arguments.experiment, **_overrides(arguments))
    console = _console()
    with LiveView(console) as show:
        result = experiment.run(config, on_status=show,
                                on_start=lambda run_dir: _print_start(console, run_dir),
                                on_scoring=lambda scored: cli_check.print_scoring(console, scored))
    _print_result(console, config.problem.inputs, result)
    return 0


def _folder_config(folder: Path, overrides: dict) -> config_module.ExperimentConfig:
    """The experiment of an OpenEvolve folder run without an experiment file:
    config.yaml's settings where they have a counterpart, then the flags."""
    folder = folder.resolve()
    data = {"name": folder.name, "problem": {"spec": str(folder), "format": "openevolve"},
            **openevolve_config.translate(folder / "config.yaml").settings}
    overridden = config_module.apply_overrides(data, overrides)
    return config_module.from_dict(data, source=str(folder / "config.yaml"),
                                   overridden=overridden)


def _resume(arguments: argparse.Namespace) -> int:
    config = resume.load_config(arguments.run_dir, **_overrides(arguments))
    console = _console()
    with LiveView(console) as show:
        result = experiment.resume(
            arguments.run_dir, on_status=show, config=config,
            on_start=lambda run_dir: _print_start(console, run_dir),
            on_scoring=lambda scored: cli_check.print_scoring(console, scored))
    _print_result(console, config.problem.inputs, result)
    return 0


def _print_start(console: Console, run_dir: Path) -> None:
    console.print(f"run directory: {run_dir}  (funsearch show {run_dir}: how it is going)",
                  highlight=False)


def _print_result(console: Console, inputs: str, result: experiment.RunResult) -> None:
    console.print(f"stopped: {result.stop_reason}")
    console.print(f"best score on '{inputs}': {result.best_score:.6g}")
    for input_set, score in result.holdout.items():
        console.print(f"best score on '{input_set}': "
                      f"{'failed' if score is None else format(score, '.6g')}")
    console.print(f"sandbox isolation: {result.isolation}")
    console.print(f"run directory: {result.run_dir}  (best program: {result.run_dir}/best.py)")


def _add_report_commands(commands: argparse._SubParsersAction) -> None:
    """show | compare | export: read run directories (live or finished), never write to them
    except for export's output file."""
    show = commands.add_parser("show", help="what one run did: best score, outcomes, samplers")
    show.add_argument("run_dir", type=Path, help="a run directory (live, finished or crashed)")
    show.add_argument("--top", type=int, default=3, help="programs per island (default 3)")
    show.set_defaults(command=_show)

    compare = commands.add_parser(
        "compare", help="groups of runs of one problem at equal budgets, with intervals over "
                        "seeds and each group's difference to a reference",
        description="Compares groups of runs (seeds of one setting each) at budgets every run "
        "has spent. Runs of different problems are compared apart, never averaged together; "
        "runs that never started are left out, with the reason.")
    compare.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR",
                         help="run directories, or folders holding run directories")
    compare.add_argument("--by", default="sampler",
                         help="what makes a group: sampler (default) | policy | a dotted config "
                              "KEY, e.g. samplers.0.model or samplers.0.settings.crossover_rate "
                              "(a run without the key counts with its default)")
    compare.add_argument("--reference", metavar="GROUP",
                         help="the group the others are set against (default: the first)")
    compare.add_argument("--plot", type=Path, help="write best score vs budget as PNG")
    compare.add_argument("--html", type=Path, help="write a self-contained HTML report")
    compare.add_argument("--threshold", type=float,
                         help="score for the time-to-threshold rows (default: the lowest "
                              "final best score, which every run reached)")
    compare.add_argument("--samples", type=float, help="equal sample budget (default: the "
                         "most every run has spent); likewise --wall, --compute, --gpu-hours")
    compare.add_argument("--wall", type=config_module.parse_duration,
                         help="equal wall-time budget (e.g. 300, \"5m\")")
    compare.add_argument("--compute", type=config_module.parse_duration,
                         help="equal compute budget: seconds of proposal (GPU-seconds, or "
                              "request seconds) plus evaluation, as the scheduler counts them")
    compare.add_argument("--gpu-hours", type=float, help="equal GPU-hour budget")
    compare.add_argument("--bootstrap-seed", type=int, default=0, metavar="SEED",
                         help="seed of the bootstrap's resampling, so intervals repeat (default 0)")
    compare.set_defaults(command=_compare)

    export = commands.add_parser("export", help="the events of a run as one table")
    export.add_argument("run_dir", type=Path, help="a run directory (live, finished or crashed)")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv",
                        help="csv (default) or parquet (needs pyarrow)")
    export.add_argument("--out", type=Path, help="output file (default: RUN_DIR/events.FORMAT)")
    export.set_defaults(command=_export)


def _read_runs(paths: list[Path]) -> list:
    """Runs read with their warnings (a truncated last line) shown once, in words."""
    from funsearch.reports import rundata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each run keeps its warnings; show/compare print them
        return [rundata.read_run(path) for path in rundata.find_runs(paths)]


def _show(arguments: argparse.Namespace) -> int:
    from funsearch.reports import report

    report.show(_read_runs([arguments.run_dir])[0], _console(), top=arguments.top)
    return 0


def _compare(arguments: argparse.Namespace) -> int:
    from funsearch.reports import compare, compare_view

    runs = _read_runs(arguments.run_dirs)
    budgets = {"samples": arguments.samples, "wall": arguments.wall,
               "compute": arguments.compute, "gpu_hours": arguments.gpu_hours}
    try:
        report = compare.compare(runs, by=arguments.by, budgets=budgets,
                                 threshold=arguments.threshold, seed=arguments.bootstrap_seed,
                                 reference=arguments.reference)
    except KeyError as error:
        raise ValueError(error.args[0]) from None
    console = _console()
    compare_view.render(report, console)
    png = compare_view.plot_png(report) if arguments.plot or arguments.html else None
    if arguments.plot:
        arguments.plot.write_bytes(png)
        console.print(f"plot: {arguments.plot}")
    if arguments.html:
        compare_view.write_html(report, arguments.html, png)
        console.print(f"html: {arguments.html}")
    return 0


def _export(arguments: argparse.Namespace) -> int:
    from funsearch.reports import report

    out = report.export(arguments.run_dir, arguments.format, arguments.out)
    _console().print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
