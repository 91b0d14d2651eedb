"""Prompt text in FunSearch's format, and samples back to programs."""

import pytest

from funsearch import code, prompt
from funsearch.samplers import Sample

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


def test_a_reply_that_rewrites_the_program_around_a_helper_is_rejected():
    reply = (
        "Here is the code with a helper:\n\n```python\nimport numpy as np\n\n\n"
        "def _spread(bins):\n    \"\"\"Spread.\"\"\"\n    return bins.std()\n\n\n"
        "def priority_v2(item, bins):\n    return -bins + _spread(bins)\n```\nDone."
    )
    with pytest.raises(prompt.Rejection, match="rewrites the whole program: uses _spread"):
        prompt.to_program(reply, query())


def test_a_reply_with_imports_and_an_unused_helper_keeps_the_function():
    reply = ("```python\nimport numpy as np\n\ndef unused():\n    pass\n\n"
             "def priority_v2(item, bins):\n    \"\"\"Doc.\"\"\"\n    return bins - 2 * item\n```")
    program = prompt.to_program(reply, query())
    assert "return bins - 2 * item" in program


def test_parse_samples_gives_each_sample_its_program_and_hash_or_its_rejection():
    """Backends parse where the samples are made (a sampler actor with Ray); the
    engine then takes program, hash and rejection as they come."""
    query = prompt.build_query("import numpy as np", "priority", [V0, V1])
    samples = [Sample("    return bins - item  # tight\n", "s"), Sample("", "s"),
               Sample("    return priority_v0(item, bins)\n", "s")]
    good, empty, earlier = prompt.parse_samples(samples, query)
    assert good.text == samples[0].text
    assert good.parsed.program == prompt.to_program(samples[0].text, query)
    assert good.parsed.program_hash == code.normal_hash(good.parsed.program)
    assert (empty.parsed.program, empty.parsed.rejection) == (None, "empty completion")
    assert earlier.parsed.program is None
    assert "earlier version" in earlier.parsed.rejection


def test_a_prompt_shows_the_same_text_when_its_programs_come_again():
    first = prompt.build_query("", "priority", [V0, V1])
    again = prompt.build_query("", "priority", [V0, V1])
    assert first == again
    assert prompt.build_query("", "priority", [V1, V0]).completion != first.completion
