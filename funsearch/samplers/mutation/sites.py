"""Where things are in an evolved function: scopes, expression sites, roles.

The genetic-programming operators (ops.py) need to know, for every
expression of a function body, which names are bound there, what kind of value
the position holds, and how to put something else in its place. One walk over
the body answers all three, in source order, so that the same seed always
picks the same site.

A *role* says what may replace an expression without obviously breaking the
program:
  num        a number or numeric array (an arithmetic operand, the argument of
             a math function, the value of a name used in arithmetic):
             may be wrapped or replaced by another numeric expression;
  bool       a condition (a comparison, `and`/`or`, `not`);
  index      an integer position (subscript, `range`, a keyword like
             `axis=1`): only integer steps and +/- swaps keep it an integer;
  container  what is subscripted (`distances[...]`): only another container.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses

from funsearch.samplers.mutation.numeric import (
    ARITH_OPS,
    ORDER_OPS,
    Modules,
    call_kind,
    is_numeric,
)

NUM, BOOL, INDEX, CONTAINER, OTHER = "num", "bool", "index", "container", "other"
_RESULT = "result"  # a return value: numeric only if the expression itself is


BUILTIN_NAMES = frozenset(dir(builtins))


@dataclasses.dataclass
class StatementSite:
    """A statement, the list (block) that holds it, and the names bound before it."""

    statement: ast.stmt
    block: list[ast.stmt]
    scope: tuple[str, ...]
    top_level: bool


@dataclasses.dataclass
class Site:
    """An expression, how to replace it, the names bound there and its role."""

    node: ast.expr
    parent: ast.AST
    field: str
    index: int | None
    scope: tuple[str, ...]
    role: str
    statement: StatementSite

    def replace(self, new: ast.expr) -> None:
        if self.index is None:
            setattr(self.parent, self.field, new)
        else:
            getattr(self.parent, self.field)[self.index] = new
        self.node = new


@dataclasses.dataclass
class Analysis:
    """Everything ops.py needs to know about one function body."""

    sites: list[Site]
    statements: list[StatementSite]
    free: dict[str, None]  # names loaded where no binding reaches them (ordered)
    roles: dict[str, set[str]]  # name -> roles of the positions it is loaded in
    num_assigned: dict[str, None]  # names assigned a numeric expression
    assigned: dict[str, None]  # names assigned by `=` anywhere
    overwritten: int = 0  # top-level assignments assigned again before any read


def parameters(function: ast.FunctionDef) -> list[str]:
    args = function.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return names


def analyse(function: ast.FunctionDef, modules: Modules, num_names: frozenset[str],
            numeric_result: bool = False) -> Analysis:
    """Walks a function body. `num_names` are names known (from every version
    in the prompt) to hold numbers: their assigned values are numeric sites.
    `numeric_result`: a returned value is a numeric site whatever its form
    (`degrees.astype(float)`, `np.asarray(x)`, a bare parameter), for bodies
    that have no other site to change."""
    walker = _Walker(modules, num_names, numeric_result)
    walker.block(function.body, dict.fromkeys(parameters(function)), top_level=True)
    return Analysis(
        walker.sites, walker.statements, walker.free, walker.roles, walker.num_assigned,
        walker.assigned, walker.overwritten,
    )  # fmt: skip


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _target_names(element)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


class _Walker:
    """One pass over a body in source order, tracking definitely-bound names.

    Binding is judged conservatively (a name assigned only inside a loop or
    one branch of an `if` is not bound after it), so a name the operators
    place is bound on every path; a program whose own code relies on looser
    binding keeps working, because only names free in no parent are refused.
    """

    def __init__(self, modules: Modules, num_names: frozenset[str],
                 numeric_result: bool = False) -> None:
        self.modules = modules
        self.num_names = num_names
        self.numeric_result = numeric_result
        self.sites: list[Site] = []
        self.statements: list[StatementSite] = []
        self.free: dict[str, None] = {}
        self.roles: dict[str, set[str]] = {}
        self.num_assigned: dict[str, None] = {}
        self.assigned: dict[str, None] = {}
        self.walrus: list[str] = []
        self.current: StatementSite | None = None
        self._scope: tuple[dict, int, tuple[str, ...]] = ({}, 0, ())  # see _names_in
        self.unread: dict[str, None] = {}  # assigned at the top level, not read since
        self.overwritten = 0

    def _names_in(self, bound: dict) -> tuple[str, ...]:
        """tuple(bound), made once per scope rather than once per site: the
        walk runs several times for every child the proposer draws. Scopes
        only ever gain names, so the dict and its size say when it changed."""
        scope, size, names = self._scope
        if scope is not bound or size != len(bound):
            names = tuple(bound)
            self._scope = (bound, len(bound), names)
        return names

    # Statements -----------------------------------------------------------

    def block(self, statements: list[ast.stmt], bound: dict, top_level: bool = False):
        """Returns (names bound after the block, whether it always leaves early)."""
        bound = dict(bound)
        for statement in statements:
            site = StatementSite(statement, statements, tuple(bound), top_level)
            self.statements.append(site)
            self.current = site
            bound, leaves = self.statement(statement, bound)
            bound.update(dict.fromkeys(self.walrus))
            self.walrus = []
            if leaves:
                return bound, True
        return bound, False

    def statement(self, node: ast.stmt, bound: dict):
        if isinstance(node, ast.Assign):
            names = [n for t in node.targets for n in _target_names(t)]
            numeric = any(n in self.num_names for n in names)
            self.expr(node.value, node, "value", None, bound, NUM if numeric else OTHER)
            self._note_assigned(names, node.value)
            for target in node.targets:
                self.target(target, bound)
            if self.current is not None and self.current.top_level:
                self._note_overwritten(node.targets)
            return {**bound, **dict.fromkeys(names)}, False
        if isinstance(node, ast.AugAssign):
            if isinstance(node.target, ast.Name):
                self.unread.pop(node.target.id, None)  # `x += 1` reads x
                if node.target.id not in bound:
                    self.free[node.target.id] = None
            self.target(node.target, bound)
            self.expr(node.value, node, "value", None, bound, NUM)
            return bound, False
        if isinstance(node, ast.AnnAssign):
            if node.value is None:
                return bound, False
            self.expr(node.value, node, "value", None, bound, OTHER)
            self.target(node.target, bound)
            return {**bound, **dict.fromkeys(_target_names(node.target))}, False
        if isinstance(node, ast.Return):
            if node.value is not None:
                self.expr(node.value, node, "value", None, bound, _RESULT)
            return bound, True
        if isinstance(node, (ast.Expr, ast.Raise, ast.Assert, ast.Delete)):
            for field, value in ast.iter_fields(node):
                if isinstance(value, ast.expr):
                    self.expr(value, node, field, None, bound, BOOL if field == "test" else OTHER)
                elif isinstance(value, list):
                    for i, item in enumerate(value):
                        self.expr(item, node, field, i, bound, OTHER)
            return bound, isinstance(node, ast.Raise)
        if isinstance(node, ast.If):
            self.expr(node.test, node, "test", None, bound, BOOL)
            bound = {**bound, **dict.fromkeys(self.walrus)}
            after_body, body_leaves = self.block(node.body, bound)
            after_else, else_leaves = self.block(node.orelse, bound)
            if body_leaves and else_leaves:
                return bound, True
            if body_leaves or else_leaves:
                return after_else if body_leaves else after_body, False
            return {n: None for n in after_body if n in after_else}, False
        if isinstance(node, (ast.For, ast.AsyncFor)):
            self.expr(node.iter, node, "iter", None, bound, OTHER)
            self.target(node.target, bound)
            self.block(node.body, {**bound, **dict.fromkeys(_target_names(node.target))})
            self.block(node.orelse, bound)
            return bound, False
        if isinstance(node, ast.While):
            self.expr(node.test, node, "test", None, bound, BOOL)
            self.block(node.body, bound)
            self.block(node.orelse, bound)
            return bound, False
        if isinstance(node, (ast.With, ast.AsyncWith)):
            inner = dict(bound)
            for item in node.items:
                self.expr(item.context_expr, item, "context_expr", None, bound, OTHER)
                if item.optional_vars is not None:
                    inner.update(dict.fromkeys(_target_names(item.optional_vars)))
            return self.block(node.body, inner)
        if isinstance(node, ast.Try):
            self.block(node.body, bound)
            for handler in node.handlers:
                self.block(
                    handler.body, {**bound, **({handler.name: None} if handler.name else {})}
                )
            self.block(node.orelse, bound)
            after, _ = self.block(node.finalbody, bound)
            return after, False
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return {**bound, node.name: None}, False
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [(a.asname or a.name).split(".")[0] for a in node.names]
            return {**bound, **dict.fromkeys(names)}, False
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            return {**bound, **dict.fromkeys(node.names)}, False
        if isinstance(node, (ast.Break, ast.Continue)):
            return bound, True
        if isinstance(node, ast.Match):
            self.expr(node.subject, node, "subject", None, bound, OTHER)
            for case in node.cases:
                self.block(case.body, bound)
            return bound, False
        return bound, False  # pass, and anything we do not look into

    def target(self, node: ast.expr, bound: dict) -> None:
        """The loads inside an assignment target (`scores[i] = ...` reads scores, i)."""
        if isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                self.target(element, bound)
        elif isinstance(node, ast.Starred):
            self.target(node.value, bound)
        elif isinstance(node, ast.Subscript):
            self.expr(node.value, node, "value", None, bound, CONTAINER)
            self.expr(node.slice, node, "slice", None, bound, INDEX)
        elif isinstance(node, ast.Attribute):
            self.expr(node.value, node, "value", None, bound, OTHER)

    def _note_overwritten(self, targets: list[ast.expr]) -> None:
        """Counts `t = a` followed, at the top level, by `t = b` with no read
        of t between: the first is dead code that bloats a program."""
        for target in targets:
            if isinstance(target, ast.Name):
                if target.id in self.unread:
                    self.overwritten += 1
                self.unread[target.id] = None

    def _note_assigned(self, names: list[str], value: ast.expr) -> None:
        self.assigned.update(dict.fromkeys(names))
        if is_numeric(value, self.modules) or any(n in self.num_names for n in names):
            self.num_assigned.update(dict.fromkeys(names))

    # Expressions ----------------------------------------------------------

    def expr(self, node, parent, field, index, bound: dict, position: str) -> None:
        role = self._role(node, position)
        if role != OTHER:
            self.sites.append(
                Site(node, parent, field, index, self._names_in(bound), role, self.current))
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.unread.pop(node.id, None)
                if node.id not in bound:
                    self.free[node.id] = None
                self.roles.setdefault(node.id, set()).add(role)
            return
        inner = INDEX if position == INDEX else NUM
        if isinstance(node, ast.BinOp):
            child = inner if isinstance(node.op, ARITH_OPS) else OTHER
            self.expr(node.left, node, "left", None, bound, child)
            self.expr(node.right, node, "right", None, bound, child)
        elif isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                child = BOOL
            elif isinstance(node.op, (ast.USub, ast.UAdd)):
                child = inner
            else:
                child = OTHER
            self.expr(node.operand, node, "operand", None, bound, child)
        elif isinstance(node, ast.Compare):
            child = NUM if all(isinstance(op, ORDER_OPS) for op in node.ops) else OTHER
            self.expr(node.left, node, "left", None, bound, child)
            for i, item in enumerate(node.comparators):
                self.expr(item, node, "comparators", i, bound, child)
        elif isinstance(node, ast.BoolOp):
            for i, item in enumerate(node.values):
                self.expr(item, node, "values", i, bound, BOOL)
        elif isinstance(node, ast.IfExp):
            self.expr(node.test, node, "test", None, bound, BOOL)
            self.expr(node.body, node, "body", None, bound, position)
            self.expr(node.orelse, node, "orelse", None, bound, position)
        elif isinstance(node, ast.Call):
            self._call(node, bound, position)
        elif isinstance(node, ast.Subscript):
            self.expr(node.value, node, "value", None, bound, CONTAINER)
            self.expr(node.slice, node, "slice", None, bound, INDEX)
        elif isinstance(node, ast.Slice):
            for field_name in ("lower", "upper", "step"):
                part = getattr(node, field_name)
                if part is not None:
                    self.expr(part, node, field_name, None, bound, INDEX)
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            child = INDEX if position == INDEX else OTHER
            for i, item in enumerate(node.elts):
                self.expr(item, node, "elts", i, bound, child)
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            self._comprehension(node, bound, position)
        elif isinstance(node, ast.NamedExpr):
            self.expr(node.value, node, "value", None, bound, position)
            self.walrus.append(node.target.id)
        elif isinstance(node, ast.Lambda):
            args = dict.fromkeys(parameters(node))  # type: ignore[arg-type]
            self.expr(node.body, node, "body", None, {**bound, **args}, OTHER)
        elif isinstance(node, ast.Starred):
            self.expr(node.value, node, "value", None, bound, OTHER)
        elif isinstance(node, ast.Attribute):
            if not (isinstance(node.value, ast.Name) and node.value.id in self._modules()):
                self.expr(node.value, node, "value", None, bound, OTHER)
        else:
            for field_name, value in ast.iter_fields(node):
                if isinstance(value, ast.expr):
                    self.expr(value, node, field_name, None, bound, OTHER)
                elif isinstance(value, list):
                    for i, item in enumerate(value):
                        if isinstance(item, ast.expr):
                            self.expr(item, node, field_name, i, bound, OTHER)

    def _modules(self) -> tuple[str, ...]:
        return tuple(m for m in (self.modules.numpy, self.modules.math) if m)

    def _call(self, node: ast.Call, bound: dict, position: str) -> None:
        kind = call_kind(node.func, self.modules)
        if isinstance(node.func, ast.Attribute):
            self.expr(node.func, node, "func", None, bound, OTHER)
        elif not isinstance(node.func, ast.Name):
            self.expr(node.func, node, "func", None, bound, OTHER)
        elif node.func.id not in bound:
            self.free[node.func.id] = None  # a builtin, or a helper function of the spec
        names = node.func.id if isinstance(node.func, ast.Name) else ""
        along_axis = any(keyword.arg == "axis" for keyword in node.keywords)
        for i, arg in enumerate(node.args):
            if kind == "reduction" and i == 0 and along_axis:
                # An array of one more dimension than the result (a matrix of
                # which each row is reduced): not an operand to move elsewhere.
                child = OTHER
            elif kind == "elementwise":
                child = INDEX if position == INDEX else NUM
            elif kind == "where":
                child = BOOL if i == 0 else (INDEX if position == INDEX else NUM)
            elif kind in ("reduction", "method"):
                child = NUM if i == 0 and kind == "reduction" else INDEX
            else:
                child = INDEX if names in ("range", "len") else OTHER
            self.expr(arg, node, "args", i, bound, child)
        for keyword in node.keywords:
            if keyword.arg == "axis" and isinstance(keyword.value, ast.Constant):
                continue  # it fits the shape reduced: axis=1 -> axis=2 only breaks it
            # A type (`dtype=float`) is no index: `dtype=node` only raises.
            role = OTHER if keyword.arg == "dtype" else INDEX
            self.expr(keyword.value, keyword, "value", None, bound, role)

    def _comprehension(self, node, bound: dict, position: str) -> None:
        inner = dict(bound)
        for generator in node.generators:
            self.expr(generator.iter, generator, "iter", None, inner, OTHER)
            inner.update(dict.fromkeys(_target_names(generator.target)))
            for i, condition in enumerate(generator.ifs):
                self.expr(condition, generator, "ifs", i, inner, BOOL)
        if isinstance(node, ast.DictComp):
            self.expr(node.key, node, "key", None, inner, OTHER)
            self.expr(node.value, node, "value", None, inner, OTHER)
        else:
            child = NUM if position == NUM else OTHER
            self.expr(node.elt, node, "elt", None, inner, child)

    def _role(self, node: ast.expr, position: str) -> str:
        if isinstance(node, (ast.Compare, ast.BoolOp)) or (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
        ):
            return BOOL
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return BOOL
            if not isinstance(node.value, (int, float)):
                return OTHER
        if position in (INDEX, CONTAINER, BOOL, NUM):
            if position == BOOL and not isinstance(node, ast.Name):
                return OTHER
            return position
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return INDEX  # a count or a shape: keep it an integer
        if position == _RESULT and self.numeric_result:
            return NUM
        return NUM if is_numeric(node, self.modules) else OTHER
