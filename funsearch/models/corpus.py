"""A training corpus for small code models, from the offline proposer's own searches.

    python -m funsearch.models.corpus OUT [--seed S] [--samples N] [--searches K]

Runs K TSP searches with the mutation proposer (inline, training inputs only:
the held-out sets are never scored) and reads their event logs. Every child
that scored above the best parent of its prompt becomes an *improvement*
record: the prompt exactly as a vllm sampler would send it (prompt.Query's
completion text, versions weakest first, ending in the next version's header)
and the child's body as the completion. Every other valid program becomes a
*program* record (its source alone), so a model also learns what runs.
Records are split into train and valid by the seed; the same seed and sizes
give the same corpus, since the searches are seeded and run inline.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from funsearch import code, events, experiment, prompt
from funsearch import config as config_module
from funsearch import spec as spec_module

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = REPO / "experiments" / "tsp_quickstart.toml"
CORPUS_FILE = "corpus.jsonl"
META_FILE = "corpus.json"
VALID_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class Record:
    """One training text: `prompt` + `completion` (a program record has no prompt).

    Attributes:
      kind: "improvement" (a child better than its parents) or "program".
      split: "train" or "valid".
      score: the child's training score; gain: above its best parent.
    """

    kind: str
    split: str
    prompt: str
    completion: str
    score: float
    gain: float = 0.0


def search_config(seed: int, samples: int, out: Path) -> config_module.ExperimentConfig:
    """The quick start's search, inline, on the training inputs only."""
    return config_module.load(EXPERIMENT, **{
        "seed": seed, "out": str(out), "name": f"corpus-{seed}", "runtime.kind": "inline",
        "problem.holdout": [], "scheduler.budget.samples": samples,
        # One prompt at a time: registrations in a fixed order, so the seed decides all.
        "scheduler.max_in_flight": 1, "scheduler.balance": False, "evaluator.workers": 1})


def records_of_run(run_dir: Path, preface: str, function_name: str) -> Iterator[Record]:
    """Improvement and program records of one search, in log order."""
    sources: dict[int, str] = {}
    scores: dict[int, float] = {}
    shown: dict[int, list[int]] = {}  # sample -> parents, in prompt order
    for event in events.read(run_dir):
        if isinstance(event, events.Sample):
            shown[event.sample] = list(event.parents or [])
        elif isinstance(event, events.Reset):
            sources[event.founder.program_id] = event.founder.program
            scores[event.founder.program_id] = event.founder.score
        elif isinstance(event, events.Registration):
            sources[event.program_id], scores[event.program_id] = event.program, event.score
            if event.sample is not None:
                yield _record(event, shown.get(event.sample, []), sources, scores,
                              preface, function_name)


def _record(event: events.Registration, parents: list[int], sources: dict[int, str],
            scores: dict[int, float], preface: str, function_name: str) -> Record:
    known = [parent for parent in parents if parent in sources]
    best_parent = max((scores[parent] for parent in known), default=None)
    completion = code.body(event.program)
    if best_parent is None or event.score <= best_parent:
        return Record("program", "", "", event.program, event.score)
    query = prompt.build_query(preface, function_name, [sources[parent] for parent in known])
    return Record("improvement", "", query.completion, completion, event.score,
                  event.score - best_parent)


def split(records: list[Record], seed: int) -> list[Record]:
    """Each record to train or valid, by a seeded draw (distinct texts only)."""
    rng = random.Random(seed)
    seen: set[tuple[str, str]] = set()
    out = []
    for record in records:
        key = (record.prompt, record.completion)
        if key in seen:
            continue
        seen.add(key)
        which = "valid" if rng.random() < VALID_FRACTION else "train"
        out.append(dataclasses.replace(record, split=which))
    return out


def build(out: str | Path, seed: int = 0, samples: int = 2000, searches: int = 2) -> Path:
    """Runs the searches and writes OUT/corpus.jsonl and OUT/corpus.json."""
    out = Path(out)
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    found: list[Record] = []
    for index in range(searches):
        config = search_config(seed * 1000 + index, samples, runs)
        spec = spec_module.load(config.spec_path())
        result = experiment.run(config, run_dir=runs / f"search-{index}")
        found.extend(records_of_run(result.run_dir, spec.preface(), spec.evolve_name))
    records = split(found, seed)
    with (out / CORPUS_FILE).open("w") as file:
        for record in records:
            file.write(json.dumps(dataclasses.asdict(record)) + "\n")
    meta = {"seed": seed, "samples": samples, "searches": searches,
            "experiment": str(EXPERIMENT.relative_to(REPO)), "inputs": "train",
            "counts": _counts(records)}
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return out


def read(corpus: str | Path, split_name: str | None = None) -> list[Record]:
    """The records of a corpus folder (or its jsonl file), of one split or all."""
    path = Path(corpus)
    path = path / CORPUS_FILE if path.is_dir() else path
    records = [Record(**json.loads(line)) for line in path.read_text().splitlines() if line]
    return [record for record in records if split_name in (None, record.split)]


def _counts(records: list[Record]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        key = f"{record.kind}/{record.split}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m funsearch.models.corpus",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to write (created if missing)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=2000, help="samples per search")
    parser.add_argument("--searches", type=int, default=2, help="searches (seeds) to run")
    args = parser.parse_args(argv)
    out = build(args.out, args.seed, args.samples, args.searches)
    counts = json.loads((out / META_FILE).read_text())["counts"]
    print(f"{out / CORPUS_FILE}: " + ", ".join(f"{n} {key}" for key, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
