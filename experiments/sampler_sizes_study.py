"""Which sampler size wins at equal compute? Corpus, models, runs and the results page.

    python experiments/sampler_sizes_study.py [--quick] [--work DIR] [--seeds N]

1. A corpus from the offline proposer's TSP searches (funsearch/models/corpus.py).
2. Three models trained on it on the CPU, ~0.2M to ~4.5M parameters, each
   for the same epochs within its CPU-minutes (funsearch/models/train.py).
3. TSP50 searches at equal compute (`cpu_hours`: CPU-seconds of proposals plus
   evaluations) from experiments/sampler_sizes_cpu/: each size alone on a vLLM
   CPU engine, the offline proposer alone, UCB and Thompson over all four;
   `--seeds` seeds each, one process per run.
4. experiments/results/sampler_sizes.md and .png (experiments/sampler_sizes_report.py),
   with `funsearch compare --by sampler` over the single-sampler arms.

Each step is skipped when its output exists in the work folder (delete it to
redo), so an interrupted study goes on where it stopped. `--quick` is the same
pipeline at toy scale (a minute of training, short runs) in its own folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "experiments"))

import sampler_sizes_report as report  # noqa: E402

from funsearch import config as config_module  # noqa: E402
from funsearch.reports import rundata  # noqa: E402

ARMS_DIR = REPO / "experiments" / "sampler_sizes_cpu"
ARMS = ("mutation", "small", "medium", "large", "ucb", "thompson")
SIZES = ("small", "medium", "large")
# The engines may not download, report usage or write caches into the home folder.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
           "DO_NOT_TRACK": "1", "TOKENIZERS_PARALLELISM": "false"}


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big the study is: corpus searches, training epochs and CPU-minutes per
    size (whichever ends first), run budgets."""

    corpus_samples: int
    corpus_searches: int
    epochs: int
    cpu_minutes: dict[str, float]
    cpu_hours: float
    wall: str
    seeds: int
    page: Path


FULL = Scale(2000, 3, 3, {"small": 10, "medium": 20, "large": 60}, 0.04, "5m", 3,
             REPO / "experiments" / "results" / "sampler_sizes.md")
QUICK = Scale(150, 1, 1, {"small": 0.6, "medium": 0.6, "large": 0.6}, 0.001, "2m", 1,
              REPO / "runs" / "sampler-sizes-quick" / "sampler_sizes.md")


def step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def timed(work: Path, name: str, *args: str, env: dict[str, str] | None = None) -> None:
    """A step in its own process, its wall time added to work/timings.json (so the
    page gives the whole pipeline's time, even over interrupted invocations)."""
    started = time.monotonic()
    python(*args, env=env)
    path = work / "timings.json"
    timings = json.loads(path.read_text()) if path.exists() else {}
    timings[name] = timings.get(name, 0.0) + time.monotonic() - started
    path.write_text(json.dumps(timings, indent=2) + "\n")


def python(*args: str, env: dict[str, str] | None = None) -> None:
    """A step in its own process (engines and torch state end with it)."""
    subprocess.run([sys.executable, *args], check=True, cwd=REPO,
                   env={**os.environ, **OFFLINE, "PYTHONPATH": str(REPO), **(env or {})})


def build_corpus(work: Path, scale: Scale) -> Path:
    corpus = work / "corpus"
    if not (corpus / "corpus.json").exists():
        step(f"corpus: {scale.corpus_searches} searches x {scale.corpus_samples} samples")
        timed(work, "corpus", "-m", "funsearch.models.corpus", str(corpus), "--seed", "0",
               "--samples", str(scale.corpus_samples), "--searches", str(scale.corpus_searches))
    return corpus


def train_models(work: Path, corpus: Path, scale: Scale) -> dict[str, Path]:
    models = {}
    for size in SIZES:
        out = models[size] = work / "models" / size
        if not (out / "training.json").exists():
            step(f"model {size}: training {scale.epochs} epochs, at most "
                 f"{scale.cpu_minutes[size]} CPU-minutes")
            timed(work, f"model {size}", "-m", "funsearch.models.train", str(corpus), str(out),
                  "--size", size, "--epochs", str(scale.epochs),
                  "--cpu-minutes", str(scale.cpu_minutes[size]))
    return models


def arm_config(arm: str, seed: int, models: dict[str, Path], scale: Scale,
               out: Path) -> dict:
    """The arm's experiment file with this study's models, seed and budget."""
    data = tomllib.loads((ARMS_DIR / f"{arm}.toml").read_text())
    data["seed"], data["out"], data["base_dir"] = seed, str(out), str(ARMS_DIR)
    data["problem"]["spec"] = str((ARMS_DIR / data["problem"]["spec"]).resolve())
    data["scheduler"]["budget"] = {"cpu_hours": scale.cpu_hours, "wall": scale.wall}
    for sampler in data["samplers"]:
        if sampler["backend"] == "vllm":
            sampler["model"] = str(models[sampler["name"]])
    config_module.from_dict(data)  # fails here, naming the key, not in the run
    return data


# Runs that share engines run in one process: an engine starts once (20-90 s
# on 2 shared cores) and serves every seed of its arm; the bandits share theirs.
GROUPS = (("mutation",), ("small",), ("medium",), ("large",), ("ucb", "thompson"))


