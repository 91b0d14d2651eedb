"""Validation of studies where the truth is known: does information-gain
selection find the best arm at B as often as a grid with twice the runs, and
do the fitted intervals cover the true parameters at their nominal rate?

Two kinds of worlds, each with several arms (configurations):

- law worlds (funsearch/study/synthetic.py): every arm's curves are the law
  s(c) = s_inf - a (c/B)^-alpha plus a seed deviation that wanders along
  log-compute, with known parameters: the fits' model is exactly right, so
  this measures the design and the calibration of the Laplace intervals;
- simulator worlds (funsearch/scheduling/simulation.py): every arm is a simulated
  sampler (latency, chance of an improvement and how fast it falls, samples
  per prompt) on simulated evaluators; compute is the scheduler's unit
  (GPU-seconds of the proposals plus evaluation seconds), and the truth at B
  is the mean over a bank of seeds. The law is only an approximation here.

Every study of a world gets the same decision rule (the arm with the highest
P(best at B) from the maximum-likelihood fits) and differs only in which
runs it made:

- information gain: one run of every arm to B, then each next run (arm and
  budget from B/4, B/2, B) chosen by expected information gain, N runs;
- grid at B: 2N runs spread evenly over the arms, all to B (twice the runs
  and twice the compute);
- sweep: 2N runs over arms x budgets (B, B/2, B/4, B, ...), the usual blind
  grid of a scaling study (twice the runs, about the same compute).

    python experiments/study_validation.py                # ~7 minutes on 2 cores at load 4-9
                                                          # (23 on a shared VM at load 10)
    python experiments/study_validation.py --law 20 --worlds 2 --per-world 5   # a quick look
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from funsearch.study import design, synthetic  # noqa: E402
from funsearch.study.model import Analysis, analyse  # noqa: E402
from funsearch.study.observe import Grid, RunCurve  # noqa: E402

BUDGETS = [0.25, 0.5, 1.0]
LEVELS = [0.5, 0.8, 0.9, 0.95]
PARAMETERS = ["s_inf", "a", "alpha", "s_B"]


# -- worlds ------------------------------------------------------------------


@dataclasses.dataclass
class World:
    """Arms with a known score at B, and a way to draw a seed's run."""

    budget: float
    truth: dict[str, float]  # s(B) per arm
    seed_sd: float  # a typical seed sd at B, for regret in those units
    draw: Callable[[str, float, np.random.Generator], RunCurve]
    parameters: dict[str, dict[str, float]] | None = None  # law worlds only

    def best(self) -> str:
        return max(self.truth, key=self.truth.__getitem__)


def law_world(rng: np.random.Generator, arms: int) -> World:
    world = synthetic.random_world(rng, arms=arms, budget=1000.0, spread=1.0)
    parameters = {arm: {"s_inf": t.s_inf, "a": t.a, "alpha": t.alpha, "s_B": t.at_budget}
                  for arm, t in world.arms.items()}
    return World(world.budget, {arm: p["s_B"] for arm, p in parameters.items()},
                 float(np.mean([t.sd for t in world.arms.values()])), world.run, parameters)


def simulator_world(rng: np.random.Generator, arms: int, bank: int, budget: float) -> World:
    """Simulated samplers whose bigger latency buys a better chance of an
    improvement that lasts longer: which one wins at B is not obvious."""
    from funsearch.config import SchedulerConfig
    from funsearch.scheduling.simulation import SimulatedSampler, Simulation

    curves: dict[str, list[RunCurve]] = {}
    for k in range(arms):
        latency = float(np.exp(rng.uniform(math.log(0.5), math.log(6.0))))
        per_prompt = int(rng.choice([1, 2, 4]))
        sampler = SimulatedSampler(
            f"arm{k}", latency=latency * per_prompt ** 0.3,
            success=min(0.9, 0.08 * latency ** 0.5 * float(rng.uniform(0.8, 1.25))),
            depth=40 * latency ** 0.7 * float(rng.uniform(0.8, 1.25)),
            samples_per_prompt=per_prompt)
        curves[sampler.name] = []
        for seed in range(bank):
            trace = Simulation([sampler], SchedulerConfig(policy="round_robin"), workers=8,
                               evaluation_seconds=0.5, step=0.01, seed=seed).run(budget=budget)
            curves[sampler.name].append(RunCurve(tuple(trace.curve), trace.spent))
    truth = {arm: float(np.mean([c.at(budget) for c in runs])) for arm, runs in curves.items()}
    sd = float(np.mean([np.std([c.at(budget) for c in runs]) for runs in curves.values()]))
    return World(budget, truth, sd, _bank_draw(curves, budget),
                 {arm: {"s_B": value} for arm, value in truth.items()})


