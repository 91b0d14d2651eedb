"""The sampler-size study end to end at toy scale, on real vLLM engines on CPU.

A tiny corpus from one short offline search, two tiny models trained for
seconds (each saved as a folder the vllm sampler loads), one short search per
model from the study's experiment file, and the compare table over them: the
pipeline of experiments/sampler_sizes_study.py in a few minutes.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from experiments import sampler_sizes_report as report
from experiments import sampler_sizes_study as study
from funsearch import config as config_module
from funsearch import experiment
from funsearch.models import corpus, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_corpus(vllm_env, tmp_path_factory):
    return corpus.build(tmp_path_factory.mktemp("corpus"), seed=0, samples=120, searches=1)


def test_corpus_prompts_are_the_vllm_sampler_s_and_completions_improve(tiny_corpus):
    records = corpus.read(tiny_corpus)
    improvements = [r for r in records if r.kind == "improvement"]
    assert improvements and any(r.kind == "program" for r in records)
    assert {r.split for r in records} <= {"train", "valid"}
    for record in improvements:
        assert record.gain > 0
        assert record.prompt.rstrip().endswith('"""Improved version of `select_next_node_v1`."""'
                                               ) or "select_next_node_v1" in record.prompt
        assert record.completion.startswith("    ")
    meta = json.loads((tiny_corpus / corpus.META_FILE).read_text())
    assert meta["inputs"] == "train"


def test_two_trained_sizes_search_through_the_vllm_sampler_and_compare(tiny_corpus, tmp_path):
    settings = train.TrainSettings(cpu_minutes=0.2, evals=1, valid_texts=4, batch=4, max_tokens=512)
    models, reports = {}, {}
    for size in ("tiny", "small"):
        models[size] = tmp_path / "models" / size
        reports[size] = train.train(tiny_corpus, models[size], train.SIZES[size], settings,
                                    progress=False)
        assert (models[size] / train.CURVE_FILE).is_file()
        assert reports[size]["steps"] >= 1 and reports[size]["valid_loss"] > 0
    assert reports["small"]["parameters"] > reports["tiny"]["parameters"]
    scale = dataclasses.replace(study.QUICK, cpu_hours=0.0005, wall="90s")
    run_dirs = []
    for size, model in models.items():
        data = study.arm_config("small", 0, {"small": model}, scale, tmp_path / "runs")
        data["samplers"][0]["name"] = size
        data["scheduler"]["budget"]["samples"] = 16
        result = experiment.run(config_module.from_dict(data), run_dir=tmp_path / "runs" / size)
        run_dirs.append(result.run_dir)
        figures = report.read_figures(result.run_dir, size)
        sampler = figures.samplers[size]
        assert sampler.samples > 0 and sampler.proposal_seconds > 0  # CPU-seconds charged
        assert figures.holdout_gap is not None
    table = study.compare_text(run_dirs, "sampler")
    assert "tiny" in table and "small" in table
