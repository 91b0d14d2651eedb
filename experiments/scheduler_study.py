"""Simulated study: one model size, a uniform mix, or the adaptive scheduler?

Four simulated model sizes (funsearch/scheduling/simulation.py): a bigger model takes
longer per sample and succeeds more often, and keeps succeeding for longer
as improvements get harder. The best score after k improvements is
1 - (1 - step)^k (each improvement adds less), and a size's chance of an
improvement falls as exp(-k / depth) with a depth that grows with size, so
the best size for a budget depends on the budget: small models win the easy
start, big models the hard end.

Every policy gets the same compute budget (GPU-seconds of the proposals plus
seconds of the evaluations, the scheduler's "compute" unit) on the same
simulated evaluators, over several seeds:

- each size alone (`fixed` with all weight on it),
- uniform: `round_robin` over the sizes,
- adaptive: the `ucb` and `thompson` bandits with their default settings.

Prints a table of the best score at a quarter, half and all of the budget
(mean and 95% bootstrap interval over seeds) with the adaptive runs' shares
of the budget, and writes a PNG of best score against budget with the
intervals as bands.

    python experiments/scheduler_study.py                  # 10 seeds, ~5 minutes
    python experiments/scheduler_study.py --seeds 3 --budget 20000   # a quick look
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from funsearch.config import SchedulerConfig  # noqa: E402
from funsearch.reports import stats  # noqa: E402
from funsearch.scheduling.simulation import SimulatedSampler, Simulation, Trace  # noqa: E402

# Latency in seconds per sample on one GPU; success: chance that a sample
# improves the search at its start; depth: improvements after which that
# chance has fallen by a factor e. Evaluations take 0.5 s.
SIZES = [
    SimulatedSampler("0.5B", latency=1.0, success=0.10, depth=60),
    SimulatedSampler("1.5B", latency=2.0, success=0.20, depth=150),
    SimulatedSampler("7B", latency=5.0, success=0.40, depth=400),
    SimulatedSampler("32B", latency=16.0, success=0.60, depth=800),
]
EVALUATION_SECONDS = 0.5
WORKERS = 8
STEP = 0.002
ADAPTIVE = ("ucb", "thompson")


def policies() -> dict[str, SchedulerConfig]:
    configs = {
        f"only {size.name}": SchedulerConfig(
            policy="fixed", weights={other.name: float(other is size) for other in SIZES})
        for size in SIZES}
    configs["uniform"] = SchedulerConfig(policy="round_robin")
    for policy in ADAPTIVE:
        configs[policy] = SchedulerConfig(policy=policy)
    return configs


@dataclasses.dataclass
class Result:
    """One policy over all seeds: best score on the budget grid, shares of the budget."""

    scores: np.ndarray  # seeds x grid points
    shares: dict[str, float]
    seconds: float


def run(config: SchedulerConfig, seeds: int, budget: float, grid: np.ndarray) -> Result:
    started = time.perf_counter()
    rows, shares = [], {size.name: 0.0 for size in SIZES}
    for seed in range(seeds):
        trace: Trace = Simulation(SIZES, config, workers=WORKERS,
                                  evaluation_seconds=EVALUATION_SECONDS, step=STEP,
                                  seed=seed).run(budget=budget)
        spent = [point[0] for point in trace.curve]
        best = [point[1] for point in trace.curve]
        rows.append([stats.step_value(spent, best, at) for at in grid])
        for name, share in trace.scheduler.shares().items():
            shares[name] += share / seeds
    return Result(np.array(rows, float), shares, time.perf_counter() - started)


def table(results: dict[str, Result], grid: np.ndarray, columns: list[int]) -> list[str]:
    header = f"{'policy':<10}" + "".join(f"{f'budget {grid[c]:,.0f}':>26}" for c in columns)
    lines = [header + "   share of budget (0.5B/1.5B/7B/32B)"]
    for name, result in results.items():
        mean, low, high = stats.bootstrap_means(result.scores)
        cells = "".join(f"{mean[c]:>10.4f} [{low[c]:.4f}, {high[c]:.4f}]" for c in columns)
        shares = "/".join(f"{result.shares[size.name]:.2f}" for size in SIZES)
        lines.append(f"{name:<10}{cells}   {shares}")
    return lines


def verdict(results: dict[str, Result]) -> list[str]:
    """The adaptive scheduler against the best fixed size and uniform, at the full budget."""
    final = {name: stats.bootstrap_means(result.scores[:, -1:]) for name, result in results.items()}
    fixed = [name for name in results if name.startswith("only ")]
    best = max(fixed, key=lambda name: final[name][0][0])
    lines = []
    for policy in ADAPTIVE:
        mean, low, high = (value[0] for value in final[policy])
        best_mean, best_low, _ = (value[0] for value in final[best])
        uniform_mean, _, uniform_high = (value[0] for value in final["uniform"])
        as_good = high >= best_mean or mean >= best_low
        lines.append(
            f"{policy}: {mean:.4f} [{low:.4f}, {high:.4f}] vs best fixed ({best}) {best_mean:.4f}:"
            f" {'as good within the intervals' if as_good else 'WORSE'};"
            f" vs uniform {uniform_mean:.4f}:"
            f" {'better' if low > uniform_high else 'NOT clearly better'}")
    return lines


def plot(results: dict[str, Result], grid: np.ndarray, path: Path) -> None:
    """Best score against budget (top) and its gap to the best single size at
    each budget (bottom: which size that is changes along the budget)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 8), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 2]})
    hours = grid / 3600
    sizes = iter(plt.cm.viridis(np.linspace(0.0, 0.85, len(SIZES))))
    colors = {name: next(sizes) for name in results if name.startswith("only ")}
    colors.update({"uniform": "black", "ucb": "tab:red", "thompson": "tab:orange"})
    envelope = np.max([results[name].scores.mean(axis=0) for name in results
                       if name.startswith("only ")], axis=0)
    for name, result in results.items():
        mean, low, high = stats.bootstrap_means(result.scores)
        line = "-" if name in ADAPTIVE else "--" if name == "uniform" else ":"
        width = 2.2 if name in ADAPTIVE else 1.5
        top.plot(hours, mean, line, color=colors[name], label=name, linewidth=width)
        top.fill_between(hours, low, high, color=colors[name], alpha=0.2, linewidth=0)
        if name in ADAPTIVE or name == "uniform":
            gap, gap_low, gap_high = stats.bootstrap_means(result.scores - envelope)
            bottom.plot(hours, gap, line, color=colors[name], label=name, linewidth=width)
            bottom.fill_between(hours, gap_low, gap_high, color=colors[name], alpha=0.2,
                                linewidth=0)
    bottom.axhline(0, color="grey", linewidth=1)
    top.set_ylabel("best score")
    top.set_title(f"Simulated search: {len(results['uniform'].scores)} seeds, "
                  "means with 95% bootstrap intervals")
    top.set_ylim(bottom=0)
    top.grid(alpha=0.3)
    top.legend(loc="lower right")
    bottom.set_ylabel("best score - best single size's")
    bottom.set_xlabel("budget spent (compute hours: GPU-hours of proposals + evaluation hours)")
    bottom.set_ylim(-0.06, 0.02)
    bottom.grid(alpha=0.3)
    bottom.legend(loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=float, default=80_000.0,
                        help="compute seconds per run (default 80000, about 22 hours)")
    parser.add_argument("--png", default=str(Path(__file__).with_name("scheduler_study.png")))
    arguments = parser.parse_args(argv)
    grid = np.linspace(0, arguments.budget, 81)[1:]
    results = {}
    for name, config in policies().items():
        results[name] = run(config, arguments.seeds, arguments.budget, grid)
        print(f"  {name}: {arguments.seeds} seeds in {results[name].seconds:.1f} s",
              file=sys.stderr)
    columns = [len(grid) // 4 - 1, len(grid) // 2 - 1, len(grid) - 1]
    print("\n".join(table(results, grid, columns)))
    print()
    print("\n".join(verdict(results)))
    plot(results, grid, Path(arguments.png))
    print(f"\nplot: {arguments.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
