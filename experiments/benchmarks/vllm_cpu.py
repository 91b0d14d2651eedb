"""vLLM on CPU with a built model: engine start, samples/s at n=4, three ways.

    python experiments/benchmarks/vllm_cpu.py [--model DIR] [--requests 20] [--max-tokens 64]

Needs vLLM's CPU build (see the README's "vLLM without a GPU"). Without
--model a small random Llama is built in a temporary folder
(funsearch/models/build.py, its defaults). The same batch of requests
(`--requests` prompts of n=4 at once, a stop string that ends completions at
different lengths) goes to: the vllm sampler in this process; the vllm
sampler in the Ray sampler actor a run uses (on a local Ray instance); and
the openai sampler against vLLM's OpenAI server on 127.0.0.1. Each row says
how long its engine took to start, the batch's samples/s and tokens/s, and
the CPU the idle engine burns between requests (all processes, per second).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cpu_clock import machine_cpu_seconds  # noqa: E402  (a sibling module)

from funsearch import prompt  # noqa: E402
from funsearch.config import SamplerConfig  # noqa: E402

PROGRAM = '''def priority(item, bins):
    """Returns a priority per bin."""
    return -(bins - item)
'''
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
           "DO_NOT_TRACK": "1", "TOKENIZERS_PARALLELISM": "false"}


def idle_cpu(seconds: float = 5.0) -> float:
    """CPUs busy on the machine while nothing is asked of the engine."""
    before, started = machine_cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    return (machine_cpu_seconds() - before) / (time.monotonic() - started)


def queries(count: int) -> list[prompt.Query]:
    return [prompt.build_query("import numpy as np\n", "priority",
                               [PROGRAM, PROGRAM.replace("item)", f"item) + {step}")])
            for step in range(count)]


def batch(sample, count: int) -> tuple[float, int, int]:
    """(seconds, samples, completion tokens) of `count` requests of n=4 at once."""
    started = time.monotonic()
    with cf.ThreadPoolExecutor(count) as pool:
        results = list(pool.map(lambda query: sample(query, 4), queries(count)))
    seconds = time.monotonic() - started
    samples = [s for result in results for s in result]
    assert all(len(result) == 4 for result in results), [len(r) for r in results]
    return seconds, len(samples), sum(s.completion_tokens for s in samples)


def config(model: str, backend: str, max_tokens: int, **fields) -> SamplerConfig:
    settings = ({"max_model_len": 2048, "dtype": "float32", "stop": ["e"], "cpus": 1}
                if backend == "vllm" else {"stop": ["e"], "timeout": "120s"})
    return SamplerConfig(name="tiny", backend=backend, model=model, gpus_per_replica=0,
                         max_tokens=max_tokens, max_concurrency=32, settings=settings, **fields)


def in_process(model: str, args) -> tuple[float, tuple[float, int, int], float]:
    from funsearch.samplers import make_sampler

    started = time.monotonic()
    sampler = make_sampler(config(model, "vllm", args.max_tokens), seed=0)
    start = time.monotonic() - started
    try:
        batch(sampler.sample, 4)  # warm-up
        return start, batch(sampler.sample, args.requests), idle_cpu()
    finally:
        sampler.close()


def in_ray_actor(model: str, args) -> tuple[float, tuple[float, int, int], float]:
    import ray

    from funsearch.runtime import ray_runtime

    ray_runtime.connect(num_cpus=2)
    try:
        started = time.monotonic()
        actor = ray_runtime._SamplerActor.options(num_cpus=1, max_concurrency=32).remote(
            config(model, "vllm", args.max_tokens), 0)
        ray.get(actor.ready.remote())
        start = time.monotonic() - started

        def sample(query, n):
            return ray.get(actor.sample.remote(query, n))

        batch(sample, 4)
        return start, batch(sample, args.requests), idle_cpu()
    finally:
        ray.shutdown()


def against_server(model: str, args) -> tuple[float, tuple[float, int, int], float]:
    from funsearch.samplers.openai_api import OpenAISampler

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
               "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "2048",
               "--dtype", "float32", "--enforce-eager"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True,
                              env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"})
    try:
        started = time.monotonic()
        url = f"http://127.0.0.1:{port}/v1"
        while True:
            if server.poll() is not None:
                raise RuntimeError("the vLLM server exited")
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        start = time.monotonic() - started
        sampler = OpenAISampler(config("", "openai", args.max_tokens, base_url=url))
        batch(sampler.sample, 4)
        measured = batch(sampler.sample, args.requests)
        sampler.close()
        return start, measured, idle_cpu()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model folder (default: build one)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="vllm-cpu-bench-"))
    os.environ.update({**OFFLINE, "VLLM_CACHE_ROOT": str(scratch / "cache"),
                       "TORCHINDUCTOR_CACHE_DIR": str(scratch / "cache" / "inductor")})
    model = args.model
    if not model:
        from funsearch.models.build import build

        model = str(build(scratch / "tiny-llama"))
    table = Table(title=f"{args.requests} requests of n=4 at once, max_tokens {args.max_tokens}, "
                        f"stop 'e', {os.cpu_count()} CPUs")
    for column in ("where", "engine start s", "batch s", "samples/s", "tokens/s",
                   "idle CPUs busy"):
        table.add_column(column, justify="left" if column == "where" else "right")
    try:
        for name, way in [("vllm sampler, in-process", in_process),
                          ("vllm sampler, Ray actor", in_ray_actor),
                          ("openai sampler, vLLM server", against_server)]:
            start, (seconds, samples, tokens), idle = way(model, args)
            table.add_row(name, f"{start:.1f}", f"{seconds:.2f}", f"{samples / seconds:.1f}",
                          f"{tokens / seconds:.0f}", f"{idle:.2f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
