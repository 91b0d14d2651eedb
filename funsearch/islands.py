"""The island model's parts: islands, clusters, and how they choose programs.

An island is one population; its programs are grouped into clusters of equal
score signature. A prompt's programs are drawn cluster by cluster with a
softmax over the cluster scores at a temperature that falls as the island
fills and starts over every `temperature_period` programs (exploration, then
exploitation, then exploration again), and inside a cluster shorter programs
more often. funsearch/database.py keeps the islands, registers programs on
them and resets the weaker half.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from funsearch.config import DatabaseConfig
from funsearch.programs import Program, Signature


def temperature(registered: int, init: float, period: int) -> float:
    """Cluster sampling temperature after `registered` programs on an island.

    It falls linearly from `init` to `init / period` and starts over every
    `period` programs: early on, weak clusters get a fair share of prompts;
    later the search concentrates on the best, then explores again.
    """
    return init * (1 - (registered % period) / period)


def _softmax(logits: Sequence[float] | np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities proportional to exp(logit / temperature).

    Shifted by the largest logit before dividing, so that scores of +-1e6 at a
    temperature of 1e-6 neither overflow nor give NaN: the best gets exp(0).
    """
    logits = np.asarray(logits, dtype=float)
    with np.errstate(over="ignore"):
        weights = np.exp((logits - logits.max()) / temperature)
    return weights / weights.sum()


def _draw(rng: np.random.Generator, probabilities: np.ndarray) -> int:
    """An index drawn with the given probabilities (rng.choice, without its
    validation cost: this is on every prompt's path)."""
    cumulative = np.cumsum(probabilities)
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return min(index, len(probabilities) - 1)



class Island:
    """One population: clusters of programs with equal signature."""

    def __init__(self, epoch: int, config: DatabaseConfig) -> None:
        self.epoch = epoch
        self.clusters: dict[Signature, Cluster] = {}
        self.registered = 0  # since the island was founded: drives the temperature
        self.best: Program | None = None
        self.hashes: set[str] = set()  # of the programs on it: each normal form once
        self._config = config

    @property
    def temperature(self) -> float:
        return temperature(
            self.registered, self._config.temperature_init, self._config.temperature_period
        )

    @property
    def best_score(self) -> float:
        return self.best.score if self.best is not None else -math.inf

    @property
    def size(self) -> int:
        return sum(len(cluster.programs) for cluster in self.clusters.values())

    def programs(self) -> list[Program]:
        return [program for cluster in self.clusters.values() for program in cluster.programs]

    def register(self, program: Program) -> None:
        self.hashes.add(program.hash)
        cluster = self.clusters.get(program.signature)
        if cluster is None:
            cluster = self.clusters[program.signature] = Cluster(program.score)
        cluster.register(program)
        self.registered += 1
        if program.score > self.best_score:
            self.best = program

    def choose(self, rng: np.random.Generator) -> tuple[Program, ...]:
        """Up to k programs from distinct clusters, weakest first.

        Clusters are drawn one at a time without replacement, each draw a
        softmax over the clusters left (so a cluster whose probability
        underflows to 0 can still fill a slot). Fewer than k programs at the
        beginning of an experiment, when the island has fewer clusters.
        """
        signatures = list(self.clusters)
        scores = np.array([self.clusters[s].score for s in signatures])
        left = list(range(len(signatures)))
        chosen = []
        for _ in range(min(self._config.functions_per_prompt, len(signatures))):
            probabilities = _softmax(scores[left], self.temperature)
            chosen.append(left.pop(_draw(rng, probabilities)))
        length_temperature = self._config.length_temperature
        programs = [self.clusters[signatures[i]].choose(rng, length_temperature) for i in chosen]
        return tuple(sorted(programs, key=lambda program: program.score))

    def snapshot(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "registered": self.registered,
            "best": self.best.id if self.best is not None else None,
            "clusters": [
                [list(signature), [program.id for program in cluster.programs]]
                for signature, cluster in self.clusters.items()
            ],
        }


class Cluster:
    """Programs with the same signature, hence the same score."""

    def __init__(self, score: float) -> None:
        self.score = score
        self.programs: list[Program] = []
        self._lengths: list[int] = []

    def register(self, program: Program) -> None:
        self.programs.append(program)
        self._lengths.append(len(program.source))

    def choose(self, rng: np.random.Generator, length_temperature: float) -> Program:
        """A program of the cluster, shorter ones more often: among programs
        that score the same, the simpler one is the better one to build on."""
        if len(self.programs) == 1:
            return self.programs[0]
        lengths = np.array(self._lengths, dtype=float)
        # Relative to the longest, so a few characters matter little in long programs.
        normalised = (lengths - lengths.min()) / (lengths.max() + 1e-6)
        probabilities = _softmax(-normalised, length_temperature)
        return self.programs[_draw(rng, probabilities)]
