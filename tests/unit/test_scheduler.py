"""The scheduler: cost accounting, budgets, policies, the balance controller, its log.

The bandit and controller tests run the scheduler against simulated samplers
(funsearch/scheduling/simulation.py): each size has a known latency and a known chance
of an improvement, evaluations take a known time, and the clock is simulated,
so thousands of decisions take a fraction of a second and every expected
value is known. No model runs here; the last test runs the real engine.
"""

import itertools
import math
import textwrap

import pytest

from funsearch import config as config_module
from funsearch import experiment, runlog
from funsearch.config import Budget, SamplerConfig, SchedulerConfig
from funsearch.samplers.base import Sample
from funsearch.scheduling.budget import Cost, Spent, cost_unit, exhausted, in_unit, sample_cost
from funsearch.scheduling.policies import kl_upper_bound
from funsearch.scheduling.scheduler import Scheduler
from funsearch.scheduling.simulation import SimulatedSampler, Simulation

# Improvements per unit of compute (latency + 1 s of evaluation): small 0.025,
# mid 0.075, large 0.055. The fastest and the most successful are not the best.
SIZES = [SimulatedSampler("small", latency=1.0, success=0.05),
         SimulatedSampler("mid", latency=3.0, success=0.30),
         SimulatedSampler("large", latency=10.0, success=0.60)]


def only(name, samplers=SIZES):
    return SchedulerConfig(policy="fixed",
                           weights={s.name: float(s.name == name) for s in samplers})


def simulate(config, samplers=SIZES, budget=15_000.0, seed=0, **kwargs):
    return Simulation(samplers, config, workers=4, evaluation_seconds=1.0, step=0.0,
                      seed=seed, **kwargs).run(budget=budget)


# Cost accounting and budgets.

def test_a_request_s_latency_is_shared_by_its_samples_and_prices_apply_without_a_backend_price():
    config = SamplerConfig(name="m", price_per_gpu_hour=3.6, price_per_1k_tokens=0.5)
    cost = sample_cost(Sample("x", "m", latency=8.0, prompt_tokens=600, completion_tokens=400,
                              gpu_seconds=100.0), config, samples_in_request=4)
    assert cost.seconds == 2.0 and cost.tokens == 1000 and cost.gpu_seconds == 100.0
    assert cost.usd == pytest.approx(100 / 3600 * 3.6 + 0.5)


def test_a_backend_s_own_price_is_not_charged_twice():
    config = SamplerConfig(name="m", price_per_gpu_hour=3.6, price_per_1k_tokens=0.5)
    cost = sample_cost(Sample("x", "m", latency=1.0, completion_tokens=1000, gpu_seconds=10.0,
                              usd=0.02), config, samples_in_request=1)
    assert cost.usd == 0.02


def test_each_budget_unit_ends_the_run_with_its_reason():
    spent = Spent(samples=10, wall=7200.0, gpu_seconds=36_000.0, usd=20.0)
    assert exhausted(Budget(samples=10), spent, None).startswith("sample budget")
    assert exhausted(Budget(samples=11), spent, None) is None
    assert exhausted(Budget(wall="2h"), spent, None).startswith("wall-time budget")
    assert exhausted(Budget(wall="3h"), spent, None) is None
    assert exhausted(Budget(gpu_hours=10), spent, None).startswith("GPU budget")
    assert exhausted(Budget(gpu_hours=11), spent, None) is None
    assert exhausted(Budget(usd=20), spent, None).startswith("cost budget")
    assert exhausted(Budget(usd=21), spent, None) is None


def test_the_bandits_count_cost_in_the_budget_s_unit_unless_told():
    gpu = [SamplerConfig(name="a", gpus_per_replica=1), SamplerConfig(name="b", gpus_per_replica=2)]
    mixed = [*gpu, SamplerConfig(name="mutation")]
    assert cost_unit(SchedulerConfig(budget=Budget(gpu_hours=1)), gpu) == "gpu_seconds"
    assert cost_unit(SchedulerConfig(budget=Budget(gpu_hours=1)), mixed) == "compute"
    assert cost_unit(SchedulerConfig(budget=Budget(usd=5)), mixed) == "usd"
    assert cost_unit(SchedulerConfig(budget=Budget(samples=5)), gpu) == "compute"
    assert cost_unit(SchedulerConfig(cost="samples", budget=Budget(usd=5)), gpu) == "samples"
    cost = Cost(seconds=2.0, gpu_seconds=3.0, tokens=10, usd=0.5)
    assert in_unit("compute", cost, evaluation_seconds=1.5) == 4.5  # GPU time + evaluation
    assert in_unit("compute", Cost(seconds=2.0), evaluation_seconds=1.5) == 3.5  # no GPU: latency
    assert (in_unit("gpu_seconds", cost, 1.5), in_unit("usd", cost, 1.5)) == (3.0, 0.5)


