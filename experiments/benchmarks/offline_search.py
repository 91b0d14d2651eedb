"""Offline search benchmark: the mutation proposer (no model) against the baselines.

    python experiments/benchmarks/offline_search.py [--problems tsp,bin_packing]
        [--seeds 0,1,2] [--wall MINUTES | --evaluations N] [--workers 2]
        [--runtime inline|ray] [--out DIR]

Each (problem, seed) is one real run, `funsearch.experiment.run`, on the
experiment file beside this script (offline_tsp.toml, offline_bin_packing.toml):
the spec's Python function, the sandbox, the island database. Nothing is a
special fast path, so the figures are what a user without a GPU gets.

Per problem the table shows, per seed, the best program's training figure,
its held-out figure, the sandbox evaluations done (failed ones included,
duplicates answered from the cache not), evaluations per second over the
engine's elapsed time, and per core (divided by min(workers, cores)); then
the median and the spread (min-max) over seeds, and the baselines scored
the same way (`funsearch.evaluator.score_programs`, same sandbox):

- TSP50: train on `train_large` (32 x TSP50); held out: mean gap to elkai/LKH
  on `holdout` (64 x TSP50). Baselines: nearest neighbour (the spec's), and
  farthest insertion (a whole-tour solver of REFERENCE_SOLVERS, run on the host).
- Bin packing: train on `train_small` (2 generated Weibull 5k instances); held out:
  excess bins over the L1 bound on FunSearch's own Weibull 5k data
  (`funsearch_weibull5k`, never seen by the search). Baselines: first fit,
  best fit and FunSearch's published Weibull heuristic.

`--evaluations N` sets the budget in samples (proposals, the engine's unit):
duplicates and rejected proposals count towards it, so fewer evaluations run.
The out dir gets report.md (the tables and every seed's best program) and the
run directories (runs/).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from funsearch import config as config_module  # noqa: E402
from funsearch import experiment  # noqa: E402
from funsearch import spec as spec_module  # noqa: E402
from funsearch.evaluator import Evaluator, make_pool, score_programs  # noqa: E402

HERE = Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Problem:
    """What the benchmark needs to know of a problem beyond its experiment file."""

    name: str
    experiment: Path
    figure: str  # key of spec.summary's dict: the figure in the table (lower is better)
    heldout: str  # the input set the held-out figure is reported on
    label: str  # column title of the figure


PROBLEMS = {
    "tsp": Problem("tsp", HERE / "offline_tsp.toml", "gap_percent", "holdout",
                   "gap % to LKH"),
    "bin_packing": Problem("bin_packing", HERE / "offline_bin_packing.toml", "excess_percent",
                           "funsearch_weibull5k", "excess bins %"),
}


@dataclasses.dataclass
class SeedResult:
    seed: int
    train: float | None
    heldout: float | None
    evaluations: int
    elapsed: float
    stop_reason: str
    best_program: str
    run_dir: Path

    @property
    def rate(self) -> float:
        return self.evaluations / self.elapsed if self.elapsed else 0.0


def run_seed(problem: Problem, seed: int, arguments: argparse.Namespace,
             out: Path) -> SeedResult:
    """One search to its budget; the figures from the run's own summary.json."""
    budget: dict[str, float] = {}
    if arguments.evaluations:
        budget["samples"] = arguments.evaluations
    else:
        budget["wall"] = arguments.wall * 60.0
    config = config_module.load(
        problem.experiment, seed=seed, out=str(out / "runs"),
        name=f"{problem.name}-seed{seed}",
        **{"scheduler.budget": budget, "evaluator.workers": arguments.workers,
           "runtime.kind": arguments.runtime})
    last: list = []
    result = experiment.run(config, on_status=lambda status: last.__setitem__(slice(None),
                                                                              [status]))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    scores = summary.get("scores", {})
    counters = result.counters
    elapsed = last[0].elapsed if last else 0.0
    return SeedResult(
        seed=seed,
        train=scores.get(config.problem.inputs, {}).get(problem.figure),
        heldout=scores.get(problem.heldout, {}).get(problem.figure),
        evaluations=counters["evaluated"] + counters["failed"],
        elapsed=elapsed,
        stop_reason=result.stop_reason,
        best_program=result.best_program or "",
        run_dir=result.run_dir,
    )


def baselines(problem: Problem, train_set: str, workers: int) -> dict[str, tuple]:
    """label -> (training figure, held-out figure), scored in the sandbox like a program."""
    spec = spec_module.load(spec_module_path(problem))
    figures: dict[str, dict[str, float | None]] = {}
    with make_pool(spec, workers=workers, timeout=300, memory_mb=4096,
                   isolation="auto") as pool:
        evaluator = Evaluator(spec, pool, train_set)
        for row in score_programs(evaluator, dict(spec.baselines),
                                  [train_set, problem.heldout]):
            figures.setdefault(row.label, {})[row.input_set] = row.summary.get(problem.figure)
    # Whole-instance solvers (farthest insertion for TSP): host-side, scored by the spec.
    for name, solve in getattr(spec.module, "REFERENCE_SOLVERS", {}).items():
        for input_set in (train_set, problem.heldout):
            instances = spec.inputs(input_set)
            scores = {key: spec.score(instance, solve(instance))
                      for key, instance in instances.items()}
            figures.setdefault(name, {})[input_set] = spec.summary(input_set,
                                                                   scores)[problem.figure]
    return {label: (values.get(train_set), values.get(problem.heldout))
            for label, values in figures.items()}


