"""`funsearch run` with a vllm sampler on a built model, under the Ray runtime.

The README's experiment (experiments/tsp_vllm_cpu.toml) with the session's
model and a small budget, run as a user runs it: the CLI starts a local Ray
instance, the replica's engine starts inside a sampler actor on vLLM's CPU
platform, and everything stops at the end. The model is random, so every
sample is a rejection with its reason; the point is that the run ends
cleanly and its log accounts for every sample's tokens and CPU-seconds.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest

from funsearch import runlog

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "experiments" / "tsp_vllm_cpu.toml"
SAMPLES = 24


def _experiment(tmp_path: Path, model: Path) -> Path:
    """The README's experiment file with this session's model and a small budget."""
    text = EXPERIMENT.read_text()
    for old, new in [('spec = "../problems/tsp.py"', f'spec = "{ROOT / "problems" / "tsp.py"}"'),
                     ('model = "../models/tiny-llama"', f'model = "{model}"'),
                     ("max_tokens = 256", "max_tokens = 64"),
                     ('budget = { samples = 400, wall = "10m" }',
                      f'budget = {{ samples = {SAMPLES}, wall = "5m" }}')]:
        assert old in text, f"{EXPERIMENT.name} no longer has {old!r}"
        text = text.replace(old, new)
    path = tmp_path / "experiment.toml"
    path.write_text(text)
    return path


# Ray's start and the engine's on 2 busy cores can take many minutes (seen: over
# 300 s while another process trained a model): the limits here are long ones.
@pytest.mark.timeout(1200 + 60)
def test_funsearch_run_with_a_vllm_sampler_on_ray(model_dir, tmp_path):
    experiment = _experiment(tmp_path, model_dir)
    result = subprocess.run(
        [sys.executable, "-m", "funsearch.cli", "run", str(experiment), "--out",
         str(tmp_path / "runs"), "--set", "runtime.start_timeout=15m"],
        capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"].startswith("sample budget reached"), summary
    events = list(runlog.read_events(run_dir))
    start = next(e for e in events if e["kind"] == "run_start")
    assert start["runtime"] == "ray"
    samples = [e for e in events if e["kind"] == "sample"]
    assert len(samples) == SAMPLES
    assert not [e for e in events if e["kind"] == "sampler_error"]
    requests = collections.Counter(e["request_id"] for e in samples)
    assert set(requests.values()) == {4}  # no request lost a sample
    for event in samples:
        assert event["asked"] == event["request"] == 4
        assert event["prompt_tokens"] > 0 and 1 <= event["completion_tokens"] <= 64
        assert event["cpu_seconds"] > 0 and event["gpu_seconds"] == 0
    rejections = {e["sample"]: e for e in events if e["kind"] == "rejection"}
    evaluated = {e["sample"] for e in events if e["kind"] == "evaluation"} - {None}
    # Every sample ended: as a rejection with its reason, or (rarely) evaluated.
    assert {e["sample"] for e in samples} == set(rejections) | evaluated
    assert all(r["reason"] for r in rejections.values())
    # One core charged for at most the run's wall time.
    wall = events[-1]["t"] - start["t"]
    assert sum(e["cpu_seconds"] for e in samples) <= wall
