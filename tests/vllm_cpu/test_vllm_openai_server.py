"""The openai sampler against a real vLLM OpenAI server on 127.0.0.1.

One server for the module (see conftest.py), serving the session's built
model; the last test kills it during a run, so it must stay last.
"""

from __future__ import annotations

from pathlib import Path

from funsearch import config as config_module
from funsearch import experiment, prompt, resume, runlog
from funsearch.config import SamplerConfig
from funsearch.engine import MAX_SAMPLER_FAILURES
from funsearch.samplers.openai_api import OpenAISampler
from tests.integration.log_helpers import kept_programs

ROOT = Path(__file__).resolve().parents[2]
SQRT_SPEC = ROOT / "tests" / "integration" / "sqrt_spec.py"
PROGRAM = '''def priority(item, bins):
    """Returns a priority per bin."""
    return -(bins - item)
'''


def _sampler(server, mode: str, **settings) -> OpenAISampler:
    # model "": the first model the server lists, the built folder's path.
    return OpenAISampler(SamplerConfig(
        name="served", backend="openai", base_url=server.url, mode=mode, max_tokens=32,
        settings={"timeout": "60s", **settings}))


def _query() -> prompt.Query:
    return prompt.build_query("import numpy as np\n", "priority", [PROGRAM, PROGRAM])


def test_completion_mode_returns_n_samples_with_the_servers_token_counts(vllm_server,
                                                                         tokenizer):
    sampler = _sampler(vllm_server, "completion")
    try:
        samples = sampler.sample(_query(), 3)
    finally:
        sampler.close()
    assert len(samples) == 3
    prompt_tokens = len(tokenizer(_query().completion).input_ids)
    assert sum(s.prompt_tokens for s in samples) == prompt_tokens
    assert 3 <= sum(s.completion_tokens for s in samples) <= 3 * 32
    assert sampler.counters() == {"requests": 1}


def test_chat_mode_returns_n_samples(vllm_server, tokenizer):
    sampler = _sampler(vllm_server, "chat")
    try:
        samples = sampler.sample(_query(), 2)
    finally:
        sampler.close()
    assert len(samples) == 2 and all(isinstance(s.text, str) for s in samples)
    chat = tokenizer.apply_chat_template([dict(m) for m in _query().messages], tokenize=False,
                                         add_generation_prompt=True)
    # The server rendered the model's chat template (which starts with <s> itself).
    expected = len(tokenizer(chat, add_special_tokens=False).input_ids)
    assert sum(s.prompt_tokens for s in samples) == expected


def _config(tmp_path: Path, server) -> config_module.ExperimentConfig:
    """A fast spec; the served model beside the offline proposer, which registers
    programs (the model's nonsense never does), round robin."""
    return config_module.from_dict({
        "name": "server-killed", "seed": 0, "out": str(tmp_path),
        "problem": {"spec": str(SQRT_SPEC), "inputs": "train"},
        "database": {"islands": 2},
        "evaluator": {"workers": 1, "timeout": "20s", "isolation": "process"},
        "samplers": [
            {"name": "mutation", "backend": "mutation", "samples_per_prompt": 4},
            {"name": "served", "backend": "openai", "base_url": server.url,
             "samples_per_prompt": 4, "max_tokens": 32, "max_concurrency": 2,
             "settings": {"timeout": "10s", "retries": 2, "backoff": "50ms",
                          "backoff_max": "200ms"}}],
        "scheduler": {"policy": "round_robin", "max_in_flight": 4,
                      "budget": {"samples": 100000, "wall": "3m"}},
        "runtime": {"kind": "inline"},
    })


def test_a_server_killed_during_a_run_fails_it_clearly_and_loses_nothing_registered(
        vllm_server, tmp_path):
    config = _config(tmp_path, vllm_server)
    served_before_kill: list[int] = []

    def kill_when_going(status) -> None:
        if not served_before_kill and status.counters.registered >= 5 \
                and status.counters.samples >= 40:
            served_before_kill.append(status.counters.samples)
            vllm_server.kill()

    result = experiment.run(config, on_status=kill_when_going)
    assert served_before_kill, "the run ended before the server could be killed"
    # Each request was tried three times, then failed; that many in a row end the run.
    assert result.stop_reason.startswith(
        f"sampler 'served' failed {MAX_SAMPLER_FAILURES} requests in a row"), result.stop_reason
    assert "gave up after 3 attempts" in result.stop_reason
    assert f"{vllm_server.url}: last failure: connection failed" in result.stop_reason
    events = list(runlog.read_events(result.run_dir))
    errors = [e for e in events if e["kind"] == "sampler_error"]
    assert len(errors) >= MAX_SAMPLER_FAILURES and {e["sampler"] for e in errors} == {"served"}
    served = [e for e in events if e["kind"] == "sample" and e["sampler"] == "served"]
    assert served and all(e["asked"] == e["request"] for e in served)
    # Every sample ended, and the log rebuilds exactly the programs registered.
    samples = {e["sample"] for e in events if e["kind"] == "sample"}
    ended = {e["sample"] for e in events if e["kind"] in ("rejection", "evaluation")}
    assert samples == ended - {None}
    replayed = resume.replay(result.run_dir, config)
    assert {p.id for p in replayed.database.programs()} == set(kept_programs(events))
    assert replayed.unfinished == 0
