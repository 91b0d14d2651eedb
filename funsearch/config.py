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

from funsearch import dotted
from funsearch.config_errors import describe

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
    """spec: the problem, relative to the experiment file: a spec file (native or
      DeepMind's) or an OpenEvolve problem folder (funsearch/formats/).
    inputs: the input set the search scores on; for a DeepMind spec file, the
      inputs themselves (`inputs = [8]`), which become the input set "train".
    holdout: input sets the best program is scored on at the end (overfitting
      shows as a gap between these and the training score).
    format: "auto" (detected), "native", "deepmind" or "openevolve".
    values: the given inputs of a DeepMind spec file (set from a list `inputs`).
    metric: the OpenEvolve metric that is the score ("": combined_score)."""

    spec: str
    inputs: str = "train"
    holdout: list[str] = Field(default_factory=list)
    format: Literal["auto", "native", "deepmind", "openevolve"] = "auto"
    values: list[Any] = Field(default_factory=list)
    metric: str = ""

    @model_validator(mode="before")
    @classmethod
    def _given_inputs(cls, data: Any) -> Any:
        """`inputs = [8]` (DeepMind's inputs, given by the caller) is values."""
        if isinstance(data, dict) and isinstance(data.get("inputs"), list):
            data = {**data, "values": data["inputs"], "inputs": "train"}
        return data


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


class StageConfig(_Strict):
    """One filter stage of a cascade (funsearch/cascades.py), cheapest first.

    inputs: the first `inputs` training inputs (an int: a slice of the training
      set, cumulative, so a later stage runs only the inputs an earlier one did
      not), or the name of another input set (its scores only filter: they are
      not part of the program's score).
    rule: when a program goes on: "margin", its mean on the stage is within
      `threshold` x |best| of the island's best on the stage; "top", it ranks
      in the top `threshold` fraction of the island's recent programs there.
    threshold: the margin or fraction (larger lets more through); the
      adaptive cascade moves it within `bounds`."""

    inputs: int | str
    rule: Literal["margin", "top"] = "top"
    threshold: float = Field(0.5, gt=0)
    bounds: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _valid(self) -> StageConfig:
        if isinstance(self.inputs, int) and self.inputs < 1:
            raise ValueError("inputs: a slice of the training set needs at least 1 input")
        if self.rule == "top" and self.threshold > 1:
            raise ValueError("threshold: a top fraction is at most 1")
        low, high = self.limits()
        if not low <= self.threshold <= high:
            raise ValueError(f"threshold: {self.threshold} is outside bounds [{low}, {high}]")
        return self

    def limits(self) -> tuple[float, float]:
        """Where the adaptive cascade may move the threshold."""
        if self.bounds is not None:
            return self.bounds
        return (0.05, 1.0) if self.rule == "top" else (0.001, 1.0)


class CascadeConfig(_Strict):
    """mode: "off" (every program on the whole training set), "fixed" (the
      stages' thresholds as written) or "adaptive" (the scheduler moves them:
      funsearch/scheduling/cascade.py).
    stages: the filter stages; empty: the spec's `@funsearch.cascade`, if any
      (none: no cascade). After the last, a program runs on the rest of the
      training set and is registered.
    audit: share of stopped programs evaluated in full anyway: how often a
      stop loses an improvement is measured on them.
    min_band: programs near a threshold the adaptive cascade waits for
      before moving it."""

    mode: Literal["off", "fixed", "adaptive"] = "adaptive"
    stages: list[StageConfig] = Field(default_factory=list)
    audit: float = Field(0.1, ge=0, le=1)
    min_band: int = Field(12, ge=1)


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
    # Compute-hours: proposals' GPU- or CPU-seconds plus evaluation seconds, the
    # bandits' "compute" unit (budget.in_unit); the equal-compute budget of
    # samplers that share the CPUs with the evaluators.
    cpu_hours: float | None = Field(None, gt=0)
    usd: float | None = Field(None, gt=0)
    target_score: float | None = None


