"""`funsearch show` and `funsearch export`: one run, as tables or as a flat file.

`show` prints what a run did: its config in short, the best score over time,
the outcome of the samples by reason, what each sampler cost and how often it
improved on its parents, and the best programs per island with their lineage.
`export` writes the events as CSV or Parquet for analysis elsewhere.
Comparisons of several runs live in compare.py.
"""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from funsearch import events
from funsearch.outcomes import OUTCOMES
from funsearch.reports.rundata import RunData, number

_SPARKS = "▁▂▃▄▅▆▇█"


def fmt(value: Any, digits: int = 6) -> str:
    """A number for a table cell; '-' when there is none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.2f}h"


def sparkline(values: list[float]) -> str:
    """One character per value, scaled between the smallest and largest."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(_SPARKS[round((value - low) / span * (len(_SPARKS) - 1))]
                   for value in values)


def status_line(run: RunData) -> str:
    if run.end is not None:
        return f"ended: {run.end.reason or '?'}"
    if run.failed_start is not None:
        return f"failed to start: {run.failed_start}"
    if run.start is None:
        return "not started: no run_start in the log yet (starting, or stopped while starting)"
    return "no run_end yet: running, or stopped without finishing (crashed or killed)"


def config_summary(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The settings that tell runs apart, as (label, value) rows."""
    def get(*keys: str, default: Any = "-") -> Any:
        node: Any = config
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        return node

    samplers = []
    for sampler in get("samplers", default=[]) or []:
        model = f" {sampler.get('model')}" if sampler.get("model") else ""
        size = f" ({sampler.get('size')})" if sampler.get("size") else ""
        samplers.append(f"{sampler.get('name')}: {sampler.get('backend')}{model}{size} "
                        f"x{sampler.get('replicas', 1)}, {sampler.get('samples_per_prompt', '-')}"
                        f"/prompt, T={sampler.get('temperature', '-')}")
    budget = {key: value for key, value in (get("scheduler", "budget", default={}) or {}).items()
              if value is not None}
    return [
        ("problem", f"{get('problem', 'spec')} on '{get('problem', 'inputs')}', holdout "
                    f"{', '.join(get('problem', 'holdout', default=[])) or '-'}"),
        ("database", f"{get('database', 'islands')} islands, "
                     f"{get('database', 'functions_per_prompt')} functions/prompt, reset every "
                     f"{get('database', 'reset_every')} registrations or "
                     f"{fmt_seconds(number(get('database', 'reset_period', default=None)))}"),
        ("evaluator", f"{get('evaluator', 'actors')} x {get('evaluator', 'workers')} workers, "
                      f"timeout {get('evaluator', 'timeout')}s, "
                      f"{get('evaluator', 'memory_mb')} MB, isolation "
                      f"{get('evaluator', 'isolation')}"),
        ("samplers", "\n".join(samplers) or "-"),
        ("scheduler", f"{get('scheduler', 'policy')}, budget "
                      f"{', '.join(f'{k}={v}' for k, v in budget.items()) or 'none'}, "
                      f"{get('scheduler', 'max_in_flight')} in flight"),
        ("runtime", f"{get('runtime', 'kind')} {get('runtime', 'address', default='')}".strip()),
    ]


def show(run: RunData, console: Console, top: int = 3, best_rows: int = 12) -> None:
    """Prints the report of one run."""
    for warning in run.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    head = Table.grid(padding=(0, 2))
    head.add_row("run", str(run.dir))
    started = run.start.name if run.start else "?"
    head.add_row("name / seed", f"{run.config.get('name', started)} / "
                                f"{run.seed}")
    head.add_row("status", status_line(run))
    if run.start:
        head.add_row("isolation", str(run.start.isolation or "?"))
    if run.start and run.start.split is not None:  # plain text: they name [evaluator] keys
        head.add_row("scoring", Text(f"{run.start.scoring} (split "
                                     f"{'on' if run.start.split else 'off'})"))
        head.add_row("forgeable", Text(run.start.forgeable, style="yellow") if
                     run.start.forgeable else "nothing but the program's own answers")
    for label, value in config_summary(run.config):
        head.add_row(label, value)
    head.add_row("progress", f"{run.samples} samples in {fmt_seconds(run.wall)}, "
                             f"{run.gpu_seconds / 3600:.3g} GPU-hours, " + (
                                 f"{run.cpu_seconds / 3600:.3g} CPU-hours of proposals, "
                                 if run.cpu_seconds else "") + f"${run.usd:.2f}, "
                             f"{fmt_seconds(run.evaluation_seconds)} in the sandbox" + (
                                 f" ({run.evaluation_cpu_seconds:.0f} CPU-seconds)"
                                 if run.evaluation_cpu_seconds else ""))
    head.add_row("evaluation", f"{fmt(run.evaluation_per_sample, 3)} sandbox seconds per "
                               f"proposal, {fmt(run.evaluation_per_improvement, 3)} per "
                               f"improvement ({run.improvements} improvements)")
    if run.stages:
        head.add_row("cascade", _cascade_lines(run))
    head.add_row("events", ", ".join(f"{kind} {n}" for kind, n in run.kinds.most_common()))
    if run.stalls:  # a sampler that only repeated or failed for a while (funsearch/stall.py)
        head.add_row("stalls", "\n".join(f"after {samples} samples: {message}"
                                          for samples, message in run.stalls))
    head.add_row("best score", f"{fmt(run.best_score)} (train)" + "".join(
        f", {fmt(score)} ({name})" for name, score in run.holdout.items()))
    for label, sets in _references(run):
        head.add_row(label, ", ".join(f"{fmt(score)} ({name})" for name, score in sets.items()))
    if run.kinds["resume"]:
        head.add_row("sessions", f"started once, resumed {run.kinds['resume']} times")
    if run.samples and run.best:
        points = [run.best_at("samples", run.samples * i / 40) for i in range(41)]
        head.add_row("over samples", sparkline([p for p in points if p is not None]))
    console.print(head)
    console.print(_best_table(run, best_rows))
    console.print(_outcome_table(run))
    console.print(_sampler_table(run))
    console.print(_island_table(run, top))


def _references(run: RunData) -> list[tuple[str, dict[str, float | None]]]:
    """The initial program's and the baselines' scores (train, held out) from
    summary.json, or the initial program's training score from the log."""
    summary = run.summary or {}
    initial = {name: number((figures or {}).get("score"))
               for name, figures in (summary.get("initial") or {}).items()}
    if not initial and run.best:
        initial = {"train": run.best[0].score}
    found = [("initial program", initial)] if initial else []
    for name, sets in (summary.get("baselines") or {}).items():
        found.append((f"baseline {name}", {s: number((figures or {}).get("score"))
                                           for s, figures in (sets or {}).items()}))
    return found


def _cascade_lines(run: RunData) -> str:
    """Per stage what its rule did and, at the end, its threshold and the
    improvements its stops are estimated to have lost (scheduling/cascade.py)."""
    summary = (run.cascade or {}).get("stages") or []
    lines = []
    for stage, verdicts in sorted(run.stages.items()):
        judged = sum(verdicts[key] for key in ("passed", "stopped", "audited", "failed"))
        line = (f"stage {stage}: {verdicts['passed']} passed, {verdicts['stopped']} stopped, "
                f"{verdicts['audited']} audited of {judged}; "
                f"{fmt(verdicts['seconds'] / judged if judged else None, 3)} s each")
        if stage < len(summary):
            figures = summary[stage]
            line += (f"; threshold {fmt(figures.get('threshold'), 3)} "
                     f"({figures.get('changes', 0)} changes), audited improved "
                     f"{figures.get('audited_improved', 0)}, est. lost improvements "
                     f"{fmt(figures.get('lost'), 3)}")
        lines.append(line)
    return "\n".join(lines)


def _best_table(run: RunData, rows: int) -> Table:
    table = Table(title="best score over time", title_justify="left")
    for column in ("elapsed", "samples", "GPU-h", "score", "program", "sampler", "island"):
        table.add_column(column, justify="right" if column != "sampler" else "left")
    points = run.best
    if len(points) > rows:  # first, last and evenly spaced ones between
        step = (len(points) - 1) / (rows - 1)
        points = [points[round(i * step)] for i in range(rows)]
    for point in points:
        table.add_row(fmt_seconds(point.wall), str(point.samples), f"{point.gpu_hours:.3g}",
                      fmt(point.score), fmt(point.program_id), point.sampler or "initial",
                      fmt(point.island))
    return table


def _outcome_table(run: RunData) -> Table:
    table = Table(title="samples by outcome", title_justify="left")
    table.add_column("outcome")
    table.add_column("reason")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    total = sum(run.outcomes.values())
    order = {outcome: index for index, outcome in enumerate(OUTCOMES)}
    for (outcome, reason), count in sorted(run.outcomes.items(),
                                           key=lambda item: (order[item[0][0]], -item[1])):
        table.add_row(outcome, reason, str(count), f"{100 * count / total:.1f}%")
    pending = run.samples - total
    if pending > 0:
        table.add_row("pending", "no outcome logged yet", str(pending), "")
    if run.kinds["discard"]:
        table.caption = (f"{run.kinds['discard']} scored programs were not registered "
                         "(their island was reset after the prompt)")
    return table


def _sampler_table(run: RunData) -> Table:
    table = Table(title="per sampler", title_justify="left")
    columns = ("sampler", "samples", "valid", "latency (median)", "prompt tok", "completion tok",
               "GPU-h", "CPU-h", "USD", "improvements", "per 1k samples", "errors")
    for column in columns:
        table.add_column(column, justify="left" if column == "sampler" else "right")
    for name, stats in sorted(run.samplers.items()):
        latency = (f"{statistics.fmean(stats.latencies):.3g}s "
                   f"({statistics.median(stats.latencies):.3g}s)" if stats.latencies else "-")
        rate = stats.valid_rate
        table.add_row(name, str(stats.samples), "-" if rate is None else f"{100 * rate:.1f}%",
                      latency, str(stats.prompt_tokens), str(stats.completion_tokens),
                      f"{stats.gpu_seconds / 3600:.3g}", f"{stats.cpu_seconds / 3600:.3g}",
                      f"{stats.usd:.2f}",
                      str(stats.improvements),
                      f"{1000 * stats.improvements / stats.samples:.1f}" if stats.samples
                      else "-", str(stats.errors))
    return table


def lineage(run: RunData, program_id: int, limit: int = 8) -> str:
    """The chain of best parents back to the initial program: '12 ← 7 ← 0'."""
    chain, seen, current = [], set(), run.programs.get(program_id)
    while current is not None and current.id not in seen:
        chain.append(current.id)
        seen.add(current.id)
        known = [run.programs[p] for p in current.parents if p in run.programs]
        current = max(known, key=lambda p: p.score) if known else None
    if len(chain) > limit:
        chain = chain[:limit - 2] + ["…"] + chain[-1:]
    return " ← ".join(map(str, chain))


def _island_table(run: RunData, top: int) -> Table:
    table = Table(title=f"top {top} programs per island (lineage: best parent, back to the "
                        "initial program)", title_justify="left")
    for column in ("island", "program", "score", "sampler", "lineage"):
        table.add_column(column, justify="right" if column in ("island", "score") else "left")
    for island in sorted(run.islands, key=lambda i: (i is None, i)):
        programs = sorted((run.programs[i] for i in run.islands[island]),
                          key=lambda p: (-p.score, p.id))[:top]
        for rank, program in enumerate(programs):
            table.add_row(fmt(island) if rank == 0 else "", str(program.id), fmt(program.score),
                          program.sampler or "initial", lineage(run, program.id))
    return table


class ExportError(ValueError):
    """An export that cannot be written (unknown format, pyarrow missing)."""


def _flat(value: Any) -> Any:
    """A cell value: nested data as compact JSON, scalars as they are."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, separators=(",", ":"))
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    return "float" if isinstance(value, float) else "string"


def _columns(run_dir: Path) -> dict[str, str]:
    """Every field of the events, with one type that holds all its values:
    ints widen to floats, and anything mixed becomes text."""
    columns: dict[str, str | None] = {"t": None, "kind": None}
    for event in events.records(run_dir):
        for key, value in event.items():
            if value is None:
                columns.setdefault(key, None)
                continue
            kind, known = _kind(_flat(value)), columns.get(key)
            if known is None or known == kind:
                columns[key] = kind
            elif {known, kind} == {"int", "float"}:
                columns[key] = "float"
            else:
                columns[key] = "string"
    return {key: kind or "string" for key, kind in columns.items()}


def _cell(value: Any, kind: str) -> Any:
    value = _flat(value)
    if value is None:
        return None
    if kind == "float":
        return float(value)
    return str(value) if kind == "string" else value


def export(run_dir: str | Path, format: str = "csv", out: str | Path | None = None,
           batch: int = 10_000) -> Path:
    """Writes the run's events as one table (a column per field, nested values
    as JSON text) and returns the file written. Streams: a long run's log does
    not have to fit in memory."""
    run_dir = Path(run_dir)
    if format not in ("csv", "parquet"):
        raise ExportError(f"export format must be csv or parquet, not {format!r}")
    if format == "parquet":
        try:
            import pyarrow
            import pyarrow.parquet
        except ImportError:
            raise ExportError("Parquet export needs pyarrow, which is not installed here: "
                              "pip install pyarrow, or export with --format csv") from None
    out = Path(out) if out else run_dir / f"events.{format}"
    columns = _columns(run_dir)
    if format == "csv":
        with open(out, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=list(columns), restval="")
            writer.writeheader()
            for event in events.records(run_dir):
                writer.writerow({key: _flat(value) for key, value in event.items()})
        return out
    types = {"bool": pyarrow.bool_(), "int": pyarrow.int64(), "float": pyarrow.float64(),
             "string": pyarrow.string()}
    schema = pyarrow.schema([(key, types[kind]) for key, kind in columns.items()])
    with pyarrow.parquet.ParquetWriter(out, schema) as writer:
        rows: list[dict[str, Any]] = []
        for event in [*events.records(run_dir), None]:
            if event is not None:
                rows.append({key: _cell(event.get(key), kind) for key, kind in columns.items()})
            if rows and (event is None or len(rows) >= batch):
                writer.write_table(pyarrow.Table.from_pylist(rows, schema=schema))
                rows = []
    return out
