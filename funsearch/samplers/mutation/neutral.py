"""Children that rank exactly as their parent does: a wasted evaluation.

What reaches `np.argmin` / `np.argmax` only matters through its order, and so
does the return value of a function the run function ranks (bin packing's
priority: the item goes to the bin of highest priority). An increasing map
applied to the whole ranked expression (`np.sqrt(e)`, `e + 3`, `2 * e`,
`e + item` for a scalar `item`) changes the text and not the order: in a bin
packing run a third of the children were best fit again in such a disguise.
`ranking_form` strips those maps from every ranked expression, so that the
proposer can redraw a child whose form equals a parent's.
"""

from __future__ import annotations

import ast

from funsearch.samplers.mutation.trees import clone
from funsearch.samplers.mutation.vocabulary import constant_value

_INCREASING = frozenset({"sqrt", "exp", "exp2", "expm1", "log", "log1p", "log2", "log10",
                         "tanh", "arctan", "atan", "cbrt", "sinh", "arcsinh"})
_RANKING_CALLS = frozenset({"argmin", "argmax", "argsort", "nanargmin", "nanargmax"})
_SCALAR_ANNOTATIONS = ("int", "float", "bool")


def _scalar(node: ast.expr, scalars: set[str]) -> bool:
    """A constant or a parameter annotated as a scalar: the same for every element."""
    if constant_value(node) is not None:
        return True
    return isinstance(node, ast.Name) and node.id in scalars


def _core(node: ast.expr, scalars: set[str]) -> ast.expr:
    """The expression without increasing maps at its root."""
    while True:
        if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _INCREASING:
                node = node.args[0]
                continue
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
            node = node.operand
            continue
        if isinstance(node, ast.BinOp):
            left, right = node.left, node.right
            if isinstance(node.op, (ast.Add, ast.Sub)) and _scalar(right, scalars):
                node = left
                continue
            if isinstance(node.op, ast.Add) and _scalar(left, scalars):
                node = right
                continue
            if isinstance(node.op, (ast.Mult, ast.Div)) and _positive(right):
                node = left
                continue
            if isinstance(node.op, ast.Mult) and _positive(left):
                node = right
                continue
        return node


def _positive(node: ast.expr) -> bool:
    value = constant_value(node)
    return value is not None and not isinstance(value, bool) and value > 0


def ranks_anything(text: str, ranked_return: bool) -> bool:
    """False if a function with this text ranks nothing: its text is its
    ranking form, and the proposer need not make one (a clone and an unparse
    per child)."""
    return ranked_return or any(call in text for call in _RANKING_CALLS)


def ranking_form(function: ast.FunctionDef, ranked_return: bool) -> str:
    """The function's text with each ranked expression reduced to its core:
    equal forms rank alike (the converse need not hold)."""
    arguments = function.args
    scalars = {
        a.arg
        for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs
        if a.annotation is not None and ast.unparse(a.annotation) in _SCALAR_ANNOTATIONS
    }
    tree = clone(function)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _RANKING_CALLS:
                node.args[0] = _core(node.args[0], scalars)
        elif ranked_return and isinstance(node, ast.Return) and node.value is not None:
            node.value = _core(node.value, scalars)
    return "\n".join(ast.unparse(statement) for statement in tree.body)
