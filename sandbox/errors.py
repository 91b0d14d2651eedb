"""An exception as the words of an outcome: its type, its text, where it was raised.

The exception may be the program's own object, with a hostile __str__ or
traceback: nothing here trusts it beyond its type's name. Imported as a sibling
module: standard library only.
"""

from __future__ import annotations

import os

DETAIL_CHARS = 1000


def describe(error: BaseException, spec_file: str | None = None) -> str:
    """'ZeroDivisionError: division by zero (at program:3 in pick)', capped."""
    text = f"{type(error).__name__}: {text_of(error)}"
    where = where_raised(error, spec_file)
    return (text[: DETAIL_CHARS - len(where)] + where)[:DETAIL_CHARS]


def text_of(error: BaseException) -> str:
    try:
        return str(error)
    except BaseException:  # a hostile __str__ (raising even SystemExit)
        return "<unprintable>"


def where_raised(error: BaseException, spec_file: str | None) -> str:
    """Where the error was raised in code the user wrote -- the spec file or the
    program, not numpy's internals: ' (at tsp.py:42 in run)'. A spec author
    otherwise gets an error with no line to look at."""
    last = ""
    try:
        traceback = error.__traceback__
        while traceback is not None:
            code = traceback.tb_frame.f_code
            if code.co_filename in ("<program>", spec_file):
                name = code.co_filename
                name = "program" if name == "<program>" else os.path.basename(name)
                last = f" (at {name}:{traceback.tb_lineno} in {code.co_name})"
            traceback = traceback.tb_next
    except Exception:  # a hostile traceback: the error's text is enough
        return ""
    return last[:200]
