"""Text becomes a program here, and only here.

A *program* is the source of the evolved function alone (`def f(...):` and its
body), as ast.unparse writes it, so that layout never tells two programs
apart. Three kinds of text become one:

- a file that defines the function (the spec's initial program and baselines,
  a run's best.py given to `funsearch evaluate`): `function_source`;
- a sample of a model: trimmed to one body under the prompt's header, or
  rejected with the reason (`parse`, `to_program`, `trim_completion`);
- a tree the mutation proposer built: `from_tree` makes the program `parse`
  would make of its text, without parsing it again.

The prompt the text answers (funsearch/prompt.py) gives the header and the
function's name; nothing here builds prompts.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import re
import textwrap
from typing import TYPE_CHECKING

from funsearch import code

if TYPE_CHECKING:
    from funsearch.prompt import Query

_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


class Rejection(ValueError):
    """A sample that cannot become a program; str(self) is the logged reason."""


@dataclasses.dataclass(frozen=True)
class Parsed:
    """A sample made into a program, or rejected.

    Attributes:
      program: the program (None: rejected).
      program_hash: its code.normal_hash (duplicates skip the sandbox).
      rejection: why it was rejected, in words.
    """

    program: str | None
    program_hash: str = ""
    rejection: str = ""


def function_source(source: str, name: str) -> str:
    """The program of a file: its top-level function `name` without decorators,
    unparsed, so the prompt shows the model one consistent style."""
    node = code.find_function(code.parse(source), name)
    node.decorator_list = []
    return ast.unparse(node) + "\n"


# -- a model's sample -----------------------------------------------------------


def parse(text: str, query: Query) -> Parsed:
    """to_program and the program's normal hash, or the rejection."""
    try:
        tree = _program_tree(text, query)
    except Rejection as rejection:
        return Parsed(None, rejection=str(rejection))
    program = ast.unparse(tree) + "\n"
    return Parsed(program, code.tree_hash(tree))


def to_program(text: str, query: Query) -> str:
    """The program a sample proposes, named query.function_name.

    Raises Rejection with a short reason for empty text, text that is not code,
    a body that calls an earlier version (those exist only in the prompt), or a
    reply that rewrites the program around helpers of its own. Parses the
    program once: this runs for every sample.
    """
    return ast.unparse(_program_tree(text, query)) + "\n"


def _program_tree(text: str, query: Query) -> ast.Module:
    if not text.strip():
        raise Rejection("empty completion")
    name = query.function_name
    try:
        body = trim_completion(text, name)
        tree = code.parse(query.head + body)
    except code.CodeError as error:
        raise Rejection(f"not code: {error}") from None
    own_version = f"{name}_v{query.version}"
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id == own_version:
                node.id = name  # a recursive call, under the name it will have
            names.add(node.id)
    earlier = code.earlier_versions(names, name)
    if earlier:
        raise Rejection(f"calls an earlier version: {', '.join(earlier)}")
    helpers = sorted(_other_functions(text, name) & names)
    if helpers:
        raise Rejection(f"rewrites the whole program: uses {', '.join(helpers)}, "
                        "defined outside the function")
    return tree


def _other_functions(text: str, name: str) -> set[str]:
    """Top-level functions a reply defines besides the one asked for."""
    defined = set(re.findall(r"^def\s+(\w+)", text.replace("\t", " "), flags=re.MULTILINE))
    return {other for other in defined if not re.fullmatch(rf"{re.escape(name)}(_v\d+)?", other)}


# -- a tree of the mutation proposer ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class Head:
    """The `def` line and docstring a new program gets (Query.head), parsed once
    for all the trees answering one prompt.

    Attributes:
      signature: its name, arguments and return annotation.
      text: as ast.unparse writes it, so programs come out as `parse` makes them.
    """

    signature: ast.FunctionDef
    text: str


def head(text: str) -> Head:
    """The Head of a Query.head text."""
    function = code.parse(text + code.INDENT + "pass\n").body[0]
    return Head(function, ast.unparse(function).rpartition("\n")[0])


def body_text(function: ast.FunctionDef) -> str:
    """A function's body, indented, as a sample's text (what a model would write)."""
    return ast.unparse(function).partition("\n")[2] + "\n"


def from_tree(function: ast.FunctionDef, head: Head) -> tuple[str, Parsed | None, str] | None:
    """(body text, program, its normal hash) of a tree put under the head's
    signature: the program exactly as `parse` would make it from the text
    (tested), for one unparse and one parse where that takes three and two --
    making programs was a fifth of the proposer's time. The program is None
    where `parse` must make it after all (a body led by a string: it would read
    as a docstring); the whole is None if the tree does not unparse to code
    that parses."""
    renamed = copy.copy(function)  # the body under the head's signature
    signature = head.signature
    renamed.name, renamed.args, renamed.returns = (
        signature.name, signature.args, signature.returns)
    try:
        normal = ast.unparse(renamed)  # code.normal_form of the program: no docstring
        body = normal.partition("\n")[2] + "\n"
        program = head.text + "\n" + body
        ast.parse(program)
    except (SyntaxError, ValueError, TypeError, AttributeError, RecursionError, MemoryError):
        return None
    if code.has_docstring(function.body):  # it would be the program's docstring
        return body, None, code.normal_hash(program)
    program_hash = code.text_hash(normal)
    return body, Parsed(program, program_hash), program_hash


# -- what a model wrote, down to one body ------------------------------------------


def trim_completion(text: str, name: str) -> str:
    """Turns what a model wrote into one function body (indented text).

    Handles what models do: code fences around the code, repeating the
    function header (under any version name), text or further functions after
    the body, a last line cut off mid-token, and tabs. Raises CodeError when
    nothing that parses as a body is left.
    """
    text = text.replace("\t", code.INDENT).replace("\r\n", "\n")
    fenced = _FENCE.findall(text)
    if fenced:
        text = max(fenced, key=lambda block: (_mentions_def(block, name), len(block)))
    lines = text.split("\n")
    header_at = _header_line(lines, name)
    if header_at is not None:
        lines = _after_signature(lines[header_at:])
    lines = _body_lines(lines)
    if not any(line.strip() for line in lines):
        raise code.CodeError("empty body")
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
        if not code.has_docstring(statements):
            return _reindent(candidate).rstrip() + "\n"  # parsed already: no unparse needed
        if len(statements) > 1:
            text = "\n".join(ast.unparse(statement) for statement in statements[1:])
            return textwrap.indent(text, code.INDENT) + "\n"
    raise code.CodeError("no parseable function body in the completion")


def _reindent(text: str) -> str:
    """Indents a body by exactly one level whatever indentation it came with."""
    return textwrap.indent(textwrap.dedent(text), code.INDENT)
