"""A problem specification: one Python file with marked functions.

The file marks one `@funsearch.evolve` function (what the search rewrites),
one `@funsearch.run` function (runs in the sandbox on one input) and
optionally `@funsearch.score` (scores an output on the host, so a program
cannot fake its score), `@funsearch.inputs` functions (named input sets, built
deterministically) and `@funsearch.baseline` functions (reference versions of
the evolved function). Roles are found in the AST first, so every error can
name the file and line before any of the spec's code runs.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import math
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from funsearch import code, parsing

ROLES = ("evolve", "run", "score", "inputs", "baseline", "summary", "metrics", "cascade")
SINGLE_ROLES = ("evolve", "run", "score", "summary", "metrics", "cascade")
# A spec that defines this module-level name gets each program's text in it,
# in the sandbox: an OpenEvolve evaluator runs a file, not a function.
PROGRAM_TEXT = "__funsearch_program__"


class SpecError(ValueError):
    """A spec file that cannot be used, with file and line in the message."""


@dataclasses.dataclass(frozen=True)
class Specification:
    """A loaded problem.

    Attributes:
      path: the spec file.
      source: its text; the sandbox workers import the same file.
      evolve_name: name of the evolved function.
      run_name: name of the sandboxed run function.
      score_name: name of the host-side score function, if any.
      summary_name: name of the host-side `@funsearch.summary` function, if any.
      input_sets: names of the `@funsearch.inputs` functions.
      baselines: name -> program (the baseline renamed to `evolve_name`).
      initial_program: the evolved function as written in the file.
      module: the spec imported on the host (trusted: the user wrote it).
      metrics_name: the host-side `@funsearch.metrics` function, if any.
      wants_text: the spec defines PROGRAM_TEXT.
      context: what a prompt shows above the versions, when not the spec's own
        imports (a problem in a peer's format: funsearch/formats/).
      cascade_name: name of the `@funsearch.cascade` function, if any: it
        returns the stages of a cascade (config.StageConfig's keys), used when
        the experiment names none.
    """

    path: Path
    source: str
    evolve_name: str
    run_name: str
    score_name: str | None
    summary_name: str | None
    input_sets: tuple[str, ...]
    baselines: dict[str, str]
    initial_program: str
    module: ModuleType
    context: str | None = None
    metrics_name: str | None = None
    wants_text: bool = False
    cascade_name: str | None = None

    def inputs(self, name: str) -> dict[str, Any]:
        """The input set `name` as {input id: instance}."""
        if name not in self.input_sets:
            known = ", ".join(self.input_sets) or "none"
            raise SpecError(f"{self.path}: no input set '{name}' (the spec has: {known})")
        return _as_named(getattr(self.module, name)(), f"{self.path}: input set '{name}'")

    def score(self, instance: Any, output: Any) -> float:
        """The host's score of a sandboxed output; without a score function the
        output is the score."""
        if self.score_name is None:
            return as_score(output)
        return as_score(getattr(self.module, self.score_name)(instance, output))

    def summary(self, input_set: str, scores: dict[str, float]) -> dict[str, float]:
        """Problem-specific figures for a set's scores ({} without a summary function)."""
        if self.summary_name is None:
            return {}
        return dict(getattr(self.module, self.summary_name)(input_set, scores))

    def metrics(self, instance: Any, output: Any) -> dict[str, Any] | None:
        """What the spec logs of an output beside its score (None: nothing)."""
        if self.metrics_name is None:
            return None
        return dict(getattr(self.module, self.metrics_name)(instance, output))

    def sandboxed(self, program: str) -> str:
        """The text the sandbox runs for `program`: with its own text in
        PROGRAM_TEXT when the spec asks for it."""
        if not self.wants_text:
            return program
        return f"{program}\n{PROGRAM_TEXT} = {program!r}\n"
    def cascade(self) -> list[Any]:
        """The stages the spec's cascade function returns ([] without one)."""
        if self.cascade_name is None:
            return []
        stages = getattr(self.module, self.cascade_name)()
        if not isinstance(stages, (list, tuple)):
            raise SpecError(f"{self.path}: '{self.cascade_name}' must return a list of stages, "
                            f"not {type(stages).__name__}")
        return list(stages)

    def problem_hash(self, input_set: str, beside: tuple[Path, ...] = ()) -> str:
        """What makes two runs' scores comparable, as a short hash: the spec's
        code without its evolved function and baselines (a different initial
        program is the same problem; comments and layout do not count), the
        files `beside` it that score too (an OpenEvolve folder's evaluator) and
        the content of the input set scored on (builds it)."""
        tree = code.parse(self.source, str(self.path))
        versions = {self.evolve_name, *self.baselines}
        tree.body = [node for node in tree.body
                     if not (isinstance(node, ast.FunctionDef) and node.name in versions)]
        digest = hashlib.sha256(code.normal_form(ast.unparse(tree)).encode())
        for path in beside:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        try:
            instances = self.inputs(input_set)
        except SpecError:
            raise
        except Exception as error:  # the user's code failed: say where
            raise SpecError(f"{self.path}{_error_line(error, self.path)}: building input set "
                            f"'{input_set}' failed: {error!r}") from error
        _hash_content(instances, digest)
        return digest.hexdigest()[:16]

    def function(self, name: str) -> Callable[..., Any]:
        return getattr(self.module, name)

    def program_text(self, program: str) -> str:
        """The whole spec file with the evolved function replaced: runnable as is."""
        return replace_function(self.source, str(self.path), self.evolve_name, program)

    def preface(self) -> str:
        """The spec's imports and module docstring: the context a prompt shows."""
        if self.context is not None:
            return self.context
        tree = code.parse(self.source, str(self.path))
        kept = [
            node
            for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            and not _imports_only_funsearch(node)
        ]
        doc = ast.get_docstring(tree)
        text = f'"""{doc}"""\n\n' if doc else ""
        return text + "".join(ast.unparse(node) + "\n" for node in kept)


def replace_function(source: str, filename: str, name: str, program: str) -> str:
    """`source` with its top-level function `name` (decorators kept) replaced by
    `program`, renamed `name`; the rest of the text as it was."""
    node = code.find_function(code.parse(source, filename), name)
    lines = source.splitlines(keepends=True)
    start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
    decorators = "".join(lines[start : node.lineno - 1])
    renamed = code.rename(program, code.function_name(program), name)
    return "".join(lines[:start]) + decorators + renamed + "".join(lines[node.end_lineno :])


class ScoreError(ValueError):
    """A score that is not a finite number."""


def as_score(value: Any) -> float:
    """A finite float, or ScoreError with the reason (NaN, inf, wrong type)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            import numpy

            if isinstance(value, numpy.generic) and numpy.issubdtype(value.dtype, numpy.number):
                value = value.item()
            else:
                raise TypeError
        except (ImportError, TypeError):
            raise ScoreError(f"score is not a number: {type(value).__name__}") from None
    number = float(value)
    if math.isnan(number):
        raise ScoreError("score is NaN")
    if math.isinf(number):
        raise ScoreError("score is infinite")
    return number


def load(path: str | Path) -> Specification:
    """Loads and checks a spec file; every problem is a SpecError naming file and line."""
    path = Path(path).resolve()
    if not path.is_file():
        raise SpecError(f"{path}: spec file not found")
    source = path.read_text()
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as error:
        raise SpecError(f"{path}:{error.lineno}: syntax error: {error.msg}") from None
    roles = _find_roles(tree, path)
    for role in ("evolve", "run"):
        if not roles[role]:
            raise SpecError(f"{path}: no function is marked @funsearch.{role}")
    for role in SINGLE_ROLES:
        if len(roles[role]) > 1:
            lines = ", ".join(str(node.lineno) for node in roles[role])
            raise SpecError(
                f"{path}:{roles[role][1].lineno}: more than one @funsearch.{role} "
                f"function (lines {lines}); mark exactly one"
            )
    evolve = roles["evolve"][0]
    module = _import(path)
    baselines = {
        node.name: code.rename(
            parsing.function_source(source, node.name), node.name, evolve.name
        )
        for node in roles["baseline"]
    }
    return Specification(
        path=path,
        source=source,
        evolve_name=evolve.name,
        run_name=roles["run"][0].name,
        score_name=roles["score"][0].name if roles["score"] else None,
        summary_name=roles["summary"][0].name if roles["summary"] else None,
        input_sets=tuple(node.name for node in roles["inputs"]),
        baselines=baselines,
        initial_program=parsing.function_source(source, evolve.name),
        module=module,
        metrics_name=roles["metrics"][0].name if roles["metrics"] else None,
        wants_text=hasattr(module, PROGRAM_TEXT),
        cascade_name=roles["cascade"][0].name if roles["cascade"] else None,
    )


def _find_roles(tree: ast.Module, path: Path) -> dict[str, list[ast.FunctionDef]]:
    roles: dict[str, list[ast.FunctionDef]] = {role: [] for role in ROLES}
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for decorator in node.decorator_list:
            role = _role_of(decorator)
            if role is None:
                continue
            if id(node) not in top_level:
                raise SpecError(
                    f"{path}:{node.lineno}: @funsearch.{role} function '{node.name}' "
                    "is not at the top level of the file; move it out of its "
                    "enclosing function or class"
                )
            if isinstance(node, ast.AsyncFunctionDef):
                raise SpecError(f"{path}:{node.lineno}: '{node.name}' must not be async")
            roles[role].append(node)
    return roles


def _role_of(decorator: ast.expr) -> str | None:
    """'evolve' for `@funsearch.evolve` or `@evolve`; None for other decorators."""
    if isinstance(decorator, ast.Attribute) and isinstance(decorator.value, ast.Name):
        if decorator.value.id == "funsearch" and decorator.attr in ROLES:
            return decorator.attr
    if isinstance(decorator, ast.Name) and decorator.id in ROLES:
        return decorator.id
    return None


def _imports_only_funsearch(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.module == "funsearch"
    return all(alias.name == "funsearch" for alias in node.names)


def _import(path: Path) -> ModuleType:
    name = f"_funsearch_spec_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # DeepMind's spec files use `@funsearch.run` without importing funsearch.
    module.funsearch = sys.modules["funsearch"]  # type: ignore[attr-defined]
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's module failed at import: say where
        del sys.modules[name]
        line = _error_line(error, path)
        raise SpecError(f"{path}{line}: importing the spec failed: {error!r}") from error
    return module


def _error_line(error: BaseException, path: Path) -> str:
    traceback = error.__traceback__
    line = ""
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == str(path):
            line = f":{traceback.tb_lineno}"
        traceback = traceback.tb_next
    return line


def _hash_content(value: Any, digest: Any) -> None:
    """Feeds `value` to `digest` by content: arrays by dtype, shape and bytes,
    containers item by item (dicts in key order), anything else by pickle."""
    if isinstance(value, dict):
        digest.update(b"{")
        for key in sorted(value, key=str):
            _hash_content(str(key), digest)
            _hash_content(value[key], digest)
        digest.update(b"}")
    elif isinstance(value, (list, tuple)):
        digest.update(b"[")
        for item in value:
            _hash_content(item, digest)
        digest.update(b"]")
    elif hasattr(value, "dtype") and hasattr(value, "tobytes") and hasattr(value, "shape"):
        digest.update(f"{value.dtype.str}{tuple(value.shape)}".encode())
        digest.update(value.tobytes(order="C"))
    elif isinstance(value, (str, int, float, bool, type(None))):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    else:
        digest.update(pickle.dumps(value, protocol=4))


def _as_named(instances: Any, what: str) -> dict[str, Any]:
    if isinstance(instances, dict):
        return {str(key): value for key, value in instances.items()}
    if isinstance(instances, (list, tuple)):
        return {str(index): value for index, value in enumerate(instances)}
    raise SpecError(f"{what} must return a dict or a list, not {type(instances).__name__}")
