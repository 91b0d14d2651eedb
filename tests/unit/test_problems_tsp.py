"""problems/tsp.py, its TSPLIB loader and the elkai reference lengths."""

import statistics
from pathlib import Path

import numpy as np
import pytest

from funsearch import spec as spec_module

ROOT = Path(__file__).parents[2]
SPEC = ROOT / "problems" / "tsp.py"
TSPLIB = ROOT.parent / "shared" / "data" / "tsplib"


def _helper(name: str):
    """A helper module of problems/, imported by path the way the spec imports it."""
    return spec_module.load(SPEC).module._helper(name)


@pytest.fixture()
def spec():
    return spec_module.load(SPEC)


def _run(spec, program: str, instance):
    """Runs the spec's run function with `program` as the evolved function, in-process."""
    exec(program, spec.module.__dict__)
    return spec.function(spec.run_name)(instance)


def test_spec_declares_the_constructive_tsp_problem(spec):
    assert spec.evolve_name == "select_next_node"
    assert spec.score_name == "score"
    assert spec.input_sets == ("train", "train_large", "valid", "holdout", "holdout100")
    assert "nearest_neighbour" in spec.baselines
    assert "def select_next_node(" in spec.baselines["nearest_neighbour"]


def test_input_sets_have_the_documented_sizes_and_share_no_instance(spec):
    sets = {name: spec.inputs(name) for name in spec.input_sets}
    assert [len(sets[name]) for name in spec.input_sets] == [16, 32, 16, 64, 64]
    assert {instance.shape for instance in sets["train"].values()} == {(50, 2)}
    assert {instance.shape for instance in sets["holdout100"].values()} == {(100, 2)}
    seen = [instance.tobytes() for group in sets.values() for instance in group.values()]
    assert len(set(seen)) == len(seen)


def test_input_sets_are_deterministic(spec):
    first, second = spec.inputs("train"), spec_module.load(SPEC).inputs("train")
    assert all(np.array_equal(first[key], second[key]) for key in first)


def test_baseline_builds_a_tour_visiting_every_city_once(spec):
    instance = spec.inputs("train")["tsp50-s0"]
    tour = _run(spec, spec.baselines["nearest_neighbour"], instance)
    assert tour[0] == 0 and sorted(tour) == list(range(50))
    assert all(type(city) is int for city in tour)
    distances = spec.module.instance_distances(instance)
    expected = -sum(distances[a, b] for a, b in zip(tour, tour[1:] + tour[:1], strict=True))
    assert spec.score(instance, tour) == pytest.approx(expected)


def test_initial_program_is_nearest_neighbour(spec):
    instance = spec.inputs("valid")["tsp50-s100"]
    by_initial = _run(spec, spec.initial_program, instance)
    by_baseline = _run(spec, spec.baselines["nearest_neighbour"], instance)
    assert by_initial == by_baseline
    distances = spec.module.instance_distances(instance)
    # Each step goes to the closest city not yet visited.
    for step in range(1, 49):
        rest = by_initial[step:]
        assert distances[by_initial[step - 1], rest].argmin() == 0


@pytest.mark.parametrize(
    "tour, reason",
    [
        (list(range(49)), "49 cities"),
        (list(range(49)) + [3], "misses cities \\[49\\]"),
        ([0] + list(range(0, 49)), "more than once"),
        ([float(city) for city in range(50)], "integer"),
        ("0 1 2", "list"),
    ],
)
def test_score_rejects_a_tour_that_is_not_a_permutation(spec, tour, reason):
    instance = spec.inputs("train")["tsp50-s0"]
    with pytest.raises(ValueError, match=reason):
        spec.score(instance, tour)


def test_run_rejects_a_program_that_revisits_a_city(spec):
    instance = spec.inputs("train")["tsp50-s0"]
    program = (
        "def select_next_node(current_node, destination_node, unvisited_nodes, distance_matrix):\n"
        "    return 0\n"
    )
    with pytest.raises(ValueError, match="not an unvisited node"):
        _run(spec, program, instance)