def _bank_draw(curves: dict[str, list[RunCurve]], budget: float
               ) -> Callable[[str, float, np.random.Generator], RunCurve]:
    """A seed from the bank, truncated to the run's budget (the simulation's
    first part does not depend on where it stops)."""

    def draw(arm: str, fraction: float, rng: np.random.Generator) -> RunCurve:
        curve = curves[arm][int(rng.integers(len(curves[arm])))]
        end = fraction * budget
        return RunCurve(tuple(p for p in curve.points if p[0] <= end), end)

    return draw


# -- designs -----------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    chosen: str
    analysis: Analysis
    compute: float  # in units of B
    counts: dict[str, int]


def information_gain(world: World, runs: int, rng: np.random.Generator) -> Outcome:
    grid, arms = Grid.log_spaced(world.budget), list(world.truth)
    curves: dict[str, list[RunCurve]] = {arm: [] for arm in arms}
    compute = 0.0
    for _ in range(runs):
        counts = {arm: len(c) for arm, c in curves.items()}
        choice = design.choose(analyse(curves, grid), arms, counts, [], BUDGETS, 1, False)
        curves[choice.arm].append(world.draw(choice.arm, choice.budget, rng))
        compute += choice.budget
    return _outcome(curves, grid, compute)


def grid_design(world: World, runs: int, rng: np.random.Generator,
                fractions: tuple[float, ...] = (1.0,)) -> Outcome:
    grid, arms = Grid.log_spaced(world.budget), list(world.truth)
    curves: dict[str, list[RunCurve]] = {arm: [] for arm in arms}
    compute = 0.0
    for k in range(runs):
        arm, fraction = arms[k % len(arms)], fractions[(k // len(arms)) % len(fractions)]
        curves[arm].append(world.draw(arm, fraction, rng))
        compute += fraction
    return _outcome(curves, grid, compute)


def _outcome(curves: dict[str, list[RunCurve]], grid: Grid, compute: float) -> Outcome:
    analysis = analyse(curves, grid)
    return Outcome(analysis.best(), analysis, compute, {a: len(c) for a, c in curves.items()})


DESIGNS = {
    "information gain, N runs": lambda w, n, rng: information_gain(w, n, rng),
    "grid at B, 2N runs": lambda w, n, rng: grid_design(w, 2 * n, rng),
    "sweep B,B/2,B/4, 2N runs": lambda w, n, rng: grid_design(w, 2 * n, rng, (1.0, 0.5, 0.25)),
}


# -- statistics and tables -----------------------------------------------------


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a - b over studies with a 95% bootstrap interval."""
    rng = np.random.default_rng(seed)
    diff = a.astype(float) - b.astype(float)
    means = rng.choice(diff, size=(10_000, len(diff))).mean(axis=1)
    return float(diff.mean()), *map(float, np.percentile(means, [2.5, 97.5]))


def accuracy_table(title: str, results: dict[str, list[tuple[Outcome, World]]]) -> list[str]:
    lines = [title, f"{'design':<28}{'found best at B':>30}{'regret (seed sd)':>18}"
             f"{'compute (B)':>13}{'runs per arm':>16}"]
    hits = {}
    for name, rows in results.items():
        correct = np.array([outcome.chosen == world.best() for outcome, world in rows])
        hits[name] = correct
        low, high = wilson(int(correct.sum()), len(rows))
        regret = np.mean([(w.truth[w.best()] - w.truth[o.chosen]) / w.seed_sd for o, w in rows])
        compute = np.mean([o.compute for o, _ in rows])
        counts = np.mean([sorted(o.counts.values(), reverse=True) for o, _ in rows], axis=0)
        lines.append(f"{name:<28}{f'{correct.mean():.2f} [{low:.2f}, {high:.2f}] ':>30}"
                     f"{regret:>17.3f}{compute:>13.1f}   "
                     + "/".join(f"{c:.1f}" for c in counts))
    names = list(results)
    for other in names[1:]:
        mean, low, high = paired_difference(hits[names[0]], hits[other])
        lines.append(f"  information gain - {other}: {mean:+.2f} [{low:+.2f}, {high:+.2f}] "
                     f"(paired bootstrap over {len(hits[other])} studies)")
    return lines


def calibration_table(title: str, results: dict[str, list[tuple[Outcome, World]]],
                      parameters: list[str]) -> list[str]:
    """Coverage of the nominal intervals of every arm's parameters."""
    lines = [title,
             f"{'fit':<5}{'parameter':<10}" + "".join(f"{f'{level:.0%}':>8}" for level in LEVELS)
             + f"{'arms':>7}"]
    for method in ("ml", "ls"):
        for parameter in parameters:
            cover = {level: [] for level in LEVELS}
            for rows in results.values():
                for outcome, world in rows:
                    for arm, fit in outcome.analysis.arms.items():
                        truth = world.parameters[arm][parameter]
                        for level in LEVELS:
                            e = getattr(fit, method).estimates(level)[parameter]
                            cover[level].append(e.low <= truth <= e.high)
            cells = "".join(f"{np.mean(cover[level]):>8.2f}" for level in LEVELS)
            lines.append(f"{method.upper():<5}{parameter:<10}{cells}{len(cover[LEVELS[0]]):>7}")
    return lines


def reliability_table(results: dict[str, list[tuple[Outcome, World]]]) -> list[str]:
    """P(best at B) against how often the arm was in fact the best."""
    edges = [0.0, 0.1, 0.3, 0.7, 0.9, 1.0001]
    lines = ["P(best at B) reliability (all designs): stated vs observed",
             f"{'fit':<5}" + "".join(f"{f'[{a:.1f},{min(b, 1):.1f}]':>22}"
                                     for a, b in zip(edges, edges[1:], strict=False))]
    for method in ("p_best", "p_best_ls"):
        stated, truth = [], []
        for rows in results.values():
            for outcome, world in rows:
                for arm, p in getattr(outcome.analysis, method).items():
                    stated.append(p)
                    truth.append(arm == world.best())
        stated, truth = np.array(stated), np.array(truth)
        cells = []
        for a, b in zip(edges, edges[1:], strict=False):
            inside = (stated >= a) & (stated < b)
            cells.append(f"{stated[inside].mean():.2f} vs {truth[inside].mean():.2f} "
                         f"({inside.sum()})" if inside.any() else "-")
        lines.append(f"{'ML' if method == 'p_best' else 'LS':<5}"
                     + "".join(f"{cell:>22}" for cell in cells))
    return lines


def run_studies(worlds: list[World], runs: int, per_world: int, seed: int
                ) -> dict[str, list[tuple[Outcome, World]]]:
    results: dict[str, list[tuple[Outcome, World]]] = {name: [] for name in DESIGNS}
    for w, world in enumerate(worlds):
        for s in range(per_world):
            for d, (name, make) in enumerate(DESIGNS.items()):
                rng = np.random.default_rng([seed, w, s, d])
                results[name].append((make(world, runs, rng), world))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", type=int, default=6)
    parser.add_argument("--runs", type=int, default=12, help="N: the information-gain "
                        "study's runs (the grids get 2N)")
    parser.add_argument("--law", type=int, default=100, help="law worlds (one study each)")
    parser.add_argument("--worlds", type=int, default=5, help="simulator worlds")
    parser.add_argument("--per-world", type=int, default=10, help="studies per simulator world")
    parser.add_argument("--bank", type=int, default=60, help="seeds simulated per arm")
    parser.add_argument("--budget", type=float, default=2000.0, help="B of simulator worlds")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    law_worlds = [law_world(np.random.default_rng([arguments.seed, 1, k]), arguments.arms)
                  for k in range(arguments.law)]
    law_results = run_studies(law_worlds, arguments.runs, 1, arguments.seed)
    print(f"  law worlds: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    sim_worlds = [simulator_world(np.random.default_rng([arguments.seed, 2, k]), arguments.arms,
                                  arguments.bank, arguments.budget)
                  for k in range(arguments.worlds)]
    print(f"  simulator banks: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    sim_results = run_studies(sim_worlds, arguments.runs, arguments.per_world, arguments.seed)
    print(f"  all: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    n, arms = arguments.runs, arguments.arms
    print("\n".join(accuracy_table(
        f"simulator worlds: {arguments.worlds} worlds x {arguments.per_world} studies, {arms} "
        f"arms, N = {n}, B = {arguments.budget:g} compute seconds, truth: mean of "
        f"{arguments.bank} seeds; found best: share of studies (95% Wilson interval)",
        sim_results)))
    print()
    print("\n".join(accuracy_table(
        f"law worlds: {arguments.law} studies, {arms} arms, N = {n}", law_results)))
    print()
    print("\n".join(calibration_table(
        "calibration, law worlds: share of arms whose interval covers the true parameter "
        "(final fits of every design)", law_results, PARAMETERS)))
    print("\n".join(calibration_table(
        "calibration, simulator worlds (true s(B): the mean of the bank)", sim_results,
        ["s_B"])))
    print()
    print("\n".join(reliability_table(sim_results)).replace("(all designs)",
                                                            "(simulator worlds, all designs)"))
    print("law worlds:")
    print("\n".join(reliability_table(law_results)[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
