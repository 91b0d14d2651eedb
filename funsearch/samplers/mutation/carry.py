"""Which parameters a function's return values carry element by element.

A priority function over `bins` must return one value per bin; a mutant whose
return no longer depends on `bins` except through a reduction (`np.max(bins)
- item`, or `item * 2` after a name swap) returns a scalar, and the evaluator
rejects it after a whole evaluation (7-15% of children in a bin packing run).
The proposer compares the parameters a child's returns carry with those its
parents' returns all carry and redraws a child that lost one: a cheap walk
over the AST instead of a wasted sample. Which parameter is the array is not
known unless the signature says so (`item: float`: a scalar carries
nothing), so without annotations a child that drops `item` from `-(bins -
item)` is redrawn as well as one that drops `bins`; that costs the search
little, since a priority that ignores the item is a weak one.

The analysis over-approximates (any name a value is built from counts, unless
it goes through a reduction such as `np.max` or `len`).
"""

from __future__ import annotations

import ast

from funsearch.samplers.mutation.numeric import Modules
from funsearch.samplers.mutation.sites import parameters

# Calls whose result is one number whatever the shape of the arguments.
_REDUCING = frozenset(
    "argmin argmax min max amin amax nanmin nanmax sum mean median std var prod ptp "
    "len count_nonzero any all nanargmin nanargmax".split()
)
_BUILTIN_REDUCING = frozenset({"len", "sum", "any", "all", "int", "float", "round", "bool"})
_BINDINGS = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.comprehension, ast.NamedExpr)


def _reduces(call: ast.Call, modules: Modules) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        # max(bins) reduces; max(a, b) of two values does not.
        if func.id in ("min", "max"):
            return len(call.args) == 1
        return func.id in _BUILTIN_REDUCING
    if isinstance(func, ast.Attribute) and func.attr in _REDUCING:
        owner = func.value
        if isinstance(owner, ast.Name) and owner.id == modules.math:
            return False
        axis = any(k.arg == "axis" for k in call.keywords)
        return not axis  # a reduction along an axis keeps a dimension
    return False


def carried_by(node: ast.AST, names: dict[str, frozenset[str]],
               modules: Modules) -> frozenset[str]:
    """What an expression carries, given what each name carries."""
    return _carried(node, names, modules)


def _carried(node: ast.AST | None, names: dict[str, frozenset[str]],
             modules: Modules) -> frozenset[str]:
    if node is None:
        return frozenset()
    if isinstance(node, ast.Name):
        return names.get(node.id, frozenset())
    if isinstance(node, ast.Call):
        if _reduces(node, modules):
            return frozenset()
        parts = [*node.args, *(k.value for k in node.keywords)]
        if isinstance(node.func, ast.Attribute):
            parts.append(node.func.value)  # bins.clip(...), x.copy()
        return frozenset().union(*(_carried(p, names, modules) for p in parts))
    if isinstance(node, (ast.Lambda, ast.Constant)):
        return frozenset()
    if isinstance(node, ast.BinOp):  # the commonest node, so without the generic walk
        return _carried(node.left, names, modules) | _carried(node.right, names, modules)
    if isinstance(node, ast.UnaryOp):
        return _carried(node.operand, names, modules)
    return frozenset().union(
        *(_carried(child, names, modules) for child in ast.iter_child_nodes(node)
          if isinstance(child, ast.expr))
    )


def returns_carry(function: ast.FunctionDef, modules: Modules) -> list[frozenset[str]]:
    """Per return statement, the parameters its value
    carries elementwise. Locals carry the union of everything assigned to
    them anywhere in the function (an over-approximation, as branches go)."""
    names: dict[str, frozenset[str]] = {
        name: frozenset({name}) for name in parameters(function) if name not in _scalars(function)
    }
    # One walk finds the bindings and returns: this runs for every child the
    # proposer draws, and walking the tree costs more than the analysis.
    bindings, returns = [], []
    for node in ast.walk(function):
        if isinstance(node, _BINDINGS):
            bindings.append(node)
        elif isinstance(node, ast.Return):
            returns.append(node)
    for _ in range(2):  # a second pass reaches names assigned after a use in a loop
        for node in bindings:
            if isinstance(node, ast.Assign):
                value = _carried(node.value, names, modules)
                for target in node.targets:
                    _bind(target, value, names)
            elif isinstance(node, (ast.For, ast.comprehension)):
                _bind(node.target, _carried(node.iter, names, modules), names)
            elif node.value is not None:  # AugAssign, AnnAssign, NamedExpr
                _bind(node.target, _carried(node.value, names, modules), names)
    return [_carried(node.value, names, modules) for node in returns]


def _scalars(function: ast.FunctionDef) -> set[str]:
    """Parameters annotated as scalars (`item: float`): they carry nothing."""
    arguments = function.args
    return {
        a.arg
        for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs
        if a.annotation is not None and ast.unparse(a.annotation) in ("int", "float", "bool")
    }


def _bind(target: ast.expr, value: frozenset[str], names: dict[str, frozenset[str]]) -> None:
    if isinstance(target, ast.Name):
        names[target.id] = names.get(target.id, frozenset()) | value
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            _bind(element, value, names)
    elif isinstance(target, (ast.Subscript, ast.Attribute, ast.Starred)):
        _bind(target.value, value, names)  # score[mask] = ... changes score



def carried(function: ast.FunctionDef, modules: Modules) -> frozenset[str]:
    """The parameters every return of the function carries elementwise
    (none without a return)."""
    carries = returns_carry(function, modules)
    return frozenset.intersection(*carries) if carries else frozenset()
