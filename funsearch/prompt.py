"""Prompt text from chosen programs, and sample text back to a program.

FunSearch's prompt is the spec's preface followed by k versions of the
evolved function, renamed `f_v0 .. f_v{k-1}` from weakest to strongest, and the
header of `f_v{k}` for the model to complete. Chat models get the same code in
a user message and answer with a fenced block.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
import textwrap
from typing import TYPE_CHECKING

from funsearch import code

if TYPE_CHECKING:
    from funsearch.samplers import Sample

SYSTEM_MESSAGE = (
    "You are an expert in algorithm design. You improve Python heuristics. "
    "Answer with one Python code block that contains only the new function."
)


@dataclasses.dataclass(frozen=True)
class Query:
    """What a sampler is asked to continue.

    The texts are made on first use, by the sampler that needs them (a model's
    prompt; the mutation proposer reads the versions alone): renaming the
    versions is most of a prompt's cost, and with Ray it is then paid in the
    sampler's process, not in the search loop's.

    Attributes:
      function_name: the evolved function's name in the spec.
      version: the version the sampler writes (`f_v{version}`).
      versions: the programs shown, weakest first, each named function_name.
      preface: the spec's imports (what names a program may use).
      completion: FunSearch-style text ending in the header of `f_v{version}`.
      messages: the same request as chat messages.
      head: the header and docstring a new program gets (those of the
        strongest version), made once for all of the prompt's samples.
    """

    function_name: str
    version: int
    versions: tuple[str, ...]
    preface: str = ""

    @functools.cached_property
    def completion(self) -> str:
        name, version = self.function_name, self.version
        shown = [_shown(program, name, index) for index, program in enumerate(self.versions)]
        head = _header(self.versions[-1], f"{name}_v{version}")
        doc = f'    """Improved version of `{name}_v{version - 1}`."""\n'
        text = (self.preface.rstrip() + "\n\n\n" if self.preface.strip() else "")
        return text + "\n\n".join(shown) + "\n\n" + head + doc

    @functools.cached_property
    def messages(self) -> tuple[dict[str, str], ...]:
        user = (
            self.completion.rstrip()
            + f"\n\n\nWrite `{self.function_name}_v{self.version}`, a better version of the "
            "functions above. Reply with the complete function in one ```python block."
        )
        return ({"role": "system", "content": SYSTEM_MESSAGE}, {"role": "user", "content": user})

    @functools.cached_property
    def head(self) -> str:
        return _program_head(self.versions[-1])


def build_query(preface: str, function_name: str, versions: list[str]) -> Query:
    """The query for a prompt whose programs are `versions`, weakest first."""
    return Query(function_name, len(versions), tuple(versions), preface)


# Prompts show the same strong programs again and again: each one's renamed
# text is made once (parsing and unparsing is most of a prompt's cost).
@functools.lru_cache(maxsize=2048)
def _shown(program: str, function_name: str, index: int) -> str:
    renamed = code.rename(program, function_name, f"{function_name}_v{index}")
    if index > 0:
        renamed = _with_docstring(renamed, f"Improved version of `{function_name}_v{index - 1}`.")
    return renamed


@functools.lru_cache(maxsize=2048)
def _header(program: str, name: str) -> str:
    return code.header(program, name)


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


def parse(text: str, query: Query) -> Parsed:
    """to_program and the program's normal hash, or the rejection."""
    try:
        tree = _program_tree(text, query)
    except Rejection as rejection:
        return Parsed(None, rejection=str(rejection))
    program = ast.unparse(tree) + "\n"
    return Parsed(program, code.tree_hash(tree))


def parse_samples(samples: list[Sample], query: Query) -> list[Sample]:
    """The samples with their programs made (Sample.parsed).

    Backends call this where the samples are made -- the sampler's actor with
    Ray -- so the search loop, one thread for the whole run, does not parse.
    Samples that come with their program (the mutation proposer makes it from
    its own tree) are kept as they are."""
    return [sample if sample.parsed
            else dataclasses.replace(sample, parsed=parse(sample.text, query))
            for sample in samples]


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
        body = code.trim_completion(text, name)
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


@functools.lru_cache(maxsize=2048)
def _program_head(program: str) -> str:
    """The `def` line and docstring of a program, to put a new body under."""
    doc = code.docstring(program)
    if doc is None or '"""' in doc or doc.endswith("\\"):
        return code.header(program)
    indented = textwrap.indent(doc, code.INDENT).lstrip() + ("\n    " if "\n" in doc else "")
    quoted = f'    """{indented}"""\n'
    return code.header(program) + quoted


def _other_functions(text: str, name: str) -> set[str]:
    """Top-level functions a reply defines besides the one asked for."""
    defined = set(re.findall(r"^def\s+(\w+)", text.replace("\t", " "), flags=re.MULTILINE))
    return {other for other in defined if not re.fullmatch(rf"{re.escape(name)}(_v\d+)?", other)}


def _with_docstring(program: str, text: str) -> str:
    if code.docstring(program) is not None:
        return program
    head = code.header(program)
    return head + f'    """{text}"""\n' + code.body(program)
