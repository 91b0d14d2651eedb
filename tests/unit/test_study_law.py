"""The law's fits recover known parameters from curves drawn from the law."""

import math

import numpy as np
import pytest

from funsearch.study import law, synthetic
from funsearch.study.model import analyse
from funsearch.study.observe import Grid, RunCurve

# These curves follow the law from B/64, so the fits may read five octaves (a
# study reads two by default: real curves start otherwise).
TRUTH = synthetic.TrueArm(s_inf=1.3, a=0.3, alpha=0.6, sd=0.04)


def world(**arms):
    return synthetic.World(1000.0, arms or {"x": TRUTH})


def test_both_fits_recover_a_noise_free_law_exactly():
    quiet = synthetic.TrueArm(1.3, 0.3, 0.6, sd=0.0)
    curve = world(x=quiet).run("x", 1.0, np.random.default_rng(0))
    analysis = analyse({"x": [curve]}, Grid.log_spaced(1000.0, 5))
    for posterior in (analysis.arms["x"].ml, analysis.arms["x"].ls):
        s_inf, log_a, log_alpha = posterior.theta
        scale = posterior.fit.scale
        assert scale.back(s_inf) == pytest.approx(1.3, abs=1e-3)
        assert scale.unit * math.exp(log_a) == pytest.approx(0.3, abs=1e-3)
        assert math.exp(log_alpha) == pytest.approx(0.6, abs=1e-3)


def test_ml_fit_recovers_known_parameters_within_its_intervals():
    rng = np.random.default_rng(3)
    curves = [world().run("x", 1.0, rng) for _ in range(12)]
    estimates = analyse({"x": curves}, Grid.log_spaced(1000.0, 5)).arms["x"].ml.estimates(0.95)
    truth = {"s_inf": TRUTH.s_inf, "a": TRUTH.a, "alpha": TRUTH.alpha, "s_B": TRUTH.at_budget}
    for name, value in truth.items():
        assert estimates[name].low <= value <= estimates[name].high, name
    assert estimates["s_B"].value == pytest.approx(TRUTH.at_budget, abs=0.03)
    assert estimates["alpha"].value == pytest.approx(TRUTH.alpha, rel=0.25)


def test_more_seeds_narrow_the_interval_of_the_score_at_b():
    rng = np.random.default_rng(4)
    curves = [world().run("x", 1.0, rng) for _ in range(16)]
    grid = Grid.log_spaced(1000.0, 5)

    def width(runs):
        estimate = analyse({"x": runs}, grid).arms["x"].ml.estimates()["s_B"]
        return estimate.high - estimate.low

    assert width(curves) < 0.7 * width(curves[:4])


def test_least_squares_intervals_are_narrower_than_the_seed_noise_allows():
    """LS counts a run's correlated grid points as independent observations."""
    rng = np.random.default_rng(5)
    curves = [world().run("x", 1.0, rng) for _ in range(3)]
    fit = analyse({"x": curves}, Grid.log_spaced(1000.0, 5)).arms["x"]
    ml, ls = fit.ml.estimates()["s_B"], fit.ls.estimates()["s_B"]
    assert ls.high - ls.low < ml.high - ml.low


def test_a_short_run_is_read_only_as_far_as_it_went():
    grid = Grid.log_spaced(1000.0, 5)
    curve = RunCurve(((0.0, 1.0), (100.0, 2.0)), extent=250.0)
    sampled = grid.sample(curve)
    assert grid.costs[sampled.index].max() <= 250.0
    assert list(sampled.y) == [1.0 if c < 100 else 2.0 for c in grid.costs[sampled.index]]


def test_the_law_is_s_inf_minus_the_gap_at_b():
    theta = np.array([1.0, math.log(0.2), math.log(0.5)])
    assert law.mean(theta, np.array([1.0]))[0] == pytest.approx(0.8)
    assert law.mean(theta, np.array([0.25]))[0] == pytest.approx(1.0 - 0.2 * 2.0)
