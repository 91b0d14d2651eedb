"""`funsearch compare`: groups of runs side by side, at equal budgets, with error bars.

Only runs of one problem are compared (reports/comparable.py): runs of
several problems get a comparison each, and runs that never started or have
no sample are left out, with the reason. Within a problem, runs are grouped
by one setting (the samplers, the scheduler policy, or any config key such as
`samplers.0.model`); the runs of a group are usually seeds of one
configuration. Per group: the best score at budgets every run has spent
(samples, wall time, compute-seconds as the scheduler counts them,
GPU-hours), the budget spent to reach a threshold score, the valid rate and
the improvements per 1000 samples, each a mean over the group's runs with a
95% interval (reports/stats.py). Each other group is set against a
reference group: the difference of the means with its interval (paired by
seed where the seeds match) and the probability that it is better, said in
words by compare_view.py. Runs whose configs differ in more than the
compared setting are flagged, since the difference could then come from
elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable

from funsearch.reports import comparable, stats
from funsearch.reports.report import fmt_seconds
from funsearch.reports.rundata import UNITS, RunData

# Never a difference (the spec and training inputs: runs of one problem are compared together).
IGNORED = ("seed", "out", "name", "base_dir", "problem.spec", "problem.inputs")
# What else varies with a grouping, so it is not reported as a confounder.
_VARIES_WITH = {"sampler": ("samplers", "scheduler.weights"),
                "policy": ("scheduler.policy", "scheduler.weights")}
LABELS = {"samples": "samples", "wall": "wall time", "compute": "compute", "gpu_hours": "GPU-hours",
          "usd": "USD"}
FEW_RUNS = 3  # fewer runs in a group: a warning that it can tell little


@dataclasses.dataclass(frozen=True)
class Cell:
    """One metric of one group: the interval over the runs that have a value
    (`reached` of `total`; a run may not have reached the threshold)."""

    interval: stats.Interval | None
    reached: int
    total: int


@dataclasses.dataclass(frozen=True)
class Row:
    """A metric across groups. unit: how to print it (score, samples, wall,
    gpu_hours, usd, percent, rate); higher_is_better: which way is better;
    contrasts: each group but the reference against the reference."""

    label: str
    unit: str
    cells: dict[str, Cell]
    higher_is_better: bool = True
    contrasts: dict[str, stats.Contrast | None] = dataclasses.field(default_factory=dict)
    headline: bool = False  # a best score at an equal budget: said in words


@dataclasses.dataclass(frozen=True)
class Difference:
    """A config key (other than the compared one) with different values across
    runs; `values` maps run index to the value as text."""

    key: str
    values: dict[int, str]


@dataclasses.dataclass
class Comparison:
    """The runs of one problem, grouped and compared."""

    problem: str
    by: str
    runs: list[RunData]
    groups: dict[str, list[int]]  # label -> run indices
    reference: str
    units: list[str]
    budgets: dict[str, float]
    notes: list[str]  # about the budgets chosen
    threshold: float | None
    rows: list[Row]
    differences: list[Difference]
    flagged: dict[int, list[str]]  # run index -> keys where it differs from the majority
    seed: int = 0

    def group_of(self, index: int) -> str:
        return next(label for label, members in self.groups.items() if index in members)


@dataclasses.dataclass
class Report:
    """Everything `compare` found: a comparison per problem, and the runs left out."""

    by: str
    comparisons: list[Comparison]
    excluded: list[tuple[RunData, str]]


def group_label(run: RunData, by: str) -> str:
    """The value that puts a run in its group, as text (comparable.ABSENT where
    the run's config has no such key and no default is known)."""
    if by == "sampler":
        started = (run.start.samplers if run.start else None) or []
        samplers = run.config.get("samplers") or [{"name": name} for name in started]
        return "+".join(str(s.get("name")) + (f" ({s['model']})" if s.get("model") else "")
                        for s in samplers) or "?"
    if by == "policy" and not run.config:
        return "?"
    return comparable.label(comparable.setting(run.config, "scheduler.policy" if by == "policy"
                                               else by))


def differences(runs: list[RunData], by: str, groups: dict[str, list[int]] | None = None
                ) -> tuple[list[Difference], dict[int, list[str]]]:
    """Config keys that differ across runs beyond the compared one (defaults
    filled in), and the runs to flag: those off the majority value (all of
    them when there is none). A key that goes with the grouping (the
    samplers' settings, by sampler) is a difference only where it differs
    inside a group."""
    going_with = _VARIES_WITH.get(by, (by,))
    flats = [comparable.flatten(comparable.effective(run.config)) for run in runs]
    found, flagged = [], {}
    for key in sorted(set().union(*flats)):
        if any(key == s or key.startswith(s + ".") for s in IGNORED):
            continue
        values = {i: json.dumps(flat.get(key, comparable.ABSENT)) for i, flat in enumerate(flats)}
        if len(set(values.values())) < 2:
            continue
        if any(key == s or key.startswith(s + ".") for s in going_with):
            within = [{i: values[i] for i in members} for members in (groups or {}).values()]
            off = [i for group in within for i in _off_majority(group)]
            if off:
                found.append(Difference(key, values))
            for index in off:
                flagged.setdefault(index, []).append(key)
            continue
        found.append(Difference(key, values))
        for index in _off_majority(values):
            flagged.setdefault(index, []).append(key)
    return found, flagged


def _off_majority(values: dict[int, str]) -> list[int]:
    """The runs whose value is not the majority's (all, when there is none)."""
    counts = Counter(values.values()).most_common()
    if len(counts) < 2:
        return []
    majority = counts[0][0] if counts[0][1] > counts[1][1] else None
    return [index for index, value in values.items() if value != majority]


def compare(runs: list[RunData], by: str = "sampler", budgets: dict[str, float] | None = None,
            threshold: float | None = None, seed: int = 0,
            reference: str | None = None) -> Report:
    """Splits the runs by problem and compares the groups of each. budgets:
    unit -> equal budget (default: the most every run of the problem has
    spent); threshold: the score to reach (default: the lowest final best
    score, so that every run reaches it); reference: the group the others are
    set against (default: the first)."""
    if not runs:
        raise ValueError("compare needs at least one run")
    kept, excluded = comparable.split_started(runs)
    if not kept:
        raise ValueError(f"none of the {len(runs)} runs has samples to compare: " + "; ".join(
            f"{run.name}: {reason}" for run, reason in excluded))
    if by not in ("sampler", "policy"):
        comparable.require_key([run.config for run in kept], by)
    comparisons = [_compare_problem(problem, members, by, budgets or {}, threshold, seed,
                                    reference)
                   for problem, members in comparable.by_problem(kept).items()]
    if reference is not None and not any(reference in c.groups for c in comparisons):
        known = sorted({group for c in comparisons for group in c.groups})
        raise ValueError(f"--reference {reference!r}: no such group (groups: {', '.join(known)})")
    return Report(by, comparisons, excluded)


def _compare_problem(problem: str, runs: list[RunData], by: str, asked: dict[str, float | None],
                     threshold: float | None, seed: int, reference: str | None) -> Comparison:
    groups: dict[str, list[int]] = {}
    for index, run in enumerate(runs):
        groups.setdefault(group_label(run, by), []).append(index)
    groups = dict(sorted(groups.items(), key=lambda item: _natural(item[0])))
    if reference not in groups:
        reference = next(iter(groups))
    units, chosen, notes = _budgets(runs, asked)
    if threshold is None:
        threshold = _default_threshold(runs, notes)
    rows = _rows(runs, groups, reference, units, chosen, threshold, seed)
    found, flagged = differences(runs, by, groups)
    return Comparison(problem, by, runs, groups, reference, units, chosen, notes, threshold,
                      rows, found, flagged, seed)


def _default_threshold(runs: list[RunData], notes: list[str]) -> float | None:
    """The lowest final best score, which every run reached; none when that is
    no better than where some run started (every run would reach it at once)."""
    finals = [run.best_score for run in runs if run.best_score is not None]
    starts = [run.best[0].score for run in runs if run.best]
    if not finals:
        return None
    if starts and min(finals) <= max(starts):
        notes.append("no time-to-threshold rows: some run never beat its initial program "
                     "(give --threshold SCORE for them)")
        return None
    return min(finals)


def _budgets(runs: list[RunData], asked: dict[str, float | None]
             ) -> tuple[list[str], dict[str, float], list[str]]:
    """The units compared, the equal budget in each, and what to say of them:
    by default the most every run has spent, so every run has a value there."""
    units, chosen, notes, dropped = [], {}, [], []
    for unit in UNITS:
        spent = {run.name: run.extent(unit) for run in runs}
        given = asked.get(unit)
        if given is None and min(spent.values()) <= 0:
            if unit in ("samples", "wall") or max(spent.values()) > 0:
                dropped.append(LABELS[unit])
            continue
        units.append(unit)
        chosen[unit] = min(spent.values()) if given is None else float(given)
        short = sorted(name for name, value in spent.items() if value + 1e-9 < chosen[unit])
        if short:
            notes.append(f"{len(short)} of {len(runs)} runs have not spent "
                         f"{budget_text(unit, chosen[unit])}: {', '.join(short)}; the cells "
                         "there count only the runs that have")
    defaults = [budget_text(u, chosen[u]) for u in units if asked.get(u) is None]
    if defaults:
        notes.insert(0, f"equal budgets {', '.join(defaults)}: the most every run here has "
                        "spent, so every run has a value there")
    if dropped:
        notes.append(f"not compared by {', '.join(dropped)}: some run has spent none")
    return units, chosen, notes


def _rows(runs: list[RunData], groups: dict[str, list[int]], reference: str, units: list[str],
          chosen: dict[str, float], threshold: float | None, seed: int) -> list[Row]:
    def row(label: str, unit: str, value: Callable[[RunData], float | None],
            higher: bool = True, headline: bool = False) -> Row:
        values = {group: [value(runs[i]) for i in members] for group, members in groups.items()}
        cells = {group: Cell(stats.mean_interval(found, seed=seed),
                             sum(v is not None for v in found), len(found))
                 for group, found in values.items()}
        contrasts = {group: _contrast(runs, groups, reference, group, values, seed)
                     for group in groups if group != reference}
        return Row(label, unit, cells, higher, contrasts, headline)

    rows = [row(f"best score at {budget_text(unit, chosen[unit])}", "score",
                lambda run, u=unit: run.best_at(u, chosen[u]), headline=True) for unit in units]
    if threshold is not None:
        rows += [row(f"{LABELS[unit]} to reach {threshold:.6g}", unit,
                     lambda run, u=unit: run.reached(u, threshold), higher=False)
                 for unit in units]
    rows.append(row("valid rate", "percent",
                    lambda run: None if run.valid_rate is None else 100 * run.valid_rate))
    rows.append(row("improvements per 1k samples", "rate", lambda run: run.improvements_per_1k))
    rows.append(row("best score at the end", "score", lambda run: run.best_score))
    return rows


def _contrast(runs: list[RunData], groups: dict[str, list[int]], reference: str, group: str,
              values: dict[str, list[float | None]], seed: int) -> stats.Contrast | None:
    """The group against the reference, paired by seed when each seed is in
    both groups once and every run has a value."""
    seeds = {name: [runs[i].seed for i in groups[name]] for name in (reference, group)}
    ordered = {name: sorted(zip(seeds[name], values[name], strict=True), key=lambda p: str(p[0]))
               for name in (reference, group)}
    paired = (sorted(map(str, seeds[reference])) == sorted(map(str, seeds[group]))
              and len(set(map(str, seeds[group]))) == len(seeds[group])
              and all(v is not None for name in ordered for _, v in ordered[name]))
    return stats.difference([v for _, v in ordered[reference]], [v for _, v in ordered[group]],
                            paired=paired, seed=seed)


def _natural(label: str) -> tuple:
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def budget_text(unit: str, value: float) -> str:
    if unit == "wall":
        return fmt_seconds(value)
    if unit == "samples":
        return f"{value:.0f} samples"
    return f"{value:.3g} {UNITS[unit]}"
