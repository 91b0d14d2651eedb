"""An OpenEvolve problem folder as a funsearch spec (the sandbox's side).

Imported by funsearch only for `block_text`: funsearch/formats/openevolve.py copies this text
into a run's problem folder, beside a copy of the user's folder and
`openevolve.json` (its settings), and appends the evolve block as the function
`evolve_block`. In the sandbox, the run function writes the candidate
program -- initial_program.py with the block of the program evaluated -- to a
file and calls the folder's `evaluate(program_path)` on it, or its cascade
`evaluate_stage1/2/3` as OpenEvolve runs them. The metrics go back to the host,
which takes the score from them. The evaluator runs the candidate in its own
process, so its score is within the candidate's reach.

Standard library only: the sandbox imports nothing from funsearch/.
"""

import ast
import functools
import importlib.util
import json
import os
import sys
import textwrap

import funsearch

# The text of the program evaluated: the host sets it with each program
# (spec.PROGRAM_TEXT), since the evaluator needs a file, not a function.
__funsearch_program__ = ""

_FOLDER = os.path.dirname(os.path.abspath(__file__))
CANDIDATE = "candidate_program.py"


@functools.cache
def settings() -> dict:
    """openevolve.json: the program around the block, the metric, the cascade."""
    with open(os.path.join(_FOLDER, "openevolve.json")) as file:
        return json.load(file)


@functools.cache
def evaluator():
    """The folder's evaluator.py, imported once per sandbox worker."""
    sys.path.insert(0, _FOLDER)  # its own helpers beside it
    spec = importlib.util.spec_from_file_location("openevolve_evaluator",
                                                  os.path.join(_FOLDER, "evaluator.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def candidate_text(program: str) -> str:
    """initial_program.py with the body of `program` as its evolve block."""
    block = textwrap.indent(block_text(program), settings()["indent"])
    return settings()["prefix"] + block + settings()["suffix"]


def block_text(program: str) -> str:
    """The body of the program's function (no docstring: the prompt gave it) as
    module-level code; the host writes the best block back with it too."""
    body = ast.parse(program).body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    text = ""
    for statement in body:
        spaced = isinstance(statement, (ast.FunctionDef, ast.ClassDef))
        if text and spaced:
            text = text.rstrip("\n") + "\n\n\n"  # as in a file: two blank lines
        text += ast.unparse(statement) + ("\n\n\n" if spaced else "\n")
    return text.rstrip("\n") + "\n"


@funsearch.inputs
def train() -> dict:
    """One instance: the folder's whole evaluation (its cascade inside)."""
    evaluator()  # imported before the fork: every evaluation starts warm
    return {"evaluate": "evaluate"}


@funsearch.run
def run(instance: str) -> dict:
    path = os.path.abspath(CANDIDATE)  # the evaluation's private folder
    with open(path, "w") as file:
        file.write(candidate_text(__funsearch_program__))
    return cascade(evaluator(), path)


def cascade(module, path: str) -> dict:
    """OpenEvolve's cascade: stage k+1 runs only when stage k's result passes
    threshold k; metrics of the stages run are merged; `cascade_stage` says how
    far it went (0: no cascade, `evaluate` alone).

    Hook: when funsearch has cascades of its own, each stage is one of its
    stages instead, so a program that fails stage 1 costs the host nothing more.
    """
    if not settings()["cascade"] or not hasattr(module, "evaluate_stage1"):
        return {**_metrics(module.evaluate(path)), "cascade_stage": 0}
    merged: dict = {}
    thresholds = settings()["thresholds"]
    for stage in (1, 2, 3):
        function = getattr(module, f"evaluate_stage{stage}", None)
        if function is None:
            break
        merged.update(_metrics(function(path)))
        merged["cascade_stage"] = stage
        if stage <= len(thresholds) and _level(merged) < thresholds[stage - 1]:
            break
    return merged


def _metrics(result) -> dict:
    """A dict of metrics; OpenEvolve's EvaluationResult keeps them in `.metrics`."""
    return dict(getattr(result, "metrics", result))


def _level(metrics: dict) -> float:
    """What a threshold is compared with, as OpenEvolve does: combined_score,
    or the mean of the numeric metrics."""
    if "combined_score" in metrics:
        return float(metrics["combined_score"])
    numbers = [float(v) for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "cascade_stage"]
    return sum(numbers) / len(numbers) if numbers else 0.0


@funsearch.score
def score(instance: str, output: dict) -> float:
    """The metric named in the experiment, else combined_score (on the host)."""
    metric = settings()["metric"]
    if metric:
        if metric not in output:
            raise ValueError(f"evaluate gave no metric '{metric}' (it gave {sorted(output)})")
        return float(output[metric])
    if "combined_score" in output:
        return float(output["combined_score"])
    return _level(output)


@funsearch.metrics
def metrics(instance: str, output: dict) -> dict:
    """Every metric evaluate gave: logged with the evaluation."""
    return output
