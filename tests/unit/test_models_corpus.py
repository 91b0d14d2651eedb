"""The training corpus: the same seed gives the same corpus, built on training inputs only."""

from __future__ import annotations

import json

from funsearch import events
from funsearch.models import corpus


def test_same_seed_same_corpus_from_training_inputs_only(tmp_path):
    first = corpus.build(tmp_path / "a", seed=3, samples=120, searches=1)
    second = corpus.build(tmp_path / "b", seed=3, samples=120, searches=1)
    text = (first / corpus.CORPUS_FILE).read_text()
    assert text and text == (second / corpus.CORPUS_FILE).read_text()
    records = corpus.read(first)
    assert {record.kind for record in records} == {"improvement", "program"}
    for record in records:
        if record.kind == "improvement":  # a vllm sampler's prompt: the next version's header
            header = record.prompt.rstrip().splitlines()[-2]
            assert record.gain > 0 and header.startswith("def select_next_node_v")
    meta = json.loads((first / corpus.META_FILE).read_text())
    assert meta["inputs"] == "train" and sum(meta["counts"].values()) == len(records)
    logged = list(events.read(first / "runs" / "search-0"))
    assert [e.inputs for e in logged if isinstance(e, events.RunStart)] == ["train"]
    assert not [e for e in logged if isinstance(e, events.Holdout)]  # held-out sets unseen
