"""New expressions from a prompt's vocabulary: terms, arithmetic, conditions,
and wrappings of an existing expression (`np.sqrt(x)`, `x + term`).

The operators (ops.py) call these to grow or replace a site; what they may be
made of (names in scope, the versions' subterms, constants) is vocabulary.py's
Context.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from funsearch.samplers.mutation import carry
from funsearch.samplers.mutation.sites import INDEX, NUM
from funsearch.samplers.mutation.trees import clone, loaded_names
from funsearch.samplers.mutation.vocabulary import (
    Context,
    constant_value,
    new_constant,
    number,
    weighted_index,
)

_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div)
_ARITH_WEIGHTS = [0.3, 0.2, 0.35, 0.15]
ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_SCALAR_ANNOTATIONS = ("int", "float", "bool")


def call(dotted: str, args: list[ast.expr]) -> ast.Call:
    parts = dotted.split(".")
    func: ast.expr = ast.Name(parts[0], ast.Load())
    for part in parts[1:]:
        func = ast.Attribute(func, part, ast.Load())
    return ast.Call(func, args, [])


def unary_call(ctx: Context, argument: ast.expr) -> ast.Call:
    """f(argument) for a unary function of the vocabulary; np.roll shifts by one
    (each bin compared with its neighbour, as in FunSearch's bin packing result)."""
    name = ctx.choice(ctx.unary)
    if name.endswith(".roll") and not _may_be_array(ctx, argument):
        name = ctx.choice([other for other in ctx.unary if not other.endswith(".roll")])
    extra = [ast.Constant(1)] if name.endswith(".roll") else []
    return call(name, [argument, *extra])


def _may_be_array(ctx: Context, node: ast.expr) -> bool:
    """Whether an expression may hold an array: it reads a name not annotated
    as a scalar outside a reduction. Shifting a scalar (`np.roll(item, 1)`,
    `np.roll(np.max(bins), 1)`) only costs an evaluation."""
    names = {
        name: frozenset({name})
        for name in loaded_names(node)
        if ctx.annotations.get(name) not in _SCALAR_ANNOTATIONS
    }
    return bool(carry.carried_by(node, names, ctx.modules))


def neighbour_difference(ctx: Context, node: ast.expr) -> ast.expr:
    """`e - np.roll(e, 1)`: each element against its predecessor. FunSearch's
    bin packing heuristics owe most of their edge over best fit to such a
    difference of neighbouring bins' scores; built from one copy of `e` by
    chance it takes two matching insertions, so it is one operator here."""
    shifted = call(f"{ctx.modules.numpy}.roll", [clone(node), ast.Constant(1)])
    return ast.BinOp(node, ast.Sub(), shifted)


def _name(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


def arith_op(ctx: Context) -> ast.operator:
    return _ARITH[weighted_index(ctx.rng, _ARITH_WEIGHTS)]()


def random_term(ctx: Context, scope: tuple[str, ...]) -> ast.expr:
    """A name in scope, a subexpression of the versions, or a constant.
    Names read in arithmetic weigh most; matrices and index names little,
    since adding them to a vector rarely broadcasts."""
    options: list[Callable[[], ast.expr]] = []
    weights: list[float] = []
    numeric = [
        name
        for name in scope
        if (NUM in ctx.roles.get(name, ()) or name in ctx.num_names)
        and ctx.annotations.get(name) not in _SCALAR_ANNOTATIONS
    ]
    if ctx.reductions and numeric:
        options.append(lambda: call(ctx.choice(ctx.reductions), [_name(ctx.choice(numeric))]))
        weights.append(0.5)
    for name in scope:
        roles = ctx.roles.get(name, set())
        if NUM in roles or name in ctx.num_names:
            weight = 3.0
        elif not roles:
            weight = 1.0
        else:
            # A node index read as a number (`current_node * 2`) scores by the
            # numbering of the training instances and generalises to nothing.
            weight = 0.05 if INDEX in roles else 0.3
        options.append(lambda name=name: _name(name))
        weights.append(weight)
    fitting = [
        term for term, names in ctx.terms if all(n in scope or n in ctx.allowed for n in names)
    ]
    for term in fitting:
        options.append(lambda term=term: clone(term))
        weights.append(min(1.5, 4.0 / len(fitting)))
    options.append(lambda: number(new_constant(ctx)))
    weights.append(2.0)
    return ctx.choice_weighted(options, weights)()


def random_expr(ctx: Context, scope: tuple[str, ...], depth: int) -> ast.expr:
    """A random numeric expression over the vocabulary, at most `depth` deep."""
    if depth <= 0 or ctx.rng.random() < 0.35:
        return random_term(ctx, scope)
    draw = ctx.rng.random()
    sub = lambda: random_expr(ctx, scope, depth - 1)
    if draw < 0.2 and ctx.unary:
        return unary_call(ctx, sub())
    if draw < 0.35 and ctx.binary:
        return call(ctx.choice(ctx.binary), [sub(), sub()])
    if draw < 0.42 and ctx.where:
        return call(ctx.where, [random_condition(ctx, scope), sub(), sub()])
    left, right = sub(), sub()
    if constant_value(left) is not None and constant_value(right) is not None:
        right = random_term(ctx, scope)
    return ast.BinOp(left, arith_op(ctx), right)


def random_condition(ctx: Context, scope: tuple[str, ...]) -> ast.expr:
    op = ctx.choice(list(ORDER))()
    return ast.Compare(random_expr(ctx, scope, 1), [op], [random_term(ctx, scope)])


def wrap(ctx: Context, node: ast.expr, scope: tuple[str, ...]) -> ast.expr:
    """Subtree insertion: `node` inside a new expression (`e op t`, `f(e)`,
    `np.minimum(e, t)`, `np.where(e < t, e, u)`, `e ** c`, `-e`,
    `e - np.roll(e, 1)`, `np.abs(e - c)`)."""
    rng = ctx.rng
    term = random_expr(ctx, scope, int(rng.random() < 0.4))
    draw = rng.random()
    if draw < 0.15 and ctx.unary:
        return unary_call(ctx, node)
    if draw < 0.3 and ctx.binary:
        return call(ctx.choice(ctx.binary), [node, term])
    if draw < 0.38 and ctx.where:
        # A gate: the expression where a condition holds (on itself or on
        # other quantities), something else elsewhere.
        if rng.random() < 0.5:
            test = ast.Compare(clone(node), [ctx.choice(list(ORDER))()], [term])
        else:
            test = random_condition(ctx, scope)
        return call(ctx.where, [test, node, random_expr(ctx, scope, 1)])
    if draw < 0.42:
        return ast.BinOp(node, ast.Pow(), ast.Constant(ctx.choice([2, 0.5, 3, 1.5])))
    if draw < 0.45:
        return ast.UnaryOp(ast.USub(), node)
    if draw < 0.5 and ctx.modules.numpy and _may_be_array(ctx, node):
        return neighbour_difference(ctx, node)
    if draw < 0.55 and ctx.unary and constant_value(node) is None:
        # A target instead of a direction: the distance of e to a constant.
        absolute = f"{ctx.modules.numpy}.abs" if ctx.modules.numpy else "abs"
        return call(absolute, [ast.BinOp(node, ast.Sub(), number(new_constant(ctx)))])
    if rng.random() < 0.75:
        return ast.BinOp(node, arith_op(ctx), term)
    return ast.BinOp(term, arith_op(ctx), node)
