"""code.py: programs as syntax trees (headers, bodies, names, normal form)."""

import pytest

from funsearch import code

PARENT = '''def priority(item: float, bins) -> float:
    """Returns the priority of each bin."""
    return -(bins - item)
'''


def test_body_and_docstring_of_a_program():
    assert code.docstring(PARENT) == "Returns the priority of each bin."
    assert code.body(PARENT).strip() == "return -(bins - item)"


def test_rename_renames_definition_and_calls():
    program = "def f_v2(x):\n    return f_v2(x - 1) if x else 0\n"
    renamed = code.rename(program, "f_v2", "f")
    assert "f_v2" not in renamed and renamed.count("f(") == 2


def test_earlier_version_calls_are_detected():
    names = {"f_v0", "f_v1", "f_vx", "g_v0", "x"}
    assert code.earlier_versions(names, "f") == ["f_v0", "f_v1"]


def test_normal_hash_ignores_docstrings_comments_and_layout():
    a = 'def f(x):\n    """Doc."""\n    # a comment\n    return (x+1)\n'
    b = "def f(x):  return x + 1\n"
    c = "def f(x):\n    return x + 2\n"
    assert code.normal_hash(a) == code.normal_hash(b)
    assert code.normal_hash(a) != code.normal_hash(c)


def test_header_of_a_program_under_another_name():
    assert code.header("def g(a, b=2, *c):\n    return a\n", "g_v1") == "def g_v1(a, b=2, *c):\n"


def test_parse_error_names_the_line():
    with pytest.raises(code.CodeError, match=r"x.py:2: syntax error"):
        code.parse("a = 1\nb = (\n", "x.py")
