"""What new code may be made of: the vocabulary of one prompt.

New expressions are built only from names bound where they go, small
subexpressions of the prompt's versions (`distance_matrix[current, unvisited]`),
constants on the scale of the versions' own, and functions of the modules the
spec imports (numpy's `sqrt`, `log1p`, `minimum`, `where` ... when the preface
has `import numpy as np`; `abs`, `min`, `max` and `math` otherwise). The
Context gathers that once per query; the operators (ops.py) draw from it.
"""

from __future__ import annotations

import ast
import bisect
import dataclasses
import itertools
import math

import numpy as np

from funsearch.samplers.mutation.numeric import Modules
from funsearch.samplers.mutation.sites import (
    BUILTIN_NAMES,
    CONTAINER,
    INDEX,
    NUM,
    Analysis,
    analyse,
    parameters,
)
from funsearch.samplers.mutation.trees import clone, loaded_names, subtree_sizes

_UNARY_NUMPY = (
    "abs", "sqrt", "square", "exp", "log1p", "log", "tanh", "arctan", "reciprocal", "roll",
)  # fmt: skip
_BINARY_NUMPY = ("minimum", "maximum")
_UNARY_MATH = ("sqrt", "exp", "log1p", "log", "fabs", "tanh", "atan")
_SMALL_CONSTANTS = (0.1, 0.5, 1.0, 2.0, 3.0, 10.0)
# Parameter annotations that tell a role before any version uses the parameter.
_ANNOTATED_ROLES = {"int": INDEX, "float": NUM}
# Building blocks taken from the versions: small subscripts, calls, attributes;
# larger material moves by crossover.
_TERM_TYPES = (ast.Subscript, ast.Call, ast.Attribute, ast.BinOp)
_MAX_TERM_NODES = 8
_MAX_BINOP_TERM_NODES = 5  # `bins - item`, `(a - b) * c`
# Summaries of an array (the largest remaining capacity is the empty bin's).
_REDUCTIONS_NUMPY = ("max", "min", "mean")
_MAX_TERMS = 12


@dataclasses.dataclass
class Context:
    """What the operators may use, fixed for one query.

    Attributes:
      rng: the sampler's generator (the only source of randomness).
      modules: aliases of numpy and math in the spec's preface.
      unary, binary: dotted names of functions to wrap expressions in.
      reductions: dotted names of functions summarising an array (np.max ...).
      where: dotted name of numpy's `where`, or "" without numpy.
      num_names: names holding numbers in some version of the prompt.
      roles: name -> roles of the positions it is read in (sites.py);
        parameters no version reads have an empty set.
      annotations: parameter -> its annotation's text, a hint of its type.
      terms: small subexpressions of the versions with the names they read.
      magnitudes: absolute values of the versions' constants (the scale of new ones).
      allowed: names that may be read without a local binding (builtins,
        imports, names the parents themselves read so).
      sigma: relative size of a constant perturbation.
      numeric_result: returned values are numeric sites whatever their form
        (sites.py.analyse); for versions with nothing else to change.
    """

    rng: np.random.Generator
    modules: Modules
    unary: list[str]
    binary: list[str]
    reductions: list[str]
    where: str
    num_names: frozenset[str]
    roles: dict[str, set[str]]
    annotations: dict[str, str]
    terms: list[tuple[ast.expr, tuple[str, ...]]]
    magnitudes: list[float]
    allowed: frozenset[str]
    sigma: float
    numeric_result: bool = False

    def analyse(self, function: ast.FunctionDef) -> Analysis:
        return analyse(function, self.modules, self.num_names, self.numeric_result)

    def unbound(self, function: ast.FunctionDef) -> list[str]:
        """Names the function reads that nothing binds (it would raise NameError)."""
        return [name for name in self.analyse(function).free if name not in self.allowed]

    def compatible(self, a: str, b: str) -> bool:
        """Whether name b may stand where name a is: not when the parameters
        are annotated with different types (`current: int`, `unvisited:
        np.ndarray`), nor when one is subscripted somewhere (an array) and the
        other, also in use, never is (a scalar)."""
        annotated = self.annotations.get(a), self.annotations.get(b)
        if None not in annotated and annotated[0] != annotated[1]:
            return False
        roles_a, roles_b = self.roles.get(a), self.roles.get(b)
        if roles_a and roles_b:
            return (CONTAINER in roles_a) == (CONTAINER in roles_b)
        return True

    def choice(self, items: list):
        return items[int(self.rng.integers(len(items)))]

    def shuffled(self, items: list) -> list:
        return [items[i] for i in self.rng.permutation(len(items))]

    def choice_weighted(self, items: list, weights: list[float]):
        return items[weighted_index(self.rng, weights)]


