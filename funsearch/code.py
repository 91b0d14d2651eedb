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

_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


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


def function_source(source: str, name: str) -> str:
    """The text of top-level function `name` without its decorators, unparsed.

    Unparsing gives every program the same layout, so the prompt shows
    the model one consistent style.
    """
    node = find_function(parse(source), name)
    node = _copy(node)
    node.decorator_list = []
    return ast.unparse(node) + "\n"


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


def trim_completion(text: str, name: str) -> str:
    """Turns what a model wrote into one function body (indented text).

    Handles what models do: code fences around the code, repeating the
    function header (under any version name), text or further functions after
    the body, a last line cut off mid-token, and tabs. Raises CodeError when
    nothing that parses as a body is left.
    """
    text = text.replace("\t", INDENT).replace("\r\n", "\n")
    fenced = _FENCE.findall(text)
    if fenced:
        text = max(fenced, key=lambda block: (_mentions_def(block, name), len(block)))
    lines = text.split("\n")
    header_at = _header_line(lines, name)
    if header_at is not None:
        lines = _after_signature(lines[header_at:])
    lines = _body_lines(lines)
    if not any(line.strip() for line in lines):
        raise CodeError("empty body")
    return _longest_parsing_prefix(lines)


def _mentions_def(block: str, name: str) -> bool:
    return re.search(rf"def\s+{re.escape(name)}(_v\d+)?\s*\(", block) is not None


def _header_line(lines: list[str], name: str) -> int | None:
    """Where the model repeated the function header. A text that starts with an
    indented line is a bare body, and a later `def name_vN` in it is an extra
    function, not the header."""
    pattern = re.compile(rf"^\s*def\s+{re.escape(name)}(_v\d+)?\s*\(")
    first = next((line for line in lines if line.strip()), "")
    if first[:1].isspace() and not pattern.match(first):
        return None
    for index, line in enumerate(lines):
        if pattern.match(line):
            return index
    return None


def _after_signature(lines: list[str]) -> list[str]:
    """The lines after a `def` header, which may span several lines."""
    depth = 0
    for index, line in enumerate(lines):
        depth += line.count("(") - line.count(")")
        if depth <= 0 and line.split("#")[0].rstrip().endswith(":"):
            return lines[index + 1 :]
    return []


def _body_lines(lines: list[str]) -> list[str]:
    """Keeps the indented block at the top; stops at the first line that
    returns to column zero (prose, another function, a `__main__` block)."""
    while lines and not lines[0].strip():
        lines = lines[1:]
    kept: list[str] = []
    for line in lines:
        if line.strip() and not line[0].isspace():
            break
        kept.append(line)
    if not kept and lines:
        # The model wrote the body at column zero: take lines until a def/class.
        for line in lines:
            if re.match(r"^(def|class|if __name__)\b", line):
                break
            kept.append(line)
    return kept


def _longest_parsing_prefix(lines: list[str]) -> str:
    """The longest prefix of lines that parses as a body: a completion cut off
    mid-line or mid-statement loses only its unfinished end."""
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end])
        if not candidate.strip():
            break
        try:
            wrapper = ast.parse("def _wrapper():\n" + _reindent(candidate))
        except (SyntaxError, ValueError):
            continue
        statements = wrapper.body[0].body
        if not _has_docstring(statements):
            return _reindent(candidate).rstrip() + "\n"  # parsed already: no unparse needed
        if len(statements) > 1:
            text = "\n".join(ast.unparse(statement) for statement in statements[1:])
            return textwrap.indent(text, INDENT) + "\n"
    raise CodeError("no parseable function body in the completion")


def _reindent(text: str) -> str:
    """Indents a body by exactly one level whatever indentation it came with."""
    return textwrap.indent(textwrap.dedent(text), INDENT)


def _single_function(program: str) -> ast.FunctionDef:
    tree = parse(program)
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    if len(functions) != 1:
        raise CodeError(f"expected one function, found {len(functions)}")
    return functions[0]


def _has_docstring(statements: list[ast.stmt]) -> bool:
    return bool(
        statements
        and isinstance(statements[0], ast.Expr)
        and isinstance(statements[0].value, ast.Constant)
        and isinstance(statements[0].value.value, str)
    )


def _without_docstring(statements: list[ast.stmt]) -> list[ast.stmt]:
    return statements[1:] if _has_docstring(statements) else list(statements)


def _copy(node: ast.FunctionDef) -> ast.FunctionDef:
    return ast.parse(ast.unparse(node)).body[0]  # type: ignore[return-value]
