"""`funsearch compare` for a person: tables and sentences, a plot, an HTML page.

Reads a compare.Report and says it: the runs left out and why, a table per
problem (the runs, the groups' means with intervals, each group's difference
to the reference), one sentence per group and budget saying whether the data
can tell it from the reference, warnings where groups are too small to
trust, and the configs' other differences. The plot shows best score
against each budget, one row of panels per problem.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import IO

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from funsearch.reports import stats
from funsearch.reports.compare import FEW_RUNS, LABELS, Cell, Comparison, Report, Row
from funsearch.reports.report import fmt, fmt_seconds
from funsearch.reports.rundata import RunData

INTERVALS = (f"95% interval over runs: Student's t under {stats.BOOTSTRAP_FROM} runs, "
             f"BCa bootstrap from {stats.BOOTSTRAP_FROM}")


def verdict(comparison: Comparison, row: Row, group: str) -> str:
    """One group against the reference on one row, in plain words."""
    contrast, reference = row.contrasts.get(group), comparison.reference
    where = row.label.removeprefix("best score ")
    if contrast is None or contrast.p_higher is None:
        return (f"{group} vs {reference} {where}: no interval (a group has one run, or no "
                "values): run more seeds")
    d = contrast.difference
    p_better = contrast.p_higher if row.higher_is_better else 1 - contrast.p_higher
    how = (f"paired by seed, {d.n} seeds" if contrast.paired
           else f"unpaired, {len(comparison.groups[group])} and "
                f"{len(comparison.groups[reference])} runs")
    numbers = (f"{_signed_text(d.mean, row.unit)} [{_signed_text(d.low, row.unit)}, "
               f"{_signed_text(d.high, row.unit)}], "
               f"P({group} better) {p_better:.2f}; {how}")
    if d.low > 0 or d.high < 0:
        better = (d.low > 0) == row.higher_is_better
        return (f"{group} is {'better' if better else 'worse'} than {reference} {where}: "
                f"{numbers}")
    return f"{group} and {reference} cannot be told apart {where}: {numbers}"


def warnings_of(comparison: Comparison) -> list[str]:
    """Groups too small to trust, in words."""
    lines = []
    small = {group: len(members) for group, members in comparison.groups.items()
             if len(members) < FEW_RUNS}
    if small:
        lines.append("too few runs to tell much: " + ", ".join(
            f"{group} has {n} run{'s' if n > 1 else ''}" for group, n in small.items())
            + f"; run {FEW_RUNS} or more seeds per group")
    if any(len(m) < stats.BOOTSTRAP_FROM for m in comparison.groups.values()):
        lines.append(f"intervals of groups with fewer than {stats.BOOTSTRAP_FROM} runs are "
                     "Student's t intervals (a bootstrap of so few runs is too narrow: with 2 "
                     f"it is their range); under {stats.FEW_RUNS} runs the values are listed "
                     "in braces")
    return lines




def run_rows(comparison: Comparison) -> list[list[str]]:
    """One row per run: what it is and where it got to."""
    rows = []
    for index, run in enumerate(comparison.runs):
        flag = comparison.flagged.get(index)
        rows.append([run.name, comparison.group_of(index), fmt(run.seed),
                     "running?" if run.running else "ended", str(run.samples),
                     fmt_seconds(run.wall), f"{run.gpu_seconds / 3600:.3g}",
                     f"{run.cpu_seconds / 3600:.3g}", fmt(run.best_score),
                     "differs: " + ", ".join(flag) if flag else ""])
    return rows


RUN_COLUMNS = ("run", "group", "seed", "status", "samples", "wall", "GPU-h", "CPU-h", "best",
               "flag")


def excluded_lines(report: Report) -> list[str]:
    """The runs left out, how many and why."""
    if not report.excluded:
        return []
    lines = [f"left out {len(report.excluded)} of "
             f"{len(report.excluded) + sum(len(c.runs) for c in report.comparisons)} runs "
             "(nothing to compare):"]
    lines += [f"  {run.name}: {reason}" for run, reason in report.excluded]
    return lines


def problem_lines(report: Report) -> list[str]:
    if len(report.comparisons) < 2:
        return []
    return [f"the runs are of {len(report.comparisons)} problems: "
            + "; ".join(f"{c.problem} ({len(c.runs)} runs)" for c in report.comparisons)
            + ". Each is compared on its own: scores of different problems are never "
              "put in one group or averaged."]


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
    lines.append(f"  (to compare by one of them: --by {comparison.differences[0].key})")
    return lines


def _bounded(value: float, unit: str) -> float:
    """An interval's end within what the metric can be (a t interval is not)."""
    if unit == "score":
        return value
    return min(max(value, 0.0), 100.0) if unit == "percent" else max(value, 0.0)


