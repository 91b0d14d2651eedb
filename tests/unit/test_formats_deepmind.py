"""A DeepMind FunSearch spec file runs as it is: no `import funsearch`, inputs
from the experiment, FunSearch's prompt, the best function written back."""

import ast
import json
from pathlib import Path

from funsearch import cli, formats, prompt, runlog

DATA = Path(__file__).resolve().parents[1] / "data" / "deepmind"
SPEC = DATA / "progression_free_spec.py"


def test_a_spec_without_import_funsearch_is_detected_as_deepminds():
    assert formats.detect(SPEC) == "deepmind"
    assert formats.detect(Path(__file__).resolve().parents[2] / "problems" / "tsp.py") == "native"


def test_check_runs_the_file_with_the_inputs_given(capsys):
    assert cli.main(["check", str(SPEC), "--values", "[16, 24]"]) == 0
    out = capsys.readouterr().out
    assert "(deepmind)" in out and "initial" in out and "│ 8 " in out


def test_check_without_inputs_says_where_to_give_them(capsys):
    assert cli.main(["check", str(SPEC)]) == 2
    assert "problem table, `inputs = [8]`" in capsys.readouterr().err


def test_the_prompt_shows_the_text_above_the_first_function_and_the_docstring(tmp_path):
    spec = formats.load(formats.prepare(SPEC, tmp_path, values=[8]))
    query = prompt.build_query(spec.preface(), spec.evolve_name, [spec.initial_program])
    assert query.completion.startswith('"""Finds large sets of integers')
    assert "import numpy as np" in query.completion
    assert "joins the set (higher first)" in query.completion  # the evolve docstring
    assert "def solve" not in query.completion and "def priority_v1(" in query.completion


def test_tuples_are_given_to_the_run_function_as_tuples(tmp_path):
    problem = formats.prepare(SPEC, tmp_path, values=[[12, 7]])
    assert formats.load(problem).inputs("train") == {"0": (12, 7)}


def test_a_short_search_writes_the_best_function_back_into_the_spec_file(tmp_path):
    code = cli.main(["run", str(DATA / "experiment.toml"), "--out", str(tmp_path),
                     "--max-samples", "24"])
    assert code == 0
    (run_dir,) = tmp_path.iterdir()
    start = next(runlog.read_events(run_dir))
    assert start["format"] == "deepmind" and start["spec"] == str(SPEC)
    written = (run_dir / SPEC.name).read_text()
    tree = ast.parse(written)
    names = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert names == ["evaluate", "solve", "priority"]  # nothing added: DeepMind's format
    assert "import funsearch" not in written and "@funsearch.evolve\ndef priority(" in written
    assert json.loads((run_dir / runlog.SUMMARY).read_text())["best_score"] >= 8
