"""Nothing fails silently: a proposer stuck on a tiny body, and the warning
when a sampler's samples all come to nothing.

The graph colouring spec (tests/data/graph_colouring.py) starts from one
expression, `return degrees.astype(float)`, on which no operator of the
mutation proposer used to find anything to change: a run of 300 samples
ended `duplicates 300 registered 0`, and nothing said why.
"""

from pathlib import Path

from funsearch import cli, cli_live, experiment, runlog
from funsearch import config as config_module
from funsearch.progress import Counters, Status
from funsearch.stall import DUPLICATE, DUPLICATE_OF_PARENT, StallWatcher

SPEC = Path(__file__).resolve().parents[1] / "data" / "graph_colouring.py"
INITIAL = "-> np.ndarray:", "return degrees.astype(float)"


def graph_config(tmp_path, samples, annotation=INITIAL[0], body=INITIAL[1]):
    """The graph colouring experiment, with the evolved function's return
    annotation and body replaced as given."""
    text = SPEC.read_text()
    assert all(part in text for part in INITIAL)
    text = text.replace(INITIAL[0], annotation).replace(INITIAL[1], body)
    (tmp_path / "graph_colouring.py").write_text(text)
    return config_module.from_dict({
        "name": "gc", "seed": 0, "out": str(tmp_path / "runs"),
        "problem": {"spec": "graph_colouring.py", "inputs": "train"},
        "database": {"islands": 2, "functions_per_prompt": 2},
        "evaluator": {"workers": 2, "timeout": 20, "isolation": "process"},
        "samplers": [{"name": "mutation", "backend": "mutation", "samples_per_prompt": 4}],
        "scheduler": {"budget": {"samples": samples}, "max_in_flight": 4},
        "runtime": {"kind": "inline"},
        "base_dir": str(tmp_path),
    })


def events_of(run_dir, kind):
    return [event for event in runlog.read_events(run_dir) if event["kind"] == kind]


def test_the_proposer_gets_going_on_a_one_expression_body(tmp_path):
    result = experiment.run(graph_config(tmp_path, samples=100))
    assert result.counters["registered"] > 50
    assert result.counters["duplicates"] < 10
    assert events_of(result.run_dir, "stall") == []


def test_a_body_the_proposer_cannot_change_is_a_stall_warning_not_silence(tmp_path):
    """Returned as a list, the body offers no operator anything: every sample
    is a rejection that says so, and the run warns once, naming the sampler."""
    config = graph_config(tmp_path, samples=100, annotation="-> list:", body="return list(degrees)")
    statuses = []
    result = experiment.run(config, on_status=statuses.append)
    assert result.counters["registered"] == 0 and result.counters["rejected"] == 100
    (stall,) = events_of(result.run_dir, "stall")
    assert stall["sampler"] == "mutation" and stall["count"] == 50
    (reason,) = stall["reasons"]
    assert reason.startswith("no new child in") and "found anything to change" in reason
    assert statuses[-1].warnings == [stall["message"]]


def test_a_stall_is_reported_once_until_a_new_program_ends_it():
    watcher = StallWatcher(threshold=3)
    reported = [watcher.wasted("m", DUPLICATE_OF_PARENT) for _ in range(5)]
    assert [stall is not None for stall in reported] == [False, False, True, False, False]
    assert reported[2].reasons == {DUPLICATE_OF_PARENT: 3} and reported[2].sampler == "m"
    assert watcher.wasted("other", DUPLICATE) is None  # samplers are watched apart
    watcher.new("m")
    stalls = [watcher.wasted("m", f"not code: line {line}") for line in (3, 4, 5)]
    assert stalls[-1] is not None and stalls[-1].reasons == {"not code: line 3": 3}
    assert len(watcher.warnings) == 2


def test_the_live_view_prints_each_warning_once(capsys):
    warning = "sampler 'mutation' stalled: its last 50 samples were all duplicates"
    with cli_live.LiveView(cli._console()) as show:
        for warnings in ([], [warning], [warning]):
            show(Status(1.0, Counters(), None, [], 0.0, None, warnings))
    out = capsys.readouterr().out
    assert out.count(warning) == 1 and "warning:" in out
