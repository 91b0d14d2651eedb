"""An experiment as pydantic models, loaded from one TOML file.

Every model forbids unknown keys, so a typo is an error that names the key and
the file instead of a silently ignored setting. Defaults are FunSearch's
published settings where it has one.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "ms": 0.001}


def parse_duration(value: Any) -> float | None:
    """Seconds from 30, 2.5, "30s", "10m", "4h", "1d" or "250ms"."""
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return None if value is None else float(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-z]*)\s*", value)
        if match and match.group(2) in _UNITS:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"not a duration: {value!r} (write e.g. 30, \"30s\", \"10m\" or \"4h\")")


Duration = Annotated[float, BeforeValidator(parse_duration)]
OptionalDuration = Annotated[float | None, BeforeValidator(parse_duration)]
# "auto" | "on" | "off"; true and false mean "on" and "off".
Switch = Annotated[Literal["auto", "on", "off"], BeforeValidator(
    lambda value: {True: "on", False: "off"}[value] if isinstance(value, bool) else value)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProblemConfig(_Strict):
    """spec: path of the spec file, relative to the experiment file.
    inputs: the input set the search scores on.
    holdout: input sets the best program is scored on at the end (overfitting
      shows as a gap between these and the training score)."""

    spec: str
    inputs: str = "train"
    holdout: list[str] = Field(default_factory=list)


class DatabaseConfig(_Strict):
    """islands: independent populations.
    functions_per_prompt: versions shown in one prompt.
    reset_every: reset the weaker half of the islands every this many
      registrations (None: not by count).
    reset_period: ... or every this many seconds (None: not by time).
    temperature_init, temperature_period: cluster sampling temperature
      T = T0 * (1 - (n mod P) / P), n = programs registered on the island.
    length_temperature: softmax temperature of the short-program bias inside a
      cluster."""

    islands: int = Field(10, ge=1)
    functions_per_prompt: int = Field(2, ge=1)
    reset_every: int | None = Field(None, ge=1)
    reset_period: OptionalDuration = 4 * 3600.0
    temperature_init: float = Field(0.1, gt=0)
    temperature_period: int = Field(30_000, ge=1)
    length_temperature: float = Field(1.0, gt=0)


class EvaluatorConfig(_Strict):
    """workers: sandbox processes per evaluator actor; actors: evaluator actors
    (Ray runtime). timeout: wall-clock limit of one evaluation (all inputs).
    memory_mb: address-space limit of the evaluated program.
    split: run the program in a process of its own, apart from the spec's run
      function, which calls it through a pipe: then a program cannot forge
      what the run function returns. Costs a round trip per call (see
      experiments/benchmarks/split_process_cost.py); "auto" splits where the
      run function returns the score itself (no @funsearch.score)."""

    workers: int = Field(2, ge=1)
    actors: int = Field(1, ge=1)
    timeout: Duration = 30.0
    memory_mb: int = Field(2048, ge=64)
    isolation: Literal["auto", "bwrap", "process"] = "auto"
    split: Switch = "auto"


class SamplerConfig(_Strict):
    """One proposer. Backends: mutation (no model), openai, vllm, replay.
    settings: backend-specific options, validated by the backend.
    record: a JSONL file every sample of this sampler is appended to, for the
      replay backend (any backend can be recorded).
    price_per_gpu_hour, price_per_1k_tokens: dollars, for the `usd` of a
      sample whose backend reports no price of its own (budget.sample_cost)."""

    name: str
    backend: Literal["mutation", "openai", "vllm", "replay"] = "mutation"
    model: str = ""
    size: str = ""
    replicas: int = Field(1, ge=1)
    gpus_per_replica: float = Field(0, ge=0)
    samples_per_prompt: int = Field(4, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(512, ge=1)
    mode: Literal["completion", "chat"] = "completion"
    base_url: str = ""
    api_key_env: str = ""
    max_concurrency: int = Field(8, ge=1)
    settings: dict[str, Any] = Field(default_factory=dict)
    record: str = ""
    price_per_gpu_hour: float = Field(0.0, ge=0)
    price_per_1k_tokens: float = Field(0.0, ge=0)


class Budget(_Strict):
    """Stop conditions; the run ends cleanly when the first is reached."""

    samples: int | None = Field(None, ge=1)
    wall: OptionalDuration = None
    gpu_hours: float | None = Field(None, gt=0)
    usd: float | None = Field(None, gt=0)
    target_score: float | None = None


class SchedulerConfig(_Strict):
    """policy: which sampler serves the next prompt: `fixed` (a draw with
      `weights`), `round_robin`, or the cost-aware bandits `ucb` and `thompson`
      (most improvements per unit of `cost`; see funsearch/policies.py).
    cost: the bandits' unit: "compute" (GPU-seconds, or request seconds without
      GPUs, plus evaluation seconds), "gpu_seconds", "seconds" (request seconds
      only), "usd", "samples"; "auto" is the budget's unit (see budget.cost_unit).
    min_pulls: samples of each sampler before a bandit judges it.
    discount: the bandits' memory: a sample of average cost multiplies their
      counts by this, so they follow the search as improvements get harder
      (about 1 / (1 - discount) samples' worth of budget; 1: no discount).
    exploration: scale of the UCB confidence level, and of the width of the
      Thompson posterior.
    max_in_flight: prompts being sampled at once, at most. balance: let the
      controller (funsearch/controller.py) set prompts in flight per sampler
      under that bound so the evaluators stay `target_utilization` busy without
      a long queue (false: always max_in_flight).
    log_decisions, log_period: a "scheduler" event per this many decisions or
      seconds, whichever comes first."""

    policy: Literal["fixed", "round_robin", "ucb", "thompson"] = "round_robin"
    weights: dict[str, float] = Field(default_factory=dict)
    budget: Budget = Field(default_factory=Budget)
    cost: Literal["auto", "compute", "gpu_seconds", "seconds", "usd", "samples"] = "auto"
    min_pulls: int = Field(20, ge=0)
    discount: float = Field(0.999, gt=0, le=1)
    exploration: float = Field(0.25, gt=0)
    max_in_flight: int = Field(32, ge=1)
    balance: bool = True
    target_utilization: float = Field(0.9, gt=0, le=1)
    log_decisions: int = Field(100, ge=1)
    log_period: Duration = 1.0

    @model_validator(mode="after")
    def _weights_valid(self) -> SchedulerConfig:
        if any(weight < 0 for weight in self.weights.values()) or (
                self.weights and not any(self.weights.values())):
            raise ValueError("weights: need non-negative weights, not all zero")
        return self


class RuntimeConfig(_Strict):
    """kind: ray (actors, on a local instance or a cluster) or inline (one
      process: debugging a spec, tests).
    address: the Ray cluster to join ("auto", "ray://host:port"); empty starts
      a local instance sized for the run.
    placement_timeout: how long Ray may take to find room for the run's actors
      before the run stops with a message naming what is missing (a cluster
      that adds nodes on demand needs the time it takes to add one). Starting
      a placed actor (loading a model) is not counted."""

    kind: Literal["inline", "ray"] = "ray"
    address: str = ""
    placement_timeout: Duration = Field(30.0, gt=0)


class ExperimentConfig(_Strict):
    name: str = "experiment"
    seed: int = 0
    out: str = "runs"  # where run directories go, relative to the working directory
    problem: ProblemConfig
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    evaluator: EvaluatorConfig = Field(default_factory=EvaluatorConfig)
    samplers: list[SamplerConfig] = Field(
        default_factory=lambda: [SamplerConfig(name="mutation", backend="mutation")]
    )
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    # Where the experiment file was, so relative paths resolve against it.
    base_dir: str = Field(".", exclude=True)

    @model_validator(mode="after")
    def _names_unique(self) -> ExperimentConfig:
        names = [sampler.name for sampler in self.samplers]
        if len(set(names)) != len(names):
            raise ValueError(f"samplers: names must be unique, got {names}")
        if not names:
            raise ValueError("samplers: at least one sampler is needed")
        return self

    def spec_path(self) -> Path:
        return (Path(self.base_dir) / self.problem.spec).resolve()


class ConfigError(ValueError):
    """An experiment file that cannot be used; the message names file and key."""


def load(path: str | Path, **overrides: Any) -> ExperimentConfig:
    """Reads an experiment TOML file. `overrides` are dotted keys
    ("scheduler.budget.samples") applied before validation."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: experiment file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    for dotted, value in overrides.items():
        _set(data, dotted.split("."), value)
    data.setdefault("base_dir", str(path.resolve().parent))
    _resolve_sampler_paths(data, Path(data["base_dir"]))
    return from_dict(data, source=str(path))


def _resolve_sampler_paths(data: dict[str, Any], base: Path) -> None:
    """Recording and replay files are relative to the experiment file, like the spec."""
    samplers = data.get("samplers")
    for sampler in samplers if isinstance(samplers, list) else []:
        if not isinstance(sampler, dict):
            continue
        if isinstance(sampler.get("record"), str) and sampler["record"]:
            sampler["record"] = str(base / sampler["record"])
        settings = sampler.get("settings")
        if isinstance(settings, dict) and isinstance(settings.get("path"), str):
            settings["path"] = str(base / settings["path"])


def from_dict(data: dict[str, Any], source: str = "<config>") -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None


def _set(data: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        data = data.setdefault(key, {})
    data[keys[-1]] = value


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        if problem["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{key}'")
        elif problem["type"] == "missing":
            lines.append(f"{source}: missing key '{key}'")
        else:
            lines.append(f"{source}: key '{key}': {problem['msg']}")
    return "\n".join(lines)
