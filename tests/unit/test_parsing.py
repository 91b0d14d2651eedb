"""Text becomes a program: a file's function, a model's messy sample, a proposer's tree."""

import ast

import pytest

from funsearch import code, parsing, prompt
from funsearch.samplers import sample_programs
from funsearch.samplers.base import Sample

PARENT = '''def priority(item: float, bins) -> float:
    """Returns the priority of each bin."""
    return -(bins - item)
'''
V0 = 'def priority(item, bins):\n    """Priority of each bin."""\n    return -bins\n'
V1 = 'def priority(item, bins):\n    """Priority of each bin."""\n    return -(bins - item)\n'


def query():
    return prompt.build_query("import numpy as np\n", "priority", [V0, V1])


class Given:
    """A sampler that returns the samples it was given."""

    name = "s"

    def __init__(self, samples):
        self._samples = samples

    def sample(self, query, n):
        return self._samples[:n]


def test_function_source_is_the_named_function_without_decorators():
    source = "import numpy\n\n@decorator\ndef g(a, b=2, *c):\n    return a\n"
    program = parsing.function_source(source, "g")
    assert not program.startswith("@")
    assert code.header(program, "g_v1") == "def g_v1(a, b=2, *c):\n"
    with pytest.raises(code.CodeError, match="no top-level function 'h'"):
        parsing.function_source(source, "h")


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
    body = parsing.trim_completion(completion, "priority")
    program = code.header(PARENT) + body
    assert expected_return in program
    assert program.count("def ") == 1
    code.parse(program)


@pytest.mark.parametrize("completion", ["", "   \n", "Sure! I can help with that.",
                                        "    return (bins +"])
def test_trim_completion_rejects_text_without_a_body(completion):
    with pytest.raises(code.CodeError):
        parsing.trim_completion(completion, "priority")


def test_to_program_names_the_function_and_renames_self_calls():
    program = parsing.to_program("    return priority_v2(item, bins[1:]) if len(bins) else 0\n",
                                query())
    assert code.function_name(program) == "priority"
    assert "priority_v2" not in program and "priority(item" in program


@pytest.mark.parametrize("text, reason", [
    ("", "empty completion"),
    ("I think you should use best fit.", "not code"),
    ("    return priority_v0(item, bins) * 2\n", "calls an earlier version: priority_v0"),
])
def test_to_program_rejects_with_a_reason(text, reason):
    with pytest.raises(parsing.Rejection, match=reason):
        parsing.to_program(text, query())


def test_a_reply_that_rewrites_the_program_around_a_helper_is_rejected():
    reply = (
        "Here is the code with a helper:\n\n```python\nimport numpy as np\n\n\n"
        "def _spread(bins):\n    \"\"\"Spread.\"\"\"\n    return bins.std()\n\n\n"
        "def priority_v2(item, bins):\n    return -bins + _spread(bins)\n```\nDone."
    )
    with pytest.raises(parsing.Rejection, match="rewrites the whole program: uses _spread"):
        parsing.to_program(reply, query())


def test_a_reply_with_imports_and_an_unused_helper_keeps_the_function():
    reply = ("```python\nimport numpy as np\n\ndef unused():\n    pass\n\n"
             "def priority_v2(item, bins):\n    \"\"\"Doc.\"\"\"\n    return bins - 2 * item\n```")
    program = parsing.to_program(reply, query())
    assert "return bins - 2 * item" in program


def test_sample_programs_gives_each_sample_its_program_and_hash_or_its_rejection():
    """Backends parse where the samples are made (a sampler actor with Ray); the
    engine then takes program, hash and rejection as they come."""
    query = prompt.build_query("import numpy as np", "priority", [V0, V1])
    samples = [Sample("    return bins - item  # tight\n", "s"), Sample("", "s"),
               Sample("    return priority_v0(item, bins)\n", "s")]
    good, empty, earlier = sample_programs(Given(samples), query, 3)
    assert good.text == samples[0].text
    assert good.parsed.program == parsing.to_program(samples[0].text, query)
    assert good.parsed.program_hash == code.normal_hash(good.parsed.program)
    assert (empty.parsed.program, empty.parsed.rejection) == (None, "empty completion")
    assert earlier.parsed.program is None
    assert "earlier version" in earlier.parsed.rejection


def test_a_tree_becomes_the_program_its_text_would():
    """The mutation proposer's shortcut (one unparse, no reparse) must agree with
    parse on program and hash; a body led by a string is left to parse."""
    head = parsing.head(query().head)
    tree = ast.parse("def anything(a, b):\n    x = b - a\n    return -x * 2\n").body[0]
    body, parsed, program_hash = parsing.from_tree(tree, head)
    assert parsed == parsing.parse(body, query())
    assert program_hash == parsed.program_hash
    assert parsing.body_text(tree) == body
    tree = ast.parse("def anything(a, b):\n    'text'\n    return b\n").body[0]
    assert parsing.from_tree(tree, head)[1] is None
