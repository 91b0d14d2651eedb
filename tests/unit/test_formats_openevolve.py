"""An OpenEvolve problem folder runs as it is: the evolve block is the unit
rewritten, evaluate() runs in the sandbox on a file, its metrics are logged,
config.yaml is translated or listed, the best block is written back."""

import ast
import json
from pathlib import Path

from funsearch import cli, formats, parsing, prompt, runlog
from funsearch.config import SamplerConfig
from funsearch.formats import openevolve, openevolve_config
from funsearch.samplers.mutation.proposer import MutationSampler

DATA = Path(__file__).resolve().parents[1] / "data" / "openevolve"
FOLDER = DATA / "curve_fit"


def test_the_block_becomes_one_function_and_comes_back_as_module_code(tmp_path):
    spec = formats.load(formats.prepare(FOLDER, tmp_path))
    assert spec.evolve_name == "evolve_block"
    body = ast.parse(spec.initial_program).body[0].body
    assert [type(node).__name__ for node in body[1:]] == ["Assign", "FunctionDef", "FunctionDef"]
    block = openevolve.block_text(spec.initial_program)
    assert block.startswith("SCALE = 0.5\n\n\ndef feature(x):")


def test_check_runs_the_cascade_in_the_sandbox_and_notes_the_trust(capsys):
    assert cli.main(["check", str(FOLDER)]) == 0
    out = capsys.readouterr().out
    assert "(openevolve)" in out and "within the candidate's reach" in out
    assert "0.326129" in out  # combined_score of the initial program


def test_the_prompt_shows_the_program_around_the_block_and_its_versions(tmp_path):
    spec = formats.load(formats.prepare(FOLDER, tmp_path))
    query = prompt.build_query(spec.preface(), spec.evolve_name, [spec.initial_program])
    assert query.completion.startswith('"""Predicts y = x * x + 1')
    assert "# EVOLVE-BLOCK-START" in query.completion
    assert "#     return [float(predict(x)) for x in points]" in query.completion
    assert "def evolve_block_v0():" in query.completion and "def predict(x):" in query.completion


def test_the_offline_proposer_rewrites_a_block_of_several_functions(tmp_path):
    spec = formats.load(formats.prepare(FOLDER, tmp_path))
    query = prompt.build_query(spec.preface(), spec.evolve_name, [spec.initial_program])
    sampler = MutationSampler(SamplerConfig(name="mutation"), seed=1)
    programs = {parsing.parse(sample.text, query).program for sample in sampler.sample(query, 8)}
    programs.discard(None)
    assert programs and spec.initial_program not in programs
    for program in programs:  # each still a block of module code
        ast.parse(openevolve.block_text(program))


def test_config_yaml_is_translated_and_the_rest_listed():
    translated = openevolve_config.translate(FOLDER / "config.yaml")
    settings = translated.settings
    assert settings["scheduler"]["budget"]["samples"] == 30 and settings["seed"] == 7
    assert settings["database"]["islands"] == 3 and settings["evaluator"]["timeout"] == 20
    assert [s["model"] for s in settings["samplers"]] == ["coder-small", "coder-large"]
    assert settings["scheduler"]["weights"] == {"coder-small": 0.8, "coder-large": 0.2}
    assert translated.runner == {"cascade": True, "thresholds": [0.5]}
    (note,) = translated.notes
    assert "database.population_size" in note and "llm.system_message" in note


def test_a_short_search_logs_metrics_and_writes_the_best_block_back(tmp_path):
    code = cli.main(["run", str(DATA / "experiment.toml"), "--out", str(tmp_path),
                     "--max-samples", "24"])
    assert code == 0
    (run_dir,) = tmp_path.iterdir()
    events = list(runlog.read_events(run_dir))
    start = events[0]
    assert start["format"] == "openevolve" and "within the candidate's reach" in start["notes"][0]
    initial = next(e for e in events if e["kind"] == "evaluation" and e["sample"] is None)
    metrics = initial["metrics"]["evaluate"]
    assert metrics["cascade_stage"] == 2 and metrics["runs"] == 1.0 and "mse" in metrics
    written = (run_dir / "best_program.py").read_text()
    assert "# EVOLVE-BLOCK-START" in written and "def run_predictions(points):" in written
    ast.parse(written)
    best = json.loads((run_dir / runlog.SUMMARY).read_text())["best_score"]
    assert best >= initial["score"]