def test_scheduler_config_rejects_bad_weights_and_unknown_policies():
    with pytest.raises(config_module.ConfigError, match="scheduler.policy"):
        config_module.from_dict({"problem": {"spec": "x.py"}, "scheduler": {"policy": "greedy"}})
    with pytest.raises(config_module.ConfigError, match="not all zero"):
        config_module.from_dict({"problem": {"spec": "x.py"},
                                 "scheduler": {"weights": {"mutation": 0}}})
    with pytest.raises(ValueError, match="unknown samplers"):
        Scheduler(SchedulerConfig(weights={"nope": 1}), [SamplerConfig(name="a")])


# Policies.

def test_kl_bound_holds_the_confidence_level_and_tightens_with_data():
    for rate, n in [(0.0, 10), (0.05, 100), (0.3, 40), (0.9, 5)]:
        bound = kl_upper_bound(rate, n, level=3.0)
        assert rate <= bound <= 1.0
        if rate > 0:
            kl = rate * math.log(rate / bound) + (1 - rate) * math.log((1 - rate) / (1 - bound))
            assert n * kl == pytest.approx(3.0, rel=1e-3)
    assert kl_upper_bound(0.1, 1000, 3.0) < kl_upper_bound(0.1, 100, 3.0) < kl_upper_bound(0.1, 10, 3.0)


def test_round_robin_takes_turns_and_skips_a_sampler_without_room():
    samplers = [SamplerConfig(name=name, max_concurrency=2) for name in "abc"]
    scheduler = Scheduler(SchedulerConfig(policy="round_robin", balance=False), samplers)
    assert [scheduler.pick({}) for _ in range(4)] == ["a", "b", "c", "a"]
    config = SchedulerConfig(policy="round_robin", max_in_flight=2, balance=False)
    scheduler = Scheduler(config, samplers)
    assert [scheduler.pick({"b": 2}) for _ in range(3)] == [None, None, None]  # total full
    # The controller's limits before anything is measured: the samplers' concurrency.
    scheduler = Scheduler(SchedulerConfig(policy="round_robin"), samplers, slots=100)
    assert scheduler.controller.setting.limits == {"a": 2, "b": 2, "c": 2}
    assert [scheduler.pick({"a": 0, "b": 2, "c": 0}) for _ in range(3)] == ["a", "c", "a"]


def test_fixed_weights_set_the_shares_and_a_zero_weight_is_never_picked():
    samplers = [SamplerConfig(name=name) for name in "abc"]
    scheduler = Scheduler(SchedulerConfig(policy="fixed", weights={"a": 3, "b": 1, "c": 0},
                                          balance=False), samplers, seed=1)
    picks = [scheduler.pick({}) for _ in range(4000)]
    assert picks.count("c") == 0
    assert picks.count("a") / len(picks) == pytest.approx(0.75, abs=0.03)


def test_a_bandit_gives_each_sampler_its_minimum_pulls_and_waits_for_their_outcomes():
    samplers = [SamplerConfig(name=name, samples_per_prompt=4) for name in "ab"]
    scheduler = Scheduler(SchedulerConfig(policy="ucb", min_pulls=8, balance=False), samplers)
    in_flight = {"a": 0, "b": 0}
    for _ in range(4):
        in_flight[scheduler.pick(in_flight)] += 1
    assert in_flight == {"a": 2, "b": 2}  # 8 samples each
    assert scheduler.pick(in_flight) is None  # nothing judged yet: wait, don't spend
    sample_ids = itertools.count()
    for name, improved in [("a", False)] * 8 + [("b", True)] * 8:
        sample_id = next(sample_ids)
        scheduler.on_sample(sample_id, name, Cost(seconds=1.0))
        scheduler.observe(sample_id, improved=improved, evaluation_seconds=1.0)
    assert scheduler.pick({"a": 0, "b": 0}) == "b"


def test_a_bandit_waits_rather_than_spend_on_a_worse_sampler_when_the_best_is_full():
    samplers = [SamplerConfig(name=name, samples_per_prompt=1, max_concurrency=2) for name in "ab"]
    scheduler = Scheduler(SchedulerConfig(policy="ucb", min_pulls=5), samplers)
    for sample_id in range(200):
        name = "ab"[sample_id % 2]
        scheduler.on_sample(sample_id, name, Cost(seconds=1.0))
        scheduler.observe(sample_id, improved=name == "b" and sample_id % 4 == 1)
    assert scheduler.pick({"a": 0, "b": 0}) == "b"
    assert scheduler.pick({"a": 0, "b": 2}) is None


