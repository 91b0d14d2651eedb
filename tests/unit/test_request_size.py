"""Samples per prompt: the marginal value and cost of the k-th sample of a request."""

import itertools

import numpy as np
import pytest

from funsearch.config import SamplerConfig, SchedulerConfig
from funsearch.scheduling.budget import Cost
from funsearch.scheduling.scheduler import Scheduler

EVALUATION_SECONDS = 0.1


def serve(a, b, values, backend="openai", requests=4000, seed=0):
    """Requests of k samples cost a + b k seconds; the k-th sample improves with values[k-1]."""
    config = SchedulerConfig(adapt_samples_per_prompt=True)
    sampler = SamplerConfig(name="llm", backend=backend, samples_per_prompt=len(values))
    scheduler = Scheduler(config, [sampler], seed=seed)
    rng = np.random.default_rng(seed)
    ids = itertools.count()
    for _ in range(requests):
        size = scheduler.request_size("llm")
        for index in range(size):
            sample = next(ids)
            scheduler.on_sample(sample, "llm", Cost(seconds=(a + b * size) / size), index, size)
            scheduler.observe(sample, improved=bool(rng.random() < values[index]),
                              evaluation_seconds=EVALUATION_SECONDS)
    return scheduler


def best_size(a, b, values):
    sizes = np.arange(1, len(values) + 1)
    rates = np.cumsum(values) / (a + b * sizes + EVALUATION_SECONDS * sizes)
    return int(sizes[np.argmax(rates)])


@pytest.mark.parametrize("a, b, decay", [(2.0, 0.05, 0.8), (0.2, 0.2, 0.8), (2.0, 0.05, 1.0)])
def test_the_sizer_finds_the_samples_per_prompt_with_most_improvements_per_cost(a, b, decay):
    values = [0.05 * decay ** k for k in range(8)]
    sizer = serve(a, b, values).sizers["llm"]
    line = sizer.cost_line()
    assert line == pytest.approx((a, b), abs=1e-6)  # the marginal cost of a sample: b
    assert abs(sizer.best() - best_size(a, b, values)) <= 1


def test_the_k_th_sample_s_value_is_measured_per_place_in_the_request():
    values = [0.2, 0.1, 0.05, 0.02]
    sizer = serve(1.0, 0.01, values, requests=6000).sizers["llm"]
    measured = sizer.values()
    assert measured == sorted(measured, reverse=True)
    assert measured[0] == pytest.approx(0.2, abs=0.04) and measured[3] < 0.08


def test_samples_per_prompt_stay_as_configured_where_the_backend_gains_nothing_from_n():
    scheduler = serve(1.0, 0.1, [0.1] * 4, backend="mutation", requests=50)
    assert scheduler.sizers == {} and scheduler.request_size("llm") == 4