def run_arms(work: Path, models: dict[str, Path], scale: Scale) -> dict[str, list[Path]]:
    runs: dict[str, list[Path]] = {}
    for group in GROUPS:
        todo = []
        for arm in group:
            for seed in range(scale.seeds):
                run_dir = work / "runs" / f"{arm}-{seed}"
                runs.setdefault(arm, []).append(run_dir)
                if (run_dir / "summary.json").exists():
                    continue
                config = work / "configs" / f"{arm}-{seed}.json"
                config.parent.mkdir(parents=True, exist_ok=True)
                config.write_text(json.dumps(arm_config(arm, seed, models, scale,
                                                        work / "runs")))
                todo += [str(config), str(run_dir)]
        if todo:
            step(f"runs {', '.join(group)}: {len(todo) // 2} in one process")
            timed(work, f"runs {'+'.join(group)}",
                  str(REPO / "experiments" / "sampler_sizes_runs.py"), *todo,
                  env={"VLLM_CACHE_ROOT": str(work / "vllm-cache")})
    return runs


def compare_text(run_dirs: list[Path], by: str) -> str:
    """`funsearch compare` as a user would run it: its table, plain text."""
    command = [sys.executable, "-m", "funsearch.cli", "compare", *map(str, run_dirs),
               "--by", by]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "160"})
    return (result.stdout + result.stderr).strip()


def write_page(work: Path, runs: dict[str, list[Path]], models: dict[str, Path],
               scale: Scale, started: float) -> Path:
    figures = [report.read_figures(run_dir, arm) for arm, dirs in runs.items()
               for run_dir in dirs if rundata.is_run_dir(run_dir)]
    page = scale.page
    page.parent.mkdir(parents=True, exist_ok=True)
    report.plot(figures, page.with_suffix(".png"))
    trained = [json.loads((models[size] / "training.json").read_text()) for size in SIZES]
    for size in SIZES:  # the loss curves beside the page
        shutil.copyfile(models[size] / "loss.png", page.with_name(f"{page.stem}_loss_{size}.png"))
    singles = [d for arm in ("mutation", *SIZES) for d in runs.get(arm, [])]
    bandits = [d for arm in ("ucb", "thompson") for d in runs.get(arm, [])]
    timings_path = work / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    text = PAGE.format(
        wall=sum(timings.values()) / 60,  # every step of the pipeline, however many invocations
        timings=", ".join(f"{name} {seconds / 60:.1f}" for name, seconds in timings.items()),
        findings=report.findings(figures), seeds=scale.seeds, cpu_hours=scale.cpu_hours,
        cpu_seconds=scale.cpu_hours * 3600, png=page.with_suffix(".png").name, stem=page.stem,
        models=report.markdown(
            ["size", "parameters", "CPU-minutes", "wall minutes", "steps", "epochs",
             "valid loss"],
            [[size, f"{t['parameters']:,}", f"{t.get('cpu_seconds', 0) / 60:.1f}",
              f"{t['seconds'] / 60:.1f}", str(t["steps"]),
              str(t["epochs"]), f"{t['valid_loss']:.3f}"] for size, t in zip(SIZES, trained,
                                                                           strict=True)]),
        sizes=report.markdown(report.TABLE_HEADER, report.size_table(figures)),
        arms=report.markdown(["arm", "runs", "held-out gap %", "evaluator utilization",
                              "wall s"], report.arm_table(figures)),
        shares=report.markdown(["arm", "sampler", "share at 20%", "share at 50%",
                                "share at 100%", "controller's in-flight limit"],
                               report.share_table(figures)),
        compare=compare_text(singles, "sampler"),
        compare_bandits=compare_text(bandits, "scheduler.policy") if bandits else "")
    page.write_text(text)
    return page


PAGE = """# Sampler sizes at equal compute (TSP50, CPU)

Made by `python experiments/sampler_sizes_study.py` in {wall:.0f} minutes on a shared
2-core machine (minutes per step: {timings}): a corpus from the offline proposer's
searches on TSP's training inputs, three models trained on it, and {seeds} seed(s)
per arm of TSP50 searches at an equal compute budget of {cpu_hours} CPU-hours
({cpu_seconds:.0f} CPU-seconds of proposals plus evaluations).
Intervals: 95% bootstrap over seeds. Plot: `{png}`; loss curves: `{stem}_loss_SIZE.png`.

{findings}

## Models

{models}

## Per sampler

samples/s over the run's wall time; improvements: children above the best parent
of their prompt (as the scheduler counts them); per CPU-hour: improvements over the
sampler's own proposal CPU-seconds plus its evaluations' seconds; held-out gap: the
run's best program on the unseen `holdout` set, percent above LKH.

{sizes}

## Per arm

{arms}

## Bandits: each sampler's share of the compute, and the balance controller

{shares}

## funsearch compare --by sampler (single-sampler arms)

```
{compare}
```

## funsearch compare --by scheduler.policy (bandit arms)

```
{compare_bandits}
```
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="toy scale, a few minutes")
    parser.add_argument("--work", type=Path, help="work folder (default runs/sampler-sizes"
                        "[-quick])")
    parser.add_argument("--seeds", type=int, help="seeds per arm (default 3; quick 1)")
    parser.add_argument("--page", type=Path, help="results page to write")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    scale = dataclasses.replace(scale, seeds=args.seeds or scale.seeds,
                                page=args.page or scale.page)
    work = args.work or REPO / "runs" / ("sampler-sizes-quick" if args.quick else "sampler-sizes")
    started = time.monotonic()
    corpus = build_corpus(work, scale)
    models = train_models(work, corpus, scale)
    runs = run_arms(work, models, scale)
    page = write_page(work, runs, models, scale, started)
    step(f"{page} written ({(time.monotonic() - started) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
