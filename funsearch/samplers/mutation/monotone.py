"""Children that are best fit, worst fit or first fit in disguise.

When the run function only ranks the evolved function's return value per
call (bin packing: the item goes to the bin of highest priority), any return
value that is, for each call, a strictly increasing map of the one array
parameter (`bins * item`, `-(bins - item) ** 3 / item` is its decreasing
twin) ranks the elements as the array itself does, and a constant ranks them
all equal. Whatever its text, such a child packs exactly as worst fit, best
fit or first fit: in a bin packing run more than half of the evaluations were
those three policies again (neutral.py catches only maps at the root).

`trend` reads the function as straight-line code and follows, per
expression, how its value moves with the array's elements (increasing,
decreasing, constant, or unknown) and its sign where known: a scalar factor
keeps or flips a direction only by its sign. Parameters named in `positive`
are known to be > 0 (bin capacities, item sizes). Anything it cannot follow
(neighbour terms like np.roll, subscripts, comparisons against the array,
branches, saturating maps such as tanh) is unknown, and such children are
evaluated as ever: a false "unknown" costs an evaluation, a false "trivial"
would lose a program, so every rule is conservative.
"""

from __future__ import annotations

import ast
import dataclasses

INCREASING, DECREASING, CONSTANT = "increasing", "decreasing", "constant"
_FLIP = {INCREASING: DECREASING, DECREASING: INCREASING, CONSTANT: CONSTANT, None: None}
_SCALAR_ANNOTATIONS = ("int", "float", "bool")
# Reductions: one number per call, whatever they summarise.
_REDUCTIONS = frozenset({"max", "min", "mean", "amax", "amin", "median", "sum", "std", "len"})
# Functions of numbers only (np.arange(len(bins)) is not: it numbers the elements).
# Not exp: `bins - item + np.exp(item)` is best fit in exact arithmetic, but
# e**item (item up to 100) swallows every difference of the bins, and the
# ties make it another policy. Powers are kept as small for the same reason.
_ELEMENTWISE = frozenset({
    "sqrt", "log", "log2", "log10", "log1p", "tanh", "arctan", "atan", "abs", "fabs",
    "absolute", "square", "cbrt", "reciprocal", "negative", "minimum", "maximum", "fmin",
    "fmax", "min", "max", "where", "float",
})
_MAX_EXPONENT = 4
_KEEPS_SIGN = frozenset({"max", "min", "mean", "amax", "amin", "median"})  # of a positive array


@dataclasses.dataclass(frozen=True)
class Shape:
    """How an expression's value moves with the array's elements (None: unknown)
    and its sign (1 positive, -1 negative, 0 zero, None unknown)."""

    trend: str | None
    sign: int | None


_UNKNOWN = Shape(None, None)


def trend(function: ast.FunctionDef, positive: frozenset[str]) -> str | None:
    """INCREASING, DECREASING or CONSTANT if the function's return value is, per
    call, such an elementwise map of its one array parameter; None otherwise."""
    arguments = function.args
    params = arguments.posonlyargs + arguments.args + arguments.kwonlyargs
    env: dict[str, Shape] = {}
    arrays = []
    for a in params:
        annotation = ast.unparse(a.annotation) if a.annotation is not None else ""
        sign = 1 if a.arg in positive else None
        if annotation in _SCALAR_ANNOTATIONS:
            env[a.arg] = Shape(CONSTANT, sign)
        else:
            arrays.append(a.arg)
            env[a.arg] = Shape(INCREASING, sign)
    if len(arrays) != 1 or arguments.vararg or arguments.kwarg:
        return None
    for statement in function.body:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # a docstring
        if isinstance(statement, ast.Return):
            return _shape(statement.value, env).trend if statement.value else None
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            env[statement.targets[0].id] = _shape(statement.value, env)
        elif isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
            name = statement.target.id
            value = ast.BinOp(ast.Name(name, ast.Load()), statement.op, statement.value)
            env[name] = _shape(value, env)
        else:
            return None
    return None


def _shape(node: ast.expr, env: dict[str, Shape]) -> Shape:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _UNKNOWN
        return Shape(CONSTANT, (value > 0) - (value < 0))
    if isinstance(node, ast.Name):
        return env.get(node.id, _UNKNOWN)
    if isinstance(node, ast.UnaryOp):
        inner = _shape(node.operand, env)
        if isinstance(node.op, ast.UAdd):
            return inner
        if isinstance(node.op, ast.USub):
            return _negated(inner)
        return _UNKNOWN
    if isinstance(node, ast.BinOp):
        return _binop(node, env)
    if isinstance(node, ast.Compare):
        parts = [node.left, *node.comparators]
        constant = all(_shape(p, env).trend == CONSTANT for p in parts)
        return Shape(CONSTANT, None) if constant else _UNKNOWN
    if isinstance(node, ast.Call) and not node.keywords:
        return _call(node, env)
    return _UNKNOWN


def _negated(shape: Shape) -> Shape:
    return Shape(_FLIP[shape.trend], None if shape.sign is None else -shape.sign)


def _product_sign(a: int | None, b: int | None) -> int | None:
    if a == 0 or b == 0:
        return 0
    return None if a is None or b is None else a * b