def weighted_index(rng: np.random.Generator, weights: list[float]) -> int:
    """An index drawn in proportion to non-negative weights (at least one
    positive); much cheaper than rng.choice(p=...) for short lists."""
    totals = list(itertools.accumulate(weights))
    return min(bisect.bisect_right(totals, rng.random() * totals[-1]), len(totals) - 1)


def build_context(
    functions: list[ast.FunctionDef],
    plain: list[Analysis],
    preface: str,
    rng: np.random.Generator,
    sigma: float,
) -> Context:
    """The vocabulary of a prompt whose versions are `functions` (weakest
    first; `plain` their analyses made without num_names)."""
    modules, imported = preface_modules(preface)
    best = functions[-1]
    annotations = {
        a.arg: ast.unparse(a.annotation)
        for a in best.args.posonlyargs + best.args.args + best.args.kwonlyargs
        if a.annotation is not None
    }
    roles: dict[str, set[str]] = {name: set() for name in parameters(best)}
    for name, annotation in annotations.items():
        if annotation in _ANNOTATED_ROLES:
            roles[name] = {_ANNOTATED_ROLES[annotation]}
    num_names: dict[str, None] = {}
    allowed = set(BUILTIN_NAMES) | set(imported)
    for analysis in plain:
        num_names.update(analysis.num_assigned)
        num_names.update({name: None for name, r in analysis.roles.items() if NUM in r})
        for name, name_roles in analysis.roles.items():
            roles.setdefault(name, set()).update(name_roles)
        allowed.update(analysis.free)
    if modules.numpy:
        unary = [f"{modules.numpy}.{f}" for f in _UNARY_NUMPY if hasattr(np, f)]
        binary = [f"{modules.numpy}.{f}" for f in _BINARY_NUMPY if hasattr(np, f)]
        where = f"{modules.numpy}.where"
        reductions = [f"{modules.numpy}.{f}" for f in _REDUCTIONS_NUMPY if hasattr(np, f)]
    else:
        reductions = []
        unary = ["abs"] + [
            f"{modules.math}.{f}" for f in _UNARY_MATH if modules.math and hasattr(math, f)
        ]
        binary, where = ["min", "max"], ""
    ctx = Context(
        rng, modules, unary, binary, reductions, where, frozenset(num_names), roles, annotations,
        terms=[], magnitudes=[], allowed=frozenset(allowed), sigma=sigma,
    )  # fmt: skip
    terms: dict[str, ast.expr] = {}
    for function in functions:
        sizes = subtree_sizes(function)
        for site in ctx.analyse(function).sites:
            value = constant_value(site.node)
            if value is not None and site.role == NUM and value != 0:
                ctx.magnitudes.append(abs(float(value)))
            if site.role == NUM and isinstance(site.node, _TERM_TYPES):
                small = (
                    _MAX_BINOP_TERM_NODES if isinstance(site.node, ast.BinOp) else _MAX_TERM_NODES
                )
                if sizes[id(site.node)] <= small:
                    terms.setdefault(ast.unparse(site.node), site.node)
    for node in list(terms.values())[:_MAX_TERMS]:
        for variant in _variants(node, ctx):
            terms.setdefault(ast.unparse(variant), variant)
        for statistic in _row_statistics(node, ctx):
            terms.setdefault(ast.unparse(statistic), statistic)
    ctx.terms = [
        (node, tuple(loaded_names(node))) for node in list(terms.values())[: 2 * _MAX_TERMS]
    ]
    return ctx


def preface_modules(preface: str) -> tuple[Modules, list[str]]:
    """The aliases of numpy and math, and every name the preface imports."""
    try:
        tree = ast.parse(preface)
    except SyntaxError:
        return Modules(), []
    aliases: dict[str, str] = {}
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                names.append(bound)
                if alias.name in ("numpy", "math") and alias.name not in aliases:
                    aliases[alias.name] = bound
        elif isinstance(node, ast.ImportFrom):
            names += [alias.asname or alias.name for alias in node.names]
    return Modules(numpy=aliases.get("numpy", ""), math=aliases.get("math", "")), names


