"""The offline proposer: genetic programming over the prompt's versions, no model.

It reads the versions a prompt shows (weakest first) and writes new function
bodies the way a completion model would: mutants of one version (ops.py's
operators), crossovers of two, or, now and then, a small batch that keeps the
best version's structure and only moves its constants. It is the embedded
default and the "size 0 model" every LLM sampler must beat per unit of compute.

Bloat is held by a node-count limit relative to the parents (oversize children
are redrawn) and by favouring deletion once a parent is big. Children equal to
a version of the prompt or to a recent child, and children that only look new
(a dead assignment, `x - x`), are redrawn too: each would cost a sample of the
budget and teach the search nothing.
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import threading
import time

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from funsearch import parsing
from funsearch.config import ConfigError, SamplerConfig
from funsearch.parsing import Parsed
from funsearch.prompt import Query
from funsearch.samplers.base import Sample
from funsearch.samplers.mutation import carry, crossover, hoist, monotone, neutral, ops
from funsearch.samplers.mutation.sites import NUM, Analysis, Modules, analyse, clone, node_count
from funsearch.samplers.mutation.vocabulary import (
    Context,
    build_context,
    constant_value,
    preface_modules,
    weighted_index,
)

# Parsed versions and prompt vocabularies kept: prompts reuse strong programs.
_CACHE_SIZE = 512
_PROMPT_CACHE_SIZE = 64
_RECENT = 4096  # children remembered so as not to propose them again


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


@dataclasses.dataclass
class _Version:
    """A program of the prompt, parsed once: never mutated, only copied."""

    function: ast.FunctionDef  # without docstring
    body: str  # indented, as a sample's text
    size: int
    plain: Analysis  # without knowledge of other versions: roles, free names
    waste: int  # dead assignments and `x - x` (ops.waste)
    carries: frozenset[str]  # parameters every return computes from elementwise (carry.py)
    form: str  # text with increasing maps of ranked expressions stripped (neutral.py)


@dataclasses.dataclass(frozen=True)
class _Child:
    text: str  # the body, indented: what a model would have written
    parsed: Parsed | None  # the program, made from the tree (None: parsing.parse makes it)


@dataclasses.dataclass
class _Prompt:
    versions: list[_Version]
    ctx: Context
    distinct: list[int]  # indices of versions with distinct bodies
    head: parsing.Head


class MutationSampler:
    """Proposes function bodies by AST mutation and crossover; needs no model.

    One request at a time (a lock): the work is pure Python, so requests on
    several threads would only take turns at the GIL, and they would draw
    from the one random generator in whatever order the threads ran."""

    def __init__(self, config: SamplerConfig, seed: int = 0) -> None:
        self.name = config.name
        self._lock = threading.Lock()
        self.settings = parse_settings(config)
        self._rng = np.random.default_rng(seed)
        self._parsed: collections.OrderedDict[str, _Version] = collections.OrderedDict()
        self._prompts: collections.OrderedDict[tuple, _Prompt] = collections.OrderedDict()
        self._recent: set[str] = set()
        self._recent_order: collections.deque[str] = collections.deque()

    def sample(self, query: Query, n: int) -> list[Sample]:
        with self._lock:
            return self._sample(query, n)

    def _sample(self, query: Query, n: int) -> list[Sample]:
        start = time.perf_counter()
        prompt = self._prompt(query)
        seen = self._recent | {version.body for version in prompt.versions}
        tunable = self._tunable(prompt.versions[-1], prompt.ctx)
        if n > 0 and tunable and self._rng.random() < self.settings.constant_tuning_rate:
            children = [self._tuned(prompt, seen) for _ in range(n)]
        else:
            children = [self._child(prompt, seen) for _ in range(n)]
        for child in children:
            self._remember(child.text)
        latency = time.perf_counter() - start
        return [Sample(child.text, self.name, latency, parsed=child.parsed) for child in children]

    def _remember(self, body: str) -> None:
        """Recent children are not proposed again: a repeat costs a sample of
        the budget and teaches the search nothing."""
        if body in self._recent:
            return
        self._recent.add(body)
        self._recent_order.append(body)
        if len(self._recent_order) > _RECENT:
            self._recent.discard(self._recent_order.popleft())

    # The prompt ---------------------------------------------------------------

    def _prompt(self, query: Query) -> _Prompt:
        key = (query.preface, query.versions)
        if key in self._prompts:
            self._prompts.move_to_end(key)
            return self._prompts[key]
        prompt = self._new_prompt(query)
        self._prompts[key] = prompt
        if len(self._prompts) > _PROMPT_CACHE_SIZE:
            self._prompts.popitem(last=False)
        return prompt

    def _new_prompt(self, query: Query) -> _Prompt:
        modules, _ = preface_modules(query.preface)
        versions = [self._version(text, modules) for text in query.versions]
        ctx = build_context(
            [v.function for v in versions],
            [v.plain for v in versions],
            query.preface,
            self._rng,
            self.settings.constant_sigma,
        )
        bodies: dict[str, int] = {}
        for index, version in enumerate(versions):
            bodies[version.body] = index  # the strongest copy of a body wins
        return _Prompt(versions, ctx, sorted(bodies.values()), parsing.head(query.head))

    def _version(self, program: str, modules: Modules) -> _Version:
        key = repr(modules) + program
        if key in self._parsed:
            self._parsed.move_to_end(key)
            return self._parsed[key]
        function = next(n for n in ast.parse(program).body if isinstance(n, ast.FunctionDef))
        if ast.get_docstring(function) is not None:
            function.body = function.body[1:] or [ast.Pass()]
        plain = analyse(function, modules, frozenset())
        size = node_count(function.body)
        carries = carry.carried(function, modules)
        body = parsing.body_text(function)
        version = _Version(
            function, body, size, plain, ops.waste(plain), carries, self._form(function, body)
        )
        self._parsed[key] = version
        if len(self._parsed) > _CACHE_SIZE:
            self._parsed.popitem(last=False)
        return version

    # Children -----------------------------------------------------------------

    def _child(self, prompt: _Prompt, seen: set[str]) -> _Child:
        fallback = None
        for _ in range(self.settings.max_attempts):
            crossing = (
                len(prompt.distinct) > 1 and self._rng.random() < self.settings.crossover_rate
            )
            tree, parents = self._crossover(prompt) if crossing else self._mutant(prompt)
            child = self._accept(tree, parents, prompt)
            if child is None:
                continue
            fallback = fallback or child
            if child.text not in seen:
                seen.add(child.text)
                return child
        return fallback or _Child(prompt.versions[-1].body, None)

    def _accept(self, tree, parents: list[_Version], prompt: _Prompt) -> _Child | None:
        """The child, or None if it is oversize, reads an unbound name, wastes
        more than its parents (ops.waste), returns a value cut off from a
        parameter its parents' returns all compute from (carry.py: a scalar
        where a priority per bin is due), ranks as a parent does (neutral.py),
        packs as best/worst/first fit (monotone.py), computes with a node
        number (index_parameters) or does not parse.
        Cheap checks first: this runs for every child drawn."""
        if tree is None or not tree.body:
            return None
        ctx = prompt.ctx
        if node_count(tree.body) > size_limit([p.size for p in parents], self.settings):
            return None
        analysis = ctx.analyse(tree)
        if any(name not in ctx.allowed for name in analysis.free):
            return None
        if ops.waste(analysis) > max(p.waste for p in parents):
            return None
        if any(NUM in analysis.roles.get(name, ()) for name in self.settings.index_parameters):
            return None
        required = frozenset.intersection(*(p.carries for p in parents))
        if required and not required <= carry.carried(tree, ctx.modules):
            return None
        if self.settings.hoist_repeats:
            hoist.hoist(tree, ctx.modules, lambda: ops.fresh_name(tree, ctx))
        child = _made(tree, prompt.head)
        if child is None:
            return None
        form = self._form(tree, child.text)
        if any(form == p.form for p in parents):
            return None
        positive = frozenset(self.settings.positive_parameters)
        if self.settings.ranked_return and monotone.trend(tree, positive) is not None:
            return None
        return child

    def _form(self, function: ast.FunctionDef, body: str) -> str:
        """neutral.py's ranking form; the body text itself if nothing is ranked."""
        if neutral.ranks_anything(body, self.settings.ranked_return):
            return neutral.ranking_form(function, self.settings.ranked_return)
        return body

    def _pick(self, prompt: _Prompt, among: list[int]) -> int:
        """A version index, the stronger ones likelier (weights 1, 2, ...)."""
        return among[weighted_index(self._rng, list(range(1, len(among) + 1)))]

    def _mutant(self, prompt: _Prompt):
        parent = prompt.versions[self._pick(prompt, list(range(len(prompt.versions))))]
        tree = clone(parent.function)
        count = int(self._rng.geometric(1 / self.settings.mutations_per_child))
        changed = False
        for _ in range(count):
            changed |= self._mutate_once(tree, parent.size, prompt.ctx)
        return (tree if changed else None), [parent]

    def _mutate_once(self, tree: ast.FunctionDef, size: int, ctx: Context) -> bool:
        """One operator, drawn by weight; deletion likelier when the parent is big."""
        analysis = ctx.analyse(tree)
        names = list(ops.OPERATORS)
        weights = [getattr(self.settings.weights, name) for name in names]
        if size > self.settings.shrink_above:
            weights[names.index("delete")] *= (size / self.settings.shrink_above) ** 2
        while sum(weights) > 0:
            choice = weighted_index(self._rng, weights)
            if ops.OPERATORS[names[choice]](tree, analysis, ctx):
                return True
            weights[choice] = 0  # nothing to do for this operator here
        return False

    def _crossover(self, prompt: _Prompt):
        recipient_index = self._pick(prompt, prompt.distinct)
        donors = [i for i in prompt.distinct if i != recipient_index]
        recipient = prompt.versions[recipient_index]
        donor = prompt.versions[donors[int(self._rng.integers(len(donors)))]]
        tree = clone(recipient.function)
        ctx = prompt.ctx
        if self._rng.random() < 0.7:
            done = crossover.crossover_expression(tree, donor.function, ctx)
            done = done or crossover.crossover_statements(tree, donor.function, ctx)
        else:
            done = crossover.crossover_statements(tree, donor.function, ctx)
            done = done or crossover.crossover_expression(tree, donor.function, ctx)
        return (tree if done else None), [recipient, donor]

    def _tunable(self, version: _Version, ctx: Context) -> bool:
        sites = ops.constant_sites(ctx.analyse(version.function))
        return any(s.role == NUM and constant_value(s.node) != 0 for s in sites)

    def _tuned(self, prompt: _Prompt, seen: set[str]) -> _Child:
        best = prompt.versions[-1]
        fallback = None
        for _ in range(self.settings.max_attempts):
            tree = clone(best.function)
            ops.tune_constants(
                tree, prompt.ctx.analyse(tree), prompt.ctx, self.settings.tuning_sigma
            )
            child = _made(tree, prompt.head)
            if child is None:
                continue
            fallback = fallback or child
            if child.text not in seen:
                seen.add(child.text)
                return child
        return fallback or _Child(best.body, None)


def _made(tree: ast.FunctionDef, head: parsing.Head) -> _Child | None:
    """The child as a sample with its program made (parsing.from_tree); None if
    the tree does not unparse to code that parses."""
    made = parsing.from_tree(tree, head)
    return None if made is None else _Child(*made)
