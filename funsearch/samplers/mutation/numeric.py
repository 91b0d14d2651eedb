"""What the mutation operators know of numbers: which operators are arithmetic,
which numpy and math functions keep a value numeric (elementwise or reduced),
and whether an expression is a number by its own form.

Kept apart from sites.py, which walks a function, because the crossover,
carry and hoist passes ask the same questions of expressions they hold.
"""

from __future__ import annotations

import ast
import dataclasses

ARITH_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)

ORDER_OPS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)


# numpy functions whose arguments are all numeric, and whose result has the
# arguments' shape (so inside a subscript they stay index-like).
NUMPY_ELEMENTWISE = frozenset(
    "abs absolute sqrt square exp exp2 expm1 log log1p log2 log10 minimum maximum fmin fmax "
    "power tanh sinh cosh arctan sin cos sign floor ceil rint reciprocal cbrt hypot clip".split()
)


# numpy functions whose first argument is numeric and whose other positional
# arguments are axes, counts or shifts.
NUMPY_REDUCTIONS = frozenset(
    "argmin argmax argsort sort min max amin amax nanmin nanmax sum mean median std var prod "
    "cumsum ptp roll".split()
)

MATH_FUNCTIONS = frozenset("sqrt exp log log1p fabs tanh atan pow floor ceil hypot".split())

BUILTIN_NUMERIC = frozenset({"abs", "min", "max", "sum", "round", "float"})

NUMERIC_METHODS = frozenset({"min", "max", "sum", "mean", "argmin", "argmax", "std", "prod"})


@dataclasses.dataclass(frozen=True)
class Modules:
    """The aliases under which the preface imports numpy and math ("" if not)."""

    numpy: str = ""
    math: str = ""


def is_numeric_call(node: ast.AST, modules: Modules) -> bool:
    return isinstance(node, ast.Call) and call_kind(node.func, modules) is not None


def is_numeric(node: ast.AST, modules: Modules) -> bool:
    """An expression that is a number or numeric array by its own form."""
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, ARITH_OPS)
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, (ast.USub, ast.UAdd))
    if isinstance(node, ast.Constant):
        return isinstance(node.value, float)
    return is_numeric_call(node, modules)


def call_kind(func: ast.expr, modules: Modules) -> str | None:
    """ "elementwise", "reduction", "where", "method" or None for other calls."""
    if isinstance(func, ast.Name) and func.id in BUILTIN_NUMERIC:
        return "reduction" if func.id in ("sum", "round") else "elementwise"
    if not isinstance(func, ast.Attribute):
        return None
    owner = func.value.id if isinstance(func.value, ast.Name) else None
    if modules.numpy and owner == modules.numpy:
        if func.attr == "where":
            return "where"
        if func.attr in NUMPY_ELEMENTWISE:
            return "elementwise"
        if func.attr in NUMPY_REDUCTIONS:
            return "reduction"
        return None
    if modules.math and owner == modules.math:
        return "elementwise" if func.attr in MATH_FUNCTIONS else None
    if func.attr in NUMERIC_METHODS and owner not in (modules.numpy, modules.math):
        return "method"
    return None

