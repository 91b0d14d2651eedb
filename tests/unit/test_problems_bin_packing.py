"""problems/bin_packing.py: packer, scorer, datasets and FunSearch's published figures."""

import json
import statistics
from pathlib import Path

import numpy as np
import pytest

from funsearch import spec as spec_module

ROOT = Path(__file__).parents[2]
SPEC = ROOT / "problems" / "bin_packing.py"
DATA = ROOT.parent / "shared" / "data" / "funsearch_bin_packing.json"

needs_data = pytest.mark.skipif(
    not DATA.is_file(), reason=f"reference data not found at {DATA} (only in the project's CI)"
)


@pytest.fixture()
def spec():
    return spec_module.load(SPEC)


def _pack(spec, program: str, instance):
    """Runs the spec's packer with `program` as the priority function, in-process."""
    exec(program, spec.module.__dict__)
    return spec.function(spec.run_name)(instance)


def _excess_percent(spec, program: str, instances: dict) -> float:
    scores = [spec.score(x, _pack(spec, program, x)) for x in instances.values()]
    return -100 * statistics.fmean(scores)


def test_spec_declares_priority_and_the_baselines(spec):
    assert spec.evolve_name == "priority"
    assert set(spec.baselines) == {"first_fit", "best_fit", "funsearch_weibull", "funsearch_or"}
    for name in ("train", "train_small", "valid", "holdout", "or1", "or2", "or3", "or4"):
        assert name in spec.input_sets


def test_generated_sets_follow_the_published_distributions(spec):
    weibull = spec.inputs("train")
    assert len(weibull) == 5
    for instance in weibull.values():
        assert instance["capacity"] == 100 and len(instance["items"]) == 5000
        assert instance["items"].min() >= 1 and instance["items"].max() <= 100
    assert 38 < np.mean([x["items"].mean() for x in weibull.values()]) < 42  # 45 * G(4/3) = 40.2
    for name, size in (("or1", 120), ("or2", 250), ("or3", 500), ("or4", 1000)):
        instances = spec.inputs(name)
        assert len(instances) == 20
        items = np.concatenate([x["items"] for x in instances.values()])
        assert {x["capacity"] for x in instances.values()} == {150}
        assert {len(x["items"]) for x in instances.values()} == {size}
        assert items.min() >= 20 and items.max() <= 100


def test_input_sets_are_deterministic_and_disjoint(spec):
    first = spec.inputs("train")
    again = spec_module.load(SPEC).inputs("train")
    assert all(np.array_equal(first[k]["items"], again[k]["items"]) for k in first)
    held_out = spec.inputs("holdout")
    assert not {x["items"].tobytes() for x in first.values()} & {
        x["items"].tobytes() for x in held_out.values()
    }
    # The short search's training set: two 5k sequences of their own, no prefix of another set.
    small = spec.inputs("train_small")
    assert [len(x["items"]) for x in small.values()] == [5000, 5000]
    others = [x["items"] for name in ("train", "valid", "holdout")
              for x in spec.inputs(name).values()]
    assert not any(np.array_equal(x["items"][:100], y[:100]) for x in small.values()
                   for y in others)


def test_baseline_packing_is_valid_and_scored_against_the_l1_bound(spec):
    instance = spec.inputs("or1")["u120-s11000"]
    assignment = _pack(spec, spec.baselines["best_fit"], instance)
    items = instance["items"]
    loads = np.bincount(assignment, weights=items)
    assert loads.max() <= 150 and len(assignment) == len(items)
    bins = np.count_nonzero(loads)
    l1 = int(np.ceil(items.sum() / 150))
    assert spec.score(instance, assignment) == pytest.approx(-(bins - l1) / instance["normaliser"])


def test_mean_score_is_the_dataset_excess_over_the_mean_l1_bound(spec):
    instances = spec.inputs("or2")
    outputs = {k: _pack(spec, spec.baselines["first_fit"], x) for k, x in instances.items()}
    bins = [spec.module.count_bins(instances[k], o) for k, o in outputs.items()]
    bounds = [x["l1_bound"] for x in instances.values()]
    dataset_excess = (np.mean(bins) - np.mean(bounds)) / np.mean(bounds)
    scores = {k: spec.score(instances[k], o) for k, o in outputs.items()}
    assert statistics.fmean(scores.values()) == pytest.approx(-dataset_excess)
    assert spec.module.summary("or2", scores) == {
        "excess_percent": pytest.approx(100 * dataset_excess)
    }


def test_first_fit_puts_each_item_in_the_earliest_bin_it_fits(spec):
    instance = spec.module.make_set({"x": {"capacity": 10, "items": [5, 7, 2, 6]}})["x"]
    assert _pack(spec, spec.baselines["first_fit"], instance) == [0, 1, 0, 2]
    # Best fit puts the 2 where it leaves the least room: beside the 7.
    assert _pack(spec, spec.baselines["best_fit"], instance) == [0, 1, 1, 2]


@pytest.mark.parametrize(
    "assignment, reason",
    [
        ([0, 0, 1, 1, 2], "bin 0 holds 12 > capacity 10"),
        ([0, 1, 0], "one bin per item"),
        ([0, 1, 0, 1, -1], "non-negative integers"),
        ([0, 1, 0, 1, 0.0], "non-negative integers"),
    ],
)
def test_score_rejects_an_invalid_packing(spec, assignment, reason):
    instance = spec.module.make_set({"x": {"capacity": 10, "items": [6, 6, 3, 4, 1]}})["x"]
    with pytest.raises(ValueError, match=reason):
        spec.score(instance, assignment)


def test_packer_rejects_a_priority_of_the_wrong_shape(spec):
    instance = spec.inputs("or1")["u120-s11000"]
    with pytest.raises(ValueError, match="one priority per bin"):
        _pack(spec, "def priority(item, bins):\n    return np.zeros(3)\n", instance)


def test_orlib_text_format_is_read(spec, tmp_path):
    path = tmp_path / "binpack0.txt"
    path.write_text(" 2\n u3_00\n 150 3 1\n 60\n 70\n 90\n u2_01\n 100 2 1\n 50\n 50\n")
    instances = spec.module.load_orlib(path)
    assert list(instances) == ["u3_00", "u2_01"]
    assert instances["u3_00"]["capacity"] == 150
    assert instances["u3_00"]["items"].tolist() == [60, 70, 90]
    assert instances["u3_00"]["l1_bound"] == 2 and instances["u2_01"]["l1_bound"] == 1
    assert instances["u2_01"]["normaliser"] == 1.5


@needs_data
@pytest.mark.parametrize(
    "dataset, baseline, published",
    [
        ("OR3", "first_fit", 5.74),
        ("OR3", "best_fit", 5.37),
        ("OR3", "funsearch_or", 3.11),
        ("Weibull 5k", "first_fit", 4.23),
        ("Weibull 5k", "best_fit", 3.98),
        ("Weibull 5k", "funsearch_weibull", 0.68),
    ],
)
def test_published_excess_bins_are_reproduced_on_funsearch_data(spec, dataset, baseline, published):
    instances = spec.module.load_json(DATA, dataset)
    l1 = json.loads(DATA.read_text())["mean_l1_lower_bound"][dataset]
    assert next(iter(instances.values()))["normaliser"] == pytest.approx(l1)
    assert round(_excess_percent(spec, spec.baselines[baseline], instances), 2) == published


@needs_data
def test_funsearch_input_sets_read_the_reference_file(spec):
    assert len(spec.inputs("funsearch_or3")) == 20
    assert len(spec.inputs("funsearch_weibull5k")) == 5
