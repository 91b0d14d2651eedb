"""Spec loading: roles found by decorator, errors that name file and line."""

import textwrap

import pytest

from funsearch import spec

GOOD = '''
"""A toy problem."""
import math
import funsearch

@funsearch.inputs
def train():
    return [1, 2, 3]

@funsearch.run
def evaluate(instance):
    return priority(instance)

@funsearch.score
def score(instance, output):
    return -abs(output - 2 * instance)

@funsearch.baseline
def doubled(x):
    return 2 * x

@funsearch.evolve
def priority(x):
    """Priority of x."""
    return x
'''


def write(tmp_path, text, name="problem.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_load_finds_every_role_and_the_initial_program(tmp_path):
    loaded = spec.load(write(tmp_path, GOOD))
    assert loaded.evolve_name == "priority"
    assert loaded.run_name == "evaluate"
    assert loaded.score_name == "score"
    assert loaded.input_sets == ("train",)
    assert loaded.initial_program.startswith("def priority(x):")
    assert loaded.baselines["doubled"].startswith("def priority(x):")
    assert loaded.inputs("train") == {"0": 1, "1": 2, "2": 3}
    assert loaded.score(3, 6) == 0.0
    assert "import math" in loaded.preface() and "funsearch" not in loaded.preface()


def test_program_text_replaces_the_evolved_function_and_runs(tmp_path):
    loaded = spec.load(write(tmp_path, GOOD))
    text = loaded.program_text("def priority(x):\n    return 2 * x\n")
    namespace = {}
    exec(compile(text, "best.py", "exec"), namespace)
    assert namespace["evaluate"](5) == 10
    assert "@funsearch.evolve" in text


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD.replace("@funsearch.evolve\n", ""), "no function is marked @funsearch.evolve"),
        (GOOD.replace("@funsearch.run\n", ""), "no function is marked @funsearch.run"),
        (GOOD + "\n@funsearch.evolve\ndef other(x):\n    return x\n", "more than one @funsearch.evolve"),
        (GOOD + "\ndef broken(:\n    pass\n", "syntax error"),
    ],
)
def test_spec_errors_name_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(spec.SpecError, match=message) as error:
        spec.load(path)
    assert str(path) in str(error.value)


def test_two_evolve_functions_names_the_line_of_the_second(tmp_path):
    text = GOOD + "\n@funsearch.evolve\ndef other(x):\n    return x\n"
    path = write(tmp_path, text)
    second = text.splitlines().index("def other(x):") + 1
    with pytest.raises(spec.SpecError, match=rf"{path.name}:{second}:"):
        spec.load(path)


def test_syntax_error_names_the_line(tmp_path):
    text = GOOD + "\ndef broken(:\n    pass\n"
    line = text.splitlines().index("def broken(:") + 1
    with pytest.raises(spec.SpecError, match=rf"problem.py:{line}: syntax error"):
        spec.load(write(tmp_path, text))


def test_evolve_function_not_at_top_level_is_an_error_with_its_line(tmp_path):
    text = GOOD.replace("@funsearch.evolve\ndef priority(x):",
                        "def outer():\n  @funsearch.evolve\n  def priority(x):")
    text = text.replace('    """Priority of x."""\n    return x', '    """P."""\n    return x\n  return priority')
    path = write(tmp_path, text)
    line = text.splitlines().index("  def priority(x):") + 1
    with pytest.raises(spec.SpecError, match=rf":{line}: .*not at the top level"):
        spec.load(path)


def test_missing_file_and_failing_import_are_spec_errors(tmp_path):
    with pytest.raises(spec.SpecError, match="not found"):
        spec.load(tmp_path / "absent.py")
    path = write(tmp_path, GOOD.replace("import math", "import math\nraise RuntimeError('boom')"))
    with pytest.raises(spec.SpecError, match=r"problem.py:4: importing the spec failed"):
        spec.load(path)


def test_unknown_input_set_names_the_known_ones(tmp_path):
    loaded = spec.load(write(tmp_path, GOOD))
    with pytest.raises(spec.SpecError, match="no input set 'holdout'.*train"):
        loaded.inputs("holdout")


@pytest.mark.parametrize("value, reason", [(float("nan"), "NaN"), (float("inf"), "infinite"),
                                           ("1.0", "not a number"), (None, "not a number"),
                                           (True, "not a number")])
def test_as_score_rejects_what_is_not_a_finite_number(value, reason):
    with pytest.raises(spec.ScoreError, match=reason):
        spec.as_score(value)


def test_as_score_accepts_numpy_numbers():
    import numpy as np

    assert spec.as_score(np.float32(1.5)) == 1.5
    assert spec.as_score(np.int64(3)) == 3.0