def test_a_sampler_that_only_fails_loses_the_bandit_s_favour():
    samplers = [SamplerConfig(name=name, samples_per_prompt=1) for name in "ab"]
    scheduler = Scheduler(SchedulerConfig(policy="ucb", min_pulls=5), samplers)
    for sample_id in range(40):
        name = "ab"[sample_id % 2]
        scheduler.on_sample(sample_id, name, Cost(seconds=1.0))
        scheduler.observe(sample_id, improved=name == "b" or sample_id % 8 == 0)
    assert scheduler.pick({}) == "b"
    for _ in range(200):  # "b" is down: every request raises
        scheduler.on_prompt("b", latency=1.0, evaluations=0, failed=True)
    assert scheduler.pick({}) == "a"


# Bandits against simulated samplers.

@pytest.mark.parametrize("policy", ["ucb", "thompson"])
def test_bandit_spends_the_budget_on_the_size_with_most_improvements_per_cost(policy):
    trace = simulate(SchedulerConfig(policy=policy))
    shares = trace.scheduler.shares()
    assert shares["mid"] > 0.8, shares
    assert sum(trace.scheduler.ledger[s.name].cost for s in SIZES) == pytest.approx(trace.spent)


def test_bandit_regret_against_the_best_fixed_size_is_within_15_percent():
    fixed = {s.name: simulate(only(s.name), budget=8000).improvements for s in SIZES}
    assert max(fixed, key=fixed.get) == "mid"  # the simulation is what the test says
    uniform = simulate(SchedulerConfig(policy="round_robin"), budget=8000).improvements
    for policy in ("ucb", "thompson"):
        bandit = simulate(SchedulerConfig(policy=policy), budget=8000).improvements
        assert bandit >= 0.85 * fixed["mid"] and bandit > uniform, (policy, bandit, fixed, uniform)


def test_discounted_bandit_follows_the_best_size_as_improvements_get_harder():
    # "quick" is the better buy while improvements are easy and runs dry after
    # ~20 of them; "deep" keeps its chance for longer.
    samplers = [SimulatedSampler("quick", latency=1.0, success=0.2, depth=20),
                SimulatedSampler("deep", latency=6.0, success=0.5, depth=400)]
    events = []
    Simulation(samplers, SchedulerConfig(policy="ucb", log_decisions=50, log_period=1e9),
               workers=4,
               evaluation_seconds=0.5, step=0.0, seed=0,
               emit=lambda **fields: events.append(fields)).run(budget=15_000)
    decisions = [e["since"] for e in events if e["action"] == "decisions"]
    early, late = decisions[2:6], decisions[-6:-1]
    share = lambda part, name: sum(d.get(name, 0) for d in part) / sum(sum(d.values()) for d in part)
    assert share(early, "quick") > 0.5 and share(late, "deep") > 0.85, (early, late)


# The balance controller.

def flood(balance, latency=0.01, max_in_flight=64):
    proposer = SimulatedSampler("fast", latency=latency, success=0.0, samples_per_prompt=4,
                                concurrency=64)
    config = SchedulerConfig(policy="round_robin", balance=balance, max_in_flight=max_in_flight)
    return Simulation([proposer], config, workers=8, evaluation_seconds=1.0,
                      seed=0).run(until=300.0, warmup=30.0)


def test_controller_keeps_evaluators_busy_and_the_queue_bounded_under_a_fast_proposer():
    controlled = flood(balance=True)
    assert controlled.utilization >= 0.8
    slots, per_prompt = 16, 4
    assert controlled.max_evaluations <= slots + per_prompt
    assert controlled.max_prompts <= slots // per_prompt + 1
    unbounded = flood(balance=False)  # every prompt max_in_flight allows: a flood
    assert unbounded.max_evaluations > 100 > controlled.max_evaluations


