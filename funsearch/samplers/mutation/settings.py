"""`[samplers.settings]` of the mutation proposer: what may be tuned, checked.

Apart from the proposer itself (mutation.py) so that the settings, their
defaults and the errors that name a bad key read as one page.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from funsearch.config import ConfigError, SamplerConfig


class OperatorWeights(BaseModel):
    """Relative frequency of each mutation operator (0 turns one off)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    constant: float = Field(3.0, ge=0)
    binop: float = Field(1.0, ge=0)
    compare: float = Field(0.5, ge=0)
    minmax: float = Field(0.5, ge=0)
    name: float = Field(1.0, ge=0)
    insert: float = Field(2.0, ge=0)
    replace: float = Field(1.0, ge=0)
    delete: float = Field(1.5, ge=0)
    statement: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _some_operator(self) -> OperatorWeights:
        if not any(self.model_dump().values()):
            raise ValueError("at least one operator needs a positive weight")
        return self


class MutationSettings(BaseModel):
    """`[samplers.settings]` of a mutation sampler.

    Attributes:
      mutations_per_child: mean number of operators applied to one mutant (>= 1);
        the number is geometric, so most children are one step away and a
        few are several (a way off a plateau of equally scored programs).
      crossover_rate: share of children made by crossover of two versions.
      constant_tuning_rate: probability that a request is answered by a
        constant-tuning batch (the best version's structure, constants moved).
      constant_sigma: relative size of a constant perturbation in a mutation.
      tuning_sigma: ... and in a constant-tuning batch (finer).
      max_nodes_factor, max_nodes_slack: a child may have at most
        max(factor * parent, parent + slack) nodes (parent: the larger parent).
      max_nodes: absolute ceiling on that limit (a parent above it may not grow).
      shrink_above: parents with more nodes than this favour deletion
        (its weight grows with the square of the excess ratio).
      max_attempts: draws per child before giving up on a new, valid one.
      weights: relative frequency of each mutation operator.
      ranked_return: the run function only ranks the evolved function's
        return value (bin packing's priority): a child that is a parent
        under an increasing map (`np.sqrt(e)`, `e + 3`) is redrawn, as one
        inside np.argmin/np.argmax always is (neutral.py), and so is one that
        is a monotone map of the array parameter: best, worst or first fit in
        disguise (monotone.py).
      positive_parameters: parameters known to be > 0 (bin packing's item and
        bins): a factor `item` keeps a direction, one of unknown sign does not.
      index_parameters: parameters that number things (TSP's node indices): a
        child that computes with one as a number (`np.tanh(unvisited_nodes)`,
        `current_node * 2`) is redrawn. On random instances the numbering says
        nothing, so such a term only fits the training instances: by the end
        of a 15-minute TSP run every top program had one, 5 points better on
        `train` than held out.
      hoist_repeats: a costly expression a child computes more than once is
        computed once, in a new local (hoist.py): the same function, faster
        to evaluate, so more evaluations fit in a run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mutations_per_child: float = Field(2.0, ge=1, le=20)
    crossover_rate: float = Field(0.2, ge=0, le=1)
    constant_tuning_rate: float = Field(0.1, ge=0, le=1)
    constant_sigma: float = Field(0.3, gt=0, le=5)
    tuning_sigma: float = Field(0.1, gt=0, le=5)
    max_nodes_factor: float = Field(1.5, ge=1)
    max_nodes_slack: int = Field(30, ge=0)
    max_nodes: int = Field(250, ge=10)
    shrink_above: int = Field(100, ge=1)
    max_attempts: int = Field(20, ge=1)
    weights: OperatorWeights = Field(default_factory=OperatorWeights)
    ranked_return: bool = False
    positive_parameters: tuple[str, ...] = ()
    index_parameters: tuple[str, ...] = ()
    hoist_repeats: bool = True


def parse_settings(config: SamplerConfig) -> MutationSettings:
    """The sampler's settings, or a ConfigError naming each bad key in full."""
    try:
        return MutationSettings.model_validate(config.settings)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            key = ".".join(["samplers", config.name, "settings", *map(str, problem["loc"])])
            if problem["type"] == "extra_forbidden":
                lines.append(f"unknown key '{key}' (known: {_known_keys(problem['loc'])})")
            else:
                lines.append(f"key '{key}': {problem['msg']}")
        raise ConfigError("\n".join(lines)) from None


def _known_keys(loc: tuple) -> str:
    model = OperatorWeights if loc[:1] == ("weights",) else MutationSettings
    return ", ".join(model.model_fields)


def size_limit(parent_sizes: list[int], settings: MutationSettings) -> int:
    """The most nodes a child of these parents may have."""
    parent = max(parent_sizes)
    relative = max(int(settings.max_nodes_factor * parent), parent + settings.max_nodes_slack)
    return max(min(settings.max_nodes, relative), parent)