def _scaled(shape: Shape, sign: int | None) -> Shape:
    """`shape` times a constant of the given sign."""
    if sign == 0:
        return Shape(CONSTANT, 0)
    if sign is None:
        return Shape(CONSTANT, None) if shape.trend == CONSTANT else _UNKNOWN
    trend_ = shape.trend if sign > 0 else _FLIP[shape.trend]
    return Shape(trend_, _product_sign(shape.sign, sign))


def _sum(a: Shape, b: Shape) -> Shape:
    if a.trend == CONSTANT:
        trend_ = b.trend
    elif b.trend == CONSTANT or a.trend == b.trend:
        trend_ = a.trend
    else:
        trend_ = None
    sign = a.sign if a.sign == b.sign or b.sign == 0 else (b.sign if a.sign == 0 else None)
    return Shape(trend_, sign)


def _binop(node: ast.BinOp, env: dict[str, Shape]) -> Shape:
    a, b = _shape(node.left, env), _shape(node.right, env)
    op = node.op
    if isinstance(op, ast.Add):
        return _sum(a, b)
    if isinstance(op, ast.Sub):
        return _sum(a, _negated(b))
    if isinstance(op, ast.Mult):
        if a.trend == CONSTANT:
            return _scaled(b, a.sign)
        if b.trend == CONSTANT:
            return _scaled(a, b.sign)
        if a.sign == b.sign == 1 and a.trend == b.trend:
            return Shape(a.trend, 1)
        return _UNKNOWN
    if isinstance(op, ast.Div):
        if b.trend == CONSTANT:
            return _scaled(a, b.sign) if b.sign != 0 else _UNKNOWN
        if b.sign not in (1, -1):
            return _UNKNOWN  # 1/b keeps a direction only on one side of zero
        inverse = Shape(_FLIP[b.trend], b.sign)
        if a.trend == CONSTANT:
            return _scaled(inverse, a.sign)
        if a.sign == 1 and b.sign == 1 and a.trend == inverse.trend:
            return Shape(a.trend, 1)
        return _UNKNOWN
    if isinstance(op, ast.Pow) and b.trend == CONSTANT and isinstance(node.right, ast.Constant):
        exponent = node.right.value
        if isinstance(exponent, bool) or not isinstance(exponent, (int, float)):
            return _UNKNOWN
        if exponent == 0:
            return Shape(CONSTANT, 1)
        if abs(exponent) > _MAX_EXPONENT:
            return _UNKNOWN
        if a.sign == 1:
            return Shape(a.trend if exponent > 0 else _FLIP[a.trend], 1)
        if float(exponent).is_integer() and exponent > 0 and int(exponent) % 2 == 1:
            return Shape(a.trend, a.sign)
    if a.trend == CONSTANT and b.trend == CONSTANT:
        return Shape(CONSTANT, None)
    return _UNKNOWN


def _call(node: ast.Call, env: dict[str, Shape]) -> Shape:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    args = [_shape(arg, env) for arg in node.args]
    if any(isinstance(arg, ast.Starred) for arg in node.args):
        return _UNKNOWN
    if len(args) == 1:
        (arg,) = args
        if name in _REDUCTIONS:
            if name == "len":
                return Shape(CONSTANT, None)
            return Shape(CONSTANT, 1 if name in _KEEPS_SIGN and arg.sign == 1 else None)
        if name == "sqrt" and arg.sign == 1:
            return Shape(arg.trend, 1)
        if name in ("log", "log2", "log10") and arg.sign == 1:
            return Shape(arg.trend, None)
        if name == "log1p" and arg.sign == 1:
            return Shape(arg.trend, 1)
        if name == "cbrt":
            return arg
        if name == "square" and arg.sign == 1:
            return Shape(arg.trend, 1)
        if name in ("abs", "fabs", "absolute") and arg.sign in (1, -1):
            return Shape(arg.trend if arg.sign == 1 else _FLIP[arg.trend], 1)
        if name == "reciprocal" and arg.sign in (1, -1):
            return Shape(_FLIP[arg.trend], arg.sign)
        if name == "negative":
            return _negated(arg)
    if len(args) == 2 and name == "roll" and _literal(node.args[1]) == 0:
        return args[0]  # np.roll(e, 0) is e
    if len(args) == 2 and name in ("minimum", "maximum", "fmin", "fmax"):
        a, b = args
        if a.trend != b.trend or a.trend is None:
            return _UNKNOWN  # max(bins, c) ties every bin below c: not a strict map
        return Shape(a.trend, a.sign if a.sign == b.sign else None)
    if len(args) == 3 and name == "where":
        condition, a, b = args
        if condition.trend == CONSTANT and a.trend == b.trend and a.trend is not None:
            return Shape(a.trend, a.sign if a.sign == b.sign else None)
    if name in _ELEMENTWISE and all(arg.trend == CONSTANT for arg in args):
        return Shape(CONSTANT, None)  # a number per call, not one per element
    return _UNKNOWN


def _literal(node: ast.expr) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return None if isinstance(node.value, bool) else node.value
    return None
