"""Evaluation effort as a knob: full evaluation vs a fixed cascade vs the adaptive one.

    python experiments/benchmarks/cascade_effort.py simulated [--seeds 8] [--compute 2000]
    python experiments/benchmarks/cascade_effort.py real [--problems tsp,bin_packing]
        [--seeds 0,1,2] [--wall 45] [--out DIR]

Side by side, in one invocation on one machine, at one budget per row group:

- `simulated`: funsearch/scheduling/cascade_simulation.py, programs of known
  quality through the real cascade (its rules, its fold of the log, the
  tuner), in three worlds: the first 4 of 16 inputs predict the rest well
  ("informative"), moderately ("noisy"), or not at all ("blind": every
  program scores alike there). Equal budget: `--compute` simulated seconds.
- `real`: real inline runs (sandbox, mutation proposer, database) of the
  offline TSP50 and bin packing experiment files beside this script, each mode
  for `--wall` seconds of wall time per seed on this machine (both cores).

Per mode: improvements per CPU-hour, the best score at the equal budget
(held out for the real runs), the share of sandbox time per proposal saved
against full evaluation, and the share of eventual improvements wrongly
stopped (the truth in the simulation; the audit share's estimate in both),
each a mean over seeds with a 95% bootstrap interval.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from funsearch import config as config_module  # noqa: E402
from funsearch import experiment  # noqa: E402
from funsearch.reports import rundata  # noqa: E402
from funsearch.reports.stats import bootstrap_mean  # noqa: E402
from funsearch.scheduling.cascade_simulation import (  # noqa: E402
    CascadeSimulation,
    World,
    cascade_config,
)

HERE = Path(__file__).resolve().parent
MODES = ("off", "fixed", "adaptive")
WORLDS = {"informative": World(noise=0.02), "noisy": World(noise=0.1),
          "blind": World(noise=0.02, head=4)}


@dataclasses.dataclass(frozen=True)
class Problem:
    experiment: Path
    stage_inputs: int  # the cascade's one stage: the first this many training inputs
    figure: str  # summary figure of the held-out set (lower is better)
    heldout: str


PROBLEMS = {
    "tsp": Problem(HERE / "offline_tsp.toml", 8, "gap_percent", "holdout"),
    "bin_packing": Problem(HERE / "offline_bin_packing.toml", 1, "excess_percent",
                           "funsearch_weibull5k"),
}


@dataclasses.dataclass(frozen=True)
class Row:
    """One run's figures."""

    improvements_per_cpu_hour: float
    best: float | None  # simulated: best score over the initial's; real: held-out figure
    evaluation_per_proposal: float  # sandbox seconds
    wrongly_stopped: float | None  # share of improvements; the truth where known
    estimated_wrongly_stopped: float | None  # by the audit share
    threshold: float | None


def simulated(seed: int, world: World, mode: str, compute: float) -> Row:
    config = cascade_config(mode, threshold=0.5, inputs=4)
    simulation = CascadeSimulation(world, config, seed=seed)
    result = simulation.run(compute)
    improvements = result.improvements
    cascade = simulation.cascade
    return Row(improvements / (result.compute / 3600), result.best - result.initial,
               result.evaluation / result.proposals,
               result.lost / (improvements + result.lost) if improvements + result.lost else 0.0,
               _share(result.estimated_lost, improvements) if cascade else 0.0,
               cascade.tuner.threshold(0) if cascade else None)


def real(problem: Problem, seed: int, mode: str, wall: float, out: Path) -> Row:
    stage = {"inputs": problem.stage_inputs, "rule": "top", "threshold": 0.5}
    config = config_module.load(
        problem.experiment, seed=seed, out=str(out), name=f"{problem.experiment.stem}-{mode}",
        **{"scheduler.budget": {"wall": wall}, "runtime.kind": "inline",
           "cascade": {"mode": mode, "stages": [stage], "audit": 0.1}})
    result = experiment.run(config)
    run = rundata.read_run(result.run_dir)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    stages = (run.cascade or {}).get("stages") or [{}]
    lost = sum(stage.get("lost", 0.0) for stage in stages)
    return Row(run.improvements / (run.wall * 2 / 3600),
               summary.get("scores", {}).get(problem.heldout, {}).get(problem.figure),
               run.evaluation_per_sample or 0.0, None,
               _share(lost, run.improvements) if run.cascade else 0.0,
               stages[0].get("threshold"))


def _share(lost: float, improvements: int) -> float | None:
    return lost / (improvements + lost) if improvements + lost else None


def table(title: str, rows: dict[str, list[Row]], best_label: str) -> str:
    """A markdown table: one line per mode, mean [95% interval] over seeds."""
    full = bootstrap_mean([r.evaluation_per_proposal for r in rows["off"]])
    header = ["mode", "improvements / CPU-h", best_label, "eval s / proposal",
              "eval saved", "wrongly stopped (true)", "wrongly stopped (audit est.)",
              "threshold at end"]
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for mode, runs in rows.items():
        saved = [1 - r.evaluation_per_proposal / full.mean for r in runs] if full else []
        cells = [mode, _cell(runs, lambda r: r.improvements_per_cpu_hour, "{:.0f}"),
                 _cell(runs, lambda r: r.best, "{:.4g}"),
                 _cell(runs, lambda r: r.evaluation_per_proposal, "{:.3g}"),
                 _interval(saved, "{:.0%}"),
                 _cell(runs, lambda r: r.wrongly_stopped, "{:.1%}"),
                 _cell(runs, lambda r: r.estimated_wrongly_stopped, "{:.1%}"),
                 _cell(runs, lambda r: r.threshold, "{:.2f}")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(runs: list[Row], field: Callable[[Row], float | None], form: str) -> str:
    return _interval([field(run) for run in runs], form)


def _interval(values: list[float | None], form: str) -> str:
    interval = bootstrap_mean([v for v in values if v is not None])
    if interval is None:
        return "-"
    return (f"{form.format(interval.mean)} [{form.format(interval.low)}, "
            f"{form.format(interval.high)}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("simulated", "real"))
    parser.add_argument("--seeds", default="8", help="simulated: how many; real: a list")
    parser.add_argument("--compute", type=float, default=2000.0)
    parser.add_argument("--problems", default="tsp,bin_packing")
    parser.add_argument("--wall", type=float, default=45.0)
    parser.add_argument("--out", default="/tmp/cascade-effort")
    arguments = parser.parse_args()
    if arguments.kind == "simulated":
        seeds = range(int(arguments.seeds))
        for name, world in WORLDS.items():
            rows = {mode: [simulated(seed, world, mode, arguments.compute) for seed in seeds]
                    for mode in MODES}
            print(table(f"simulated, {name} first stage: {len(seeds)} seeds, "
                        f"{arguments.compute:.0f} s of compute each", rows, "best score gain"))
        return
    seeds = [int(seed) for seed in arguments.seeds.split(",")]
    for name in arguments.problems.split(","):
        problem = PROBLEMS[name]
        rows = {mode: [] for mode in MODES}
        for seed in seeds:  # modes interleaved, so the machine's load falls on all alike
            for mode in MODES:
                rows[mode].append(real(problem, seed, mode, arguments.wall,
                                       Path(arguments.out) / name))
        print(table(f"{name}: {len(seeds)} seeds, {arguments.wall:.0f} s wall each (inline, "
                    f"2 sandbox workers)", rows, f"held-out {problem.figure}"))


if __name__ == "__main__":
    main()