def _variants(term: ast.expr, ctx: Context) -> list[ast.expr]:
    """The term with one index name replaced by another index name: from
    `d[current, unvisited]` also `d[destination, unvisited]`, so that related
    quantities are one insertion away."""
    index_names = [name for name, roles in ctx.roles.items() if INDEX in roles or not roles]
    inside = [n for n in ast.walk(term) if isinstance(n, ast.Name) and n.id in index_names]
    variants = []
    for position, name in enumerate(inside):
        for other in index_names:
            if other != name.id and ctx.compatible(name.id, other):
                variant = clone(term)
                names = [
                    n for n in ast.walk(variant) if isinstance(n, ast.Name) and n.id in index_names
                ]
                names[position].id = other
                variants.append(variant)
    return variants


_ROW_STATISTICS = ("mean", "std", "max")  # not min: the diagonal makes it 0


def _row_statistics(term: ast.expr, ctx: Context) -> list[ast.expr]:
    """From `m[i, v]`, a row of a pairwise matrix over an array of indices `v`
    (subscripted somewhere, so an array), the statistics of each candidate
    against the other candidates: `np.mean(m[v][:, v], axis=1)` (how far a
    city is from the cities still to visit). Built by chance it takes a
    dozen matching edits; such terms decide how far a constructive
    heuristic gets beyond its greedy start."""
    if not ctx.modules.numpy or not isinstance(term, ast.Subscript):
        return []
    index = term.slice
    if not (isinstance(term.value, ast.Name) and isinstance(index, ast.Tuple)
            and len(index.elts) == 2 and all(isinstance(e, ast.Name) for e in index.elts)):
        return []
    matrix, candidates = term.value.id, index.elts[1].id
    if CONTAINER not in ctx.roles.get(candidates, ()):
        return []
    return [
        ast.parse(
            f"{ctx.modules.numpy}.{name}({matrix}[{candidates}][:, {candidates}], axis=1)",
            mode="eval",
        ).body
        for name in _ROW_STATISTICS
    ]


# Constants -------------------------------------------------------------------


def number(value: float | int) -> ast.expr:
    """A constant node; negative values as `-c`, which unparses safely anywhere."""
    if value < 0:
        return ast.UnaryOp(ast.USub(), ast.Constant(-value))
    return ast.Constant(value)


def constant_value(node: ast.expr) -> float | int | bool | None:
    """The number a constant site holds (`-c` included), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = constant_value(node.operand)
        return None if inner is None or isinstance(inner, bool) else -inner
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    return None


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def new_constant(ctx: Context) -> float:
    """A fresh constant: on the scale of the versions' constants, or a small one."""
    if ctx.magnitudes and ctx.rng.random() < 0.5:
        return _round(ctx.choice(ctx.magnitudes) * float(np.exp(ctx.rng.normal(0, 1))))
    return ctx.choice(list(_SMALL_CONSTANTS))


def perturb(value, role: str, ctx: Context, sigma: float, renew: bool = True):
    """A nearby constant: relative to the constant's own magnitude, so 1000
    and 0.01 both move by a sensible amount; integers in index positions move
    by one and stay integers; now and then (renew) a fresh constant."""
    rng = ctx.rng
    if isinstance(value, bool):
        return not value
    if isinstance(value, int) and (role != NUM or rng.random() < 0.5):
        if role == NUM and rng.random() < 0.3 and value not in (0, 1, -1):
            return value * 2 if rng.random() < 0.5 else value // 2
        step = int(rng.choice([-1, 1]))
        return value + 1 if value >= 0 and value + step < 0 else value + step
    for _ in range(8):
        draw = rng.random()
        if renew and draw < 0.15:
            new = new_constant(ctx) * (-1 if value < 0 else 1)
        elif draw < 0.6 and value != 0:
            new = value * float(np.exp(rng.normal(0, sigma)))  # multiplicative
        else:  # additive, on the constant's own scale (or the versions' for a zero)
            typical = float(np.median(ctx.magnitudes)) if ctx.magnitudes else 1.0
            scale = abs(value) if value != 0 else max(typical, 1e-3)
            new = value + float(rng.normal(0, sigma)) * scale
        new = _round(new)
        if new != value:
            return new
    return _round(value * (1 + sigma) + sigma)
