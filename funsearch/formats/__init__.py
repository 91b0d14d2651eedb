"""Problems in their own format: a native spec, a DeepMind spec file, an
OpenEvolve folder. `prepare` makes any of them a native spec file, `load` the
Specification of it, `write_back` the best program in the problem's format."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from funsearch import spec as spec_module
from funsearch.formats import deepmind
from funsearch.formats.problem import DEEPMIND, FORMATS, NATIVE, OPENEVOLVE, Problem

__all__ = ["FORMATS", "Problem", "detect", "load", "prepare", "write_back"]


def detect(path: Path) -> str:
    """The format of the problem at `path` (a folder: OpenEvolve's)."""
    if path.is_dir():
        return OPENEVOLVE  # openevolve.prepare says what is missing from it
    try:
        source = path.read_text()
    except OSError:
        return NATIVE  # spec.load says what is wrong with it
    try:
        return DEEPMIND if deepmind.looks_like(source) else NATIVE
    except SyntaxError:
        return NATIVE


def prepare(path: Path, folder: Path, format: str = "auto", values: list[Any] | None = None,
            metric: str = "") -> Problem:
    """The problem at `path` as a native spec; derived files are written in `folder`."""
    path = Path(path).resolve()
    if not path.exists():
        raise spec_module.SpecError(f"{path}: problem not found")
    kind = detect(path) if format == "auto" else format
    if kind == DEEPMIND:
        return deepmind.prepare(path, folder, values)
    if kind == OPENEVOLVE:
        from funsearch.formats import openevolve

        return openevolve.prepare(path, folder, metric)
    if values:
        raise spec_module.SpecError(f"{path}: inputs given as values are for DeepMind spec "
                                    "files; a native spec has @funsearch.inputs functions")
    return Problem(NATIVE, path, path)


def load(problem: Problem) -> spec_module.Specification:
    """The Specification of a prepared problem, with the prompt context of its format."""
    loaded = spec_module.load(problem.spec_path)
    if problem.context is None:
        return loaded
    return dataclasses.replace(loaded, context=problem.context)


def scored_files(problem: Problem) -> tuple[Path, ...]:
    """The files beside the native spec that take part in scoring (an
    OpenEvolve folder's evaluator and settings, not its initial program or
    config.yaml), for the problem's hash (spec.problem_hash)."""
    if problem.format != OPENEVOLVE:
        return ()
    folder = problem.spec_path.parent
    skipped = {problem.spec_path.name, "initial_program.py", "config.yaml"}
    return tuple(sorted(path for path in folder.rglob("*")
                        if path.is_file() and path.name not in skipped
                        and "__pycache__" not in path.parts))


def write_back(problem: Problem, evolve_name: str, program: str) -> tuple[str, str] | None:
    """(file name, text) of the best program in the problem's own format; None
    for a native spec, whose best.py is already that."""
    if problem.format == DEEPMIND:
        return deepmind.write_back(problem, evolve_name, program)
    if problem.format == OPENEVOLVE:
        from funsearch.formats import openevolve

        return openevolve.write_back(problem, program)
    return None
