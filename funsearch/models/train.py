"""Train a small code model on a corpus (funsearch/models/corpus.py), on the CPU.

    python -m funsearch.models.train CORPUS OUT --size small|medium|large \
        [--epochs E] [--cpu-minutes M]

The model is build.py's Llama with a byte-level BPE tokenizer trained on the
corpus's own texts, so TSP heuristics take few tokens. It learns the
completions of improvement records (the prompt is context, not a target: a
sampler is only ever asked to continue it) and whole valid programs, until
`--epochs` or the CPU-time limit, whichever comes first. The limit is the
process's CPU time (all torch threads), not wall time, so a model trained on a
busy machine sees the same texts as on an idle one: a larger model costs more
CPU per text, which is the trade-off a sampler-size study measures.
Validation loss (per completion token, on the corpus's valid split) is
measured along the way and at the end; OUT is a model folder vLLM and
transformers load, with `training.json` and `loss.png`.

torch and transformers are imported only here, when training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from funsearch.models import build as build_module
from funsearch.models import corpus as corpus_module

# Sizes of the study: ~0.18M, ~0.69M and ~4.5M parameters (25x) with a
# 1024-token vocabulary (head sizes 32 and 64, which vLLM's CPU attention
# supports); "tiny" is the smoke test's. Small enough for a few epochs in
# CPU-minutes (small) to CPU-tens-of-minutes (large) on 2 cores.
SIZES = {
    "tiny": build_module.ModelSpec(layers=1, hidden=64, heads=2, vocab=512, max_positions=2048),
    "small": build_module.ModelSpec(layers=1, hidden=64, heads=2, vocab=1024, max_positions=2048),
    "medium": build_module.ModelSpec(layers=2, hidden=128, heads=2, vocab=1024,
                                     max_positions=2048),
    "large": build_module.ModelSpec(layers=5, hidden=256, heads=4, vocab=1024,
                                    max_positions=2048),
}
TRAINING_FILE = "training.json"
CURVE_FILE = "loss.png"


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How long and how fast a model learns.

    Attributes:
      cpu_minutes: CPU-time limit of the training loop (evaluations included;
        2 threads busy for a wall minute are 2 CPU-minutes).
      epochs: at most this many passes over the training split.
      batch: texts per optimiser step. lr: peak learning rate (linear warm-up
        over `warmup` steps, then cosine decay over the expected steps).
      max_tokens: texts are cut to this many tokens (a prompt of two TSP
        versions is ~600 with the corpus's tokenizer).
      evals: validation losses measured along the way (plus one at the end).
      valid_texts: validation texts per measurement along the way.
      final_valid_texts: the first this many of the valid split measure the end.
      improvement_repeats: improvement records appear this many times per epoch.
      threads: torch's CPU threads.
    """

    cpu_minutes: float = 10.0
    epochs: int = 3
    batch: int = 8
    lr: float = 2e-3
    warmup: int = 20
    max_tokens: int = 896
    evals: int = 5
    valid_texts: int = 24
    final_valid_texts: int = 160
    improvement_repeats: int = 3
    threads: int = 2
    seed: int = 0


@dataclasses.dataclass
class Example:
    """Token ids and how many of them are context (no loss on those)."""

    ids: list[int]
    context: int


def examples(records: list[corpus_module.Record], tokenizer, max_tokens: int) -> list[Example]:
    """Each record as tokens: <s> prompt completion </s>; loss on the completion."""
    out = []
    for record in records:
        context = tokenizer(record.prompt).input_ids if record.prompt else [tokenizer.bos_token_id]
        target = tokenizer(record.completion, add_special_tokens=False).input_ids
        ids = (context + target + [tokenizer.eos_token_id])[:max_tokens]
        if len(ids) > len(context):
            out.append(Example(ids, len(context)))
    return out


