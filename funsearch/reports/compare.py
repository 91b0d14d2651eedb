"""`funsearch compare`: groups of runs side by side, at equal budgets, with error bars.

Runs are grouped by one setting (the samplers, the scheduler policy, or any
config key such as `samplers.0.model`); the runs of a group are usually seeds
of one configuration. Per group: the best score at equal budgets (samples,
wall time, GPU-hours), the budget spent to reach a threshold score, the valid
rate and the improvements per 1000 samples, each a mean over the group's runs
with a bootstrap 95% interval. Runs whose configs differ in more than the
compared setting are flagged, since the difference could then come from
elsewhere.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
from collections import Counter
from pathlib import Path
from typing import IO, Any

import numpy as np
from rich.console import Console
from rich.table import Table

from funsearch.reports import stats
from funsearch.reports.report import fmt, fmt_seconds
from funsearch.reports.rundata import UNITS, RunData

IGNORED = ("seed", "out", "name", "base_dir")
# What else varies with a grouping, so it is not reported as a confounder.
_VARIES_WITH = {"sampler": ("samplers", "scheduler.weights"),
                "policy": ("scheduler.policy", "scheduler.weights")}
_LABELS = {"samples": "samples", "wall": "wall time", "gpu_hours": "GPU-hours", "usd": "USD"}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One metric of one group: the interval over the runs that have a value
    (`reached` of `total`; a run may not have spent the budget or reached the
    threshold)."""

    interval: stats.Interval | None
    reached: int
    total: int


@dataclasses.dataclass(frozen=True)
class Row:
    """A metric across groups. unit: how to print it (score, samples, wall,
    gpu_hours, usd, percent, rate)."""

    label: str
    unit: str
    cells: dict[str, Cell]


@dataclasses.dataclass(frozen=True)
class Difference:
    """A config key (other than the compared one) with different values across
    runs; `values` maps run index to the value as text."""

    key: str
    values: dict[int, str]


@dataclasses.dataclass
class Comparison:
    by: str
    runs: list[RunData]
    groups: dict[str, list[int]]  # label -> run indices
    units: list[str]
    budgets: dict[str, float]
    threshold: float | None
    rows: list[Row]
    differences: list[Difference]
    flagged: dict[int, list[str]]  # run index -> keys where it differs from the majority
    seed: int = 0

    def group_of(self, index: int) -> str:
        return next(label for label, members in self.groups.items() if index in members)


def config_value(config: dict[str, Any], key: str) -> Any:
    """The value at a dotted key (list items by index: `samplers.0.model`)."""
    node: Any = config
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(key)
    return node


def group_label(run: RunData, by: str) -> str:
    """The value that puts a run in its group, as text."""
    if by == "sampler":
        started = (run.start.samplers if run.start else None) or []
        samplers = run.config.get("samplers") or [{"name": name} for name in started]
        return "+".join(str(s.get("name")) + (f" ({s['model']})" if s.get("model") else "")
                        for s in samplers) or "?"
    key = "scheduler.policy" if by == "policy" else by
    try:
        value = config_value(run.config, key)
    except KeyError:
        if by == "policy" or not run.config:
            return "?"
        raise KeyError(f"{run.dir}: config has no key '{key}' (top-level keys: "
                       f"{', '.join(sorted(run.config))})") from None
    return value if isinstance(value, str) else json.dumps(value)


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(config, dict) and config:
        items = config.items()
    elif isinstance(config, list) and config:
        items = ((str(index), value) for index, value in enumerate(config))
    else:
        return {prefix: config}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def differences(runs: list[RunData], by: str) -> tuple[list[Difference], dict[int, list[str]]]:
    """Config keys that differ across runs beyond the compared one, and the runs
    to flag: those off the majority value (all of them when there is none)."""
    skipped = IGNORED + _VARIES_WITH.get(by, (by,))
    flats = [flatten(run.config) for run in runs]
    found, flagged = [], {}
    for key in sorted(set().union(*flats)):
        if any(key == s or key.startswith(s + ".") for s in skipped):
            continue
        values = {i: json.dumps(flat.get(key, "<absent>")) for i, flat in enumerate(flats)}
        if len(set(values.values())) < 2:
            continue
        found.append(Difference(key, values))
        counts = Counter(values.values()).most_common()
        majority = counts[0][0] if counts[0][1] > counts[1][1] else None
        for index, value in values.items():
            if value != majority:
                flagged.setdefault(index, []).append(key)
    return found, flagged