def _signed_text(value: float, unit: str) -> str:
    """A difference: its sign always, and 4 significant digits of a score."""
    text = fmt(abs(float(value)), 4) if unit == "score" else _value_text(abs(value), unit)
    return ("-" if value < 0 else "+") + text


def _value_text(value: float, unit: str) -> str:
    if unit == "wall":
        return fmt_seconds(value)
    if unit == "percent":
        return f"{value:.1f}%"
    if unit in ("samples", "rate"):
        return f"{value:.1f}" if unit == "rate" or value != int(value) else f"{value:.0f}"
    return fmt(float(value), 6 if unit == "score" else 3)


def cell_text(cell: Cell, unit: str) -> str:
    """'mean [low, high]', the values in braces when a group has few runs, and
    'k/n runs' when not every run has a value."""
    if cell.interval is None:
        return f"- (0/{cell.total})"
    i = cell.interval
    text = _value_text(i.mean, unit)
    if i.n > 1:
        low, high = _bounded(i.low, unit), _bounded(i.high, unit)
        text += f" [{_value_text(low, unit)}, {_value_text(high, unit)}]"
    if 1 < len(i.values):
        text += " {" + ", ".join(f"{v:.4g}" for v in i.values) + "}"
    if cell.reached < cell.total:
        text += f" ({cell.reached}/{cell.total})"
    return text


def contrast_text(row: Row, group: str) -> str:
    """'+d [low, high] P(better) p', or '-' where there is no interval."""
    contrast = row.contrasts.get(group)
    if contrast is None:
        return "-"
    d, unit = contrast.difference, row.unit
    if contrast.p_higher is None:
        return f"{_signed_text(d.mean, unit)} (no interval)"
    p_better = contrast.p_higher if row.higher_is_better else 1 - contrast.p_higher
    return (f"{_signed_text(d.mean, unit)} [{_signed_text(d.low, unit)}, "
            f"{_signed_text(d.high, unit)}] P(better) {p_better:.2f}"
            + (" paired" if contrast.paired else ""))


def render(report: Report, console: Console) -> None:
    """Prints the whole report."""
    for comparison in report.comparisons:
        for run in comparison.runs:
            for warning in run.warnings:
                console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    for line in excluded_lines(report) + problem_lines(report):
        console.print(f"[yellow]{escape(line)}[/]", highlight=False)
    for comparison in report.comparisons:
        _render_problem(comparison, console, several=len(report.comparisons) > 1)


def _render_problem(comparison: Comparison, console: Console, several: bool) -> None:
    if several:
        console.rule(f"problem: {comparison.problem}", align="left")
    runs = Table(*RUN_COLUMNS, title="runs", title_justify="left")
    for row in run_rows(comparison):
        runs.add_row(*row[:-1], f"[yellow]{row[-1]}[/]" if row[-1] else "")
    console.print(runs)
    for line in comparison.notes:
        console.print(escape(line), highlight=False)
    table = Table(title=f"by {comparison.by}: mean [{INTERVALS}]", title_justify="left")
    table.add_column("metric")
    for group, members in comparison.groups.items():
        table.add_column(f"{group} (n={len(members)})", justify="right")
    for row in comparison.rows:
        table.add_row(row.label, *(cell_text(row.cells[g], row.unit) for g in comparison.groups))
    console.print(table)
    others = [g for g in comparison.groups if g != comparison.reference]
    if others:
        console.print(_contrast_table(comparison, others))
        for row in comparison.rows:
            for group in others if row.headline else ():
                console.print(verdict(comparison, row, group), highlight=False)
    for line in warnings_of(comparison):
        console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)
    for line in difference_lines(comparison):
        console.print(f"[yellow]{escape(line)}[/]", highlight=False)


def _contrast_table(comparison: Comparison, others: list[str]) -> Table:
    table = Table(title=f"difference to {comparison.reference} (group minus reference) "
                        "[95% interval], P(better); paired: by seed", title_justify="left")
    table.add_column("metric")
    for group in others:
        table.add_column(group, justify="right")
    for row in comparison.rows:
        table.add_row(row.label, *(contrast_text(row, group) for group in others))
    return table


