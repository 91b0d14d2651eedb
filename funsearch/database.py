"""A programs database that implements FunSearch's island model.

Programs live on islands; on each island they are grouped into clusters of
equal score signature. A prompt shows a few programs of one island, chosen
cluster by cluster (better clusters more often, the more so as the island
fills) and, inside a cluster, shorter programs more often. Every so often the
weaker half of the islands is emptied and refounded from the survivors, so
that a poor start does not hold the search back. The islands and clusters
themselves, and how they choose programs, are in funsearch/islands.py; what
goes in and out (Program, Prompt, Registration, Reset) in funsearch/programs.py.

An island holds each program once, by its normal hash: registering one that
is there already answers `known` and changes nothing, so the loop keeps no
record of what is where.

Pure Python and numpy: no I/O, no threads, no global random state. The same
seed and the same calls give the same prompts. The event log can rebuild the
database without sampling (`restore`, `apply_reset`), which is how a run is
resumed. Not thread-safe: one owner (the engine, or the database actor).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from funsearch import code
from funsearch.config import DatabaseConfig
from funsearch.islands import Island
from funsearch.programs import Program, Prompt, Registration, Reset
from funsearch.spec import ScoreError, as_score

ScoresPerInput = Mapping[str, float]


def _mean(values: Sequence[float]) -> float:
    """Exactly rounded sum, so the result does not depend on the order of inputs
    (and equals statistics.fmean); scaled first if the sum would overflow."""
    try:
        return math.fsum(values) / len(values)
    except OverflowError:
        return math.fsum(value / len(values) for value in values)


class _Invalid(ValueError):
    """Scores that cannot go into the database; str(self) is the reason."""


def _checked_scores(scores: ScoresPerInput, input_ids: tuple[str, ...] | None) -> dict[str, float]:
    """Scores as finite floats in the database's input order, or _Invalid."""
    if not isinstance(scores, Mapping):
        raise _Invalid(f"scores are not a mapping of input id to score: {type(scores).__name__}")
    if not scores:
        raise _Invalid("no scores")
    if input_ids is not None and set(scores) != set(input_ids):
        missing = sorted(set(input_ids) - set(scores), key=str)
        unexpected = sorted(set(scores) - set(input_ids), key=str)
        parts = []
        if missing:
            parts.append("missing " + ", ".join(map(repr, missing)))
        if unexpected:
            parts.append("unexpected " + ", ".join(map(repr, unexpected)))
        raise _Invalid("input ids differ from the database's: " + "; ".join(parts))
    checked = {}
    for input_id in input_ids or sorted(scores, key=str):
        try:
            checked[input_id] = as_score(scores[input_id])
        except ScoreError as error:
            raise _Invalid(f"{error} (input {input_id!r})") from None
    return checked


