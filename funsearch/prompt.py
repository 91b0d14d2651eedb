"""Prompt text from chosen programs: what a sampler is asked to continue.

FunSearch's prompt is the spec's preface followed by k versions of the
evolved function, renamed `f_v0 .. f_v{k-1}` from weakest to strongest, and the
header of `f_v{k}` for the model to complete. Chat models get the same code in
a user message and answer with a fenced block. What comes back is made into
a program by funsearch/parsing.py.
"""

from __future__ import annotations

import dataclasses
import functools
import textwrap

from funsearch import code

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


@functools.lru_cache(maxsize=2048)
def _program_head(program: str) -> str:
    """The `def` line and docstring of a program, to put a new body under."""
    doc = code.docstring(program)
    if doc is None or '"""' in doc or doc.endswith("\\"):
        return code.header(program)
    indented = textwrap.indent(doc, code.INDENT).lstrip() + ("\n    " if "\n" in doc else "")
    quoted = f'    """{indented}"""\n'
    return code.header(program) + quoted


def _with_docstring(program: str, text: str) -> str:
    if code.docstring(program) is not None:
        return program
    head = code.header(program)
    return head + f'    """{text}"""\n' + code.body(program)