def test_farthest_insertion_beats_nearest_neighbour(spec):
    instances = spec.inputs("valid")
    module = spec.module
    solver = module.REFERENCE_SOLVERS["farthest_insertion"]
    insertion = [module.score(x, solver(x)) for x in instances.values()]
    neighbour = [module.score(x, _run(spec, spec.initial_program, x)) for x in instances.values()]
    assert statistics.fmean(insertion) > statistics.fmean(neighbour)


def test_nearest_neighbour_gap_to_elkai_on_holdout_tsp50_is_20_to_26_percent(spec):
    module = spec.module
    scores = {
        key: module.score(instance, _run(spec, spec.initial_program, instance))
        for key, instance in spec.inputs("holdout").items()
    }
    gap = statistics.fmean(module.gaps("holdout", scores).values())
    assert 0.20 <= gap <= 0.26
    assert module.summary("holdout", scores) == {"gap_percent": pytest.approx(100 * gap)}


def test_reference_lengths_are_cached_on_disk(tmp_path, monkeypatch):
    reference = _helper("tsp_reference")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(reference, "_memory", {})
    instances = {str(seed): np.random.default_rng(seed).random((12, 2)) for seed in range(3)}
    to_distances = _helper_distances
    first = reference.reference_lengths(instances, to_distances)
    assert (tmp_path / "funsearch" / "tsp_reference.json").is_file()

    def no_solver(*args, **kwargs):
        raise AssertionError("the reference was recomputed instead of read from the cache")

    monkeypatch.setattr(reference, "_memory", {})
    monkeypatch.setattr(reference, "elkai_tour", no_solver)
    assert reference.reference_lengths(instances, to_distances) == first


def _helper_distances(coords):
    return np.sqrt(((coords[:, None] - coords[None]) ** 2).sum(-1))


needs_tsplib = pytest.mark.skipif(
    not TSPLIB.is_dir(), reason=f"reference data not found at {TSPLIB} (only in the project's CI)"
)


@needs_tsplib
@pytest.mark.parametrize(
    "name, kind",
    [("eil51", "EUC_2D"), ("berlin52", "EUC_2D"), ("att48", "ATT"), ("ulysses22", "GEO")],
)
def test_tsplib_loader_with_elkai_finds_the_known_optimum(name, kind):
    optima = _helper("tsplib").read_solutions(TSPLIB / "solutions.txt")
    instance = _helper("tsplib").load(TSPLIB / f"{name}.tsp")
    assert instance["edge_weight_type"] == kind
    tour = _helper("tsp_reference").elkai_tour(instance["distances"])
    assert _helper("tsplib").tour_length(tour, instance["distances"]) == optima[name]


@needs_tsplib
def test_tsplib_instance_runs_through_the_spec(spec):
    instance = spec.module.load_tsplib(TSPLIB / "burma14.tsp")
    tour = _run(spec, spec.initial_program, instance)
    assert -spec.score(instance, tour) >= 3323  # never below the optimum


def test_tsplib_ceil_and_euclidean_rounding_follow_tsplib():
    tsplib = _helper("tsplib")
    coords = np.array([[0.0, 0.0], [3.0, 4.5], [0.0, 2.5]])
    euclid = tsplib.distances(coords, "EUC_2D")
    ceil = tsplib.distances(coords, "CEIL_2D")
    assert euclid[0, 2] == 3.0  # nint(2.5) rounds half up
    assert euclid[0, 1] == 5.0 and ceil[0, 1] == 6.0  # sqrt(29.25) = 5.41


def test_tsplib_rejects_an_unsupported_edge_weight_type(tmp_path):
    path = tmp_path / "x.tsp"
    path.write_text("NAME: x\nTYPE: TSP\nDIMENSION: 3\nEDGE_WEIGHT_TYPE: MAN_2D\n"
                    "NODE_COORD_SECTION\n1 0 0\n2 1 1\n3 2 2\nEOF\n")
    with pytest.raises(ValueError, match="MAN_2D is not supported"):
        _helper("tsplib").load(path)