def _grid(runs: list[RunData], unit: str, end: float, points: int) -> np.ndarray:
    """Budgets where a curve can change: every run's improvements up to `end`
    (so the steps are exact), thinned to at most `points` on long runs."""
    steps = {0.0, end} | {p.at(unit) for run in runs for p in run.best if p.at(unit) <= end}
    grid = np.array(sorted(steps))
    if len(grid) > points:
        grid = grid[np.unique(np.linspace(0, len(grid) - 1, points).round().astype(int))]
    return grid


def plot(report: Report, out: str | Path | IO[bytes], points: int = 400) -> None:
    """Best score against each budget, a line per group (the mean over its
    runs) in a shaded 95% bootstrap band, a row of panels per problem; PNG."""
    # The Agg canvas directly, not pyplot: no global backend state is touched.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = max(len(c.units) for c in report.comparisons)
    rows = len(report.comparisons)
    # A fixed layout: constrained/tight layout would draw the figure twice.
    figure = Figure(figsize=(5.5 * columns, 4.2 * rows))
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.13 / rows, top=1 - 0.09 / rows,
                           wspace=0.3, hspace=0.45)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    for comparison, panels in zip(report.comparisons, axes, strict=True):
        for ax, unit in zip(panels, comparison.units, strict=False):
            _plot_panel(ax, comparison, unit, points, several=rows > 1)
        for ax in panels[len(comparison.units):]:
            ax.set_visible(False)
    figure.savefig(out, format="png", dpi=100)


def _plot_panel(ax, comparison: Comparison, unit: str, points: int, several: bool) -> None:  # noqa: ANN001
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
    ax.set_xlabel({"wall": "wall time (s)", "compute": "compute (s)",
                   "usd": "cost (USD)"}.get(unit, LABELS[unit]))
    ax.set_ylabel("best score")
    title = f"best score vs {LABELS[unit]}"
    ax.set_title(f"{comparison.problem}: {title}" if several else title, fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def plot_png(report: Report) -> bytes:
    buffer = io.BytesIO()
    plot(report, buffer)
    return buffer.getvalue()


def write_html(report: Report, out: str | Path, png: bytes | None = None) -> None:
    """A self-contained page: the tables, the sentences, the flags and the plot
    inline (`png`: the plot already drawn, else it is drawn here)."""
    image = base64.b64encode(png or plot_png(report)).decode("ascii")
    e = html.escape
    notes = "".join(f"<li>{e(line.strip())}</li>"
                    for line in excluded_lines(report) + problem_lines(report))
    sections = "".join(_html_problem(c, several=len(report.comparisons) > 1)
                       for c in report.comparisons)
    Path(out).write_text(f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>funsearch compare by {e(report.by)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} td:first-child{{text-align:left}}
.flags{{color:#a60}}</style></head><body>
<h1>Compare by {e(report.by)}</h1>
<ul class="flags">{notes}</ul>
<p>Mean over the runs of each group [{e(INTERVALS)}]; (k/n) when only k of n runs
have a value (did not reach the threshold, or the budget asked).</p>
{sections}
<img alt="best score against budget" src="data:image/png;base64,{image}">
</body></html>
""", encoding="utf-8")


def _html_problem(comparison: Comparison, several: bool) -> str:
    e = html.escape
    others = [g for g in comparison.groups if g != comparison.reference]
    head = "".join(f"<th>{e(f'{g} (n={len(m)})')}</th>" for g, m in comparison.groups.items())
    metrics = "".join(
        f"<tr><td>{e(row.label)}</td>"
        + "".join(f"<td>{e(cell_text(row.cells[g], row.unit))}</td>" for g in comparison.groups)
        + "".join(f"<td>{e(contrast_text(row, g))}</td>" for g in others)
        + "</tr>" for row in comparison.rows)
    contrast_head = "".join(f"<th>{e(g)} minus {e(comparison.reference)}</th>" for g in others)
    runs = "".join("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>"
                   for row in run_rows(comparison))
    words = [verdict(comparison, row, g) for row in comparison.rows if row.headline
             for g in others]
    lines = (comparison.notes + words + warnings_of(comparison)
             + [line.strip() for line in difference_lines(comparison)])
    items = "".join(f"<li>{e(line)}</li>" for line in lines)
    title = f"<h2>{e(comparison.problem)}</h2>" if several else ""
    return f"""{title}
<table><tr><th>metric</th>{head}{contrast_head}</tr>{metrics}</table>
<ul class="flags">{items}</ul>
<h3>Runs</h3>
<table><tr>{"".join(f"<th>{c}</th>" for c in RUN_COLUMNS)}</tr>{runs}</table>
"""
