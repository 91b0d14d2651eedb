"""The island model: sampling distribution, resets and epochs, determinism, replay.

Distributions are checked with a chi-square statistic over many prompts from a
fixed seed, against the softmax computed here independently of the module.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter

import numpy as np
import pytest

from funsearch.config import DatabaseConfig
from funsearch.database import ProgramsDatabase
from funsearch.islands import temperature
from funsearch.programs import Program, Registration, Reset

# Chi-square critical values at significance 0.001, by degrees of freedom.
CHI2_CRITICAL = {1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467}
DRAWS = 20_000


def config(**overrides) -> DatabaseConfig:
    settings = dict(islands=1, functions_per_prompt=1, reset_every=None, reset_period=None)
    settings.update(overrides)
    return DatabaseConfig(**settings)


def program(name: str, extra: str = "") -> str:
    """A program of its own normal form for each name (an island holds each once)."""
    return f"def f(x):\n    tag = {name!r}\n    return x{extra}\n"


def scores(value: float, inputs: int = 2) -> dict[str, float]:
    return {f"in{i}": value for i in range(inputs)}


def expected_softmax(values: list[float], temp: float) -> np.ndarray:
    weights = np.array([math.exp((v - max(values)) / temp) for v in values])
    return weights / weights.sum()


def chi_square(counts: dict, expected: dict, draws: int) -> float:
    return sum((counts.get(key, 0) - draws * p) ** 2 / (draws * p) for key, p in expected.items())


def database_with_clusters(cluster_scores: list[float], **overrides) -> ProgramsDatabase:
    """One island: the initial program scores cluster_scores[0]; each further
    score is one registered program with its own signature."""
    db = ProgramsDatabase(config(**overrides), seed=1)
    db.register_initial(program("initial"), scores(cluster_scores[0]))
    for index, value in enumerate(cluster_scores[1:]):
        registration = db.register(program(f"p{index}"), scores(value), db.prompt(0))
        assert registration.program is not None
    return db


def cluster_frequencies(db: ProgramsDatabase, draws: int = DRAWS) -> Counter:
    return Counter(db.prompt(0).parents[0].score for _ in range(draws))


# -- temperature schedule ----------------------------------------------------


def test_temperature_falls_linearly_from_init_and_restarts_every_period():
    assert temperature(0, 0.1, 100) == pytest.approx(0.1)
    assert temperature(25, 0.1, 100) == pytest.approx(0.075)
    assert temperature(50, 0.1, 100) == pytest.approx(0.05)
    assert temperature(99, 0.1, 100) == pytest.approx(0.001)
    assert temperature(100, 0.1, 100) == pytest.approx(0.1)
    assert temperature(130, 0.1, 100) == pytest.approx(0.07)


def test_island_temperature_counts_programs_registered_on_that_island():
    db = database_with_clusters([0.0, 1.0, 2.0], temperature_init=1.0, temperature_period=10)
    assert db.stats()["islands"][0]["registered"] == 3
    assert db.stats()["islands"][0]["temperature"] == pytest.approx(0.7)


# -- sampling distribution ---------------------------------------------------


@pytest.mark.parametrize(
    "extra_programs, expected_temperature",
    [(0, 0.5), (3, 0.125)],  # n = 4 and n = 7 registered, period 8, T0 = 1
)
def test_cluster_choice_follows_softmax_of_cluster_scores_at_scheduled_temperature(
    extra_programs, expected_temperature
):
    values = [0.0, -0.1, -0.3, -0.6]
    db = database_with_clusters(values, temperature_init=1.0, temperature_period=8)
    for index in range(extra_programs):  # more programs in existing clusters: only n changes
        db.register(program(f"extra{index}"), scores(-0.6), db.prompt(0))
    assert db.stats()["islands"][0]["temperature"] == pytest.approx(expected_temperature)
    counts = cluster_frequencies(db)
    expected = dict(zip(values, expected_softmax(values, expected_temperature), strict=True))
    assert chi_square(counts, expected, DRAWS) < CHI2_CRITICAL[3]
    # The test can fail: the other point of the schedule is clearly rejected.
    other = 0.125 if expected_temperature == 0.5 else 0.5
    wrong = dict(zip(values, expected_softmax(values, other), strict=True))
    assert chi_square(counts, wrong, DRAWS) > 10 * CHI2_CRITICAL[3]


def test_shorter_programs_are_chosen_more_often_inside_a_cluster():
    db = ProgramsDatabase(config(length_temperature=0.1), seed=3)
    db.register_initial(program("a"), scores(1.0))
    for extra in [" + 0" * 5, " + 0" * 20]:
        db.register(program("a", extra), scores(1.0), db.prompt(0))
    lengths = {p.id: len(p.source) for p in db.programs()}
    assert db.stats()["islands"][0]["clusters"] == 1
    shortest, longest = min(lengths.values()), max(lengths.values())
    logits = [-(length - shortest) / (longest + 1e-6) for length in lengths.values()]
    expected = dict(zip(lengths, expected_softmax(logits, 0.1), strict=True))
    counts = Counter(db.prompt(0).parents[0].id for _ in range(DRAWS))
    assert chi_square(counts, expected, DRAWS) < CHI2_CRITICAL[2]
    assert counts[0] > counts[1] > counts[2]  # id 0 is the shortest, id 2 the longest


def test_prompt_of_k_programs_draws_clusters_without_replacement():
    """With k = 2 of 3 clusters, a pair's probability is that of drawing one
    first from the softmax and the other from the softmax of those left."""
    values = [0.0, -0.2, -0.5]
    db = database_with_clusters(values, functions_per_prompt=2, temperature_init=0.5,
                                temperature_period=1_000_000)
    p = dict(zip(values, expected_softmax(values, 0.5), strict=True))
    expected = {}
    for a in values:
        for b in values:
            if a < b:
                expected[(a, b)] = p[a] * p[b] / (1 - p[a]) + p[b] * p[a] / (1 - p[b])
    counts = Counter(tuple(parent.score for parent in db.prompt(0).parents) for _ in range(DRAWS))
    assert set(counts) <= set(expected)
    assert chi_square(counts, expected, DRAWS) < CHI2_CRITICAL[2]


def test_prompt_holds_k_programs_from_distinct_clusters_weakest_first():
    db = database_with_clusters([0.0, 3.0, 1.0, 4.0, 2.0], functions_per_prompt=3)
    for _ in range(200):
        prompt = db.prompt(0)
        assert prompt.version == len(prompt.parents) == 3
        assert len({parent.id for parent in prompt.parents}) == 3
        parent_scores = [parent.score for parent in prompt.parents]
        assert parent_scores == sorted(parent_scores)
        assert len(set(parent_scores)) == 3


def test_prompt_holds_fewer_programs_while_the_island_has_fewer_clusters():
    db = ProgramsDatabase(config(functions_per_prompt=4), seed=0)
    db.register_initial(program("initial"), scores(0.0))
    prompt = db.prompt(0)
    assert prompt.version == len(prompt.parents) == 1
    db.register(program("copy"), scores(0.0), prompt)  # same signature: still one cluster
    assert db.prompt(0).version == 1
    db.register(program("better"), scores(1.0), prompt)
    assert db.prompt(0).version == 2


@pytest.mark.parametrize("low, high", [(-1e6, 1e6), (-1e308, 1e308), (1e6, 1e6 + 1e-9)])
def test_sampling_is_numerically_safe_with_extreme_scores(low, high):
    db = database_with_clusters([low, high, 0.0], functions_per_prompt=2,
                                temperature_init=1e-3, temperature_period=10)
    for _ in range(50):
        prompt = db.prompt(0)
        assert len(prompt.parents) == 2
        assert all(math.isfinite(parent.score) for parent in prompt.parents)
    single = database_with_clusters([low, high], temperature_init=1e-3)
    shown = cluster_frequencies(single, 200)
    assert sum(shown.values()) == 200
    if high - low > 1:  # at a tiny temperature only the best cluster is shown
        assert shown == {high: 200}


def test_prompt_island_is_chosen_at_random_when_not_given():
    db = ProgramsDatabase(config(islands=4), seed=0)
    db.register_initial(program("initial"), scores(0.0))
    islands = Counter(db.prompt().island for _ in range(4000))
    assert set(islands) == {0, 1, 2, 3}
    assert chi_square(islands, {i: 0.25 for i in range(4)}, 4000) < CHI2_CRITICAL[3]


# -- invalid scores ------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, reason",
    [
        ({"in0": float("nan"), "in1": 1.0}, "score is NaN (input 'in0')"),
        ({"in0": 1.0, "in1": float("inf")}, "score is infinite (input 'in1')"),
        ({"in0": 1.0, "in1": -np.inf}, "score is infinite"),
        ({"in0": "1.0", "in1": 1.0}, "score is not a number: str"),
        ({"in0": None, "in1": 1.0}, "score is not a number: NoneType"),
        ({"in0": np.float64("nan"), "in1": 1.0}, "score is NaN"),
        ({"in0": 1.0}, "input ids differ from the database's: missing 'in1'"),
        ({"in0": 1.0, "in1": 1.0, "x": 1.0}, "differ from the database's: unexpected 'x'"),
        ({}, "no scores"),
        (None, "scores are not a mapping"),
    ],
)
def test_invalid_scores_are_rejected_with_a_reason(bad, reason):
    db = ProgramsDatabase(config(), seed=0)
    db.register_initial(program("initial"), scores(0.0))
    registration = db.register(program("bad"), bad, db.prompt(0))
    assert registration.program is None
    assert reason in registration.reason
    assert len(db.programs()) == 1


def test_numpy_scores_are_accepted_as_floats():
    db = ProgramsDatabase(config(), seed=0)
    db.register_initial(program("initial"), {"in1": np.int64(2), "in0": np.float32(1.0)})
    registration = db.register(program("p"), {"in0": np.float64(3.0), "in1": 5}, db.prompt(0))
    assert registration.program is not None
    assert registration.program.score == 4.0
    assert list(registration.program.scores) == ["in0", "in1"]  # the database's input order


def test_initial_program_with_invalid_scores_is_an_error():
    db = ProgramsDatabase(config(), seed=0)
    with pytest.raises(ValueError, match="initial program: score is NaN"):
        db.register_initial(program("initial"), {"in0": float("nan")})


def test_initial_program_is_registered_once_per_island_with_its_own_id():
    db = ProgramsDatabase(config(islands=3), seed=0)
    copies = db.register_initial(program("initial"), scores(0.5))
    assert [(c.id, c.island, c.parents) for c in copies] == [(0, 0, ()), (1, 1, ()), (2, 2, ())]
    assert db.island_best_scores() == [0.5, 0.5, 0.5]
    assert db.best().id == 0  # the earliest among equals
    with pytest.raises(RuntimeError, match="already"):
        db.register_initial(program("initial"), scores(0.5))


def test_registered_program_records_its_parents_and_sampler():
    db = database_with_clusters([0.0, 1.0], functions_per_prompt=2)
    prompt = db.prompt(0)
    registration = db.register(program("child"), scores(2.0), prompt, sampler="coder-1.5b")
    assert registration.program.parents == tuple(parent.id for parent in prompt.parents)
    assert registration.program.sampler == "coder-1.5b"
    assert db.best() == registration.program


# -- resets and epochs -----------------------------------------------------------


def four_islands_scored(db: ProgramsDatabase, best_per_island: list[float]) -> None:
    db.register_initial(program("initial"), scores(0.0))
    for island, value in enumerate(best_per_island):
        db.register(program(f"island{island}"), scores(value), db.prompt(island))


def test_reset_empties_the_weaker_half_and_founds_it_from_survivors_best():
    db = ProgramsDatabase(config(islands=4, reset_every=4), seed=5)
    db.register_initial(program("initial"), scores(0.0))
    registrations = [
        db.register(program(f"island{i}"), scores(value), db.prompt(i))
        for i, value in enumerate([1.0, 0.5, 3.0, 2.0])
    ]
    assert all(not r.resets for r in registrations[:3])
    resets = registrations[3].resets
    assert sorted(reset.island for reset in resets) == [0, 1]  # best scores 1.0 and 0.5
    survivors_best = {2: registrations[2].program, 3: registrations[3].program}
    for reset in resets:
        assert reset.epoch == 1
        assert reset.source_island in survivors_best
        model = survivors_best[reset.source_island]
        assert reset.founder.source == model.source
        assert reset.founder.scores == model.scores
        assert reset.founder.island == reset.island
        assert reset.founder.parents == (model.id,)
        assert [p.id for p in db.programs() if p.island == reset.island] == [reset.founder.id]
    stats = db.stats()["islands"]
    assert [island["epoch"] for island in stats] == [1, 1, 0, 0]
    assert [island["registered"] for island in stats] == [1, 1, 2, 2]
    assert db.best().score == 3.0


def test_founders_come_from_every_surviving_island_over_many_resets():
    sources = Counter()
    for seed in range(40):
        db = ProgramsDatabase(config(islands=4, reset_every=4), seed=seed)
        db.register_initial(program("initial"), scores(0.0))
        for i, value in enumerate([1.0, 0.5, 3.0, 2.0]):
            registration = db.register(program(f"i{i}"), scores(value), db.prompt(i))
        sources.update(reset.source_island for reset in registration.resets)
    assert set(sources) == {2, 3}


def test_prompt_from_before_a_reset_is_not_registered():
    db = ProgramsDatabase(config(islands=2, reset_every=1), seed=0)
    db.register_initial(program("initial"), scores(0.0))
    stale = db.prompt(0)
    registration = db.register(program("better"), scores(1.0), db.prompt(1))
    assert [reset.island for reset in registration.resets] == [0]
    late = db.register(program("late"), scores(5.0), stale)
    assert late.program is None
    assert late.reason == "stale epoch: island 0 was reset since the prompt (epoch 0 -> 1)"
    assert all(p.source != program("late") for p in db.programs())
    fresh = db.register(program("fresh"), scores(5.0), db.prompt(0))
    assert fresh.program is not None and fresh.program.island == 0


def test_reset_ties_are_broken_at_random_but_reproducibly():
    def reset_islands(seed: int) -> tuple[int, ...]:
        db = ProgramsDatabase(config(islands=4, reset_every=1), seed=seed)
        db.register_initial(program("initial"), scores(0.0))
        registration = db.register(program("same"), scores(0.0), db.prompt(0))
        return tuple(reset.island for reset in registration.resets)

    chosen = [reset_islands(seed) for seed in range(30)]
    assert all(len(islands) == 2 for islands in chosen)
    assert len(set(chosen)) > 2
    assert chosen == [reset_islands(seed) for seed in range(30)]


def test_reset_by_time_uses_the_injected_clock():
    now = [0.0]
    db = ProgramsDatabase(config(islands=2, reset_period=100.0), seed=0, clock=lambda: now[0])
    db.register_initial(program("initial"), scores(0.0))
    for at, resets in [(50.0, 0), (99.9, 0), (100.0, 1), (150.0, 0), (199.0, 0), (200.0, 1)]:
        now[0] = at
        registration = db.register(program(f"t{at}"), scores(at), db.prompt(1))
        assert len(registration.resets) == resets, at
    assert db.stats()["resets"] == 2


def test_no_reset_without_a_trigger_or_with_a_single_island():
    db = ProgramsDatabase(config(islands=2), seed=0, clock=lambda: 1e12)
    db.register_initial(program("initial"), scores(0.0))
    assert not any(db.register(program("p"), scores(1.0), db.prompt()).resets for _ in range(50))
    single = ProgramsDatabase(config(islands=1, reset_every=1), seed=0)
    single.register_initial(program("initial"), scores(0.0))
    assert single.register(program("p"), scores(1.0), single.prompt()).resets == ()
    assert len(single.programs()) == 2


# -- determinism -------------------------------------------------------------


def run_search(db: ProgramsDatabase, steps: int = 300) -> list[tuple[int, int, tuple[int, ...]]]:
    """A small search whose scores depend only on the parents: same calls in
    two databases exactly when their prompts are the same."""
    db.register_initial(program("initial"), scores(0.0, inputs=3))
    seen = []
    for step in range(steps):
        prompt = db.prompt()
        seen.append((prompt.island, prompt.epoch, tuple(p.id for p in prompt.parents)))
        value = round(max(p.score for p in prompt.parents) + (step % 7 - 3) * 0.1, 1)
        db.register(program(f"s{step}", " + 0" * (step % 5)), scores(value, inputs=3), prompt)
    return seen


def search_config() -> DatabaseConfig:
    return config(islands=4, functions_per_prompt=2, reset_every=60, temperature_period=50)


def test_same_seed_and_same_calls_give_the_same_prompts():
    first = run_search(ProgramsDatabase(search_config(), seed=7))
    second = run_search(ProgramsDatabase(search_config(), seed=7))
    assert first == second
    assert run_search(ProgramsDatabase(search_config(), seed=8)) != first


# -- replay ------------------------------------------------------------------


def logged_search(db: ProgramsDatabase) -> list[Program | Reset]:
    """run_search, recording what an event log would: registrations and resets."""
    log: list[Program | Reset] = list(db.register_initial(program("initial"), scores(0.0, 3)))
    for step in range(300):
        prompt = db.prompt()
        value = round(max(p.score for p in prompt.parents) + (step % 7 - 3) * 0.1, 1)
        registration: Registration = db.register(program(f"s{step}"), scores(value, 3), prompt)
        if registration.program is not None:
            log.append(registration.program)
        log.extend(registration.resets)
    return log


def test_replaying_registrations_and_resets_rebuilds_the_same_database():
    original = ProgramsDatabase(search_config(), seed=11)
    log = logged_search(original)
    assert any(isinstance(event, Reset) for event in log)
    # Through JSON lines, as the event log stores them.
    lines = [json.dumps({"reset": isinstance(e, Reset), **dataclasses.asdict(e)}) for e in log]
    replayed = ProgramsDatabase(search_config(), seed=99)
    for line in lines:
        event = json.loads(line)
        if event.pop("reset"):
            replayed.apply_reset(Reset.from_dict(event))
        else:
            replayed.restore(Program.from_dict(event))
    assert replayed.snapshot() == original.snapshot()
    assert replayed.programs() == original.programs()
    assert replayed.best() == original.best()
    assert replayed.island_best_scores() == original.island_best_scores()
    assert replayed.stats() == original.stats()

    # Same state and the same generator state: the two carry on identically.
    # (Reaching into the generator is test-only; a resumed run is reseeded.)
    replayed._rng.bit_generator.state = original._rng.bit_generator.state
    for step in range(100):
        a, b = original.prompt(), replayed.prompt()
        assert a == b
        ra = original.register(program(f"c{step}"), scores(step / 10, 3), a)
        rb = replayed.register(program(f"c{step}"), scores(step / 10, 3), b)
        assert ra == rb


def test_restore_accepts_scores_in_any_order_and_ids_continue_after_the_max():
    db = ProgramsDatabase(config(islands=2), seed=0)
    db.restore(Program(0, program("a"), {"b": 1.0, "a": 2.0}, 1.5, 0, ()))
    db.restore(Program(1, program("a"), {"a": 2.0, "b": 1.0}, 1.5, 1, ()))
    db.restore(Program(41, program("b"), {"b": 3.0, "a": 4.0}, 3.5, 1, (1,)))
    assert db.stats()["islands"][0]["clusters"] == 1
    registration = db.register(program("c"), {"a": 2.0, "b": 1.0}, db.prompt(0))
    assert registration.program.id == 42
    assert db.snapshot()["islands"][0]["clusters"] == [[[2.0, 1.0], [0, 42]]]


def test_restore_rejects_a_program_scored_on_other_inputs():
    db = ProgramsDatabase(config(), seed=0)
    db.register_initial(program("initial"), scores(0.0))
    with pytest.raises(ValueError, match="program 5: input ids"):
        db.restore(Program(5, program("x"), {"other": 1.0}, 1.0, 0, (0,)))


def test_a_program_already_on_its_island_is_known_and_changes_nothing():
    """The same normal form (another layout, a comment) is not registered twice
    on one island, counts towards no reset, and may go on another island."""
    db = ProgramsDatabase(config(islands=2, reset_every=2), seed=0)
    db.register_initial(program("initial"), scores(0.0))
    first = db.register(program("p"), scores(1.0), db.prompt(0))
    again = db.register(program("p").replace("tag =", "tag  =") + "# again\n", scores(1.0),
                        db.prompt(0))
    assert first.program is not None
    assert again.known and again.program is None and again.resets == ()
    assert db.register(program("initial"), scores(0.0), db.prompt(1)).known
    assert db.snapshot()["since_reset"] == 1
    assert db.register(program("p"), scores(1.0), db.prompt(1)).program is not None
