"""The README's quick start, shortened: the CLI, the TSP spec, the mutation
proposer and the sandbox together."""

import json
from pathlib import Path

from funsearch import cli, runlog

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_improves_on_nearest_neighbour(tmp_path, capsys):
    code = cli.main(["run", str(ROOT / "experiments" / "tsp_quickstart.toml"),
                     "--max-samples", "300", "--out", str(tmp_path), "--runtime", "inline"])
    assert code == 0
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / runlog.SUMMARY).read_text())
    events = list(runlog.read_events(run_dir))
    initial = next(e for e in events if e["kind"] == "evaluation" and e["sample"] is None)
    assert summary["best_score"] > initial["score"]  # better than nearest neighbour
    assert set(summary["holdout"]) == {"valid", "holdout"}
    assert sum(e["kind"] == "sample" for e in events) == 300
    assert "best score on 'train'" in capsys.readouterr().out


def test_run_with_a_bad_experiment_file_prints_the_key_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[problem]\nspec = "x.py"\n[database]\nislandz = 2\n')
    assert cli.main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'database.islandz'" in err and "Traceback" not in err


def test_check_prints_the_initial_program_and_baselines(capsys):
    assert cli.main(["check", str(ROOT / "problems" / "tsp.py"), "--inputs", "train"]) == 0
    out = capsys.readouterr().out
    assert "initial" in out and "baseline nearest_neighbour" in out and "isolation" in out


def test_evaluate_scores_a_program_file_beside_the_baselines(tmp_path, capsys):
    program = tmp_path / "mine.py"
    program.write_text(
        "import numpy as np\n\n"
        "def select_next_node(current_node, destination_node, unvisited_nodes, distance_matrix):\n"
        "    return unvisited_nodes[0]\n")
    assert cli.main(["evaluate", str(ROOT / "problems" / "tsp.py"), str(program),
                     "--inputs", "valid"]) == 0
    out = capsys.readouterr().out
    assert "mine.py" in out and "nearest_neighbour" in out and "gap_percent" in out


def test_evaluate_names_the_file_without_the_evolved_function(tmp_path, capsys):
    program = tmp_path / "other.py"
    program.write_text("def something_else():\n    return 1\n")
    assert cli.main(["evaluate", str(ROOT / "problems" / "tsp.py"), str(program)]) == 2
    assert "other.py: no top-level function 'select_next_node'" in capsys.readouterr().err
