"""Issue 24's attacks in every path a user scores programs by: `check`,
`evaluate` and a search. Each spec here has every attack as a baseline, so one
`check` or `evaluate` runs them all beside the program."""

from __future__ import annotations

import itertools
import statistics

from funsearch import cli, experiment, runlog
from funsearch import config as config_module
from funsearch.samplers import Sample
from tests.security.forgery import (
    ATTACKS,
    HONEST_SCORES,
    HOST_SCORED,
    SELF_SCORED,
    marked,
    program,
    spec_text,
    spec_with_baselines,
)
from tests.security.test_forgery import SPLIT
from tests.unit.test_cli_check import tables

SPLIT_NOTE = "scoring: the run function 'run', the program in a process of its own (split on by auto)"


def expected_cell(attack: str) -> str:
    """How `check` shows the attack's row under a split: its mean score, or the
    start of why it was rejected."""
    status, expected = SPLIT[attack]
    if status == "ok":
        return f"{statistics.fmean(expected):.6g}"
    if attack == "huge_return":  # check's own result limit
        return "invalid_output: an answer of 80000005 bytes from the program, over the limit"
    return f"{status}: {expected}"[:120]


def rows_by_program(out: str) -> dict[str, str]:
    return {row[1].removeprefix("baseline "): row[2] for row in tables(out)}


def test_check_scores_every_attack_as_it_is_where_the_run_function_scores(tmp_path, capsys):
    spec = tmp_path / "self_scored.py"
    spec.write_text(spec_with_baselines(SELF_SCORED))
    assert cli.main(["check", str(spec)]) == 0
    out = capsys.readouterr().out
    assert SPLIT_NOTE in out
    assert "forgeable: nothing but the program's own answers" in out
    rows = rows_by_program(out)
    assert rows.pop("initial") == f"{statistics.fmean(HONEST_SCORES):.6g}"
    for attack, cell in rows.items():
        assert cell.startswith(expected_cell(attack)), (attack, cell)


def test_evaluate_rejects_issue_24s_program_and_scores_the_rest_as_they_are(tmp_path, capsys):
    spec = tmp_path / "self_scored.py"
    spec.write_text(spec_with_baselines(SELF_SCORED))
    forged = tmp_path / "forged.py"
    forged.write_text(program("result_frame"))
    assert cli.main(["evaluate", str(spec), str(forged)]) == 1
    out = capsys.readouterr().out
    assert SPLIT_NOTE in out
    rows = rows_by_program(out)
    assert rows.pop("forged.py") == expected_cell("result_frame")
    for attack, cell in rows.items():
        assert cell.startswith(expected_cell(attack)), (attack, cell)


DEEPMIND = '''
"""solve(n) may claim at most n (DeepMind's format: the run function scores)."""


@funsearch.run
def evaluate(n):
  value = solve(n)
  return float(value) if value <= n else 0.0


@funsearch.evolve
def solve(n):
  return n / 2
'''


def test_issue_24s_program_in_a_deepmind_spec_is_rejected_and_the_truth_scores(tmp_path, capsys):
    spec = tmp_path / "deepmind_spec.py"
    spec.write_text(DEEPMIND + "\n\n" + "\n\n".join(
        f"@funsearch.baseline\n{program(attack).replace('def solve', f'def {attack}')}"
        for attack in ("result_frame", "patched_builtin", "answer_frame")))
    assert cli.main(["check", str(spec), "--values", "[3, 5]"]) == 0
    out = capsys.readouterr().out
    assert "scoring: the run function 'evaluate', the program in a process of its own" in out
    rows = rows_by_program(out)
    assert rows["initial"] == "2"
    assert rows["result_frame"] == expected_cell("result_frame")
    assert rows["patched_builtin"] == "1"  # it returned 1: worth 1, not the 1e9 it tried
    assert rows["answer_frame"] == "0"


def test_check_on_a_host_scored_spec_says_what_stays_forgeable_and_bounds_it(tmp_path, capsys):
    spec = tmp_path / "host_scored.py"
    spec.write_text(spec_with_baselines(HOST_SCORED))
    assert cli.main(["check", str(spec), "--per-input"]) == 0
    out = capsys.readouterr().out
    assert "scoring: 'score' on the host, the program in the same process (split off by auto)" in out
    assert "forgeable: the outputs (any that 'score' accepts" in out
    assert "--split on closes this" in out
    for name, cell in rows_by_program(out).items():
        if cell[:1].isdigit() or cell[:1] == "-":  # scored: at most 3 and 5, per input
            per_input = [float(value) for value in cell.split()[1:]]
            assert len(per_input) == 2 and per_input[0] <= 3 and per_input[1] <= 5, (name, cell)
        else:
            assert cell.split(":")[0] in ("invalid_output", "error", "crashed", "forbidden"), cell


