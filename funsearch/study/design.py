"""Which run to make next: the one expected to tell most about which arm is
best at the decision budget B.

What the study knows about the decision is P(best at B) per arm; its entropy
H is how undecided it is. A run of arm k to budget b adds the information of
its grid points to arm k's fit (linearised at the current mode, J^T C^-1 J,
the same whatever the run shows), so the variance of s_k(B) falls from v to
v'; seen from now, its mean after the run is normal around today's with
variance v - v'. The expected information gain is H now minus the expected H
after the run, averaged over that by Gauss-Hermite quadrature: deterministic,
and milliseconds for a handful of arms. A run that separates two close arms
gains much; one that measures an arm already known, or one far behind, little.

Runs in flight (a parallel study) count with their information added and
their outcome unknown, so two slots go to the same question only while it is
still the best one. With a compute budget, candidates are ranked by gain per
unit of compute (a run to B/4 costs a quarter of one to B), else per run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from funsearch.study import law
from funsearch.study.model import Analysis
from funsearch.study.noise import Noise
from funsearch.study.observe import Grid
from funsearch.study.posterior import entropy, p_best

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(24)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


@dataclasses.dataclass(frozen=True)
class Candidate:
    arm: str
    budget: float  # a fraction of B
    gain: float  # bits expected about which arm is best at B

    def to_json(self) -> dict:
        return {"arm": self.arm, "budget": self.budget, "gain": round(self.gain, 5)}


@dataclasses.dataclass(frozen=True)
class Choice:
    """The next run and why: `rule` is "initial" or "information gain"."""

    arm: str
    budget: float
    rule: str
    reason: str
    gain: float | None = None
    candidates: tuple[Candidate, ...] = ()


def run_information(theta: np.ndarray, grid: Grid, noise: Noise, arm: str,
                    budget: float) -> np.ndarray:
    """Fisher information about theta of one more run of `arm` to `budget` x B."""
    index = grid.reached(budget)
    if not len(index):
        return np.zeros((len(theta), len(theta)))
    rows = law.whitener(noise.covariance(arm, index)) @ law.jacobian(theta, grid.x[index])
    return rows.T @ rows


def expected_gain(mu: np.ndarray, var: np.ndarray, k: int, var_after: float) -> float:
    """Bits a measurement that brings arm k's variance to `var_after` is
    expected to tell about which arm is best."""
    sd = np.sqrt(np.maximum(var, 0.0))
    now = entropy(p_best(mu, sd))
    shift = np.sqrt(max(var[k] - var_after, 0.0))
    after_sd = sd.copy()
    after_sd[k] = np.sqrt(max(var_after, 0.0))
    moved = np.repeat(mu[None, :], len(_NODES), axis=0)
    moved[:, k] += shift * _NODES
    after = entropy(p_best(moved, np.broadcast_to(after_sd, moved.shape)))
    return max(float(now - _WEIGHTS @ after), 0.0)


def choose(analysis: Analysis, arms: Sequence[str], counts: Mapping[str, int],
           pending: Sequence[tuple[str, float]], budgets: Sequence[float], initial: int,
           per_compute: bool) -> Choice:
    """The next run. `counts`: runs per arm made or in flight; `budgets`: the
    run budgets (fractions of B) the study may still afford."""
    if not budgets:
        raise ValueError("no run budget left to choose from")
    first = [arm for arm in arms if counts.get(arm, 0) < initial]
    if first or not analysis.arms:
        arm = min(first or arms, key=lambda name: counts.get(name, 0))
        return Choice(arm, max(budgets), "initial",
                      f"initial design: every arm gets {initial} run(s) to B before "
                      "information gain chooses")
    names, mu, var = _moments_with_pending(analysis, pending)
    candidates = []
    for k, arm in enumerate(names):
        fit = analysis.arms[arm].ml
        held = _held_information(analysis, arm, pending)
        for budget in budgets:
            extra = run_information(fit.theta, analysis.grid, analysis.noise, arm, budget)
            after = fit.decision_variance(held + extra)
            candidates.append(Candidate(arm, budget, expected_gain(mu, var, k, after)))
    ranked = sorted(candidates, key=lambda c: (-(c.gain / c.budget if per_compute else c.gain),
                                               counts.get(c.arm, 0), -c.budget, names.index(c.arm)))
    best = ranked[0]
    return Choice(best.arm, best.budget, "information gain",
                  _reason(best, ranked, names, mu, var, per_compute), best.gain, tuple(ranked))


def _held_information(analysis: Analysis, arm: str, pending: Sequence[tuple[str, float]]
                      ) -> np.ndarray:
    """The arm's information now, plus that of its runs in flight."""
    fit = analysis.arms[arm].ml
    information = fit.fit.information.copy()
    for other, budget in pending:
        if other == arm:
            information += run_information(fit.theta, analysis.grid, analysis.noise, arm, budget)
    return information


def _moments_with_pending(analysis: Analysis, pending: Sequence[tuple[str, float]]
                          ) -> tuple[list[str], np.ndarray, np.ndarray]:
    names, mu, var = analysis.decision_moments()
    if pending:
        var = np.array([analysis.arms[arm].ml.decision_variance(
            _held_information(analysis, arm, pending)) for arm in names])
    return names, mu, var


def _reason(best: Candidate, ranked: list[Candidate], names: list[str], mu: np.ndarray,
            var: np.ndarray, per_compute: bool) -> str:
    chances = p_best(mu, np.sqrt(var))
    chance = dict(zip(names, chances, strict=True))
    unit = "bits per B of compute" if per_compute else "bits"
    value = best.gain / best.budget if per_compute else best.gain
    text = (f"information gain: a run of {best.arm} to {best.budget:g} B is expected to tell "
            f"{value:.3f} {unit} about which arm is best at B (undecided now: "
            f"{entropy(chances):.2f} bits; P(best) of {best.arm} {chance[best.arm]:.2f})")
    runner_up = next((c for c in ranked[1:] if c.arm != best.arm), None)
    if runner_up is not None:
        other = runner_up.gain / runner_up.budget if per_compute else runner_up.gain
        text += f"; next arm: {runner_up.arm} to {runner_up.budget:g} B, {other:.3f}"
    return text
