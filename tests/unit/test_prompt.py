"""Prompt text in FunSearch's format."""

from funsearch import prompt

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


def test_a_prompt_shows_the_same_text_when_its_programs_come_again():
    first = prompt.build_query("", "priority", [V0, V1])
    again = prompt.build_query("", "priority", [V0, V1])
    assert first == again
    assert prompt.build_query("", "priority", [V1, V0]).completion != first.completion
