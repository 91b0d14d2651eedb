"""Record and replay: a recording serves a rerun the same texts, by prompt.

Recordings are made from the openai backend talking to the real test server
(tests/openai_server.py), so what is recorded went over HTTP; the hand-written
TSP recordings in tests/data are replayed through a whole search.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funsearch import config as config_module
from funsearch import experiment, prompt, runlog
from funsearch.config import SamplerConfig
from funsearch.samplers import make_sampler
from funsearch.samplers.backend import SamplerConfigError
from funsearch.samplers.base import SamplerError
from funsearch.samplers.replay import RecordingSampler, ReplaySampler, load, prompt_hash
from tests.openai_server import DATA, OpenAIServer, load_texts

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = [
    "def f(x):\n    return x\n",
    "def f(x):\n    return x + 1\n",
    "def f(x):\n    return 2 * x\n",
]
TEXTS = [f"    return x * {k}\n" for k in range(12)]


def _query(*programs: str) -> prompt.Query:
    return prompt.build_query("", "f", list(programs))


def _replay(path: Path, name: str = "again", **settings) -> ReplaySampler:
    config = SamplerConfig(name=name, backend="replay", settings={"path": str(path), **settings})
    sampler = make_sampler(config)
    assert isinstance(sampler, ReplaySampler)
    return sampler


@pytest.fixture
def recording(tmp_path):
    """Three requests recorded from the test server: q1, q2, then q1 again."""
    path = tmp_path / "recording.jsonl"
    with OpenAIServer(TEXTS) as server:
        config = SamplerConfig(name="live", backend="openai", base_url=server.url, model="m",
                               record=str(path), settings={"backoff": "1ms"})
        sampler = make_sampler(config)
        assert isinstance(sampler, RecordingSampler)
        q1, q2 = _query(PROGRAMS[0]), _query(PROGRAMS[1], PROGRAMS[2])
        served = {"q1": sampler.sample(q1, 2), "q2": sampler.sample(q2, 2)}
        served["q1 again"] = sampler.sample(q1, 2)
        sampler.close()
    return path, q1, q2, served


def test_recording_appends_one_line_per_sample(recording):
    path, q1, q2, served = recording
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["text"] for line in lines] == TEXTS[:6]
    assert [line["prompt_hash"] for line in lines] == [prompt_hash(q)
                                                       for q in (q1, q1, q2, q2, q1, q1)]
    assert [(line["n"], line["index"]) for line in lines] == [(2, 0), (2, 1)] * 3
    first = served["q1"][0]
    assert (lines[0]["sampler"], lines[0]["prompt_tokens"], lines[0]["completion_tokens"],
            lines[0]["latency"]) == ("live", first.prompt_tokens, first.completion_tokens,
                                     first.latency)
    assert lines[0]["completion_tokens"] > 0


def test_replay_serves_each_prompt_its_recorded_texts_in_any_order(recording):
    path, q1, q2, served = recording
    sampler = _replay(path)
    # Asked in another order than recorded: each prompt still gets its own texts.
    assert [s.text for s in sampler.sample(q2, 2)] == [s.text for s in served["q2"]]
    assert [s.text for s in sampler.sample(q1, 2)] == [s.text for s in served["q1"]]
    assert [s.text for s in sampler.sample(q1, 2)] == [s.text for s in served["q1 again"]]


def test_replay_returns_the_recorded_costs_under_its_own_name(recording):
    path, q1, _, served = recording
    replayed = _replay(path, name="again").sample(q1, 2)
    for original, again in zip(served["q1"], replayed, strict=True):
        assert again.sampler == "again"
        assert (again.latency, again.prompt_tokens, again.completion_tokens, again.gpu_seconds,
                again.usd) == (original.latency, original.prompt_tokens,
                               original.completion_tokens, original.gpu_seconds, original.usd)
    zeroed = _replay(path, costs=False).sample(q1, 1)[0]
    assert (zeroed.latency, zeroed.prompt_tokens, zeroed.completion_tokens) == (0, 0, 0)


def test_two_replays_of_one_recording_are_identical(recording):
    path, q1, q2, _ = recording
    unknown = _query(PROGRAMS[2])
    asks = [(q1, 1), (unknown, 2), (q2, 2), (q1, 3), (unknown, 1), (q1, 1)]
    runs = []
    for _ in range(2):
        sampler = _replay(path)
        runs.append([[s.text for s in sampler.sample(query, n)] for query, n in asks])
    assert runs[0] == runs[1]


def test_an_unknown_prompt_gets_the_next_unused_texts_in_order(recording):
    path, q1, _, _ = recording
    sampler = _replay(path)
    assert [s.text for s in sampler.sample(q1, 1)] == [TEXTS[0]]
    # Not recorded: the next texts in file order that no prompt has had yet.
    assert [s.text for s in sampler.sample(_query(PROGRAMS[2]), 2)] == [TEXTS[1], TEXTS[2]]
    # q1's own texts are served before anyone else's, skipping used ones.
    assert [s.text for s in sampler.sample(q1, 3)] == [TEXTS[4], TEXTS[5], TEXTS[3]]


def test_strict_replay_refuses_an_unknown_prompt(recording):
    path, q1, _, _ = recording
    sampler = _replay(path, on_miss="error")
    assert len(sampler.sample(q1, 4)) == 4
    unknown = _query(PROGRAMS[2])
    with pytest.raises(SamplerError, match=f"no unused samples for prompt {prompt_hash(unknown)}"):
        sampler.sample(unknown, 1)
    with pytest.raises(SamplerError, match="has no unused samples"):
        sampler.sample(q1, 1)  # its four recorded samples are used up


def test_hand_written_recordings_are_served_in_order_and_cycle():
    path = DATA / "recorded_tsp_completion.jsonl"
    texts = load_texts(path)
    sampler = _replay(path)
    query = _query(PROGRAMS[0])
    served = [s.text for _ in range(4) for s in sampler.sample(query, 4)]
    assert served == texts + texts[:4]


def test_a_recording_used_up_without_cycle_is_an_error(recording):
    path, q1, _, _ = recording
    sampler = _replay(path, cycle=False)
    sampler.sample(q1, 6)
    with pytest.raises(SamplerError, match="is used up"):
        sampler.sample(q1, 1)


def test_recording_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "    return 1\\n"}\n{"text": "    return\n')
    with pytest.raises(SamplerConfigError, match=r"settings\.path: .*broken\.jsonl:2: not a JSON"):
        _replay(path)
    path.write_text('{"prompt_hash": "abc"}\n')
    with pytest.raises(SamplerConfigError, match=r"broken\.jsonl:1: .*needs a string 'text'"):
        _replay(path)
    with pytest.raises(SamplerConfigError, match=r"samplers\.again\.settings\.path: no recording"):
        _replay(tmp_path / "missing.jsonl")
    with pytest.raises(SamplerConfigError, match=r"unknown key 'samplers\.again\.settings\.order'"):
        _replay(path, order=True)


def test_every_recorded_test_text_loads():
    for name in ("recorded_tsp_chat.jsonl", "recorded_tsp_completion.jsonl"):
        recorded = load(DATA / name)
        assert len(recorded) >= 12
        assert all(r.completion_tokens > 0 or not r.text for r in recorded)


def test_a_replayed_search_repeats_exactly(tmp_path):
    """The same recording gives the same run: same samples, scores and programs."""
    runs = [_search(tmp_path / f"run{index}") for index in range(2)]
    assert runs[0] == runs[1]
    kinds = [event["kind"] for event in runs[0]]
    assert kinds.count("sample") == 8 and "rejection" in kinds and "registration" in kinds


def test_recorded_chat_replies_improve_on_nearest_neighbour(tmp_path):
    events = _search(tmp_path / "run", samples=8)
    initial = next(e["score"] for e in events if e["kind"] == "evaluation" and e["sample"] is None)
    best = max(e["score"] for e in events if e["kind"] == "best")
    assert best > initial


def _search(out: Path, samples: int = 8) -> list[dict]:
    """A small inline search whose sampler replays the recorded chat replies;
    the events of its samples, without times and durations."""
    config = config_module.from_dict({
        "name": "replayed", "seed": 0, "out": str(out), "base_dir": str(ROOT / "experiments"),
        "problem": {"spec": "../problems/tsp.py", "inputs": "train"},
        "database": {"islands": 2},
        "evaluator": {"workers": 1, "timeout": "20s", "isolation": "process"},
        "samplers": [{"name": "recorded", "backend": "replay", "mode": "chat",
                      "samples_per_prompt": 4,
                      "settings": {"path": str(DATA / "recorded_tsp_chat.jsonl")}}],
        "scheduler": {"max_in_flight": 1, "budget": {"samples": samples}},
        "runtime": {"kind": "inline"},
    })
    result = experiment.run(config)
    # Measured times vary from run to run (and so do the scheduler's cost
    # estimates made from them); what the samples were and did must not.
    volatile = {"t", "duration", "latency"}
    return [{key: value for key, value in event.items() if key not in volatile}
            for event in runlog.read_events(result.run_dir) if event["kind"] in _OUTCOMES]


_OUTCOMES = {"sample", "rejection", "evaluation", "registration", "discard", "reset", "best"}
