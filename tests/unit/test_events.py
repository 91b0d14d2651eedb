"""The event log's schema: what is written reads back, old logs read, newer ones say so."""

import dataclasses
import json

import pytest

from funsearch import events, runlog
from funsearch.programs import Program, Reset
from funsearch.reports import rundata

PROGRAM = Program(id=3, source="def f(x):\n    return x\n", scores={"a": 1.0, "b": 2.0},
                  score=1.5, island=1, parents=(0, 2), sampler="small", hash="abc")


def write_lines(path, *records):
    path.mkdir(parents=True, exist_ok=True)
    (path / runlog.EVENTS).write_text("".join(json.dumps(r) + "\n" for r in records))
    (path / runlog.CONFIG).write_text("{}")
    return path


def test_what_the_writers_write_reads_back_as_the_same_events(tmp_path):
    log = runlog.RunLog(tmp_path)
    written = [
        events.RunStart(name="n", seed=1, spec="s.py", isolation="process", isolation_detail="",
                        runtime="inline", samplers=["small"]),
        events.Registration.of(PROGRAM, sample=7),
        events.Reset.of(Reset(island=0, epoch=2, founder=PROGRAM, source_island=1)),
        events.Scheduler(action="ledger", extra={"unit": "seconds", "samplers": {}}),
        events.EvaluationRetry(actor=1, attempt=2, reason="died"),
    ]
    for event in written:
        log.write(event)
    log.close()
    read = list(events.read(tmp_path))
    assert [event.kind for event in read] == [
        "run_start", "registration", "reset", "scheduler", "evaluation_retry"]
    assert [event.fields() for event in read] == [event.fields() for event in written]
    assert read[0].version == events.VERSION
    assert read[1].to_program() == PROGRAM  # the hash is the registration's
    assert read[2].founder.to_program() == dataclasses.replace(PROGRAM, hash="")
    assert read[3].extra == {"unit": "seconds", "samplers": {}}


def test_registration_fields_are_the_ones_logs_have_always_had():
    assert list(events.Registration.of(PROGRAM, None).fields()) == [
        "sample", "hash", "program_id", "island", "score", "scores", "parents", "sampler",
        "program"]


def test_a_log_written_before_the_version_field_reads_as_version_one(tmp_path):
    write_lines(tmp_path, {"t": 1.0, "kind": "run_start", "name": "old", "seed": 0,
                           "spec": "s.py", "isolation": "process", "runtime": "inline",
                           "samplers": ["m"]},
                {"t": 2.0, "kind": "sample", "sample": 0, "sampler": "m", "island": 0,
                 "epoch": 0, "parents": [0], "latency": 0.5})
    start, sample = events.read(tmp_path)
    assert start.version is None and start.isolation_detail is None  # fields it lacks
    assert sample.request is None and sample.latency == 0.5


def test_unknown_kinds_and_fields_pass_through_readers(tmp_path):
    write_lines(tmp_path, {"t": 1.0, "kind": "run_start", "name": "n", "seed": 0, "spec": "s",
                           "samplers": ["m"], "version": events.VERSION},
                {"t": 2.0, "kind": "heartbeat", "load": 0.5, "name": "gpu-1"},
                {"t": 3.0, "kind": "rejection", "sample": 0, "sampler": "m", "reason": "empty",
                 "text": "", "model_version": "v2"})
    _, other, rejection = events.read(tmp_path)
    assert (other.kind, other.fields()) == ("heartbeat", {"load": 0.5, "name": "gpu-1"})
    assert rejection.extra == {"model_version": "v2"}
    assert rejection.fields()["model_version"] == "v2"
    run = rundata.read_run(tmp_path)
    assert run.kinds["heartbeat"] == 1 and run.outcomes[("rejected", "empty")] == 1


def test_a_log_of_a_newer_version_fails_naming_the_version(tmp_path):
    write_lines(tmp_path, {"t": 1.0, "kind": "run_start", "name": "n", "seed": 0, "spec": "s",
                           "samplers": [], "version": events.VERSION + 1})
    with pytest.raises(events.EventLogError, match=rf"version {events.VERSION + 1}.*newer"):
        list(events.read(tmp_path))
    with pytest.raises(events.EventLogError, match="upgrade funsearch"):
        rundata.read_run(tmp_path)
