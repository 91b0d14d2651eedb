"""`funsearch study show DIR`: what a study found and why it made each run.

Everything is recomputed from the study log (its curves), so a live study
and a finished one read the same way: each arm's fitted law with intervals
(maximum likelihood, and least squares beside it), P(best at B), which arm
leads at which budget, the noise model, the runs made and why, and a PNG of
the observed curves with the fitted laws and their bands.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from funsearch.study import studylog
from funsearch.study.model import Analysis, analyse
from funsearch.study.posterior import LEVEL
from funsearch.study.runner import grid_of

PLOT = "study.png"


def load(study_dir: str | Path) -> tuple[studylog.StudyState, Analysis]:
    state = studylog.fold(studylog.read(study_dir))
    if state.definition is None:
        raise FileNotFoundError(f"{study_dir}: the study log has no study_start event")
    arms = list(state.definition["arms"])
    return state, analyse(state.curves(arms), grid_of(state.definition))


def show(study_dir: str | Path, console: Console, plot: Path | None = None) -> Path | None:
    """Prints the study's tables; writes the plot (default DIR/study.png)."""
    state, analysis = load(study_dir)
    definition = state.definition
    status = f"ended: {state.ended}" if state.ended is not None else "running, or stopped"
    console.print(f"study {Path(study_dir)}: B = {definition['budget']:g} {definition['unit']}, "
                  f"{len(state.done())} runs done ({status})")
    if not analysis.arms:
        console.print("no finished runs yet")
        return None
    console.print(arms_table(analysis))
    for line in verdict(analysis):
        console.print(line)
    console.print(runs_table(state))
    path = Path(plot) if plot else Path(study_dir) / PLOT
    path.write_bytes(plot_png(state, analysis))
    console.print(f"plot: {path}")
    return path


def arms_table(analysis: Analysis) -> Table:
    pct = f"{LEVEL:.0%}"
    table = Table("arm", "runs", f"s(B), ML [{pct}]", f"s(B), LS [{pct}]", "P(best at B) ML",
                  "P(best) LS", "s_inf", "a (gap at B)", "alpha",
                  title="each arm's law s(c) = s_inf - a (c/B)^-alpha", title_justify="left")
    for arm, fit in analysis.arms.items():
        ml, ls = fit.ml.estimates(), fit.ls.estimates()
        table.add_row(arm, str(len(fit.runs)), _interval(ml["s_B"]), _interval(ls["s_B"]),
                      f"{analysis.p_best[arm]:.3f}", f"{analysis.p_best_ls[arm]:.3f}",
                      _interval(ml["s_inf"]), _interval(ml["a"]), _interval(ml["alpha"], 3))
    return table


def verdict(analysis: Analysis) -> list[str]:
    """The decision, how the two fits differ, the noise, and where the lead changes."""
    best, best_ls = analysis.best(), max(analysis.p_best_ls, key=analysis.p_best_ls.__getitem__)
    lines = [f"best at B: {best} (P = {analysis.p_best[best]:.3f}, maximum likelihood; "
             f"{analysis.entropy:.2f} bits undecided)"]
    if best_ls != best:
        lines.append(f"least squares names {best_ls} instead (P = "
                     f"{analysis.p_best_ls[best_ls]:.3f}): it treats every point of a run as "
                     "independent and ignores the seed noise's correlation")
    else:
        ratios = [_width(fit.ls) / max(_width(fit.ml), 1e-300) for fit in analysis.arms.values()]
        lines.append(f"least squares names the same arm; its s(B) intervals are "
                     f"{np.median(ratios):.2f}x as wide as maximum likelihood's (median over "
                     "arms): it counts each grid point of a run as an independent observation")
    noise = analysis.noise
    sd_at_b = noise.sd[-1] * analysis.scale.unit
    lines.append(f"noise: one seed's sd at B {sd_at_b:.4g}, correlation between neighbouring "
                 f"grid points {noise.rho:.2f}; from the {noise.source}")
    lines.append("leader by budget (fitted means): " + leaders(analysis))
    return lines


