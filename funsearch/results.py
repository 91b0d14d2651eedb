"""What a run found, scored at its end: the best program beside where it started.

The best program is scored on the held-out sets (a gap to its training score
is overfitting), and the initial program and the spec's baselines on the
training and held-out sets alike, so the summary says how far the search got
from where it started and from the known heuristics. best.py gets the best
program simplified (funsearch/simplify.py) when the simplified text scores
exactly as the original on every input of every set; else it gets the
original.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

from funsearch import events, runlog, simplify
from funsearch.config import ExperimentConfig
from funsearch.evaluator import Evaluation
from funsearch.spec import Specification

Figures = dict[str, float]  # "score" (the mean) and the spec's summary figures


@dataclasses.dataclass(frozen=True)
class Final:
    """The end-of-run scores.

    Attributes:
      holdout: held-out set -> the best program's mean score (None: it failed).
      best: input set (training first) -> the best program's figures.
      initial: input set -> the initial program's figures ({}: it failed).
      baselines: baseline name -> input set -> its figures.
      program: the best program as written (simplified, when it scores the same).
      simplified: whether that is the simplified program.
    """

    holdout: dict[str, float | None]
    best: dict[str, Figures]
    initial: dict[str, Figures]
    baselines: dict[str, dict[str, Figures]]
    program: str
    simplified: bool


def score_at_end(config: ExperimentConfig, spec: Specification, backend: Any, best: Any,
                 log: runlog.RunLog) -> Final:
    """Scores the best program, its simplified text and the reference programs,
    logs the held-out scores and writes best.py."""
    train, held_out = config.problem.inputs, list(config.problem.holdout)
    everywhere = [train, *held_out]
    # A spec that runs the program's text (an OpenEvolve block: module-level code
    # its evaluator may read) gets it as it is.
    simpler = best.source if spec.wants_text else simplify.simplify(best.source)
    programs = {"initial": spec.initial_program, **{f"baseline {name}": source for name, source
                                                     in spec.baselines.items()}}
    if simpler != best.source:
        programs["simplified"] = simpler
    pending = {(label, input_set): backend.submit_evaluation(source, input_set)
               for label, source in programs.items() for input_set in everywhere}
    pending.update({("best", input_set): backend.submit_evaluation(best.source, input_set)
                    for input_set in held_out})
    done = {key: future.result() for key, future in pending.items()}
    best_scores = {train: best.scores, **{s: _logged(log, best, s, done[("best", s)])
                                          for s in held_out}}
    same = "simplified" in programs and all(
        done[("simplified", s)].scores == best_scores[s] for s in everywhere)

    def figures(scores_of: dict[str, dict[str, float] | None]) -> dict[str, Figures]:
        return {s: _figures(spec, s, scores_of[s], log) for s in everywhere}

    final = Final(
        holdout={s: _mean(best_scores[s]) for s in held_out},
        best=figures(best_scores),
        initial=figures({s: done[("initial", s)].scores for s in everywhere}),
        baselines={name: figures({s: done[(f"baseline {name}", s)].scores for s in everywhere})
                   for name in spec.baselines},
        program=simpler if same else best.source, simplified=same)
    _write_best(config, spec, best, final, log)
    return final


def _logged(log: runlog.RunLog, best: Any, input_set: str,
            evaluation: Evaluation) -> dict[str, float] | None:
    log.write(events.Holdout(program_id=best.id, input_set=input_set, status=evaluation.status,
                             score=evaluation.score, scores=evaluation.scores,
                             reason=evaluation.reason))
    return evaluation.scores


def _mean(scores: dict[str, float] | None) -> float | None:
    return statistics.fmean(scores.values()) if scores else None


def _figures(spec: Specification, input_set: str, scores: dict[str, float] | None,
             log: runlog.RunLog) -> Figures:
    """The mean score and the spec's summary figures ({}: the program failed)."""
    if not scores:
        return {}
    figures = {"score": statistics.fmean(scores.values())}
    try:
        figures.update(spec.summary(input_set, scores))
    except Exception as error:  # a report must not lose the run's result
        log.write(events.SummaryError(input_set=input_set, reason=repr(error)[:300]))
    return figures


def summary_fields(final: Final) -> dict[str, Any]:
    """What summary.json says of the end-of-run scores."""
    return {"holdout": final.holdout, "scores": final.best, "initial": final.initial,
            "baselines": final.baselines, "best_py_simplified": final.simplified}


def _write_best(config: ExperimentConfig, spec: Specification, best: Any, final: Final,
                log: runlog.RunLog) -> None:
    """best.py: the whole spec with the best function, its scores at the top
    beside the initial program's and the baselines' (mean score per set)."""
    lines = [f"# Best program of run '{config.name}' (seed {config.seed}): program {best.id}, "
             f"island {best.island}, sampler '{best.sampler}'"
             + (" (simplified: same scores on every input)." if final.simplified else ".")]
    for input_set, figures in final.best.items():
        role = "train" if input_set == config.problem.inputs else "held out"
        text = "  ".join(f"{key} {value:.6g}" for key, value in figures.items()) or "failed"
        lines.append(f"#   {input_set:<12} ({role}): {text}")
    references = {"initial program": final.initial,
                  **{f"baseline {name}": sets for name, sets in final.baselines.items()}}
    for label, sets in references.items():
        lines.append(f"# {label}: " + ", ".join(
            f"{s} {figures['score']:.6g}" if figures else f"{s} failed"
            for s, figures in sets.items()))
    log.write_best("\n".join(lines) + "\n" + spec.program_text(final.program))
