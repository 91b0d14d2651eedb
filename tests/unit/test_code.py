"""code.py on programs and on the messy text models write."""

import pytest

from funsearch import code

PARENT = '''def priority(item: float, bins) -> float:
    """Returns the priority of each bin."""
    return -(bins - item)
'''


@pytest.mark.parametrize(
    "completion, expected_return",
    [
        # A plain body, as a completion model continues after the header.
        ("    return bins * 2\n", "return bins * 2"),
        # A code fence with the header repeated under a version name, prose after.
        ("```python\ndef priority_v2(item, bins):\n    return item - bins\n```\nThis should be better.",
         "return item - bins"),
        # Tabs instead of spaces.
        ("\tx = item + 1\n\treturn x * bins\n", "return x * bins"),
        # A further function after the body.
        ("    return bins / item\n\n\ndef priority_v3(item, bins):\n    return 0\n",
         "return bins / item"),
        # Text after the body at column zero.
        ("    return bins + item\nThe function above adds item.\n", "return bins + item"),
        # Cut off in the middle of the last line: the unfinished statement goes.
        ("    s = bins - item\n    return s\n    t = (s +", "return s"),
        # A fence without a language and a header whose signature spans lines.
        ("```\ndef priority(item,\n             bins):\n    return -bins\n```", "return -bins"),
        # The body written at column zero, as chatty models sometimes do.
        ("x = bins - item\nreturn -x\n", "return -x"),
    ],
)
def test_trim_completion_keeps_one_body(completion, expected_return):
    body = code.trim_completion(completion, "priority")
    program = code.header(PARENT) + body
    assert expected_return in program
    assert program.count("def ") == 1
    code.parse(program)


@pytest.mark.parametrize("completion", ["", "   \n", "Sure! I can help with that.",
                                        "    return (bins +"])
def test_trim_completion_rejects_text_without_a_body(completion):
    with pytest.raises(code.CodeError):
        code.trim_completion(completion, "priority")


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


def test_header_and_function_source():
    source = "import numpy\n\n@decorator\ndef g(a, b=2, *c):\n    return a\n"
    program = code.function_source(source, "g")
    assert not program.startswith("@")
    assert code.header(program, "g_v1") == "def g_v1(a, b=2, *c):\n"
    with pytest.raises(code.CodeError, match="no top-level function 'h'"):
        code.function_source(source, "h")


def test_parse_error_names_the_line():
    with pytest.raises(code.CodeError, match=r"x.py:2: syntax error"):
        code.parse("a = 1\nb = (\n", "x.py")