def test_unsplit_check_warns_that_the_score_is_forgeable_and_it_is(tmp_path, capsys):
    spec = tmp_path / "self_scored.py"
    spec.write_text(spec_with_baselines(SELF_SCORED))
    assert cli.main(["check", str(spec), "--split", "off"]) == 0
    out = capsys.readouterr().out
    assert "scoring: the run function 'run', the program in the same process (split off)" in out
    assert ("forgeable: the score itself: 'run' returns it in the program's own process; "
            "--split on closes this") in out
    assert rows_by_program(out)["patched_builtin"] == "1e+09"


def test_run_says_at_its_start_who_scores_and_what_stays_forgeable(tmp_path, capsys):
    (tmp_path / "spec.py").write_text(spec_text(SELF_SCORED))
    experiment_file = tmp_path / "forgery.toml"
    experiment_file.write_text(
        'name = "forgery"\n[problem]\nspec = "spec.py"\n[database]\nislands = 1\n'
        '[evaluator]\nworkers = 1\n[runtime]\nkind = "inline"\n')
    arguments = ["run", str(experiment_file), "--max-samples", "1", "--out", str(tmp_path)]
    assert cli.main(arguments) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("run directory: ")
    assert lines[1:3] == [
        "scoring: the run function 'run', the program in a process of its own (split on)",
        "forgeable: nothing but the program's own answers"]


class ScriptedSampler:
    """Proposes the attacks, each once, then the honest program again."""

    def __init__(self, name: str, texts: list[str]) -> None:
        self.name = name
        self._texts = itertools.chain(texts, itertools.repeat("    return n / 2\n"))

    def sample(self, query, n):
        return [Sample(next(self._texts), self.name, latency=0.001) for _ in range(n)]


def search(tmp_path, spec_text: str) -> experiment.RunResult:
    (tmp_path / "spec.py").write_text(spec_text)
    config = config_module.from_dict({
        "name": "forgery", "seed": 0, "out": str(tmp_path / "runs"),
        "problem": {"spec": "spec.py", "inputs": "train"},
        "database": {"islands": 1, "functions_per_prompt": 1},
        "evaluator": {"workers": 2, "timeout": 30},
        "samplers": [{"name": "scripted", "samples_per_prompt": 2}],
        "scheduler": {"budget": {"samples": len(ATTACKS)}, "max_in_flight": 2},
        "runtime": {"kind": "inline"},
        "base_dir": str(tmp_path),
    })
    sampler = ScriptedSampler("scripted", [marked(attack) for attack in ATTACKS])
    return experiment.run(config, samplers={"scripted": sampler})


def evaluations_by_attack(run_dir) -> dict[str, dict]:
    found = {}
    for event in runlog.read_events(run_dir):
        if event["kind"] == "evaluation" and event["sample"] is not None:
            found.update({attack: event for attack in ATTACKS
                          if f"_attack = {attack!r}" in event["program"]})
    return found


def test_a_search_scores_every_attack_as_it_is_where_the_run_function_scores(tmp_path):
    result = search(tmp_path, spec_text(SELF_SCORED))
    start = next(e for e in runlog.read_events(result.run_dir) if e["kind"] == "run_start")
    assert (start["split"], start["forgeable"]) == (True, "")
    assert result.best_score == statistics.fmean(HONEST_SCORES)  # no attack did better
    found = evaluations_by_attack(result.run_dir)
    assert sorted(found) == sorted(ATTACKS)
    for attack, event in found.items():
        status, expected = SPLIT[attack]
        assert event["status"] == status, (attack, event["reason"])
        if status == "ok":
            assert list(event["scores"].values()) == expected


def test_a_search_on_a_host_scored_spec_logs_what_stays_forgeable_and_bounds_it(tmp_path):
    result = search(tmp_path, spec_text(HOST_SCORED))
    start = next(e for e in runlog.read_events(result.run_dir) if e["kind"] == "run_start")
    assert start["split"] is False
    assert start["forgeable"].startswith("the outputs (any that 'score' accepts")
    assert '[evaluator] split = "on" closes this' in start["forgeable"]
    assert result.best_score == statistics.fmean(HONEST_SCORES)
    found = evaluations_by_attack(result.run_dir)
    assert sorted(found) == sorted(ATTACKS)
    for event in found.values():  # at most n for n = 3 and 5: what an honest claim can score
        assert event["status"] != "ok" or (event["scores"]["a"] <= 3 and event["scores"]["b"] <= 5)