def batch_tensors(batch: list[Example], pad_id: int):
    """input_ids, attention_mask and labels (-100 on context and padding)."""
    import torch

    width = max(len(example.ids) for example in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    for row, example in enumerate(batch):
        n = len(example.ids)
        ids[row, :n] = torch.tensor(example.ids)
        mask[row, :n] = 1
        labels[row, example.context:n] = ids[row, example.context:n]
    return ids, mask, labels


def validation_loss(model, valid: list[Example], pad_id: int, batch: int) -> float:
    """Mean loss per target token over `valid` (nats)."""
    import torch

    total, tokens = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(valid), batch):
            ids, mask, labels = batch_tensors(valid[start:start + batch], pad_id)
            n = int((labels[:, 1:] != -100).sum())
            total += float(model(input_ids=ids, attention_mask=mask, labels=labels).loss) * n
            tokens += n
    model.train()
    return total / max(tokens, 1)


def train(corpus: str | Path, out: str | Path, spec: build_module.ModelSpec,
          settings: TrainSettings = TrainSettings(), progress: bool = True) -> dict:
    """Trains a model of `spec` on the corpus, writes the folder OUT, returns its report."""
    import torch

    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train_records = corpus_module.read(corpus, "train")
    tokenizer = build_module.train_tokenizer(iter(_texts(train_records)), spec.vocab)
    model = build_module.random_model(spec, tokenizer).train()
    # Improvements are few beside programs and are what a sampler is asked for.
    weighted = [r for r in train_records for _ in range(
        settings.improvement_repeats if r.kind == "improvement" else 1)]
    train_set = examples(weighted, tokenizer, settings.max_tokens)
    valid_set = examples(corpus_module.read(corpus, "valid"), tokenizer,
                         settings.max_tokens)[:settings.final_valid_texts]
    curve = _loop(model, train_set, valid_set, tokenizer.pad_token_id, settings, progress)
    final = validation_loss(model, valid_set, tokenizer.pad_token_id, settings.batch)
    model.eval()
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    report = {**dataclasses.asdict(spec), "parameters": parameters,
              "settings": dataclasses.asdict(settings), "train_texts": len(train_set),
              "valid_texts": len(valid_set), "valid_loss": final, **curve}
    (out / build_module.SPEC_FILE).write_text(json.dumps(
        {**dataclasses.asdict(spec), "parameters": parameters}, indent=2) + "\n")
    (out / TRAINING_FILE).write_text(json.dumps(report, indent=2) + "\n")
    plot_curve(report, out / CURVE_FILE, out.name)
    return report


def _texts(records: list[corpus_module.Record]) -> list[str]:
    return [record.prompt + record.completion for record in records]


def _loop(model, train_set: list[Example], valid_set: list[Example], pad_id: int,
          settings: TrainSettings, progress: bool) -> dict:
    """Optimiser steps until the epochs or the CPU-time limit; the losses seen.

    Curves hold (step, CPU seconds, loss). Validation runs at even fractions of
    the training, whichever of epochs and CPU time is nearer its end."""
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    rng = random.Random(settings.seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.01)
    per_epoch = math.ceil(len(train_set) / settings.batch)
    total_steps = settings.epochs * per_epoch
    limit, cpu_start, wall_start = settings.cpu_minutes * 60, time.process_time(), time.monotonic()
    steps, train_curve, valid_curve, epochs = 0, [], [], 0
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(),
               TextColumn("step {task.fields[step]} loss {task.fields[loss]}"))
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(f"training {model.num_parameters():,} params", total=1.0,
                            step=0, loss="-")
        used = 0.0
        while epochs < settings.epochs and used < limit:
            for batch in batches(train_set, settings.batch, rng):
                expected = min(total_steps, _expected_steps(steps, used, limit))
                _set_lr(optimiser, settings, steps, expected)
                loss = _step(model, optimiser, batch, pad_id)
                steps += 1
                used = time.process_time() - cpu_start
                train_curve.append((steps, used, loss))
                done = min(1.0, max(used / limit, steps / total_steps))
                if done >= (len(valid_curve) + 1) / (settings.evals + 1) and \
                        len(valid_curve) < settings.evals:
                    subset = valid_set[:settings.valid_texts]
                    valid_curve.append((steps, used, validation_loss(
                        model, subset, pad_id, settings.batch)))
                bar.update(task, completed=done, step=steps, loss=f"{loss:.3f}")
                if used >= limit:
                    break
            epochs += 1
    return {"steps": steps, "epochs": round(steps / max(per_epoch, 1), 3),
            "seconds": round(time.monotonic() - wall_start, 1),
            "cpu_seconds": round(time.process_time() - cpu_start, 1),
            "train_curve": train_curve, "valid_curve": valid_curve}