class ProgramsDatabase:
    """Islands of programs; prompts out, scored programs in."""

    def __init__(
        self,
        config: DatabaseConfig,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._rng = np.random.default_rng(seed)
        self._clock = clock
        self._islands = [Island(0, config) for _ in range(config.islands)]
        self._input_ids: tuple[str, ...] | None = None
        self._next_id = 0
        # Reset triggers: registrations since the last reset, and its time.
        self._since_reset = 0
        self._last_reset = clock()
        self._registrations = 0  # by `register`, initial copies not counted
        self._resets = 0  # islands reset

    # -- the search ---------------------------------------------------------

    def register_initial(self, source: str, scores: ScoresPerInput,
                         program_hash: str | None = None) -> list[Program]:
        """Registers the initial program on every island (one copy, one id each).

        Invalid scores here are an error, not a rejection: the search cannot start.
        """
        if self._input_ids is not None:
            raise RuntimeError("register_initial was already called")
        try:
            checked = _checked_scores(scores, None)
        except _Invalid as error:
            raise ValueError(f"initial program: {error}") from None
        self._input_ids = tuple(checked)
        program_hash = program_hash or code.normal_hash(source)
        copies = []
        for index, island in enumerate(self._islands):
            program = self._new_program(source, checked, index, (), "", program_hash)
            island.register(program)
            copies.append(program)
        return copies

    def prompt(self, island: int | None = None) -> Prompt:
        """Programs to show a sampler, from `island` or an island chosen at random."""
        if island is None:
            island = int(self._rng.integers(len(self._islands)))
        self._check_island(island)
        chosen = self._islands[island]
        if not chosen.clusters:
            raise RuntimeError(f"island {island} has no programs: call register_initial first")
        parents = chosen.choose(self._rng)
        return Prompt(island, chosen.epoch, parents, len(parents))

    def exchange(
        self, registrations: list[tuple[str, ScoresPerInput, Prompt, str, str]], count: int
    ) -> tuple[list[Registration], list[Prompt], list[float]]:
        """register() for each (source, scores, prompt, sampler, hash) in order,
        then `count` prompts, which can show what was just registered, and the
        best score per island: a remote database answers a loop's writes and
        reads in one call."""
        answers = [self.register(*arguments) for arguments in registrations]
        return answers, [self.prompt() for _ in range(count)], self.island_best_scores()

    def register(
        self, source: str, scores: ScoresPerInput, prompt: Prompt, sampler: str = "",
        program_hash: str | None = None,
    ) -> Registration:
        """Puts a scored program on the prompt's island, unless it is there
        already (`known`: the same normal hash, computed when not given), its
        scores are invalid or the island was reset since the prompt (the reason
        says which).

        Resets are checked after every call that is not `known`, so a reset by
        time happens at the first registration after the period has passed.
        """
        if self._input_ids is None:
            raise RuntimeError("register before register_initial")
        self._check_island(prompt.island)
        island = self._islands[prompt.island]
        program_hash = program_hash or code.normal_hash(source)
        if program_hash in island.hashes:
            return Registration(None, f"already on island {prompt.island}", known=True)
        program, reason = None, ""
        try:
            checked = _checked_scores(scores, self._input_ids)
        except _Invalid as error:
            reason = str(error)
        else:
            if prompt.epoch != island.epoch:
                reason = (
                    f"stale epoch: island {prompt.island} was reset since the prompt "
                    f"(epoch {prompt.epoch} -> {island.epoch})"
                )
            else:
                parents = tuple(parent.id for parent in prompt.parents)
                program = self._new_program(source, checked, prompt.island, parents, sampler,
                                            program_hash)
                island.register(program)
                self._count_registration()
        return Registration(program, reason, self._maybe_reset())

    def best(self) -> Program:
        """The best program in the database (the earliest registered among equals)."""
        bests = [island.best for island in self._islands if island.best is not None]
        if not bests:
            raise LookupError("the database is empty: call register_initial first")
        return max(bests, key=lambda program: (program.score, -program.id))

    def island_best_scores(self) -> list[float]:
        """Best score per island (-inf for an island without programs)."""
        return [island.best_score for island in self._islands]

    def programs(self) -> list[Program]:
        """Every program currently in the database, by id."""
        found = [program for island in self._islands for program in island.programs()]
        return sorted(found, key=lambda program: program.id)

    def stats(self) -> dict[str, Any]:
        """Numbers for a live view or a log line."""
        islands = [
            {
                "island": index,
                "epoch": island.epoch,
                "programs": island.size,
                "clusters": len(island.clusters),
                "registered": island.registered,
                "temperature": island.temperature,
                "best": island.best_score if island.best is not None else None,
            }
            for index, island in enumerate(self._islands)
        ]
        best = max((island["best"] for island in islands if island["best"] is not None),
                   default=None)
        return {
            "programs": sum(island["programs"] for island in islands),
            "registrations": self._registrations,
            "resets": self._resets,  # islands reset so far
            "best": best,
            "islands": islands,
        }

    # -- replay -------------------------------------------------------------

    def restore(self, program: Program) -> None:
        """Puts a logged registration back, as it was (same id, island, cluster;
        its hash computed if the log does not say it).

        A program without parents is a copy of the initial program; it does
        not count towards `reset_every`, as in `register_initial`.
        """
        program = self._logged(program)
        self._islands[program.island].register(program)
        if program.parents:
            self._count_registration()

    def apply_reset(self, reset: Reset) -> None:
        """Redoes a logged reset; the reset clock starts again now."""
        self._check_island(reset.island)
        self._refound(reset.island, reset.epoch, self._logged(reset.founder))
        self._since_reset = 0
        self._last_reset = self._clock()
        self._resets += 1

    def snapshot(self) -> dict[str, Any]:
        """The whole state but the random generator, as plain data: two databases
        with equal snapshots and equal generators make the same prompts."""
        return {
            "next_id": self._next_id,
            "since_reset": self._since_reset,
            "registrations": self._registrations,
            "input_ids": list(self._input_ids or ()),
            "islands": [island.snapshot() for island in self._islands],
        }

    # -- inside -------------------------------------------------------------

    def _logged(self, program: Program) -> Program:
        """A program from the log, checked, with its scores in the database's
        input order (the signature); later ids continue after its id."""
        self._check_island(program.island)
        if self._input_ids is None:
            self._input_ids = tuple(sorted(program.scores, key=str))
        if set(program.scores) != set(self._input_ids):
            raise ValueError(
                f"program {program.id}: input ids {sorted(program.scores, key=str)} differ "
                f"from the database's {list(self._input_ids)}"
            )
        self._next_id = max(self._next_id, program.id + 1)
        scores = {input_id: program.scores[input_id] for input_id in self._input_ids}
        return dataclasses.replace(program, scores=scores, parents=tuple(program.parents),
                                   hash=program.hash or code.normal_hash(program.source))

    def _new_program(
        self, source: str, scores: dict[str, float], island: int,
        parents: tuple[int, ...], sampler: str, program_hash: str,
    ) -> Program:
        program = Program(self._next_id, source, scores, _mean(list(scores.values())), island,
                          parents, sampler, program_hash)
        self._next_id += 1
        return program

    def _check_island(self, island: int) -> None:
        if not 0 <= island < len(self._islands):
            raise ValueError(f"no island {island}: the database has {len(self._islands)}")

    def _count_registration(self) -> None:
        self._since_reset += 1
        self._registrations += 1

    def _maybe_reset(self) -> tuple[Reset, ...]:
        every, period = self._config.reset_every, self._config.reset_period
        due = (every is not None and self._since_reset >= every) or (
            period is not None and self._clock() - self._last_reset >= period
        )
        return self._reset_weaker_half() if due else ()

    def _reset_weaker_half(self) -> tuple[Reset, ...]:
        """Empties the weaker half of the islands and founds each with the best
        program of a surviving island chosen at random."""
        self._since_reset = 0
        self._last_reset = self._clock()
        count = len(self._islands) // 2
        if count == 0:
            return ()
        scores = np.array(self.island_best_scores())
        # Sorted by score; among equal scores in a random order, to break ties.
        order = np.lexsort((self._rng.random(len(scores)), scores))
        weaker = sorted(int(i) for i in order[:count])
        survivors = sorted(int(i) for i in order[count:])
        resets = []
        for index in weaker:
            source_island = survivors[int(self._rng.integers(len(survivors)))]
            model = self._islands[source_island].best
            assert model is not None, "a surviving island always has programs"
            epoch = self._islands[index].epoch + 1
            founder = self._new_program(
                model.source, dict(model.scores), index, (model.id,), model.sampler, model.hash
            )
            self._refound(index, epoch, founder)
            resets.append(Reset(index, epoch, founder, source_island))
        self._resets += len(resets)
        return tuple(resets)

    def _refound(self, index: int, epoch: int, founder: Program) -> None:
        island = Island(epoch, self._config)
        island.register(founder)
        self._islands[index] = island
