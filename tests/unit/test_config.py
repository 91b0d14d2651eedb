"""Experiment files: defaults, durations, and errors that name the key."""

import pytest

from funsearch import config

MINIMAL = '[problem]\nspec = "../problems/tsp.py"\n'


def write(tmp_path, text):
    path = tmp_path / "experiment.toml"
    path.write_text(text)
    return path


def test_minimal_file_gets_defaults_and_resolves_the_spec_against_its_folder(tmp_path):
    loaded = config.load(write(tmp_path, MINIMAL))
    assert loaded.database.islands == 10 and loaded.database.functions_per_prompt == 2
    assert loaded.samplers[0].backend == "mutation"
    assert loaded.spec_path() == (tmp_path / "../problems/tsp.py").resolve()


def test_unknown_key_is_named_with_the_file(tmp_path):
    path = write(tmp_path, MINIMAL + "[database]\nislandz = 3\n")
    with pytest.raises(config.ConfigError, match=r"experiment.toml: unknown key 'database.islandz'"):
        config.load(path)


def test_mistyped_value_is_named(tmp_path):
    path = write(tmp_path, MINIMAL + "[evaluator]\nworkers = \"many\"\n")
    with pytest.raises(config.ConfigError, match=r"key 'evaluator.workers'"):
        config.load(path)


def test_sampler_key_is_named_with_its_index(tmp_path):
    path = write(tmp_path, MINIMAL + '[[samplers]]\nname = "a"\ntemprature = 1\n')
    with pytest.raises(config.ConfigError, match=r"unknown key 'samplers.0.temprature'"):
        config.load(path)


def test_missing_problem_and_bad_toml(tmp_path):
    with pytest.raises(config.ConfigError, match="missing key 'problem'"):
        config.load(write(tmp_path, "seed = 1\n"))
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "seed = \n"))
    with pytest.raises(config.ConfigError, match="not found"):
        config.load(tmp_path / "nothing.toml")


@pytest.mark.parametrize("text, seconds", [(30, 30.0), ("30s", 30.0), ("10m", 600.0),
                                           ("4h", 14400.0), ("250ms", 0.25), ("1.5h", 5400.0)])
def test_durations(text, seconds):
    assert config.parse_duration(text) == seconds


def test_bad_duration_is_named(tmp_path):
    path = write(tmp_path, MINIMAL + '[evaluator]\ntimeout = "soon"\n')
    with pytest.raises(config.ConfigError, match=r"key 'evaluator.timeout'.*not a duration"):
        config.load(path)


def test_overrides_apply_dotted_keys(tmp_path):
    loaded = config.load(write(tmp_path, MINIMAL), **{"scheduler.budget.samples": 7, "seed": 3})
    assert loaded.scheduler.budget.samples == 7 and loaded.seed == 3


def test_duplicate_sampler_names_are_an_error(tmp_path):
    text = MINIMAL + '[[samplers]]\nname = "a"\n[[samplers]]\nname = "a"\n'
    with pytest.raises(config.ConfigError, match="names must be unique"):
        config.load(write(tmp_path, text))


def test_an_unknown_top_level_key_lists_the_known_ones(tmp_path):
    path = write(tmp_path, "sede = 3\n" + MINIMAL)
    with pytest.raises(config.ConfigError) as raised:
        config.load(path)
    assert str(raised.value) == (
        f"{path}: unknown key 'sede' (known: name, seed, out, problem, database, evaluator, "
        "cascade, samplers, scheduler, runtime)")


def test_an_unknown_nested_key_lists_the_keys_of_its_table(tmp_path):
    path = write(tmp_path, MINIMAL + "[scheduler.budget]\nsample = 3\n")
    with pytest.raises(config.ConfigError, match=r"unknown key 'scheduler.budget.sample' "
                                                 r"\(known: samples, wall, gpu_hours, cpu_hours, usd, "
                                                 r"target_score\)"):
        config.load(path)


@pytest.mark.parametrize("text, key, value", [
    ("scheduler.budget.wall=5m", "scheduler.budget.wall", "5m"),
    ("database.islands=8", "database.islands", 8),
    ("samplers.0.temperature=0.5", "samplers.0.temperature", 0.5),
    ('problem.holdout=["valid", "holdout"]', "problem.holdout", ["valid", "holdout"]),
    ("scheduler.balance=false", "scheduler.balance", False),
    ('name="quoted"', "name", "quoted")])
def test_set_values_are_read_as_toml_or_else_as_text(text, key, value):
    assert config.parse_assignment(text) == (key, value)


def test_set_reaches_samplers_by_index_or_name_and_the_default_sampler(tmp_path):
    path = write(tmp_path, MINIMAL)
    loaded = config.load(path, **{"samplers.mutation.settings.crossover_rate": 0.5,
                                  "scheduler.budget.wall": "5m"})
    assert loaded.samplers[0].settings == {"crossover_rate": 0.5}
    assert loaded.scheduler.budget.wall == 300.0
    assert config.load(path, **{"samplers.0.samples_per_prompt": 2}).samplers[0] \
        .samples_per_prompt == 2


def test_a_bad_set_names_the_key_as_set_on_the_command_line(tmp_path):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(config.ConfigError, match=r"\(set on the command line\): unknown key "
                                                 r"'database.islandz' \(known: islands, "):
        config.load(path, **{"database.islandz": 8})
    with pytest.raises(config.ConfigError, match=r"\(set on the command line\): key "
                                                 r"'database.islands': Input should be"):
        config.load(path, **{"database.islands": "many"})
    with pytest.raises(config.ConfigError, match=r"key 'samplers.coder.model': no item 'coder' "
                                                 r"\(give an index below 1 or a name: mutation\)"):
        config.load(path, **{"samplers.coder.model": "m"})
    with pytest.raises(config.ConfigError, match="write KEY=VALUE"):
        config.parse_assignment("database.islands")
