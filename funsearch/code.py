"""Source manipulation of programs: functions, bodies, versions, normal form.

A *program* here is the source of the evolved function alone (`def f(...):`
and its body); the rest of the spec file stays fixed and lives in the
Specification. Everything works on `ast`, so formatting and comments never
decide what a program is.
"""

from __future__ import annotations

import ast
import hashlib
import re
import textwrap
from collections.abc import Iterable

INDENT = "    "

class CodeError(ValueError):
    """A text that is not the code we expected, with the reason in words."""


def parse(source: str, filename: str = "<program>") -> ast.Module:
    """Parses source, raising CodeError with the line of a syntax error."""
    try:
        return ast.parse(source, filename=filename)
    except SyntaxError as error:
        raise CodeError(f"{filename}:{error.lineno}: syntax error: {error.msg}") from None


def find_function(tree: ast.Module, name: str) -> ast.FunctionDef:
    """The top-level function `name` of a module."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise CodeError(f"no top-level function '{name}'")


def function_name(program: str) -> str:
    """The name of the single function a program defines."""
    return _single_function(program).name


def header(program: str, name: str | None = None) -> str:
    """The `def` line of a program's function, optionally renamed."""
    node = _copy(_single_function(program))
    if name is not None:
        node.name = name
    node.body = [ast.Pass()]
    node.decorator_list = []
    return ast.unparse(node).splitlines()[0] + "\n"


def docstring(program: str) -> str | None:
    return ast.get_docstring(_single_function(program))


def body(program: str) -> str:
    """The body of a program's function, indented one level, without docstring."""
    node = _single_function(program)
    statements = _without_docstring(node.body) or [ast.Pass()]
    text = "\n".join(ast.unparse(statement) for statement in statements)
    return textwrap.indent(text, INDENT) + "\n"


def rename(program: str, old: str, new: str) -> str:
    """Renames the function and every call/reference of `old` to `new`."""
    tree = parse(program)

    class _Renamer(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.Name:
            if node.id == old:
                node.id = new
            return node

        def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
            if node.name == old:
                node.name = new
            self.generic_visit(node)
            return node

    return ast.unparse(_Renamer().visit(tree)) + "\n"


def earlier_versions(names: Iterable[str], name: str) -> list[str]:
    """The names like `name_v0` among `names`: earlier versions that exist in
    the prompt but not in the sandbox, so a program must not call them."""
    pattern = re.compile(rf"{re.escape(name)}_v\d+")
    return sorted({n for n in names if pattern.fullmatch(n)})


def normal_form(program: str) -> str:
    """The program as an AST without docstrings, comments or formatting."""
    return _normal_form(parse(program))


def normal_hash(program: str) -> str:
    """A short hash of the normal form: equal for programs that differ only in
    docstrings, comments or layout, so duplicates skip the sandbox."""
    return tree_hash(parse(program))


def tree_hash(tree: ast.Module) -> str:
    """normal_hash of the program `tree` unparses to, without parsing it again
    (the tree loses its docstrings)."""
    return text_hash(_normal_form(tree))


def text_hash(normal_form: str) -> str:
    """The hash of a program's normal form (its unparsed function, no docstring)."""
    return hashlib.sha256(normal_form.encode()).hexdigest()[:16]


def _normal_form(tree: ast.Module) -> str:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            node.body = _without_docstring(node.body) or [ast.Pass()]
    return ast.unparse(tree)


def _single_function(program: str) -> ast.FunctionDef:
    tree = parse(program)
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    if len(functions) != 1:
        raise CodeError(f"expected one function, found {len(functions)}")
    return functions[0]


def has_docstring(statements: list[ast.stmt]) -> bool:
    return bool(
        statements
        and isinstance(statements[0], ast.Expr)
        and isinstance(statements[0].value, ast.Constant)
        and isinstance(statements[0].value.value, str)
    )


def _without_docstring(statements: list[ast.stmt]) -> list[ast.stmt]:
    return statements[1:] if has_docstring(statements) else list(statements)


def _copy(node: ast.FunctionDef) -> ast.FunctionDef:
    return ast.parse(ast.unparse(node)).body[0]  # type: ignore[return-value]
