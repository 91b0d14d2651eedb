"""Prompt text in FunSearch's format, and samples back to programs."""

import pytest

from funsearch import code, prompt

V0 = 'def priority(item, bins):\n    """Priority of each bin."""\n    return -bins\n'
V1 = 'def priority(item, bins):\n    """Priority of each bin."""\n    return -(bins - item)\n'


def query():
    return prompt.build_query("import numpy as np\n", "priority", [V0, V1])


def test_completion_shows_versions_in_order_and_ends_in_the_next_header():
    text = query().completion
    assert text.startswith("import numpy as np")
    assert text.index("def priority_v0(") < text.index("def priority_v1(")
    assert text.rstrip().endswith('"""Improved version of `priority_v1`."""')
    assert "def priority_v2(item, bins):" in text
    assert query().version == 2


def test_chat_messages_ask_for_the_next_version():
    system, user = query().messages
    assert system["role"] == "system" and user["role"] == "user"
    assert "priority_v2" in user["content"] and "```python" in user["content"]


def test_to_program_names_the_function_and_renames_self_calls():
    program = prompt.to_program("    return priority_v2(item, bins[1:]) if len(bins) else 0\n",
                                query())
    assert code.function_name(program) == "priority"
    assert "priority_v2" not in program and "priority(item" in program


@pytest.mark.parametrize("text, reason", [
    ("", "empty completion"),
    ("I think you should use best fit.", "not code"),
    ("    return priority_v0(item, bins) * 2\n", "calls an earlier version: priority_v0"),
])
def test_to_program_rejects_with_a_reason(text, reason):
    with pytest.raises(prompt.Rejection, match=reason):
        prompt.to_program(text, query())
