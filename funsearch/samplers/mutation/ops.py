"""Genetic-programming operators on an evolved function's AST.

Each operator changes a function in place at a site chosen with the context's
random generator and says whether it changed anything. Operators build only
expressions over names bound at the site and functions the spec imports, so
what they make can run; whether it is *better* is the evaluator's business.
Division is written plainly: a guard against zero appears only where a parent
already had one, so no operator invents semantics the search did not find.
`waste` counts what a child must not add: dead assignments and `x - x`.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from funsearch.samplers.mutation.expressions import (
    ORDER,
    arith_op,
    call,
    random_condition,
    random_expr,
    wrap,
)
from funsearch.samplers.mutation.numeric import ARITH_OPS, is_numeric
from funsearch.samplers.mutation.sites import BOOL, INDEX, NUM, Analysis, Site
from funsearch.samplers.mutation.trees import clone, loaded_names, subtree_sizes
from funsearch.samplers.mutation.vocabulary import Context, constant_value, number, perturb

_PAIRS = [
    ("min", "max"),
    ("amin", "amax"),
    ("argmin", "argmax"),
    ("fmin", "fmax"),
    ("nanmin", "nanmax"),
    ("minimum", "maximum"),
    ("nanargmin", "nanargmax"),
]
_SWAP = {a: b for pair in _PAIRS for a, b in (pair, pair[::-1])}
_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div)
_EQUALITY = (ast.Eq, ast.NotEq)


def _same(a: ast.AST, b: ast.AST) -> bool:
    return ast.unparse(a) == ast.unparse(b)


def _position(block: list[ast.stmt], statement: ast.stmt) -> int:
    return next(i for i, item in enumerate(block) if item is statement)


# Operators -------------------------------------------------------------------


def constant_sites(an: Analysis) -> list[Site]:
    """Numeric and boolean constants; `-c` counts once, as the negation."""
    sites = []
    for site in an.sites:
        inner_of_negation = isinstance(site.parent, ast.UnaryOp) and isinstance(
            site.parent.op, ast.USub
        )
        if constant_value(site.node) is not None and not inner_of_negation:
            sites.append(site)
    return sites


def op_constant(tree: ast.FunctionDef, an: Analysis, ctx: Context) -> bool:
    sites = constant_sites(an)
    if not sites:
        return False
    site = ctx.choice(sites)
    value = constant_value(site.node)
    new = perturb(value, site.role, ctx, ctx.sigma)
    site.replace(ast.Constant(new) if isinstance(new, bool) else number(new))
    return True


def tune_constants(tree: ast.FunctionDef, an: Analysis, ctx: Context, sigma: float) -> bool:
    """Constant-tuning: the same structure, numeric constants moved a little."""
    # A zero is mostly structural (`residual == 0`), not a weight to tune.
    sites = [s for s in constant_sites(an) if s.role == NUM and constant_value(s.node) != 0]
    if not sites:
        return False
    chosen = [s for s in sites if ctx.rng.random() < 0.5] or [ctx.choice(sites)]
    for site in chosen:
        site.replace(number(perturb(constant_value(site.node), NUM, ctx, sigma, renew=False)))
    return True


def op_binop(tree: ast.FunctionDef, an: Analysis, ctx: Context) -> bool:
    nodes = [s.node for s in an.sites if isinstance(s.node, ast.BinOp) and s.role in (NUM, INDEX)]
    index_nodes = {id(s.node) for s in an.sites if s.role == INDEX}
    nodes += [n for n in ast.walk(tree) if isinstance(n, ast.AugAssign)]
    nodes = [n for n in nodes if isinstance(n.op, ARITH_OPS) and not isinstance(n.op, ast.Mod)]
    if not nodes:
        return False
    node = ctx.choice(nodes)
    integer = id(node) in index_nodes or (
        isinstance(node, ast.AugAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id not in ctx.num_names
    )
    if integer:
        options = [op for op in (ast.Add, ast.Sub) if not isinstance(node.op, op)]
    elif isinstance(node.op, ast.Pow):
        options = [ast.Mult]
    elif isinstance(node.op, ast.FloorDiv):
        options = [ast.Div]
    else:
        options = [op for op in _ARITH if not isinstance(node.op, op)]
    node.op = ctx.choice(options)()
    return True


def op_compare(tree: ast.FunctionDef, an: Analysis, ctx: Context) -> bool:
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Compare)]
    slots = [
        (node, i)
        for node in nodes
        for i, op in enumerate(node.ops)
        if isinstance(op, ORDER + _EQUALITY)
    ]
    if not slots:
        return False
    node, i = ctx.choice(slots)
    group = ORDER if isinstance(node.ops[i], ORDER) else _EQUALITY
    node.ops[i] = ctx.choice([op for op in group if not isinstance(node.ops[i], op)])()
    return True


def op_minmax(tree: ast.FunctionDef, an: Analysis, ctx: Context) -> bool:
    """min <-> max in every spelling: builtins, np.minimum/np.maximum, np.argmin
    / np.argmax, and the methods of arrays."""
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("min", "max"):
            calls.append(node)
        elif isinstance(func, ast.Attribute) and func.attr in _SWAP:
            owner = func.value.id if isinstance(func.value, ast.Name) else None
            if owner != ctx.modules.math:
                calls.append(node)
    if not calls:
        return False
    func = ctx.choice(calls).func
    if isinstance(func, ast.Name):
        func.id = _SWAP[func.id]
    else:
        func.attr = _SWAP[func.attr]
    return True


def op_name(tree: ast.FunctionDef, an: Analysis, ctx: Context) -> bool:
    """A name read in a position replaced by another name in scope that is read
    in the same kind of position (`current` -> `destination` as an index)."""
    for site in ctx.shuffled([s for s in an.sites if isinstance(s.node, ast.Name)]):
        if site.role not in (NUM, INDEX):
            continue  # another container is rarely the same shape
        options = [
            name
            for name in site.scope
            if name != site.node.id
            and ctx.compatible(site.node.id, name)
            and (
                site.role in ctx.roles.get(name, {site.role})
                or (site.role == NUM and name in ctx.num_names)
            )
        ]
        if options:
            site.replace(ast.Name(ctx.choice(options), ast.Load()))
            return True
    return False


def _exponent(site: Site) -> bool:
    """An exponent (`e ** 2`): its constant is tuned, never grown into an
    expression; `bins ** (bins * item)` only overflows."""
    return (
        isinstance(site.parent, ast.BinOp)
        and isinstance(site.parent.op, ast.Pow)
        and site.field == "right"
    )


def op_insert(tree: ast.FunctionDef, an: Analysis, ctx: Context) -> bool:
    sites = [s for s in an.sites if s.role == NUM and not _exponent(s)]
    if not sites:
        return False
    site = ctx.choice(sites)
    site.replace(wrap(ctx, site.node, site.scope))
    return True


def op_replace(tree: ast.FunctionDef, an: Analysis, ctx: Context) -> bool:
    sites = [s for s in an.sites if s.role in (NUM, BOOL) and not _exponent(s)]
    if not sites:
        return False
    # Small subtrees likelier: a random expression in place of a whole
    # return value mostly throws away what the search has found.
    sizes = subtree_sizes(tree)
    site = ctx.choice_weighted(sites, [sizes[id(s.node)] ** -0.75 for s in sites])
    for _ in range(6):
        if site.role == BOOL:
            new = random_condition(ctx, site.scope)
        else:
            new = random_expr(ctx, site.scope, int(ctx.rng.integers(0, 3)))
        # An expression of no name would cut the program off from its inputs.
        if loaded_names(new) and not _same(new, site.node):
            site.replace(new)
            return True
    return False


def op_delete(tree: ast.FunctionDef, an: Analysis, ctx: Context) -> bool:
    """Deletion: a subtree replaced by one of its children, or a statement
    dropped (never the final return, never one whose names are needed later)."""
    if ctx.rng.random() < 0.5 and _hoist(an, ctx):
        return True
    return _drop_statement(tree, an, ctx) or _hoist(an, ctx)


def _hoist(an: Analysis, ctx: Context) -> bool:
    options = []
    for site in an.sites:
        node = site.node
        if isinstance(node, ast.BinOp) and site.role in (NUM, INDEX):
            children = [node.left, node.right]
        elif isinstance(node, ast.UnaryOp) and constant_value(node) is None:
            children = [node.operand]
        elif isinstance(node, ast.Call) and site.role == NUM and is_numeric(node, ctx.modules):
            if any(keyword.arg == "axis" for keyword in node.keywords):
                continue  # its array has a dimension more than its result
            children = [a for a in node.args if not isinstance(a, ast.Compare)]
        elif isinstance(node, ast.IfExp):
            children = [node.body, node.orelse]
        elif isinstance(node, ast.BoolOp):
            children = list(node.values)
        else:
            continue
        # A constant child would cut the expression off from every input.
        options += [
            (site, child)
            for child in children
            if not isinstance(child, ast.Starred) and constant_value(child) is None
        ]
    if not options:
        return False
    site, child = ctx.choice(options)
    site.replace(child)
    return True


def _drop_statement(tree: ast.FunctionDef, an: Analysis, ctx: Context) -> bool:
    final = tree.body[-1] if isinstance(tree.body[-1], ast.Return) else None
    candidates = [s for s in an.statements if s.statement is not final]
    for site in ctx.shuffled(candidates)[:4]:
        block, statement = site.block, site.statement
        saved = list(block)
        at = _position(block, statement)
        if isinstance(statement, ast.If) and ctx.rng.random() < 0.5:
            kept = (
                statement.orelse if statement.orelse and ctx.rng.random() < 0.5 else statement.body
            )
            block[at : at + 1] = kept
        elif len(block) > 1:
            del block[at]
        else:
            continue
        if not ctx.unbound(tree):
            return True
        block[:] = saved
    return False


def op_statement(tree: ast.FunctionDef, an: Analysis, ctx: Context) -> bool:
    """Statement-level edits: a new local used afterwards, or an assignment
    modified (`x = g(x)` after it) or duplicated with other constants."""
    if ctx.rng.random() < 0.5:
        return _new_local(tree, an, ctx) or _modify_assignment(tree, an, ctx)
    return _modify_assignment(tree, an, ctx) or _new_local(tree, an, ctx)


def fresh_name(tree: ast.FunctionDef, ctx: Context) -> str:
    taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | set(ctx.allowed)
    taken |= {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    return next(f"t{k}" for k in range(1, 10_000) if f"t{k}" not in taken)


def _new_local(tree: ast.FunctionDef, an: Analysis, ctx: Context) -> bool:
    sites = [s for s in an.sites if s.role == NUM and not _exponent(s)]
    if not sites:
        return False
    site = ctx.choice(sites)
    scope = site.statement.scope
    value = random_expr(ctx, scope, 1 + int(ctx.rng.random() < 0.5))
    for _ in range(4):
        if any(n in scope for n in loaded_names(value)):
            break
        value = random_expr(ctx, scope, 2)
    name = fresh_name(tree, ctx)
    block = site.statement.block
    block.insert(_position(block, site.statement.statement), _assign(name, value))
    use = ast.Name(name, ast.Load())
    if ctx.binary and ctx.rng.random() < 0.2:
        site.replace(call(ctx.choice(ctx.binary), [site.node, use]))
    else:
        site.replace(ast.BinOp(site.node, arith_op(ctx), use))
    return True


def _modify_assignment(tree: ast.FunctionDef, an: Analysis, ctx: Context) -> bool:
    options = []
    for site in an.statements:
        node = site.statement
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            target = node.targets[0].id
            if target in ctx.num_names or is_numeric(node.value, ctx.modules):
                options.append((site, target))
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            if node.target.id in ctx.num_names and isinstance(node.op, _ARITH):
                options.append((site, node.target.id))
    if not options:
        return False
    site, target = ctx.choice(options)
    node = site.statement
    updates_itself = isinstance(node, ast.AugAssign) or target in loaded_names(node.value)
    if updates_itself and ctx.rng.random() < 0.5:
        new = clone(node)
        copy_sites = [s for s in constant_sites(ctx.analyse(_holder(new))) if s.role == NUM]
        if copy_sites:
            chosen = ctx.choice(copy_sites)
            chosen.replace(number(perturb(constant_value(chosen.node), NUM, ctx, ctx.sigma)))
    else:
        scope = site.scope + (target,)
        new = _assign(target, wrap(ctx, ast.Name(target, ast.Load()), scope))
    site.block.insert(_position(site.block, node) + 1, new)
    return True


def _assign(name: str, value: ast.expr) -> ast.Assign:
    # ast.unparse reads lineno of an assignment (for type comments).
    return ast.Assign([ast.Name(name, ast.Store())], value, lineno=0, type_comment=None)


def _holder(statement: ast.stmt) -> ast.FunctionDef:
    """A throwaway function around one statement, to find its sites."""
    return ast.FunctionDef("_", ast.arguments([], [], None, [], [], None, []), [statement], [])


_CONSTANT_ON_ITSELF = (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod)
_MIN_MAX = {"min", "max", "minimum", "maximum", "fmin", "fmax"}


def waste(analysis: Analysis) -> int:
    """Dead assignments (a name assigned and never read, or assigned again
    before it is read) and trivial expressions of one name with itself (`x -
    x`, `x / x`, `np.maximum(x, x)`, `x <= x`): code that only looks new. A
    child with more of it than its parents is redrawn instead of costing an
    evaluation."""
    count = sum(1 for name in analysis.assigned if name not in analysis.roles)
    count += analysis.overwritten
    for site in analysis.sites:
        node = site.node
        if isinstance(node, ast.BinOp) and isinstance(node.op, _CONSTANT_ON_ITSELF):
            pair = [node.left, node.right]
        elif isinstance(node, ast.Compare) and len(node.ops) == 1:
            pair = [node.left, node.comparators[0]]
        elif isinstance(node, ast.Call) and len(node.args) == 2 and _callee(node) in _MIN_MAX:
            pair = list(node.args)
        else:
            continue
        if all(isinstance(n, ast.Name) for n in pair) and pair[0].id == pair[1].id:
            count += 1
    return count


def _callee(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


OPERATORS: dict[str, Callable[[ast.FunctionDef, Analysis, Context], bool]] = {
    "constant": op_constant,
    "binop": op_binop,
    "compare": op_compare,
    "minmax": op_minmax,
    "name": op_name,
    "insert": op_insert,
    "replace": op_replace,
    "delete": op_delete,
    "statement": op_statement,
}
