"""problems/tsp_gls.py: vectorised 2-opt and the guided local search run."""

import itertools
from pathlib import Path

import numpy as np
import pytest

from funsearch import spec as spec_module

SPEC = Path(__file__).parents[2] / "problems" / "tsp_gls.py"


@pytest.fixture()
def spec():
    return spec_module.load(SPEC)


def _solve(spec, program: str, instance):
    exec(program, spec.module.__dict__)
    return spec.function(spec.run_name)(instance)


def _length(tour, distances) -> float:
    return float(sum(distances[a, b] for a, b in zip(tour, tour[1:] + tour[:1], strict=True)))


def test_spec_declares_the_edge_penalty_heuristic(spec):
    assert spec.evolve_name == "update_edge_distance"
    assert spec.input_sets == ("train", "valid", "holdout", "holdout200")
    assert "local_search_only" in spec.baselines
    assert len(spec.inputs("holdout")) == 64
    assert {x.shape for x in spec.inputs("train").values()} == {(100, 2)}


def test_two_opt_reaches_a_2_opt_local_optimum(spec):
    """With every city a neighbour, no single 2-opt move shortens the result."""
    module = spec.module
    distances = module.instance_distances(module.random_instance(30, 7))
    start = np.random.default_rng(7).permutation(30)
    tour = module.two_opt(start, distances, module.nearest(distances, 29))
    assert sorted(tour.tolist()) == list(range(30))
    assert _length(tour.tolist(), distances) < _length(start.tolist(), distances)
    listed = tour.tolist()
    for i, j in itertools.combinations(range(30), 2):
        if j - i < 2 or (i == 0 and j == 29):
            continue
        moved = listed[: i + 1] + listed[i + 1 : j + 1][::-1] + listed[j + 1 :]
        assert _length(moved, distances) >= _length(listed, distances) - 1e-9


def test_relocate_moves_a_city_to_where_it_shortens_the_tour(spec):
    module = spec.module
    # Cities on a line, visited 0 2 1 3: moving 1 between 0 and 2 gives the shortest tour.
    coords = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    distances = module.instance_distances(coords)
    tour = np.array([0, 2, 1, 3])
    moved = module.relocate(tour, distances, module.nearest(distances, 3))
    assert _length(moved.tolist(), distances) == pytest.approx(6.0)
    assert module.relocate(moved, distances, module.nearest(distances, 3)) is None


def test_guidance_improves_on_plain_local_search(spec):
    instances = spec.inputs("train")
    plain = [spec.score(x, _solve(spec, spec.baselines["local_search_only"], x))
             for x in instances.values()]
    guided = [_solve(spec, spec.initial_program, x) for x in instances.values()]
    assert all(sorted(tour) == list(range(100)) for tour in guided)
    guided_scores = [spec.score(x, t) for x, t in zip(instances.values(), guided, strict=True)]
    assert sum(guided_scores) > sum(plain)


def test_an_asymmetric_or_nan_guidance_still_gives_a_valid_tour(spec):
    instance = spec.module.random_instance(40, 1)
    program = (
        "def update_edge_distance(edge_distance, local_opt_tour, edge_n_used):\n"
        "    g = edge_distance + np.triu(edge_n_used)\n"
        "    g[0, 1] = np.nan\n"
        "    return g\n"
    )
    tour = _solve(spec, program, instance)
    assert sorted(tour) == list(range(40))


def test_run_rejects_a_guidance_of_the_wrong_shape(spec):
    program = (
        "def update_edge_distance(edge_distance, local_opt_tour, edge_n_used):\n"
        "    return edge_distance[:-1]\n"
    )
    with pytest.raises(ValueError, match="shape"):
        _solve(spec, program, spec.module.random_instance(20, 0))


def test_score_rejects_an_invalid_tour(spec):
    instance = spec.module.random_instance(20, 0)
    with pytest.raises(ValueError, match="more than once"):
        spec.score(instance, [0] + list(range(19)))
