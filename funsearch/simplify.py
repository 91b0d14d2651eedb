"""A program made easier to read, doing exactly what it did: for best.py.

The mutation proposer names new subexpressions (`t3 = np.tanh(t4)`), and later
mutations cut them down (`t3 = t4`) or stop reading them, so a best program
carries chains of aliases and assignments nobody reads (`t3 = t4; t1 = t3`).
The search keeps programs as they were evaluated; only the text written for
a person is simplified, in two steps repeated until nothing changes:

- copy propagation: after `a = b` (two names), `a` is read as `b` until either
  is bound again (never inside a nested function or lambda, which may run
  after that);
- dead assignments dropped: `a = <expression without effects>` whose value is
  never read (no read of `a` anywhere in the function, or none before the next
  plain top-level assignment to it).

The experiment evaluates the simplified program again and writes it only if
it scores exactly as the original on every input (funsearch/results.py).
"""

from __future__ import annotations

import ast

from funsearch import code

# Calls whose result depends on the function's local names: leave such code as it is.
_INTROSPECTION = frozenset({"locals", "vars", "eval", "exec", "dir", "globals"})
_MODULES = frozenset({"np", "numpy", "math"})
_PURE_BUILTINS = frozenset({"abs", "min", "max", "len", "float", "int", "sum", "round"})
_IN_PLACE = frozenset({"copyto", "put", "place", "putmask", "fill_diagonal", "put_along_axis"})
_PURE_NODES = (ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Subscript,
               ast.Slice, ast.Tuple, ast.List, ast.Attribute, ast.Call, ast.keyword, ast.Load,
               ast.operator, ast.unaryop, ast.cmpop)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def simplify(program: str) -> str:
    """The program with copies propagated and dead assignments dropped (the
    same text, unparsed, when there is nothing to do or it is not safe to)."""
    tree = code.parse(program)
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    if len(functions) != 1 or _introspects(functions[0]):
        return program
    function = functions[0]
    declared = _declared_outer(function)
    while _propagate_block(function.body, declared) | _drop_dead(function, declared):
        pass
    return ast.unparse(tree) + "\n"


def _introspects(function: ast.FunctionDef) -> bool:
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
               and node.func.id in _INTROSPECTION for node in ast.walk(function))


def _declared_outer(function: ast.FunctionDef) -> frozenset[str]:
    """Names declared global or nonlocal anywhere: assignments to them are effects."""
    return frozenset(name for node in ast.walk(function)
                     if isinstance(node, (ast.Global, ast.Nonlocal)) for name in node.names)


def _copy(statement: ast.stmt) -> tuple[str, str] | None:
    """(a, b) of `a = b`, two different names."""
    if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
            and isinstance(statement.value, ast.Name)
            and statement.targets[0].id != statement.value.id):
        return statement.targets[0].id, statement.value.id
    return None


def _propagate_block(block: list[ast.stmt], declared: frozenset[str]) -> bool:
    """Propagates the copies of this block and of every block nested in it."""
    changed = False
    for index, statement in enumerate(block):
        pair = _copy(statement)
        if pair is not None and not set(pair) & declared:
            changed |= _propagate(block[index + 1:], *pair)
    for statement in block:
        for field in ("body", "orelse", "finalbody"):
            inner = getattr(statement, field, None)
            if isinstance(inner, list) and not isinstance(statement, _SCOPES):
                changed |= _propagate_block(inner, declared)
        for handler in getattr(statement, "handlers", []):
            changed |= _propagate_block(handler.body, declared)
    return changed


def _propagate(following: list[ast.stmt], a: str, b: str) -> bool:
    """Reads of `a` become reads of `b` in the statements after `a = b`, up
    to the first that binds either again or reads `a` inside a nested scope."""
    changed = False
    for statement in following:
        if _binds(statement, {a, b}) or _read_in_scope(statement, a):
            break
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and node.id == a and isinstance(node.ctx, ast.Load):
                node.id = b
                changed = True
    return changed


def _binds(statement: ast.stmt, names: set[str]) -> bool:
    return any(isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)
               and node.id in names for node in ast.walk(statement))


def _read_in_scope(statement: ast.stmt, name: str) -> bool:
    """Whether a nested function or lambda reads `name` (it may run later)."""
    return any(isinstance(scope, _SCOPES) and _reads(scope, name)
               for scope in ast.walk(statement))


def _reads(node: ast.AST, name: str) -> bool:
    """A read of `name`: a load, an augmented assignment or a `del`."""
    for part in ast.walk(node):
        if isinstance(part, ast.Name) and part.id == name and not isinstance(part.ctx, ast.Store):
            return True
        if isinstance(part, ast.AugAssign) and isinstance(part.target, ast.Name) \
                and part.target.id == name:
            return True
    return False


def _drop_dead(function: ast.FunctionDef, declared: frozenset[str]) -> bool:
    """Drops the assignments whose value is never read (see the module docstring)."""
    changed = False
    for block in _blocks(function):
        for statement in list(block):
            target = _pure_assignment(statement)
            if target is None or target in declared or len(block) == 1:
                continue
            if not _reads(function, target) or (
                    block is function.body and _dead_before_next(block, statement, target)):
                block.remove(statement)
                changed = True
    return changed


def _blocks(function: ast.FunctionDef) -> list[list[ast.stmt]]:
    """The statement lists of the function, its own body first (no nested scopes)."""
    found = [function.body]
    for node in ast.walk(function):
        if node is function or isinstance(node, _SCOPES):
            continue
        for field in ("body", "orelse", "finalbody"):
            inner = getattr(node, field, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                found.append(inner)
        if isinstance(node, ast.ExceptHandler):
            found.append(node.body)
    return found


def _pure_assignment(statement: ast.stmt) -> str | None:
    """The target of `name = <expression without effects>`."""
    if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name) and _pure(statement.value)):
        return statement.targets[0].id
    return None


def _pure(node: ast.expr) -> bool:
    """Names, constants, arithmetic, subscripts and numpy or math functions that
    return a new value: computing it or not changes nothing but the time taken."""
    for part in ast.walk(node):
        if not isinstance(part, _PURE_NODES):
            return False
        if isinstance(part, ast.Call) and not _pure_call(part):
            return False
    return True


def _pure_call(call: ast.Call) -> bool:
    func = call.func
    if any(keyword.arg == "out" for keyword in call.keywords):
        return False
    if isinstance(func, ast.Name):
        return func.id in _PURE_BUILTINS
    return (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            and func.value.id in _MODULES and func.attr not in _IN_PLACE)


def _dead_before_next(block: list[ast.stmt], statement: ast.stmt, target: str) -> bool:
    """In the function's own body: `target` is assigned again by a plain
    top-level assignment before anything reads it."""
    for later in block[block.index(statement) + 1:]:
        if isinstance(later, ast.Assign) and len(later.targets) == 1 \
                and isinstance(later.targets[0], ast.Name) and later.targets[0].id == target:
            return not _reads(later.value, target)
        if _reads(later, target) or _binds(later, {target}):
            return False
    return False
