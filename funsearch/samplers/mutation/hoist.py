"""Repeated subexpressions computed once: the same function, evaluated faster.

Mutation inserts the prompt's terms wherever they fit, so a TSP child may
compute `np.mean(distance_matrix[unvisited_nodes][:, unvisited_nodes],
axis=1)` -- a k x k copy and a reduction at every step of a tour -- three or
six times. Its evaluation then costs that many times what it must, and in a
run of fixed wall time the search makes that many fewer. `hoist` assigns such
an expression to a new local before the first statement that uses it and
reads the local everywhere, when that cannot change what the function
returns:

- every use is in the value of a top-level statement, not under a condition
  (`a if c else b`, `and`/`or`), a lambda or a comprehension, which might not
  evaluate it;
- the expression is built of numpy and math calls, subscripts, arithmetic and
  names, so computing it earlier or once has no effect of its own;
- it is not an array that a reduction along an axis turns into a vector
  (`m[v][:, v]` in `np.mean(m[v][:, v], axis=1)`): as a local, the proposer
  would put it next to vectors; the whole reduction is hoisted instead;
- from its first use to its last, no statement assigns a name it reads (nor
  an element or attribute of one) or calls a method, which might change an
  array in place.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from funsearch.samplers.mutation.numeric import Modules
from funsearch.samplers.mutation.trees import node_count

_MIN_NODES = 4  # smaller repeats cost less than a local
_STATEMENTS = (ast.Assign, ast.AugAssign, ast.Return, ast.Expr)
_NOT_ALWAYS_EVALUATED = (ast.IfExp, ast.BoolOp, ast.Lambda, ast.ListComp, ast.SetComp,
                         ast.DictComp, ast.GeneratorExp, ast.NamedExpr, ast.Await, ast.Yield,
                         ast.YieldFrom)
_PURE_NODES = (ast.Name, ast.Constant, ast.Subscript, ast.Slice, ast.Tuple, ast.BinOp,
               ast.UnaryOp, ast.Compare, ast.Call, ast.Attribute, ast.keyword, ast.Load,
               ast.operator, ast.unaryop, ast.cmpop)

_IN_PLACE = frozenset({"copyto", "put", "place", "putmask", "fill_diagonal", "put_along_axis"})

_Use = tuple[int, ast.AST, str, int | None]  # statement position, parent, field, list index


def hoist(function: ast.FunctionDef, modules: Modules, fresh_name: Callable[[], str],
          rounds: int = 4) -> bool:
    """Hoists up to `rounds` repeated expressions, costliest first (one that
    holds another goes first; the inner one may then repeat no more); True if any."""
    changed = False
    for _ in range(rounds):
        if not _hoist_once(function, modules, fresh_name):
            break
        changed = True
    return changed


def _hoist_once(function: ast.FunctionDef, modules: Modules,
                fresh_name: Callable[[], str]) -> bool:
    uses: dict[str, list[_Use]] = {}
    nodes: dict[str, ast.expr] = {}
    for position, statement in enumerate(function.body):
        if isinstance(statement, _STATEMENTS) and statement.value is not None:
            _collect(statement, "value", None, statement.value, position, uses, nodes, modules)
    repeated = [key for key, found in uses.items() if len(found) > 1]
    # The most work saved first: size times the evaluations spared.
    for key in sorted(repeated, key=lambda k: -node_count([nodes[k]]) * (len(uses[k]) - 1)):
        found = uses[key]
        first, last = found[0][0], found[-1][0]
        if _safe_between(function.body[first:last], _loaded(nodes[key]), modules):
            name = fresh_name()
            for _, parent, field, index in found:
                _replace(parent, field, index, ast.Name(name, ast.Load()))
            function.body.insert(first, ast.Assign([ast.Name(name, ast.Store())], nodes[key],
                                                   lineno=0))
            return True
    return False


def _collect(parent: ast.AST, field: str, index: int | None, node: ast.AST, position: int,
             uses: dict[str, list[_Use]], nodes: dict[str, ast.expr], modules: Modules) -> None:
    if isinstance(node, _NOT_ALWAYS_EVALUATED):
        return
    if field == "args" and index == 0 and isinstance(parent, ast.Call) \
            and any(keyword.arg == "axis" for keyword in parent.keywords):
        # A matrix reduced along an axis (`m[v][:, v]` in np.mean(..., axis=1)):
        # as a local it would be a name the proposer uses next to vectors.
        return
    if isinstance(node, (ast.Call, ast.Subscript)) and node_count([node]) >= _MIN_NODES \
            and _pure(node, modules):
        key = ast.dump(node)
        uses.setdefault(key, []).append((position, parent, field, index))
        nodes.setdefault(key, node)
    for child_field, value in ast.iter_fields(node):
        if isinstance(value, ast.AST):
            _collect(node, child_field, None, value, position, uses, nodes, modules)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, ast.AST):
                    _collect(node, child_field, i, item, position, uses, nodes, modules)


def _pure(node: ast.expr, modules: Modules) -> bool:
    """Built of numpy and math calls (no `out=`), subscripts, arithmetic and names."""
    for part in ast.walk(node):
        if not isinstance(part, _PURE_NODES):
            return False
        if isinstance(part, ast.Call) and not _pure_call(part, modules):
            return False
    return True


def _pure_call(call: ast.Call, modules: Modules) -> bool:
    """A numpy or math function that returns a new value (not np.copyto, no `out=`)."""
    func = call.func
    owners = {name for name in (modules.numpy, modules.math) if name}
    return (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            and func.value.id in owners and func.attr not in _IN_PLACE
            and not any(keyword.arg == "out" for keyword in call.keywords))


def _loaded(node: ast.expr) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _safe_between(statements: list[ast.stmt], names: set[str], modules: Modules) -> bool:
    """No statement changes what `names` hold: no rebinding, no item or
    attribute assignment, and no call that may work in place (a method call,
    `out=`, np.copyto and its kind) -- through an alias too, so any such call
    at all makes it unsafe."""
    for statement in statements:
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load) \
                    and node.id in names:
                return False
            if isinstance(node, (ast.Subscript, ast.Attribute)) \
                    and not isinstance(node.ctx, ast.Load) and _loaded(node.value) & names:
                return False
            if isinstance(node, ast.Call) and not _pure_call(node, modules):
                return False
    return True


def _replace(parent: ast.AST, field: str, index: int | None, new: ast.expr) -> None:
    if index is None:
        setattr(parent, field, new)
    else:
        getattr(parent, field)[index] = new
