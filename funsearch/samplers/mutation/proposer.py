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
budget and teach the search nothing. A version of the prompt is never proposed
again: when no new child can be drawn the sample is a rejection that says why.
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import threading
import time

import numpy as np

from funsearch import code, parsing
from funsearch.config import SamplerConfig
from funsearch.parsing import Parsed
from funsearch.prompt import Query
from funsearch.samplers.base import Sample
from funsearch.samplers.mutation import carry, crossover, hoist, monotone, neutral, ops
from funsearch.samplers.mutation.numeric import Modules
from funsearch.samplers.mutation.settings import parse_settings, size_limit
from funsearch.samplers.mutation.sites import NUM, Analysis, analyse
from funsearch.samplers.mutation.trees import clone, node_count
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
    program_hash: str = ""  # code.normal_hash of the program, as the engine will have it


@dataclasses.dataclass
class _Prompt:
    versions: list[_Version]
    ctx: Context
    distinct: list[int]  # indices of versions with distinct bodies
    head: parsing.Head
    hashes: frozenset[str]  # normal hashes of the versions: never proposed as a child
    rescue: _Prompt | None = None  # the same with returned values as sites (_numeric_return)


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
        start, start_cpu = time.perf_counter(), time.thread_time()
        prompt = self._prompt(query)
        seen = set(self._recent)
        tunable = self._tunable(prompt.versions[-1], prompt.ctx)
        if n > 0 and tunable and self._rng.random() < self.settings.constant_tuning_rate:
            children = [self._tuned(prompt, seen) for _ in range(n)]
        else:
            children = [self._child(prompt, seen) for _ in range(n)]
        for child in children:
            if child.text:  # not a rejection
                self._remember(child.text)
        latency = time.perf_counter() - start
        # Charged its own thread's CPU time, shared equally: waiting for the GIL
        # beside engines in the same process is not work (a cpu_hours budget and
        # the bandits count CPU-seconds of proposals).
        cpu = (time.thread_time() - start_cpu) / max(1, len(children))
        return [Sample(child.text, self.name, latency, parsed=child.parsed, cpu_seconds=cpu)
                for child in children]

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
        hashes = frozenset(code.normal_hash(text) for text in query.versions)
        head = parsing.head(query.head)
        prompt = _Prompt(versions, ctx, sorted(bodies.values()), head, hashes)
        if _numeric_return(head.signature):
            rescue_ctx = dataclasses.replace(ctx, numeric_result=True)
            prompt.rescue = dataclasses.replace(prompt, ctx=rescue_ctx)
        return prompt

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
        """A new child; else a recent one again (a duplicate may still register
        on another island); else a rejection that says why. Never a version of
        the prompt: that sample would only be its parent again, a duplicate
        that looks like a proposal and hides that the proposer is stuck.
        Versions too small for the operators are tried once more with their
        returned values as sites (_numeric_return)."""
        failures: collections.Counter[str] = collections.Counter()
        child, repeat = self._draw(prompt, seen, failures)
        if child is None and prompt.rescue is not None:
            child, again = self._draw(prompt.rescue, seen, failures)
            repeat = repeat or again
        return child or repeat or _rejection(failures)

    def _draw(self, prompt: _Prompt, seen: set[str], failures: collections.Counter[str]):
        """Up to max_attempts children: the first new one (or None), and the
        first that repeats a recent child (or None). Counts why the others failed."""
        repeat = None
        for _ in range(self.settings.max_attempts):
            crossing = (
                len(prompt.distinct) > 1 and self._rng.random() < self.settings.crossover_rate
            )
            tree, parents = self._crossover(prompt) if crossing else self._mutant(prompt)
            child = self._accept(tree, parents, prompt)
            if isinstance(child, str):
                failures[child] += 1
            elif child.program_hash in prompt.hashes:
                failures["a version of the prompt again"] += 1
            elif child.text in seen:
                failures["a recent child again"] += 1
                repeat = repeat or child
            else:
                seen.add(child.text)
                return child, repeat
        return None, repeat

    def _accept(self, tree, parents: list[_Version], prompt: _Prompt) -> _Child | str:
        """The child, or why not: it is oversize, reads an unbound name, wastes
        more than its parents (ops.waste), returns a value cut off from a
        parameter its parents' returns all compute from (carry.py: a scalar
        where a priority per bin is due), ranks as a parent does (neutral.py),
        packs as best/worst/first fit (monotone.py), computes with a node
        number (index_parameters) or does not parse.
        Cheap checks first: this runs for every child drawn."""
        if tree is None or not tree.body:
            return "no operator found anything to change"
        ctx = prompt.ctx
        if node_count(tree.body) > size_limit([p.size for p in parents], self.settings):
            return "over the size limit"
        analysis = ctx.analyse(tree)
        if any(name not in ctx.allowed for name in analysis.free):
            return "reads an unbound name"
        if ops.waste(analysis) > max(p.waste for p in parents):
            return "dead code"
        if any(NUM in analysis.roles.get(name, ()) for name in self.settings.index_parameters):
            return "computes with an index parameter"
        required = frozenset.intersection(*(p.carries for p in parents))
        if required and not required <= carry.carried(tree, ctx.modules):
            return "drops a parameter its parents return per element"
        if self.settings.hoist_repeats:
            hoist.hoist(tree, ctx.modules, lambda: ops.fresh_name(tree, ctx))
        child = _made(tree, prompt.head)
        if child is None:
            return "does not parse"
        form = self._form(tree, child.text)
        if any(form == p.form for p in parents):
            return "ranks as a parent does"
        positive = frozenset(self.settings.positive_parameters)
        if self.settings.ranked_return and monotone.trend(tree, positive) is not None:
            return "best, worst or first fit in disguise"
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
            if child is None or child.program_hash in prompt.hashes:
                continue
            fallback = fallback or child
            if child.text not in seen:
                seen.add(child.text)
                return child
        return fallback or self._child(prompt, seen)


def _made(tree: ast.FunctionDef, head: parsing.Head) -> _Child | None:
    """The child as a sample with its program made (parsing.from_tree); None if
    the tree does not unparse to code that parses."""
    made = parsing.from_tree(tree, head)
    return None if made is None else _Child(*made)


def _numeric_return(signature: ast.FunctionDef) -> bool:
    """Whether the evolved function returns numbers by its annotation (none,
    float, an array): then a returned value may be wrapped in numeric code
    even when its own form says nothing (`degrees.astype(float)`), which is
    how the proposer gets going on a body too small for any other operator.
    Not an `int` (a node to visit next) nor a list, a string..."""
    annotation = signature.returns
    if isinstance(annotation, ast.Subscript):  # npt.NDArray[np.float64]
        annotation = annotation.value
    if annotation is None:
        return True
    return ast.unparse(annotation).rpartition(".")[2] in ("float", "ndarray", "NDArray")


def _rejection(failures: collections.Counter[str]) -> _Child:
    """A sample that says the proposer found no new child, and mostly why."""
    reason, _ = failures.most_common(1)[0]
    total = sum(failures.values())
    text = f"no new child in {total} attempts; most failed as: {reason}"
    return _Child("", Parsed(None, rejection=text))