def batches(train_set: list[Example], size: int, rng: random.Random) -> list[list[Example]]:
    """One epoch's batches, in random order, of texts of similar length: prompts
    (~600 tokens) and programs (~150) padded together would waste most of a step."""
    order = list(range(len(train_set)))
    rng.shuffle(order)
    out = []
    for start in range(0, len(order), size * 16):
        chunk = sorted(order[start:start + size * 16], key=lambda i: len(train_set[i].ids))
        out += [[train_set[i] for i in chunk[j:j + size]] for j in range(0, len(chunk), size)]
    rng.shuffle(out)
    return out


def _expected_steps(steps: int, used: float, limit: float) -> int:
    """Steps the CPU-time limit allows at the pace so far (for the learning-rate schedule)."""
    return int(steps * limit / used) if steps and used > 0 else 10**9


def _set_lr(optimiser, settings: TrainSettings, step: int, total: int) -> None:
    if step < settings.warmup:
        scale = (step + 1) / settings.warmup
    else:
        progress = min(1.0, (step - settings.warmup) / max(1, total - settings.warmup))
        scale = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
    for group in optimiser.param_groups:
        group["lr"] = settings.lr * scale


def _step(model, optimiser, batch: list[Example], pad_id: int) -> float:
    import torch

    ids, mask, labels = batch_tensors(batch, pad_id)
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    optimiser.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimiser.step()
    return float(loss.detach())


def plot_curve(report: dict, path: Path, title: str) -> None:
    """Training loss per step (smoothed) and validation loss: one PNG per size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    steps = [point[0] for point in report["train_curve"]]
    losses = [point[2] for point in report["train_curve"]]
    smooth = [sum(losses[max(0, i - 9):i + 1]) / len(losses[max(0, i - 9):i + 1])
              for i in range(len(losses))]
    axes.plot(steps, smooth, label="train (10-step mean)")
    if report["valid_curve"]:
        axes.plot([p[0] for p in report["valid_curve"]], [p[2] for p in report["valid_curve"]],
                  "o-", label="valid")
    axes.axhline(report["valid_loss"], linestyle=":", color="gray",
                 label=f"final valid {report['valid_loss']:.3f}")
    axes.set(xlabel="step", ylabel="loss per target token (nats)", yscale="log",
             title=f"{title}: {report['parameters'] / 1e6:.2f}M parameters")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m funsearch.models.train",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", help="a corpus folder (python -m funsearch.models.corpus)")
    parser.add_argument("out", help="model folder to write")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    for field in dataclasses.fields(TrainSettings):
        parser.add_argument("--" + field.name.replace("_", "-"), type=type(field.default),
                            default=field.default)
    args = parser.parse_args(argv)
    settings = TrainSettings(**{field.name: getattr(args, field.name)
                                for field in dataclasses.fields(TrainSettings)})
    spec = dataclasses.replace(SIZES[args.size], seed=settings.seed)
    report = train(args.corpus, args.out, spec, settings)
    print(f"{args.out}: {report['parameters']:,} parameters, {report['steps']} steps "
          f"({report['epochs']} epochs) in {report['seconds']} s "
          f"({report['cpu_seconds']} CPU-s), "
          f"valid loss {report['valid_loss']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