def compare(runs: list[RunData], by: str = "sampler", budgets: dict[str, float] | None = None,
            threshold: float | None = None, seed: int = 0) -> Comparison:
    """Groups the runs and computes the table. budgets: unit -> equal budget
    (default: the most every run has spent); threshold: the score to reach
    (default: the lowest final best score, so that every run reaches it)."""
    if not runs:
        raise ValueError("compare needs at least one run")
    groups: dict[str, list[int]] = {}
    for index, run in enumerate(runs):
        groups.setdefault(group_label(run, by), []).append(index)
    groups = dict(sorted(groups.items(), key=lambda item: _natural(item[0])))
    units = [u for u in UNITS if u in ("samples", "wall") or any(r.extent(u) > 0 for r in runs)]
    chosen = {unit: min(run.extent(unit) for run in runs) for unit in units}
    chosen.update({unit: value for unit, value in (budgets or {}).items() if value is not None})
    finals = [run.best_score for run in runs if run.best_score is not None]
    if threshold is None and finals:
        threshold = min(finals)

    def row(label: str, unit: str, value) -> Row:
        cells = {}
        for group, members in groups.items():
            values = [value(runs[i]) for i in members]
            present = [v for v in values if v is not None]
            cells[group] = Cell(stats.bootstrap_mean(present, seed=seed), len(present),
                                len(values))
        return Row(label, unit, cells)

    rows = []
    for unit in units:
        rows.append(row(f"best score at {_budget_text(unit, chosen[unit])}", "score",
                        lambda run, u=unit: run.best_at(u, chosen[u])))
    if threshold is not None:
        for unit in units:
            rows.append(row(f"{_LABELS[unit]} to reach {threshold:.6g}", unit,
                            lambda run, u=unit: run.reached(u, threshold)))
    rows.append(row("valid rate", "percent",
                    lambda run: None if run.valid_rate is None else 100 * run.valid_rate))
    rows.append(row("improvements per 1k samples", "rate", lambda run: run.improvements_per_1k))
    rows.append(row("best score at the end", "score", lambda run: run.best_score))
    found, flagged = differences(runs, by)
    return Comparison(by, runs, groups, units, chosen, threshold, rows, found, flagged, seed)


def _natural(label: str) -> tuple:
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def _budget_text(unit: str, value: float) -> str:
    if unit == "wall":
        return fmt_seconds(value)
    if unit == "samples":
        return f"{value:.0f} samples"
    return f"{value:.3g} {UNITS[unit]}"


def _value_text(value: float, unit: str) -> str:
    if unit == "wall":
        return fmt_seconds(value)
    if unit == "percent":
        return f"{value:.1f}%"
    if unit in ("samples", "rate"):
        return f"{value:.1f}" if unit == "rate" or value != int(value) else f"{value:.0f}"
    return fmt(float(value), 6 if unit == "score" else 3)


def cell_text(cell: Cell, unit: str) -> str:
    """'mean [low, high]', with 'k/n runs' when not every run has a value."""
    if cell.interval is None:
        return f"- (0/{cell.total})"
    i = cell.interval
    text = _value_text(i.mean, unit)
    if i.n > 1:
        text += f" [{_value_text(i.low, unit)}, {_value_text(i.high, unit)}]"
    if cell.reached < cell.total:
        text += f" ({cell.reached}/{cell.total})"
    return text


def run_rows(comparison: Comparison) -> list[list[str]]:
    """One row per run: what it is and where it got to."""
    rows = []
    for index, run in enumerate(comparison.runs):
        flag = comparison.flagged.get(index)
        rows.append([run.name, comparison.group_of(index), fmt(run.seed),
                     "running?" if run.running else "ended", str(run.samples),
                     fmt_seconds(run.wall), f"{run.gpu_seconds / 3600:.3g}", fmt(run.best_score),
                     "differs: " + ", ".join(flag) if flag else ""])
    return rows


RUN_COLUMNS = ("run", "group", "seed", "status", "samples", "wall", "GPU-h", "best", "flag")


def render(comparison: Comparison, console: Console) -> None:
    for run in comparison.runs:
        for warning in run.warnings:
            console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    runs = Table(*RUN_COLUMNS, title="runs", title_justify="left")
    for row in run_rows(comparison):
        runs.add_row(*row[:-1], f"[yellow]{row[-1]}[/]" if row[-1] else "")
    console.print(runs)
    table = Table(title=f"by {comparison.by}: mean [95% bootstrap interval over runs]",
                  title_justify="left")
    table.add_column("metric")
    for group, members in comparison.groups.items():
        table.add_column(f"{group} (n={len(members)})", justify="right")
    for row in comparison.rows:
        table.add_row(row.label, *(cell_text(row.cells[g], row.unit) for g in comparison.groups))
    console.print(table)
    for line in difference_lines(comparison):
        console.print(f"[yellow]{line}[/]", highlight=False)


