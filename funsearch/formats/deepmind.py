"""DeepMind's FunSearch specification files, run as they are.

Such a file marks `@funsearch.run` (the score of one input) and
`@funsearch.evolve` without importing funsearch (the sandbox and spec.py give
the module a `funsearch` of their own), and has no input sets: the caller gives
the inputs. The native spec made of it is the file itself with one input set
appended, so every line keeps its number in error messages. Its prompt is
FunSearch's: the text above the file's first function (docstring, imports,
constants), then the versions.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from funsearch import code, spec
from funsearch.formats.problem import DEEPMIND, Problem

INPUT_SET = "train"


def looks_like(source: str) -> bool:
    """A spec without `import funsearch` or without input sets: DeepMind's."""
    tree = ast.parse(source)
    imports = any(
        (isinstance(node, ast.Import) and any(a.name == "funsearch" for a in node.names))
        or (isinstance(node, ast.ImportFrom) and node.module == "funsearch")
        for node in tree.body
    )
    return not imports or "@funsearch.inputs" not in source


def prepare(path: Path, folder: Path, values: list[Any] | None) -> Problem:
    """The native spec of a DeepMind file in `folder`, with `values` as its inputs."""
    source = path.read_text()
    if not values:
        raise spec.SpecError(
            f"{path}: a DeepMind spec file takes its inputs from the caller: give them "
            "in the experiment file's problem table, `inputs = [8]` (or `check --values '[8]'`)")
    tree = code.parse(source, str(path))
    if any(isinstance(node, ast.FunctionDef) and node.name == INPUT_SET for node in tree.body):
        raise spec.SpecError(f"{path}: defines '{INPUT_SET}', the name its inputs get here")
    inputs = [_as_tuples(value) for value in values]
    appended = (f"\n\n@funsearch.inputs\ndef {INPUT_SET}():\n"
                f'    """The inputs the experiment gives (DeepMind format)."""\n'
                f"    return {inputs!r}\n")
    folder.mkdir(parents=True, exist_ok=True)
    spec_path = folder / path.name
    spec_path.write_text(source.rstrip("\n") + "\n" + appended)
    return Problem(DEEPMIND, path, spec_path, context=preface(source),
                   notes=(f"DeepMind spec file; inputs {inputs!r}; scores are averaged "
                          "over the inputs",))


def preface(source: str) -> str:
    """The text above the first function or class, as FunSearch's prompt shows it."""
    tree = ast.parse(source)
    starts = [min([node.lineno] + [d.lineno for d in node.decorator_list])
              for node in tree.body
              if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    if not starts:
        return source
    return "".join(source.splitlines(keepends=True)[: min(starts) - 1]).rstrip() + "\n"


def write_back(problem: Problem, evolve_name: str, program: str) -> tuple[str, str]:
    """(file name, text): the user's spec file with the best function in it."""
    source = problem.path.read_text()
    return problem.path.name, spec.replace_function(source, str(problem.path), evolve_name,
                                                    program)


def _as_tuples(value: Any) -> Any:
    """TOML has no tuples: `[12, 7]` is given to the run function as (12, 7),
    the form of FunSearch's inputs."""
    if isinstance(value, list):
        return tuple(_as_tuples(item) for item in value)
    return value
