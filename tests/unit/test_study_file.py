"""STUDY.toml: arms as one experiment with overrides, errors that name the key."""

from pathlib import Path

import pytest

from funsearch import cli
from funsearch.study import studyfile

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "experiments" / "tsp_quickstart.toml"


def study_text(arms: str, extra: str = "") -> str:
    return (f'name = "s"\nexperiment = "{QUICKSTART}"\nbudget = 400\n{extra}\n'
            f'[runs]\ncount = 4\n{arms}')


def test_an_arm_is_the_experiment_with_its_overrides_a_budget_and_a_seed(tmp_path):
    path = tmp_path / "STUDY.toml"
    path.write_text(study_text(
        '[arms.one]\noverrides = { "samplers.mutation.samples_per_prompt" = 1 }\n'
        '[arms.cross]\noverrides = { "samplers.0.settings.crossover_rate" = 0.6 }\n',
        extra='overrides = { "runtime.kind" = "inline" }'))
    study = studyfile.load(path)
    config = studyfile.arm_config(study, "cross", 0.25, seed=7, out=str(tmp_path))
    assert config.samplers[0].settings["crossover_rate"] == 0.6
    assert config.samplers[0].settings["index_parameters"]  # the file's settings kept
    assert config.scheduler.budget.samples == 100 and config.scheduler.budget.wall is None
    assert (config.seed, config.runtime.kind, config.name) == (7, "inline", "s-cross")
    assert studyfile.arm_config(study, "one", 1.0, 0, ".").samplers[0].samples_per_prompt == 1


def test_an_override_of_an_unknown_sampler_names_the_arm_and_key(tmp_path):
    path = tmp_path / "STUDY.toml"
    path.write_text(study_text('[arms.a]\n[arms.b]\noverrides = { "samplers.gpt.model" = "x" }\n'))
    with pytest.raises(studyfile.StudyError, match="arm 'b'.*samplers.gpt.model.*no item 'gpt'"):
        studyfile.load(path)


def test_a_mistyped_key_is_an_error_from_the_command_line(tmp_path, capsys):
    path = tmp_path / "STUDY.toml"
    path.write_text(study_text("[arms.a]\n[arms.b]\n", extra="budgett = 3"))
    assert cli.main(["study", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}: unknown key 'budgett' (known: name, experiment, " in err
    assert "budget, " in err


def test_a_mistyped_key_in_an_arm_lists_the_keys_an_arm_knows(tmp_path):
    path = tmp_path / "STUDY.toml"
    path.write_text(study_text('[arms.a]\n[arms.b]\noverride = { "seed" = 1 }\n'))
    known = ", ".join(studyfile.ArmFile.model_fields)
    with pytest.raises(studyfile.StudyError) as raised:
        studyfile.load(path)
    assert str(raised.value) == f"{path}: unknown key 'arms.b.override' (known: {known})"


def test_run_budgets_are_fractions_of_b(tmp_path):
    path = tmp_path / "STUDY.toml"
    path.write_text(study_text("budgets = [0.5, 2]\n[arms.a]\n[arms.b]\n"))
    with pytest.raises(studyfile.StudyError, match="fractions of B"):
        studyfile.load(path)
