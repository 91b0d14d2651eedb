"""A config file's validation errors as one line per problem, naming the file and the key.

Shared by the experiment file (config.py) and the study file
(study/studyfile.py): an unknown key lists the keys its table knows, as the
models declare them, so a typo shows its fix.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ValidationError


def describe(error: ValidationError, source: str, root: type[BaseModel],
             overridden: frozenset[str] | set[str] = frozenset()) -> str:
    """One line per problem, naming the file and the key (and the command line
    for `overridden` keys); an unknown key lists the keys its table knows."""
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        where = source
        if any(key == set_key or key.startswith(set_key + ".") or set_key.startswith(key + ".")
               for set_key in overridden):
            where = f"{source} (set on the command line)"
        if problem["type"] == "extra_forbidden":
            known = ", ".join(known_keys(problem["loc"][:-1], root))
            lines.append(f"{where}: unknown key '{key}' (known: {known})")
        elif problem["type"] == "missing":
            lines.append(f"{where}: missing key '{key}'")
        else:
            lines.append(f"{where}: key '{key}': {problem['msg']}")
    return "\n".join(lines)


def known_keys(loc: tuple[Any, ...] | list[Any], root: type[BaseModel]) -> list[str]:
    """The keys of the table at `loc` (list indices and a dict's own keys skipped),
    as the models declare them."""
    model = root
    in_dict = False  # the last field was a dict of tables: this part is one of its keys
    for part in loc:
        if isinstance(part, int) or in_dict:
            in_dict = False
            continue
        field = model.model_fields.get(str(part))
        inner = model_in(field.annotation) if field is not None else None
        if inner is None:
            return []
        model, in_dict = inner, typing.get_origin(field.annotation) is dict
    return [name for name, field in model.model_fields.items() if not field.exclude]


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (itself, or inside list[...] / ... | None)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = model_in(argument)
        if found is not None:
            return found
    return None