def difference_lines(comparison: Comparison) -> list[str]:
    if not comparison.differences:
        return []
    lines = [f"flagged: the configs differ in more than '{comparison.by}', so a difference "
             "between groups may come from these too:"]
    for difference in comparison.differences:
        by_value: dict[str, list[str]] = {}
        for index, value in difference.values.items():
            by_value.setdefault(value, []).append(comparison.runs[index].name)
        lines.append(f"  {difference.key}: " + "; ".join(
            f"{value} in {', '.join(names)}" for value, names in by_value.items()))
    return lines


def _grid(runs: list[RunData], unit: str, end: float, points: int) -> np.ndarray:
    """Budgets where a curve can change: every run's improvements up to `end`
    (so the steps are exact), thinned to at most `points` on long runs."""
    steps = {0.0, end} | {p.at(unit) for run in runs for p in run.best if p.at(unit) <= end}
    grid = np.array(sorted(steps))
    if len(grid) > points:
        grid = grid[np.unique(np.linspace(0, len(grid) - 1, points).round().astype(int))]
    return grid


def plot(comparison: Comparison, out: str | Path | IO[bytes], points: int = 400) -> None:
    """Best score against each budget, a line per group (the mean over its
    runs) in a shaded 95% bootstrap band; written as PNG."""
    # The Agg canvas directly, not pyplot: no global backend state is touched.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A fixed layout: constrained/tight layout would draw the figure twice.
    figure = Figure(figsize=(5.5 * len(comparison.units), 4.2))
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.91, wspace=0.3)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(comparison.units), squeeze=False)[0]
    for ax, unit in zip(axes, comparison.units, strict=True):
        for group, members in comparison.groups.items():
            runs = [comparison.runs[i] for i in members]
            end = min(run.extent(unit) for run in runs)
            if end <= 0:
                continue
            grid = _grid(runs, unit, end, points)
            matrix = np.array([[np.nan if (v := run.best_at(unit, b)) is None else v
                                for b in grid] for run in runs])
            mean, low, high = stats.bootstrap_means(matrix, seed=comparison.seed)
            line, = ax.plot(grid, mean, drawstyle="steps-post", label=f"{group} (n={len(runs)})")
            ax.fill_between(grid, low, high, step="post", alpha=0.25, color=line.get_color())
        ax.axvline(comparison.budgets[unit], color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel({"wall": "wall time (s)", "usd": "cost (USD)"}.get(unit, _LABELS[unit]))
        ax.set_ylabel("best score")
        ax.set_title(f"best score vs {_LABELS[unit]}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    figure.savefig(out, format="png", dpi=100)


def plot_png(comparison: Comparison) -> bytes:
    buffer = io.BytesIO()
    plot(comparison, buffer)
    return buffer.getvalue()


def write_html(comparison: Comparison, out: str | Path, png: bytes | None = None) -> None:
    """A self-contained page: the tables, the flags and the plot inline
    (`png`: the plot already drawn, else it is drawn here)."""
    image = base64.b64encode(png or plot_png(comparison)).decode("ascii")
    e = html.escape
    head = "".join(f"<th>{e(f'{g} (n={len(m)})')}</th>" for g, m in comparison.groups.items())
    metrics = "".join(
        f"<tr><td>{e(row.label)}</td>"
        + "".join(f"<td>{e(cell_text(row.cells[g], row.unit))}</td>" for g in comparison.groups)
        + "</tr>" for row in comparison.rows)
    runs = "".join("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>"
                   for row in run_rows(comparison))
    flags = "".join(f"<li>{e(line.strip())}</li>" for line in difference_lines(comparison))
    Path(out).write_text(f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>funsearch compare by {e(comparison.by)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} td:first-child{{text-align:left}}
.flags{{color:#a60}}</style></head><body>
<h1>Compare by {e(comparison.by)}</h1>
<p>Mean over the runs of each group [95% bootstrap interval]; (k/n) when only k of n runs
have a value (did not spend the budget, or did not reach the threshold).</p>
<table><tr><th>metric</th>{head}</tr>{metrics}</table>
<ul class="flags">{flags}</ul>
<img alt="best score against budget" src="data:image/png;base64,{image}">
<h2>Runs</h2>
<table><tr>{"".join(f"<th>{c}</th>" for c in RUN_COLUMNS)}</tr>{runs}</table>
</body></html>
""", encoding="utf-8")