def test_controller_raises_prompts_in_flight_until_a_slow_proposer_keeps_evaluators_busy():
    events = []
    proposer = SimulatedSampler("slow", latency=20.0, success=0.0, samples_per_prompt=4,
                                concurrency=64)
    config = SchedulerConfig(policy="round_robin", max_in_flight=64)
    trace = Simulation([proposer], config, workers=8, evaluation_seconds=1.0, seed=0,
                       emit=lambda **fields: events.append(fields)).run(until=600.0, warmup=120.0)
    assert trace.utilization >= 0.8
    # 8 workers need 8 evaluations a second: 40 prompts of 4 samples taking 20 s,
    # and the position stays bounded by that pipe plus the 16 evaluation slots.
    assert 40 <= trace.max_prompts <= 64
    assert trace.max_evaluations <= 16 + 1.5 * 40 * 4
    assert flood(balance=False, latency=20.0, max_in_flight=4).utilization < 0.5
    changes = [e for e in events if e["action"] == "controller"]
    assert changes[0]["limits"] == {"slow": 64} and changes[0]["rate"] == 0
    assert changes[-1]["rate"] == pytest.approx(8, rel=0.25)
    assert all(a["limits"] != b["limits"] for a, b in zip(changes[1:], changes[2:], strict=False))


# The log.

def test_decisions_are_logged_at_the_configured_rate_with_their_estimates():
    events = []
    config = SchedulerConfig(policy="thompson", log_decisions=100, log_period=1e9)
    trace = simulate(config, budget=5000, emit=lambda **fields: events.append(fields))
    decisions = [e for e in events if e["action"] == "decisions"]
    assert len(decisions) == math.ceil(trace.scheduler.decisions / 100)
    assert sum(sum(e["since"].values()) for e in decisions) == trace.scheduler.decisions
    last = decisions[-1]["samplers"]["mid"]
    assert {"picks", "pulls", "rate", "cost", "efficiency", "index", "share"} <= set(last)
    ledger = events[-1]
    assert ledger["action"] == "ledger" and ledger["unit"] == "compute"
    assert sum(s["samples"] for s in ledger["samplers"].values()) == trace.scheduler.ledger[
        "mid"].samples + trace.scheduler.ledger["small"].samples + trace.scheduler.ledger[
        "large"].samples


# The engine.

SPEC = '''
import funsearch

@funsearch.inputs
def train():
    return [1.0, 2.0, 4.0]

@funsearch.run
def evaluate(x):
    return f(x)

@funsearch.score
def score(x, output):
    return -abs(output - 3 * x)

@funsearch.evolve
def f(x):
    return x
'''


class PricedSampler:
    """Returns the given bodies in turn, reporting 500 tokens per sample."""

    def __init__(self, name, texts):
        self.name = name
        self._texts = itertools.cycle(texts)

    def sample(self, query, n):
        return [Sample(next(self._texts), self.name, latency=0.001, prompt_tokens=400,
                       completion_tokens=100) for _ in range(n)]


def test_engine_charges_prices_stops_at_the_dollar_budget_and_logs_its_decisions(tmp_path):
    (tmp_path / "spec.py").write_text(textwrap.dedent(SPEC))
    config = config_module.from_dict({
        "name": "t", "seed": 0, "out": str(tmp_path / "runs"), "base_dir": str(tmp_path),
        "problem": {"spec": "spec.py"},
        "database": {"islands": 2},
        "evaluator": {"workers": 2, "timeout": 10, "isolation": "process"},
        "samplers": [{"name": "cheap", "samples_per_prompt": 2, "price_per_1k_tokens": 0.01},
                     {"name": "dear", "samples_per_prompt": 2, "price_per_1k_tokens": 0.1}],
        "runtime": {"kind": "inline"},
        "scheduler": {"policy": "ucb", "min_pulls": 4, "log_decisions": 5,
                      "budget": {"usd": 0.5, "samples": 1000}},
    })
    texts = ["    return 2 * x\n", "    return x + 1\n", "    return 3 * x\n", "not code"]
    result = experiment.run(config, samplers={"cheap": PricedSampler("cheap", texts),
                                              "dear": PricedSampler("dear", texts)})
    assert result.stop_reason.startswith("cost budget reached")
    events = list(runlog.read_events(result.run_dir))
    samples = [e for e in events if e["kind"] == "sample"]
    assert {e["usd"] for e in samples} == {0.005, 0.05}
    assert 0.5 <= sum(e["usd"] for e in samples) < 0.5 + 0.05 * 2 * 32  # at most what was in flight
    scheduler = [e for e in events if e["kind"] == "scheduler"]
    assert scheduler[0]["action"] == "controller" and scheduler[-1]["action"] == "ledger"
    assert any(e["action"] == "decisions" for e in scheduler)
    ledger = scheduler[-1]["samplers"]
    assert ledger["cheap"]["samples"] + ledger["dear"]["samples"] <= len(samples)
    assert ledger["dear"]["usd"] == pytest.approx(0.05 * ledger["dear"]["samples"])