def leaders(analysis: Analysis, beyond: float = 4.0) -> str:
    """Which arm's fitted law is highest along the budget, up to `beyond` x B
    (past B it is extrapolation)."""
    x = np.geomspace(analysis.grid.x[0], beyond, 200)
    means = np.array([fit.ml.band(x)[0] for fit in analysis.arms.values()])
    names = list(analysis.arms)
    leader = np.argmax(means, axis=0)
    budget = analysis.grid.budget
    parts = [f"{names[leader[0]]} from {x[0] * budget:.3g}"]
    for i in range(1, len(x)):
        if leader[i] != leader[i - 1]:
            parts.append(f"{names[leader[i]]} from {x[i] * budget:.3g}"
                         + (" (extrapolated)" if x[i] > 1 else ""))
    return ", ".join(parts) + f" (laws followed to {beyond:g} B)"


def runs_table(state: studylog.StudyState) -> Table:
    table = Table("run", "arm", "budget", "seed", "best at end", "chosen by", "why",
                  title="runs, in the order they were chosen", title_justify="left")
    for record in sorted(state.runs.values(), key=lambda r: r.run):
        end = ("failed" if record.failed else "-" if not record.done or not record.curve.points
               else f"{record.curve.points[-1][1]:.6g}")
        rule = record.rule if record.gain is None else f"{record.rule} ({record.gain:.3f} bits)"
        why = record.reason.split(": ", 1)[-1]
        table.add_row(str(record.run), record.arm, f"{record.budget:g} B", str(record.seed), end,
                      rule, why)
    return table


def plot_png(state: studylog.StudyState, analysis: Analysis) -> bytes:
    """Observed curves, fitted laws (ML solid, LS dashed) with the ML band,
    and P(best at B) per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 5),
                                         gridspec_kw={"width_ratios": [3, 1]})
    budget = analysis.grid.budget
    x = np.geomspace(analysis.grid.x[0], 1.0, 100)
    colors = plt.cm.tab10(np.arange(len(analysis.arms)) % 10)
    for color, (arm, fit) in zip(colors, analysis.arms.items(), strict=True):
        for record in state.done():
            if record.arm == arm and record.curve.points:
                costs, scores = zip(*record.curve.points, strict=True)
                left.step([*costs, record.curve.extent], [*scores, scores[-1]], where="post",
                          color=color, alpha=0.3, linewidth=0.8)
        centre, low, high = fit.ml.band(x)
        left.plot(x * budget, centre, color=color, linewidth=2,
                  label=f"{arm}: P(best) {analysis.p_best[arm]:.2f}")
        left.fill_between(x * budget, low, high, color=color, alpha=0.2, linewidth=0)
        left.plot(x * budget, fit.ls.band(x)[0], "--", color=color, linewidth=1)
    left.axvline(budget, color="grey", linewidth=1)
    left.set_xscale("log")
    left.set_xlabel(f"compute ({state.definition['unit']}); B = {budget:g}")
    left.set_ylabel("best score")
    left.set_title(f"runs (steps), ML law with {LEVEL:.0%} band (solid), LS law (dashed)")
    left.set_xlim(analysis.grid.x[0] * budget / 1.2, budget * 1.1)
    _ylim(left, analysis, x)
    left.grid(alpha=0.3)
    left.legend(loc="lower right", fontsize=8)
    names = list(analysis.arms)
    positions = np.arange(len(names))
    right.barh(positions + 0.2, [analysis.p_best[n] for n in names], 0.4, color=colors,
               label="ML")
    right.barh(positions - 0.2, [analysis.p_best_ls[n] for n in names], 0.4, color=colors,
               alpha=0.4, label="LS")
    right.set_yticks(positions, names)
    right.set_xlim(0, 1)
    right.set_title("P(best at B)")
    right.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def _ylim(axes, analysis: Analysis, x: np.ndarray) -> None:
    """From the laws over the upper part of the grid, so an initial program's
    far lower score does not flatten the curves."""
    values = [value for fit in analysis.arms.values() for run in fit.runs
              for value in run.y[len(run.y) // 3:]]
    if values:
        low, high = min(values), max(values)
        pad = 0.15 * (high - low or abs(high) or 1.0)
        axes.set_ylim(low - pad, high + pad)


def _interval(estimate, digits: int = 4) -> str:
    return f"{estimate.value:.{digits}g} [{estimate.low:.{digits}g}, {estimate.high:.{digits}g}]"


def _width(posterior) -> float:
    estimate = posterior.estimates()["s_B"]
    return estimate.high - estimate.low
