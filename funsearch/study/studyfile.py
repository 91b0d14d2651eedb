"""A study as one TOML file (STUDY.toml): the arms, the decision budget B,
and the budget of runs.

    name = "tsp-proposers"
    experiment = "tsp_quickstart.toml"   # the arms' experiment, unless an arm names its own
    unit = "samples"                     # samples | wall | gpu_hours | usd
    budget = 400                         # B: which arm is best after this much?
    overrides = { "runtime.kind" = "inline" }   # for every arm

    [runs]
    count = 12                           # runs the study may make
    budgets = [0.25, 0.5, 1.0]           # run budgets it may choose, fractions of B

    [arms.four]
    overrides = { "samplers.0.samples_per_prompt" = 4 }
    [arms.one]
    overrides = { "samplers.mutation.samples_per_prompt" = 1 }

Overrides are dotted keys of the experiment file, as `--set` takes them: a
list is indexed by position or, for samplers, by name. Like experiment files, every model
forbids unknown keys, and errors name the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from funsearch import config as config_module
from funsearch.config import ConfigError, ExperimentConfig, read_toml
from funsearch.config_errors import describe
from funsearch.study.observe import DEFAULT_OCTAVES


class StudyError(ConfigError):
    """A study file or study directory that cannot be used; says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArmFile(_Strict):
    """experiment: this arm's experiment file (relative to the study file);
    empty: the study's. overrides: dotted keys, after the study's."""

    experiment: str = ""
    overrides: dict[str, Any] = Field(default_factory=dict)


class RunsFile(_Strict):
    """count: runs the study may make. compute: their total budget in the
      study's unit (optional; then candidates are ranked per unit of compute).
    budgets: the run budgets the study chooses from, as fractions of B.
    initial: runs of every arm to B before information gain chooses.
    parallel: runs at once (executor "ray"); executor: "inline" runs them
      one after another in this process, "ray" as Ray tasks (address: the
      cluster; empty starts a local instance).
    seed: the first run's seed; each run gets the next."""

    count: int = Field(ge=1)
    compute: float | None = Field(None, gt=0)
    budgets: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0], min_length=1)
    initial: int = Field(1, ge=1)
    parallel: int = Field(1, ge=1)
    executor: Literal["inline", "ray"] = "inline"
    address: str = ""
    seed: int = 0

    @field_validator("budgets")
    @classmethod
    def _fractions(cls, budgets: list[float]) -> list[float]:
        if any(not 0 < budget <= 1 for budget in budgets):
            raise ValueError(f"run budgets are fractions of B in (0, 1], got {budgets}")
        return sorted(set(budgets))


class StudyFile(_Strict):
    name: str = "study"
    experiment: str = ""
    unit: Literal["samples", "wall", "gpu_hours", "usd"] = "samples"  # observe.UNITS
    budget: float = Field(gt=0)
    out: str = "studies"  # where study directories go, relative to the working directory
    octaves: float = Field(DEFAULT_OCTAVES, gt=0, le=12)  # the fits read B / 2^octaves ... B
    overrides: dict[str, Any] = Field(default_factory=dict)
    runs: RunsFile
    arms: dict[str, ArmFile] = Field(min_length=2)
    base_dir: str = Field(".", exclude=True)

    @model_validator(mode="after")
    def _experiments_named(self) -> StudyFile:
        missing = [arm for arm, spec in self.arms.items() if not spec.experiment]
        if missing and not self.experiment:
            raise ValueError(f"arms {missing} name no experiment and the study has none "
                             "(set `experiment` at the top or in each arm)")
        return self

    def experiment_path(self, arm: str) -> Path:
        return Path(self.base_dir) / (self.arms[arm].experiment or self.experiment)

    def definition(self) -> dict[str, Any]:
        """What a study directory is bound to: resuming with other arms, B or
        unit is an error; other settings (more runs) may change."""
        return {"arms": {arm: spec.model_dump(mode="json") for arm, spec in self.arms.items()},
                "experiment": self.experiment, "unit": self.unit, "budget": self.budget,
                "overrides": self.overrides, "octaves": self.octaves}


def load(path: str | Path) -> StudyFile:
    """Reads STUDY.toml and checks that every arm's experiment loads."""
    path = Path(path)
    data = read_toml(path, "study file", StudyError)
    data.setdefault("base_dir", str(path.resolve().parent))
    try:
        study = StudyFile.model_validate(data)
    except ValidationError as error:
        raise StudyError(describe(error, str(path), StudyFile)) from None
    for arm in study.arms:
        arm_config(study, arm, 1.0, seed=0, out=".")
    return study


def arm_config(study: StudyFile, arm: str, budget: float, seed: int, out: str,
               **settings: Any) -> ExperimentConfig:
    """The experiment of one run: the arm's file with the study's and the
    arm's overrides (dotted keys, as `--set` takes them), a budget of
    `budget` x B in the study's unit (and no other stop condition), this
    seed, and run directories under `out`."""
    path = study.experiment_path(arm)
    amount = budget * study.budget
    overrides = {**study.overrides, **study.arms[arm].overrides, **settings,
                 "scheduler.budget": {study.unit: round(amount) if study.unit == "samples"
                                      else amount},
                 "seed": seed, "out": out, "name": f"{study.name}-{arm}"}
    try:
        return config_module.load(path, **overrides)
    except ConfigError as error:
        text = (str(error).replace("command line: ", "")
                .replace("set on the command line", "set by the study"))
        raise StudyError(f"arm '{arm}' ({path}, with the study's overrides): {text}") from None
