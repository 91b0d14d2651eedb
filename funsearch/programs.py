"""What crosses the programs database's boundary: programs, prompts, answers.

Frozen values, so the loop, the database (in its own process with Ray) and the
event log pass them around without owning them. The database
(funsearch/database.py) makes them and its islands (funsearch/islands.py) hold
them; the engine sends prompts out and registrations in; the run log stores
their fields, from which a resumed run rebuilds them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

Signature = tuple[float, ...]  # a program's scores in the database's input order


@dataclasses.dataclass(frozen=True)
class Program:
    """A program as registered on one island.

    Attributes:
      id: assigned by the database, sequential from 0 (deterministic).
      source: the evolved function's source.
      scores: input id -> score, in the database's input order.
      score: mean of the scores; what clusters are ranked by.
      island: the island it lives on.
      parents: ids of the programs in the prompt it came from (for a founder,
        the program it copies; none for the initial program).
      sampler: name of the sampler that proposed it.
      hash: the normal hash of its source (code.normal_hash): an island holds
        one program of each, so a duplicate is never registered twice.
    """

    id: int
    source: str
    scores: dict[str, float]
    score: float
    island: int
    parents: tuple[int, ...]
    sampler: str = ""
    hash: str = ""

    @property
    def signature(self) -> Signature:
        return tuple(self.scores.values())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Program:
        """The inverse of dataclasses.asdict, after a JSON round trip."""
        return cls(**{**data, "scores": dict(data["scores"]), "parents": tuple(data["parents"])})


@dataclasses.dataclass(frozen=True)
class Prompt:
    """Programs of one island to show a sampler.

    Attributes:
      island: where they come from, and where the answer is registered.
      epoch: the island's epoch when the prompt was made; an answer that
        arrives after the island was reset is not registered.
      parents: up to k programs from distinct clusters, weakest first
        (shown as f_v0 .. f_v{k-1}).
      version: len(parents), the version the sampler writes.
    """

    island: int
    epoch: int
    parents: tuple[Program, ...]
    version: int


@dataclasses.dataclass(frozen=True)
class Reset:
    """One island emptied and refounded.

    Attributes:
      island: the island reset.
      epoch: its new epoch.
      founder: the founder as registered in the reset island (a new id).
      source_island: the surviving island whose best program it copies.
    """

    island: int
    epoch: int
    founder: Program
    source_island: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reset:
        """The inverse of dataclasses.asdict, after a JSON round trip."""
        return cls(**{**data, "founder": Program.from_dict(data["founder"])})


@dataclasses.dataclass(frozen=True)
class Registration:
    """The outcome of `register`.

    Attributes:
      program: the program as registered, None when it was not.
      reason: why not, in words.
      resets: the island resets this registration triggered (log them after it).
      known: the program was on its island already (the same normal form):
        nothing was registered, and nothing happened worth logging.
    """

    program: Program | None
    reason: str = ""
    resets: tuple[Reset, ...] = ()
    known: bool = False
