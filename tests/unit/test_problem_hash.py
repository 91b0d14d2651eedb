"""What makes runs comparable: the problem's hash (spec.problem_hash), logged in run_start."""

from __future__ import annotations

import shutil
from pathlib import Path

from funsearch import formats
from funsearch import spec as spec_module
from tests.unit.test_start_errors import GOOD_SPEC

ROOT = Path(__file__).resolve().parents[2]


def _hash(tmp_path: Path, text: str, name: str = "spec.py") -> str:
    path = tmp_path / name
    path.write_text(text)
    return spec_module.load(path).problem_hash("train")


def test_another_initial_program_or_comments_are_the_same_problem(tmp_path):
    same = _hash(tmp_path, GOOD_SPEC)
    assert _hash(tmp_path, GOOD_SPEC.replace("return float(n)", "return 2.0 * n"), "b.py") == same
    assert _hash(tmp_path, "# a comment\n" + GOOD_SPEC, "c.py") == same


def test_other_inputs_or_another_run_function_are_another_problem(tmp_path):
    same = _hash(tmp_path, GOOD_SPEC)
    assert _hash(tmp_path, GOOD_SPEC.replace('"b": 5', '"b": 6'), "b.py") != same
    assert _hash(tmp_path, GOOD_SPEC.replace("return value", "return -value"), "c.py") != same


def test_an_openevolve_folder_counts_its_evaluator(tmp_path):
    def folder_hash(folder: Path, out: Path) -> str:
        problem = formats.prepare(folder, out)
        spec = formats.load(problem)
        return spec.problem_hash(spec.input_sets[0], formats.scored_files(problem))

    original = ROOT / "tests" / "data" / "openevolve" / "curve_fit"
    changed = shutil.copytree(original, tmp_path / "curve_fit")
    with open(changed / "evaluator.py", "a") as file:
        file.write("\nSCALE = 2  # another evaluator\n")
    first = folder_hash(original, tmp_path / "a")
    assert folder_hash(original, tmp_path / "b") == first
    assert folder_hash(changed, tmp_path / "c") != first
