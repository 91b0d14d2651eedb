"""Syntax-tree utilities the operators share: fast copies, sizes, names read.

The proposer copies and measures trees many times per child, so these are
written for speed (copy.deepcopy is several times slower than clone).
"""

from __future__ import annotations

import ast


def node_count(statements: list[ast.AST]) -> int:
    """Program size for bloat control: statements and expressions."""
    total = 0
    stack = list(statements)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.expr, ast.stmt)):
            total += 1
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                stack.extend(item for item in value if isinstance(item, ast.AST))
            elif isinstance(value, ast.AST) and not isinstance(value, _SHARED):
                stack.append(value)
    return total


# Leaf nodes that carry no data: shared between copies, never changed in place.
_SHARED = (ast.expr_context, ast.operator, ast.cmpop, ast.unaryop, ast.boolop)


def clone(node: ast.AST) -> ast.AST:
    """A deep copy of a syntax tree, several times faster than copy.deepcopy."""
    new = node.__class__.__new__(node.__class__)
    new.__dict__.update(node.__dict__)  # positions and plain values
    for field in node._fields:
        value = getattr(node, field, None)
        if isinstance(value, list):
            setattr(new, field, [clone(v) if isinstance(v, ast.AST) else v for v in value])
        elif isinstance(value, ast.AST) and not isinstance(value, _SHARED):
            setattr(new, field, clone(value))
    return new


def subtree_sizes(root: ast.AST) -> dict[int, int]:
    """id(node) -> number of expression and statement nodes under it (itself included)."""
    sizes: dict[int, int] = {}

    def count(node: ast.AST) -> int:
        total = 1 if isinstance(node, (ast.expr, ast.stmt)) else 0
        for child in ast.iter_child_nodes(node):
            total += count(child)
        sizes[id(node)] = total
        return total

    count(root)
    return sizes


def loaded_names(node: ast.AST) -> list[str]:
    """Names an expression reads, in order (comprehension variables included,
    so a moved comprehension is judged conservatively)."""
    seen = dict.fromkeys(
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    )
    return list(seen)