class SchedulerConfig(_Strict):
    """policy: which sampler serves the next prompt: `fixed` (a draw with
      `weights`), `round_robin`, or the cost-aware bandits `ucb` and `thompson`
      (most improvements per unit of `cost`; see funsearch/scheduling/policies.py).
    cost: the bandits' unit: "compute" (GPU-seconds, else CPU-seconds, else
      request seconds, plus evaluation seconds), "gpu_seconds", "seconds" (request seconds
      only), "usd", "samples"; "auto" is the budget's unit (see budget.cost_unit).
    min_pulls: samples of each sampler before a bandit judges it.
    discount: the bandits' memory: a sample of average cost multiplies their
      counts by this, so they follow the search as improvements get harder
      (about 1 / (1 - discount) samples' worth of budget; 1: no discount).
    exploration: scale of the UCB confidence level, and of the width of the
      Thompson posterior.
    max_in_flight: prompts being sampled at once, at most. balance: let the
      controller (funsearch/scheduling/controller.py) set prompts in flight per sampler
      under that bound so the evaluators stay `target_utilization` busy without
      a long queue (false: always max_in_flight).
    log_decisions, log_period: a "scheduler" event per this many decisions or
      seconds, whichever comes first.
    adapt_samples_per_prompt: for samplers whose backend makes several samples
      of one prompt cheaper than as many prompts (openai, vllm: one request
      with n), ask each prompt for the number of samples, 1 to the sampler's
      samples_per_prompt, with the most improvements per cost as measured
      (funsearch/scheduling/request_size.py)."""

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
    adapt_samples_per_prompt: bool = False

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
      a placed actor (loading a model) is not counted.
    start_timeout: how long placed actors may take to start (a replica loading
      its model) before the run stops naming the ones still starting."""

    kind: Literal["inline", "ray"] = "ray"
    address: str = ""
    placement_timeout: Duration = Field(30.0, gt=0)
    start_timeout: Duration = Field(300.0, gt=0)


class ExperimentConfig(_Strict):
    name: str = "experiment"
    seed: int = 0
    out: str = "runs"  # where run directories go, relative to the working directory
    problem: ProblemConfig
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    evaluator: EvaluatorConfig = Field(default_factory=EvaluatorConfig)
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)
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


class ConfigWarning(UserWarning):
    """A setting that is valid but does nothing where it is (funsearch/preflight.py)."""


def read_toml(path: Path, what: str, error: type[Exception]) -> dict[str, Any]:
    """A TOML file's tables; a missing or malformed file is one `error` naming it."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except tomllib.TOMLDecodeError as decode_error:
        raise error(f"{path}: not valid TOML: {decode_error}") from None


def load(path: str | Path, **overrides: Any) -> ExperimentConfig:
    """Reads an experiment TOML file. `overrides` are dotted keys
    ("scheduler.budget.samples", "samplers.0.temperature" or by the sampler's
    name, "samplers.coder.temperature") applied before validation; an error
    in one names it as set on the command line."""
    path = Path(path)
    data = read_toml(path, "experiment file", ConfigError)
    overridden = apply_overrides(data, overrides)
    data.setdefault("base_dir", str(path.resolve().parent))
    _resolve_sampler_paths(data, Path(data["base_dir"]))
    return from_dict(data, source=str(path), overridden=overridden)


def parse_assignment(text: str) -> tuple[str, Any]:
    """KEY=VALUE of `--set` (dotted.parse_assignment), or ConfigError."""
    try:
        return dotted.parse_assignment(text)
    except dotted.DottedKeyError as error:
        raise ConfigError(str(error)) from None


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> set[str]:
    """Sets dotted keys in a config's data (a sampler by index or name);
    returns them as the model's errors name keys (samplers by index)."""
    try:
        return {dotted.set_key(data, key, value, _default_list)
                for key, value in overrides.items()}
    except dotted.DottedKeyError as error:
        raise ConfigError(str(error)) from None


def _default_list(key: str) -> Any:
    """A top-level list the file leaves out, as its default (the default
    sampler), so `samplers.0.settings.x` can be set without writing it."""
    field = ExperimentConfig.model_fields.get(key)
    default = field.default_factory() if field is not None and field.default_factory else {}
    if isinstance(default, list):
        return [item.model_dump(exclude_unset=True) if isinstance(item, BaseModel) else item
                for item in default]
    return {}


def _resolve_sampler_paths(data: dict[str, Any], base: Path) -> None:
    """Recording and replay files are relative to the experiment file, like the spec,
    and so is a model given as a relative path ("./..." or "../...", never a hub name)."""
    samplers = data.get("samplers")
    for sampler in samplers if isinstance(samplers, list) else []:
        if not isinstance(sampler, dict):
            continue
        model = sampler.get("model")
        if isinstance(model, str) and model.startswith(("./", "../")):
            sampler["model"] = str((base / model).resolve())
        if isinstance(sampler.get("record"), str) and sampler["record"]:
            sampler["record"] = str(base / sampler["record"])
        settings = sampler.get("settings")
        if isinstance(settings, dict) and isinstance(settings.get("path"), str):
            settings["path"] = str(base / settings["path"])


def from_dict(data: dict[str, Any], source: str = "<config>",
              overridden: set[str] = frozenset()) -> ExperimentConfig:
    """The validated config; `overridden` keys' errors name the command line."""
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe(error, source, ExperimentConfig, overridden)) from None