def spec_module_path(problem: Problem) -> Path:
    return config_module.load(problem.experiment).spec_path()


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _spread(values: list[float | None]) -> tuple[str, str]:
    known = [value for value in values if value is not None]
    if not known:
        return "-", "-"
    return _fmt(statistics.median(known)), f"{min(known):.2f}–{max(known):.2f}"


def table_rows(problem: Problem, train_set: str, results: list[SeedResult],
               base: dict[str, tuple], cores: int) -> tuple[list[str], list[list[str]]]:
    header = ["program", f"train {train_set}", f"held out {problem.heldout}",
              "evaluations", "eval/s", "eval/s/core"]
    rows = [[f"seed {r.seed}", _fmt(r.train), _fmt(r.heldout), str(r.evaluations),
             _fmt(r.rate, 1), _fmt(r.rate / cores, 1)] for r in results]
    if results:
        median_train, spread_train = _spread([r.train for r in results])
        median_held, spread_held = _spread([r.heldout for r in results])
        rates = [r.rate for r in results]
        rows.append(["median", median_train, median_held,
                     str(int(statistics.median(r.evaluations for r in results))),
                     _fmt(statistics.median(rates), 1),
                     _fmt(statistics.median(rates) / cores, 1)])
        rows.append(["spread (min–max)", spread_train, spread_held,
                     f"{min(r.evaluations for r in results)}–"
                     f"{max(r.evaluations for r in results)}", "", ""])
    for label, (train, held) in base.items():
        rows.append([f"baseline {label.removeprefix('baseline ')}", _fmt(train), _fmt(held),
                     "", "", ""])
    return header, rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", default="tsp,bin_packing")
    parser.add_argument("--seeds", default="0,1,2")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--wall", type=float, default=None, help="minutes per run")
    budget.add_argument("--evaluations", type=int, default=None,
                        help="samples per run (the engine's budget unit)")
    parser.add_argument("--workers", type=int, default=2, help="sandbox workers per run")
    parser.add_argument("--runtime", choices=["inline", "ray"], default="inline")
    parser.add_argument("--out", type=Path, default=Path("offline_search_out"))
    arguments = parser.parse_args()
    if arguments.wall is None and arguments.evaluations is None:
        arguments.wall = 4.0
    names = [name.strip() for name in arguments.problems.split(",") if name.strip()]
    unknown = [name for name in names if name not in PROBLEMS]
    if unknown:
        parser.error(f"--problems: unknown {unknown} (known: {', '.join(PROBLEMS)})")
    seeds = [int(seed) for seed in arguments.seeds.split(",")]
    out = arguments.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    cores = max(1, min(arguments.workers, os.cpu_count() or 1))
    console = Console(width=140)
    budget_text = (f"{arguments.wall:g} min wall" if arguments.wall is not None
                   else f"{arguments.evaluations} samples")
    report = [f"# Offline search benchmark\n\n`{' '.join(sys.argv)}`\n\n"
              f"Budget per run: {budget_text}; {arguments.workers} sandbox workers; runtime "
              f"{arguments.runtime}; {os.cpu_count()} cores; load average before "
              f"{os.getloadavg()[0]:.2f}.\n"]
    for name in names:
        problem = PROBLEMS[name]
        train_set = config_module.load(problem.experiment).problem.inputs
        console.print(f"[bold]{name}[/]: baselines ...")
        base = baselines(problem, train_set, arguments.workers)
        results = []
        for seed in seeds:
            started = time.perf_counter()
            console.print(f"[bold]{name}[/] seed {seed}: searching ({budget_text}) ...")
            result = run_seed(problem, seed, arguments, out)
            results.append(result)
            console.print(f"  train {_fmt(result.train)}  held out {_fmt(result.heldout)}  "
                          f"{result.evaluations} evaluations in {result.elapsed:.0f}s "
                          f"({time.perf_counter() - started:.0f}s with set-up and held-out "
                          f"scoring); stop: {result.stop_reason}; {result.run_dir}")
        header, rows = table_rows(problem, train_set, results, base, cores)
        table = Table(*header, title=f"{name}: {problem.label} (lower is better); training on "
                                     f"'{train_set}', held out '{problem.heldout}'")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        report.append(f"\n## {name}: {problem.label} (lower is better)\n\nTraining on "
                      f"`{train_set}`; held-out figure on `{problem.heldout}` (never seen by "
                      f"the search). eval/s/core divides by {cores} "
                      f"(min(workers, cores)).\n\n{markdown(header, rows)}\n")
        for result in results:
            report.append(f"\n### {name}, seed {result.seed}: best program (train "
                          f"{_fmt(result.train)}, held out {_fmt(result.heldout)})\n\n"
                          f"```python\n{(result.run_dir / 'best.py').read_text()}```\n")
        (out / "report.md").write_text("\n".join(report))
    report.append(f"\nLoad average after: {os.getloadavg()[0]:.2f}.\n")
    (out / "report.md").write_text("\n".join(report))
    console.print(f"report: {out / 'report.md'}")


if __name__ == "__main__":
    main()
