"""The next run is the one expected to tell most about which arm is best at B."""

import numpy as np
import pytest

from funsearch.study import design, synthetic
from funsearch.study.model import analyse
from funsearch.study.observe import Grid

GRID = Grid.log_spaced(1000.0)


def study(truths, seeds, rng_seed=0):
    world = synthetic.World(1000.0, truths)
    rng = np.random.default_rng(rng_seed)
    curves = {arm: [world.run(arm, 1.0, rng) for _ in range(seeds[arm])] for arm in truths}
    return analyse(curves, GRID), {arm: len(c) for arm, c in curves.items()}


def test_information_gain_prefers_separating_two_close_arms_over_measuring_a_known_one():
    truths = {"close1": synthetic.TrueArm(1.20, 0.2, 0.5, 0.05),
              "close2": synthetic.TrueArm(1.21, 0.2, 0.5, 0.05),
              "known": synthetic.TrueArm(1.10, 0.2, 0.5, 0.05)}
    analysis, counts = study(truths, {"close1": 2, "close2": 2, "known": 2})
    choice = design.choose(analysis, list(truths), counts, [], [1.0], initial=1,
                           per_compute=False)
    gains = {c.arm: c.gain for c in choice.candidates}
    assert choice.arm in ("close1", "close2")
    assert min(gains["close1"], gains["close2"]) > 2 * gains["known"]
    assert choice.rule == "information gain" and "bits" in choice.reason


def test_a_run_of_an_arm_known_well_gains_less_than_one_of_an_arm_barely_run():
    truths = {"few": synthetic.TrueArm(1.20, 0.2, 0.5, 0.05),
              "many": synthetic.TrueArm(1.20, 0.2, 0.5, 0.05)}
    analysis, counts = study(truths, {"few": 2, "many": 12}, rng_seed=1)
    choice = design.choose(analysis, list(truths), counts, [], [1.0], 1, False)
    gains = {c.arm: c.gain for c in choice.candidates}
    assert choice.arm == "few" and gains["few"] > gains["many"]


def test_expected_gain_is_largest_when_the_arms_are_tied():
    var = np.array([0.04, 0.04])
    tied = design.expected_gain(np.array([0.0, 0.0]), var, 0, 0.01)
    apart = design.expected_gain(np.array([0.0, 1.0]), var, 0, 0.01)
    nothing = design.expected_gain(np.array([0.0, 0.0]), var, 0, 0.04)
    assert tied > apart > 0
    assert nothing == pytest.approx(0.0, abs=1e-9)


def test_every_arm_is_run_once_before_information_gain_chooses():
    truths = {k: synthetic.TrueArm(1.0, 0.2, 0.5, 0.05) for k in ("a", "b", "c")}
    analysis, counts = study(truths, {"a": 1, "b": 0, "c": 1})
    choice = design.choose(analysis, list(truths), counts, [], [0.5, 1.0], 1, False)
    assert (choice.arm, choice.budget, choice.rule) == ("b", 1.0, "initial")


def test_a_run_in_flight_lowers_the_gain_of_another_on_the_same_arm():
    truths = {"x": synthetic.TrueArm(1.20, 0.2, 0.5, 0.05),
              "y": synthetic.TrueArm(1.21, 0.2, 0.5, 0.05)}
    analysis, counts = study(truths, {"x": 2, "y": 2}, rng_seed=2)
    alone = design.choose(analysis, list(truths), counts, [], [1.0], 1, False)
    busy = design.choose(analysis, list(truths), {**counts, alone.arm: 3},
                         [(alone.arm, 1.0)], [1.0], 1, False)
    before = {c.arm: c.gain for c in alone.candidates}
    after = {c.arm: c.gain for c in busy.candidates}
    assert after[alone.arm] < before[alone.arm]


def test_with_a_compute_budget_a_shorter_run_can_win_per_unit_of_compute():
    truths = {"x": synthetic.TrueArm(1.20, 0.2, 0.5, 0.05),
              "y": synthetic.TrueArm(1.21, 0.2, 0.5, 0.05)}
    analysis, counts = study(truths, {"x": 2, "y": 2}, rng_seed=3)
    per_run = design.choose(analysis, list(truths), counts, [], [0.25, 1.0], 1, False)
    assert per_run.budget == 1.0  # a longer run sees everything a shorter one does
    per_compute = design.choose(analysis, list(truths), counts, [], [0.25, 1.0], 1, True)
    ranked = {(c.arm, c.budget): c.gain for c in per_compute.candidates}
    assert ranked[(per_compute.arm, per_compute.budget)] > 0
