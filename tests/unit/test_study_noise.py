"""The noise model's scale comes from the spread between seeds."""

import numpy as np
import pytest

from funsearch.study import synthetic
from funsearch.study.model import analyse
from funsearch.study.observe import Grid


def arms(sd=0.05, factor=1.0):
    return {"a": synthetic.TrueArm(1.2, 0.2, 0.5, sd),
            "b": synthetic.TrueArm(1.0, 0.1, 0.8, sd * factor)}


def runs(truths, seeds, rng, rho=0.8):
    world = synthetic.World(1000.0, truths, rho=rho)
    return {arm: [world.run(arm, 1.0, rng) for _ in range(seeds)] for arm in truths}


def test_the_scale_is_the_spread_between_seeds():
    analysis = analyse(runs(arms(sd=0.05), 30, np.random.default_rng(0)), Grid.log_spaced(1000, 5))
    sd = analysis.noise.sd * analysis.scale.unit  # back in score units
    assert np.median(sd) == pytest.approx(0.05, rel=0.15)
    assert analysis.noise.rho == pytest.approx(0.8, abs=0.1)
    assert "seed spread" in analysis.noise.source


def test_the_scale_follows_the_seeds_not_the_law():
    quiet = analyse(runs(arms(sd=0.02), 20, np.random.default_rng(1)), Grid.log_spaced(1000, 5))
    loud = analyse(runs(arms(sd=0.08), 20, np.random.default_rng(1)), Grid.log_spaced(1000, 5))
    ratio = np.median(loud.noise.sd * loud.scale.unit) / np.median(quiet.noise.sd * quiet.scale.unit)
    assert ratio == pytest.approx(4.0, rel=0.2)


def test_without_repeats_the_residuals_give_a_scale_of_the_right_size():
    truths = {f"arm{k}": synthetic.TrueArm(1.0 + 0.1 * k, 0.2, 0.5, 0.05) for k in range(6)}
    analysis = analyse(runs(truths, 1, np.random.default_rng(2)), Grid.log_spaced(1000, 5))
    assert "no repeats" in analysis.noise.source
    assert 0.025 < np.median(analysis.noise.sd * analysis.scale.unit) < 0.1


def test_an_arm_with_a_wider_spread_gets_a_larger_factor():
    analysis = analyse(runs(arms(sd=0.03, factor=3.0), 12, np.random.default_rng(3)),
                       Grid.log_spaced(1000, 5))
    factors = analysis.noise.factors
    assert factors["b"] > 1 > factors["a"]
    assert factors["b"] / factors["a"] > 2  # 3 in truth, shrunk towards 1 with 11 repeats


def test_neighbouring_points_of_a_run_are_correlated_in_the_covariance():
    analysis = analyse(runs(arms(), 6, np.random.default_rng(4)), Grid.log_spaced(1000, 5))
    covariance = analysis.noise.covariance("a", np.array([3, 4, 8]))
    correlation = covariance / np.sqrt(np.outer(np.diag(covariance), np.diag(covariance)))
    assert correlation[0, 1] == pytest.approx(analysis.noise.rho, abs=1e-9)
    assert correlation[0, 2] == pytest.approx(analysis.noise.rho ** 5, abs=1e-9)
