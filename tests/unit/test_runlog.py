"""The event log: one JSON line per event, readable during and after a crash."""

import json

import numpy as np
import pytest

from funsearch import runlog


def test_events_are_appended_as_json_lines_with_numpy_values(tmp_path):
    log = runlog.RunLog(tmp_path)
    log.append("sample", sample=0, latency=np.float64(0.5), parents=(1, 2))
    log.append("evaluation", scores={"a": np.float32(1.5)})
    events = list(runlog.read_events(tmp_path))
    assert [event["kind"] for event in events] == ["sample", "evaluation"]
    assert events[0]["parents"] == [1, 2] and events[1]["scores"] == {"a": 1.5}
    log.close()


def test_truncated_last_line_is_skipped_with_a_warning(tmp_path):
    log = runlog.RunLog(tmp_path)
    log.append("sample", sample=0)
    log.close()
    with open(tmp_path / runlog.EVENTS, "a") as file:
        file.write('{"kind": "sample", "sam')
    with pytest.warns(UserWarning, match=r"events.jsonl:2: skipped"):
        events = list(runlog.read_events(tmp_path))
    assert len(events) == 1


def test_new_run_dirs_are_unique(tmp_path):
    first = runlog.new_run_dir(tmp_path, "x")
    second = runlog.new_run_dir(tmp_path, "x")
    assert first != second and first.name.startswith("x-")


def test_config_and_best_are_written_whole(tmp_path):
    log = runlog.RunLog(tmp_path)
    log.write_config({"seed": 1})
    log.write_best("def f():\n    return 1\n")
    assert json.loads((tmp_path / runlog.CONFIG).read_text()) == {"seed": 1}
    assert (tmp_path / runlog.BEST).read_text().startswith("def f")
    assert not list(tmp_path.glob("*.tmp"))
