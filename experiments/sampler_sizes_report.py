"""The sampler-size study's results: per-size figures, bandit shares, a page and a plot.

Reads the study's run directories (funsearch/reports/rundata.py for what
`compare` also counts; one extra pass over each event log for what it does
not: CPU-seconds per sampler, each sampler's share of the budget over time,
the balance controller's limits). Intervals are 95% bootstrap intervals over
the seeds of an arm (funsearch/reports/stats.py), as compare's are.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path

from funsearch import events
from funsearch.reports import rundata, stats
from funsearch.scheduling.budget import Cost, proposal_seconds

SHARE_POINTS = 10  # budget fractions at which bandit shares are read


@dataclasses.dataclass
class SamplerFigures:
    """One sampler in one run: what the table needs."""

    samples: int = 0
    proposal_seconds: float = 0.0  # CPU-seconds of its proposals
    evaluation_seconds: float = 0.0
    improvements: int = 0
    valid_rate: float | None = None

    @property
    def compute_hours(self) -> float:
        return (self.proposal_seconds + self.evaluation_seconds) / 3600


@dataclasses.dataclass
class RunFigures:
    """One run: its samplers, held-out gap, utilization, shares over the budget."""

    arm: str
    seed: int
    wall: float
    samplers: dict[str, SamplerFigures]
    holdout_gap: float | None
    utilization: float | None  # sandbox seconds / (wall x workers)
    shares: list[dict[str, float]]  # per budget fraction: sampler -> share so far
    limits: dict[str, float]  # the controller's mean in-flight limit per sampler


def read_figures(run_dir: Path, arm: str) -> RunFigures:
    """One pass over a run's log, plus rundata for outcomes and improvements."""
    run = rundata.read_run(run_dir)
    figures: dict[str, SamplerFigures] = defaultdict(SamplerFigures)
    timeline: list[tuple[str, float]] = []  # (sampler, compute), in log order
    limits: dict[str, list[float]] = defaultdict(list)
    for event in events.read(run_dir):
        if isinstance(event, events.Sample):
            seconds = proposal_seconds(Cost(
                seconds=(event.latency or 0.0) / max(1, event.request or 1),
                gpu_seconds=event.gpu_seconds or 0.0, cpu_seconds=event.cpu_seconds or 0.0))
            figures[event.sampler].samples += 1
            figures[event.sampler].proposal_seconds += seconds
            timeline.append((event.sampler, seconds))
        elif isinstance(event, events.Evaluation) and event.sample is not None \
                and not event.duplicate:
            figures[event.sampler].evaluation_seconds += event.duration or 0.0
            timeline.append((event.sampler, event.duration or 0.0))
        elif isinstance(event, events.Scheduler) and event.action == "controller":
            for name, limit in (event.extra.get("limits") or {}).items():
                limits[name].append(float(limit))
    for name, stats_ in run.samplers.items():
        figures[name].improvements = stats_.improvements
        figures[name].valid_rate = stats_.valid_rate
    workers = (run.config.get("evaluator") or {}).get("workers", 1)
    return RunFigures(arm, int(run.seed or 0), run.wall, dict(figures), _gap(run_dir),
                      run.evaluation_seconds / (run.wall * workers) if run.wall else None,
                      _shares(timeline), {k: sum(v) / len(v) for k, v in limits.items()})


