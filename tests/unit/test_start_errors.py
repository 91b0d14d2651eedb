"""A run that cannot start says why in one `error:` line, and errors raised in
spec code name the spec file and line."""

import textwrap

import pytest

from funsearch import cli, runlog
from funsearch import spec as spec_module
from funsearch.evaluator import Evaluator, make_pool

SPEC = textwrap.dedent('''
    import funsearch


    @funsearch.inputs
    def train():
        return {"a": 3, "b": 5}


    @funsearch.run
    def evaluate(n: int) -> float:
        value = solve(n)
        return 1.0 / (value - n)


    @funsearch.evolve
    def solve(n: int) -> float:
        """Returns a number."""
        return float(n)
''')

EXPERIMENT = textwrap.dedent('''
    name = "bad"
    [problem]
    spec = "bad.py"
    inputs = "train"
    [evaluator]
    workers = 1
    [[samplers]]
    name = "mutation"
    backend = "mutation"
    [scheduler]
    budget = { samples = 10 }
    [runtime]
    kind = "inline"
''')


def _write(tmp_path, spec=SPEC):
    (tmp_path / "bad.py").write_text(spec)
    (tmp_path / "bad.toml").write_text(EXPERIMENT)
    return tmp_path / "bad.toml"


def test_a_failing_initial_program_is_one_error_line_naming_the_spec_line(tmp_path, capsys):
    experiment = _write(tmp_path)
    assert cli.main(["run", str(experiment), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    line = SPEC.splitlines().index("    return 1.0 / (value - n)") + 1
    assert "Traceback" not in err
    assert err.count("error:") == 1 and err.startswith("error:")
    assert "the initial 'solve' does not evaluate on 'train'" in err
    assert f"ZeroDivisionError: float division by zero (at bad.py:{line} in evaluate)" in err


def test_a_run_that_failed_to_start_says_so_in_its_log_and_in_show(tmp_path, capsys):
    experiment = _write(tmp_path)
    cli.main(["run", str(experiment), "--out", str(tmp_path / "runs")])
    (run_dir,) = (tmp_path / "runs").iterdir()
    kinds = [event["kind"] for event in runlog.read_events(run_dir)]
    assert kinds[-1] == "start_failed"
    capsys.readouterr()
    assert cli.main(["show", str(run_dir)]) == 0
    status = next(line for line in capsys.readouterr().out.splitlines()
                  if line.startswith("status"))
    assert status.split(maxsplit=1)[1].startswith("failed to start: " + str(tmp_path))


def test_a_resume_that_fails_to_start_leaves_the_run_as_it_was(tmp_path, capsys):
    from funsearch.reports import rundata

    assert _run(tmp_path) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    log = runlog.RunLog(run_dir)
    log.append("start_failed", reason="runtime.address 'x': could not connect")
    log.close()
    with pytest.warns(UserWarning, match="a resume failed to start"):
        run = rundata.read_run(run_dir)
    assert run.failed_start is None and run.end is not None
    assert run.warnings == [f"{run_dir}: a resume failed to start: runtime.address 'x': "
                            "could not connect"]


def test_an_error_in_the_evolved_function_names_its_line_in_the_program(tmp_path):
    spec_text = SPEC.replace('    """Returns a number."""\n    return float(n)',
                             '    """Returns a number."""\n    x = n\n    return x / 0')
    assert spec_text != SPEC
    _write(tmp_path, spec_text)
    spec = spec_module.load(tmp_path / "bad.py")
    with make_pool(spec, workers=1, timeout=20, memory_mb=1024, isolation="auto") as pool:
        evaluation = Evaluator(spec, pool).evaluate(spec.initial_program)
    assert evaluation.status == "error"
    assert evaluation.reason == ("ZeroDivisionError: division by zero (at program:4 in solve) "
                                 "[input a]")


GOOD_SPEC = SPEC.replace("return 1.0 / (value - n)", "return value")


def _run(tmp_path, *extra, spec=GOOD_SPEC, experiment=EXPERIMENT):
    (tmp_path / "bad.py").write_text(spec)
    (tmp_path / "bad.toml").write_text(experiment)
    return cli.main(["run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "runs"), *extra])


def _no_run_directory(tmp_path):
    return not (tmp_path / "runs").exists()  # nor the folder that was made for it


def test_a_settings_typo_is_an_error_before_any_run_directory_is_made(tmp_path, capsys):
    assert _run(tmp_path, "--set", "samplers.mutation.settings.crosover_rate=0.5") == 2
    assert "unknown key 'samplers.mutation.settings.crosover_rate'" in capsys.readouterr().err
    assert _no_run_directory(tmp_path)


def test_an_unknown_input_set_is_an_error_before_the_run_not_after_it(tmp_path, capsys):
    """A held-out set the spec lacks used to fail at the end, the budget spent."""
    assert _run(tmp_path, "--set", 'problem.holdout=["vallid"]') == 2
    err = capsys.readouterr().err
    assert "key 'problem.holdout': the spec bad.py has no input set 'vallid' (it has: train)" in err
    assert _no_run_directory(tmp_path)


def test_settings_that_name_parameters_the_evolved_function_lacks_are_errors(tmp_path, capsys):
    assert _run(tmp_path, "--set", 'samplers.0.settings.index_parameters=["current_node"]') == 2
    err = capsys.readouterr().err
    assert ("'current_node' is not a parameter of 'solve' in bad.py (its parameters: n)"
            in err)
    assert _no_run_directory(tmp_path)


def test_model_keys_on_the_mutation_proposer_are_errors_all_named_at_once(tmp_path, capsys):
    assert _run(tmp_path, "--set", "samplers.mutation.temperature=0.7",
                "--set", "samplers.mutation.max_tokens=64") == 2
    err = capsys.readouterr().err
    assert "key 'samplers.mutation.temperature': does not apply to backend 'mutation'" in err
    assert "key 'samplers.mutation.max_tokens': does not apply to backend 'mutation'" in err
    assert "[samplers.settings]" in err  # printed as text, not read as markup
    assert _no_run_directory(tmp_path)


def test_ray_settings_under_the_inline_runtime_are_one_warning(tmp_path, capsys):
    assert _run(tmp_path, "--set", "samplers.0.replicas=4", "--set", "evaluator.actors=2") == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert ("samplers.mutation.replicas = 4, evaluator.actors = 2 take effect only with "
            "runtime 'ray'") in err


def test_a_cluster_that_cannot_be_reached_leaves_a_run_directory_that_says_why(
        tmp_path, capsys, monkeypatch):
    """What runtime/ray_cluster.connect raises when ray.init cannot connect."""
    from funsearch import experiment
    from funsearch.config import ConfigError

    def unreachable(*args, **kwargs):
        raise ConfigError("runtime.address '10.1.2.3:6379': could not connect")

    monkeypatch.setattr(experiment, "make_backend", unreachable)
    assert _run(tmp_path) == 2
    assert capsys.readouterr().err.startswith("error: runtime.address '10.1.2.3:6379'")
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert cli.main(["show", str(run_dir)]) == 0
    assert ("failed to start: runtime.address '10.1.2.3:6379': could not connect"
            in capsys.readouterr().out)


def test_a_run_directory_that_never_logged_its_start_is_shown_as_not_started(tmp_path, capsys):
    run_dir = tmp_path / "runs" / "killed-while-starting"
    runlog.RunLog(run_dir).close()
    assert cli.main(["show", str(run_dir)]) == 0
    assert "not started: no run_start in the log yet" in capsys.readouterr().out
