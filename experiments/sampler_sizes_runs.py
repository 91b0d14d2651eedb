"""Runs of the sampler-size study that share vLLM engines, one after another in one process.

    python experiments/sampler_sizes_runs.py CONFIG.json RUN_DIR [CONFIG.json RUN_DIR ...]

Each CONFIG is a resolved experiment (experiments/sampler_sizes_study.py
writes them). A vllm sampler is made once, by the first run that names it,
and handed to every later run that names it (the inline runtime takes ready
samplers), so an engine starts once per arm instead of once per seed; the
engine's own sampling seed is then the first run's, while each run's database
and offline proposer are seeded by its own seed. Engines close at the end.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from funsearch import config as config_module
from funsearch import experiment
from funsearch.samplers import make_sampler


class _Kept:
    """A sampler lent to one run: the run's close() leaves it open for the next."""

    def __init__(self, sampler: Any):
        self._sampler = sampler

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sampler, name)

    def close(self) -> None:
        pass


def run_all(pairs: list[tuple[Path, Path]]) -> None:
    engines: dict[str, Any] = {}
    try:
        for config_path, run_dir in pairs:
            config = config_module.from_dict(json.loads(config_path.read_text()))
            samplers = {}
            for sampler in config.samplers:
                if sampler.backend != "vllm":
                    samplers[sampler.name] = make_sampler(sampler, seed=config.seed)
                    continue
                if sampler.name not in engines:
                    engines[sampler.name] = make_sampler(sampler, seed=config.seed)
                samplers[sampler.name] = _Kept(engines[sampler.name])
            result = experiment.run(config, run_dir=run_dir, samplers=samplers)
            print(f"{run_dir}: {result.stop_reason}; best {result.best_score}", flush=True)
    finally:
        for engine in engines.values():
            engine.close()


def main(argv: list[str]) -> int:
    paths = [Path(arg) for arg in argv]
    run_all(list(zip(paths[0::2], paths[1::2], strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