def _gap(run_dir: Path) -> float | None:
    """The best program's gap to LKH on the held-out set (percent), from summary.json."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return (summary.get("scores", {}).get("holdout") or {}).get("gap_percent")


def _shares(timeline: list[tuple[str, float]]) -> list[dict[str, float]]:
    """Each sampler's share of the compute spent so far, at 10%, 20%, ... of the run's."""
    total = sum(seconds for _, seconds in timeline) or 1.0
    spent: dict[str, float] = defaultdict(float)
    out, point, running = [], 1, 0.0
    for name, seconds in timeline:
        spent[name] += seconds
        running += seconds
        while point <= SHARE_POINTS and running >= total * point / SHARE_POINTS - 1e-12:
            out.append({k: v / running for k, v in spent.items()})
            point += 1
    return out


def interval_text(values: list[float | None], digits: int = 2) -> str:
    """mean [low, high] over seeds, or '-'."""
    interval = stats.bootstrap_mean([v for v in values if v is not None])
    if interval is None:
        return "-"
    return f"{interval.mean:.{digits}f} [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"


def size_table(runs: list[RunFigures]) -> list[list[str]]:
    """Per arm and sampler: samples/s, valid rate, improvements per 1k samples and per
    compute-hour, best held-out gap; each mean [95% interval] over seeds."""
    rows = []
    for arm in _ordered({run.arm for run in runs}):
        group = [run for run in runs if run.arm == arm]
        names = sorted({name for run in group for name in run.samplers})
        for name in names:
            rows.append([arm, name, *_sampler_cells(group, name, single=len(names) == 1)])
    return rows


def _sampler_cells(group: list[RunFigures], name: str, single: bool) -> list[str]:
    figures = [run.samplers.get(name, SamplerFigures()) for run in group]
    per_second = [f.samples / run.wall if run.wall else None
                  for f, run in zip(figures, group, strict=True)]
    per_1k = [1000 * f.improvements / f.samples if f.samples else None for f in figures]
    per_hour = [f.improvements / f.compute_hours if f.compute_hours else None for f in figures]
    return [str(round(sum(f.samples for f in figures) / len(figures))),
            interval_text(per_second, 1), interval_text([f.valid_rate for f in figures]),
            interval_text(per_1k, 1), interval_text(per_hour, 0),
            interval_text([run.holdout_gap for run in group]) if single else "(arm)"]


TABLE_HEADER = ["arm", "sampler", "samples", "samples/s", "valid rate", "impr. / 1k samples",
                "impr. / CPU-hour", "held-out gap %"]


def arm_table(runs: list[RunFigures]) -> list[list[str]]:
    """Per arm: best held-out gap, evaluator utilization, wall time."""
    rows = []
    for arm in _ordered({run.arm for run in runs}):
        group = [run for run in runs if run.arm == arm]
        rows.append([arm, str(len(group)), interval_text([r.holdout_gap for r in group]),
                     interval_text([r.utilization for r in group]),
                     interval_text([r.wall for r in group], 0)])
    return rows


def share_table(runs: list[RunFigures]) -> list[list[str]]:
    """Bandit arms: each sampler's mean share of the compute at 20/50/100% of the budget,
    and the controller's mean in-flight limit."""
    rows = []
    for arm in ("ucb", "thompson"):
        group = [run for run in runs if run.arm == arm and run.shares]
        for name in sorted({name for run in group for name in run.samplers}):
            cells = [interval_text([run.shares[min(point, len(run.shares)) - 1].get(name, 0.0)
                                    for run in group]) for point in (2, 5, SHARE_POINTS)]
            limit = interval_text([run.limits.get(name) for run in group], 1)
            rows.append([arm, name, *cells, limit])
    return rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def plot(runs: list[RunFigures], path: Path) -> None:
    """Left: held-out gap per arm; middle: improvements per CPU-hour of each sampler
    alone (means with 95% bootstrap intervals, seeds as dots). Right: bandit shares
    over the budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.5))
    arms = _ordered({run.arm for run in runs})
    _interval_panel(left, arms, {arm: [run.holdout_gap for run in runs if run.arm == arm]
                                 for arm in arms})
    left.set(ylabel="held-out gap to LKH (%)",
             title="best program's held-out gap (lower is better)")
    singles = [arm for arm in arms if arm not in ("ucb", "thompson")]
    _interval_panel(middle, singles, {arm: [_rate(run, arm) for run in runs if run.arm == arm]
                                      for arm in singles})
    middle.set(ylabel="improvements per CPU-hour", title="each sampler alone (higher is better)")
    fractions = [point / SHARE_POINTS for point in range(1, SHARE_POINTS + 1)]
    colours = {name: f"C{index}" for index, name in enumerate(_ordered(
        {name for run in runs for name in run.samplers}))}  # a sampler's colour in both
    for arm, style in (("ucb", "-"), ("thompson", "--")):
        group = [run for run in runs if run.arm == arm and len(run.shares) == SHARE_POINTS]
        for name in _ordered({name for run in group for name in run.samplers}):
            mean = [sum(run.shares[i].get(name, 0.0) for run in group) / len(group)
                    for i in range(SHARE_POINTS)]
            right.plot(fractions, mean, style, color=colours[name], label=f"{arm}: {name}")
    right.set(xlabel="fraction of the compute budget", ylabel="share of compute so far",
              title="bandits: each sampler's share of the budget")
    right.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _interval_panel(axes, arms: list[str], values: dict[str, list[float | None]]) -> None:
    """Seeds as dots, the mean as a bar with its 95% bootstrap interval."""
    for index, arm in enumerate(arms):
        known = [value for value in values[arm] if value is not None]
        axes.scatter([index] * len(known), known, alpha=0.5, s=14)
        interval = stats.bootstrap_mean(known)
        if interval is not None:
            axes.errorbar([index + 0.15], [interval.mean], fmt="o", color="black", capsize=4,
                          yerr=[[interval.mean - interval.low], [interval.high - interval.mean]])
    axes.set(xticks=range(len(arms)), xticklabels=arms)


def _rate(run: RunFigures, name: str) -> float | None:
    """Improvements per CPU-hour of one sampler in one run."""
    figures = run.samplers.get(name)
    return figures.improvements / figures.compute_hours if figures and figures.compute_hours \
        else None


def _ordered(arms: set[str]) -> list[str]:
    order = ["mutation", "small", "medium", "large", "ucb", "thompson"]
    return [arm for arm in order if arm in arms] + sorted(arms - set(order))


def findings(runs: list[RunFigures]) -> str:
    """What the numbers say, in words the page opens with (recomputed every time)."""
    gaps = {arm: stats.bootstrap_mean([r.holdout_gap for r in runs if r.arm == arm])
            for arm in _ordered({run.arm for run in runs})}
    gaps = {arm: interval for arm, interval in gaps.items() if interval is not None}
    if not gaps:
        return "No run has a held-out gap yet."
    singles = {arm: gap for arm, gap in gaps.items() if arm not in ("ucb", "thompson")}
    best = min(singles or gaps, key=lambda arm: (singles or gaps)[arm].mean)
    tied = [arm for arm, gap in singles.items() if arm != best and _overlaps(gap, gaps[best])]
    lines = [f"- Lowest held-out gap of a single sampler: **{best}**, "
             f"{_interval(gaps[best])}% above LKH" + (
                 f"; the intervals of {', '.join(tied)} overlap it: no single sampler wins "
                 "on held-out gap at this budget." if tied else ".")]
    for arm in ("ucb", "thompson"):
        if arm in gaps:
            overlap = _overlaps(gaps[arm], gaps[best])
            verdict = ("one seed: no interval to compare with" if overlap is None else
                       ("within" if overlap else "outside") + f" the interval of {best}")
            lines.append(f"- {arm}: {_interval(gaps[arm])}%: {verdict}.")
    rates = {}
    for run in runs:
        for name in run.samplers:
            if run.arm == name:
                rates.setdefault(name, []).append(_rate(run, name) or 0.0)
    if rates:
        top = max(rates, key=lambda name: sum(rates[name]) / len(rates[name]))
        lines.append(f"- Most improvements per CPU-hour alone: **{top}** "
                     f"({interval_text(rates[top], 0)}).")
        models = {name: rate for name, rate in rates.items() if name != "mutation"}
        if top == "mutation" and models:
            best_model = max(models, key=lambda name: sum(models[name]) / len(models[name]))
            others = ", ".join(f"{name} {interval_text(models[name], 0)}"
                               for name in _ordered(set(models) - {best_model}))
            lines.append(f"- Of the models: **{best_model}** "
                         f"({interval_text(models[best_model], 0)}; {others}).")
    lines += _controller_findings(runs)
    return "\n".join(lines)


def _controller_findings(runs: list[RunFigures]) -> list[str]:
    """What the bandits and the balance controller did, in numbers."""
    lines = []
    for arm in ("ucb", "thompson"):
        group = [run for run in runs if run.arm == arm and run.shares]
        if not group:
            continue
        names = sorted({name for run in group for name in run.samplers})
        final = {name: [run.shares[-1].get(name, 0.0) for run in group] for name in names}
        top = max(names, key=lambda name: sum(final[name]))
        limits = ", ".join(f"{name} {interval_text([r.limits.get(name) for r in group], 1)}"
                           for name in names)
        lines.append(f"- {arm} spent the most on **{top}** ({interval_text(final[top])} of "
                     f"the compute); the balance controller's mean in-flight limits: {limits}; "
                     f"evaluators busy {interval_text([r.utilization for r in group])} of "
                     "the time.")
    return lines


def _overlaps(first: stats.Interval, second: stats.Interval) -> bool | None:
    """Whether two intervals overlap; None when one comes from a single seed."""
    if min(first.n, second.n) < 2:
        return None
    return first.low <= second.high and second.low <= first.high


def _interval(interval: stats.Interval) -> str:
    return f"{interval.mean:.2f} [{interval.low:.2f}, {interval.high:.2f}]"
