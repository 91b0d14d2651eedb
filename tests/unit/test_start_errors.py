"""A run that cannot start says why in one `error:` line, and errors raised in
spec code name the spec file and line."""

import textwrap

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
    assert "failed to start: " + str(tmp_path) in capsys.readouterr().out


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
