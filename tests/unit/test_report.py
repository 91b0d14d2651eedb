"""Reports on synthetic run directories whose numbers are known by construction.

Each synthetic run is a real run directory (config.json + events.jsonl) written
with the event kinds and fields the engine logs, at chosen times, so the
equal-budget values, threshold times and intervals can be worked out by hand.
"""

from __future__ import annotations

import base64
import csv
import io
import itertools
import json
import math
import re
import sys

import numpy as np
import pytest
from rich.console import Console

from funsearch import runlog
from funsearch.reports import compare, compare_view, report, rundata, stats
from funsearch.scheduling import budget

T0 = 1000.0


def write_run(path, seed=0, sampler="small", model="", policy="round_robin", samples=20,
              seconds_per_sample=1.0, gpu_seconds=36.0, cpu_seconds=None, registrations=(),
              duplicates=(0,),
              rejections=(1,), islands=1, resets=(), end=True, problem=None, settings=None,
              spec="problems/tsp.py", **config_changes):
    """A run directory. registrations: (sample index, score, parent ids) with
    program ids 1, 2, ... in order (the initial program is 0, score 0.0);
    samples not registered, duplicated or rejected fail in the sandbox (NameError at
    even indices, ZeroDivisionError at odd ones)."""
    config = {"name": "synthetic", "seed": seed, "out": "runs",
              "problem": {"spec": spec, "inputs": "train", "holdout": []},
              "database": {"islands": islands, "functions_per_prompt": 2},
              "samplers": [{"name": sampler, "backend": "mutation", "model": model,
                            **({"settings": settings} if settings is not None else {})}],
              "scheduler": {"policy": policy, "budget": {"samples": samples}}}
    for dotted, value in config_changes.items():
        node = config
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    log = runlog.RunLog(path)
    log.write_config(config)
    log.close()
    lines = []

    def event(t, kind, **fields):
        lines.append(json.dumps({"t": t, "kind": kind, **fields}))

    event(T0, "run_start", name="synthetic", seed=seed, spec=spec, inputs="train",
          problem=problem, isolation="process", runtime="inline", samplers=[sampler])
    event(T0, "evaluation", sample=None, sampler="initial", hash="h0", duplicate=False,
          status="ok", score=0.0, scores={"a": 0.0}, reason="", duration=0.5, program="")
    for island in range(islands):
        event(T0, "registration", sample=None, hash="h0", program_id=island, island=island,
              score=0.0, scores={"a": 0.0}, parents=[], sampler="", program="")
    by_sample = {index: (score, parents) for index, score, parents in registrations}
    next_id = islands
    for index in range(samples):
        t = T0 + (index + 1) * seconds_per_sample
        prompt = list(by_sample[index][1]) if index in by_sample else [0]
        event(t, "sample", sample=index, sampler=sampler, island=0, epoch=0, parents=prompt,
              latency=0.25 * (index % 2 + 1), prompt_tokens=100, completion_tokens=50,
              gpu_seconds=gpu_seconds,
              **({} if cpu_seconds is None else {"cpu_seconds": cpu_seconds}))
        if index in by_sample:
            score, parents = by_sample[index]
            event(t, "evaluation", sample=index, sampler=sampler, hash=f"h{index}",
                  duplicate=False, status="ok", score=score, scores={"a": score}, reason="",
                  duration=0.5, program="")
            event(t, "registration", sample=index, hash=f"h{index}", program_id=next_id,
                  island=0, score=score, scores={"a": score}, parents=list(parents),
                  sampler=sampler, program="")
            next_id += 1
        elif index in duplicates:
            event(t, "evaluation", sample=index, sampler=sampler, hash="h0", duplicate=True,
                  status="ok", score=0.0, scores={"a": 0.0}, reason="", duration=0.5,
                  program="")
        elif index in rejections:
            event(t, "rejection", sample=index, sampler=sampler,
                  reason=f"not code: invalid syntax (line {index})", text="???")
        else:
            reason = (f"Traceback ...\nNameError: name 'x{index}' is not defined" if index % 2 == 0
                      else "ZeroDivisionError: float division by zero")
            event(t, "evaluation", sample=index, sampler=sampler, hash=f"h{index}",
                  duplicate=False, status="error", score=None, scores=None, reason=reason,
                  duration=0.5, program="")
        for reset_index, island, founder_id, score in resets:
            if reset_index == index:
                event(t, "reset", island=island, epoch=1, source_island=0,
                      founder={"program_id": founder_id, "island": island, "score": score,
                               "parents": [0], "sampler": sampler})
    if end:
        event(T0 + samples * seconds_per_sample, "run_end", reason="sample budget reached",
              counters={}, best_score=None, best_program_id=None, holdout={})
    (path / runlog.EVENTS).write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def groups(tmp_path):
    """Three seeds of a small, fast sampler and two of a big, slow one.

    small: 1 s and 0.01 GPU-hours per sample; bests after 20 samples 1, 2, 3.
    big:   2 s and 0.1 GPU-hours per sample; bests 4 and 6, reached early.
    """
    small = [[(4, 1.0, [0])],
             [(4, 1.0, [0]), (9, 2.0, [1])],
             [(4, 1.0, [0]), (9, 2.0, [1]), (14, 3.0, [2])]]
    big = [[(2, 4.0, [0])], [(2, 4.0, [0]), (3, 6.0, [1])]]
    runs = [write_run(tmp_path / f"small-{seed}", seed=seed, registrations=registrations)
            for seed, registrations in enumerate(small)]
    runs += [write_run(tmp_path / f"big-{seed}", seed=seed, sampler="big",
                       seconds_per_sample=2.0, gpu_seconds=360.0, registrations=registrations)
             for seed, registrations in enumerate(big)]
    return [rundata.read_run(path) for path in runs]


def rendered(function, value) -> str:
    """What a report function prints, as plain text."""
    console = Console(record=True, width=200, file=io.StringIO())
    function(value, console)
    return console.export_text()


def only(report_):
    """The one comparison of a report whose runs are all of one problem."""
    (comparison,) = report_.comparisons
    return comparison


def cells(comparison, label_start):
    row = next(row for row in comparison.rows if row.label.startswith(label_start))
    return row.cells


# --- statistics ---------------------------------------------------------------------

def test_bootstrap_of_three_values_spans_their_range():
    # Resampling [1, 2, 3] gives mean 1 (or 3) with probability 1/27 > 2.5 %.
    interval = stats.bootstrap_mean([1.0, 2.0, 3.0])
    assert (interval.mean, interval.low, interval.high, interval.n) == (2.0, 1.0, 3.0, 3)


def test_bootstrap_percentiles_match_the_exact_bootstrap_distribution():
    values = np.array([0.0, 1.0, 3.0, 10.0])
    means = np.sort([values[list(rows)].mean()
                     for rows in itertools.product(range(4), repeat=4)])  # all 256 resamples
    interval = stats.bootstrap_mean(values, seed=7)
    assert np.quantile(means, 0.015) <= interval.low <= np.quantile(means, 0.035)
    assert np.quantile(means, 0.965) <= interval.high <= np.quantile(means, 0.985)
    assert interval.mean == pytest.approx(3.5)


def test_bootstrap_is_reproducible_for_a_seed_and_degenerate_for_one_run():
    values = list(np.random.default_rng(0).normal(size=30))  # many distinct resample means
    assert stats.bootstrap_mean(values, seed=3) == stats.bootstrap_mean(values, seed=3)
    assert stats.bootstrap_mean(values, seed=3) != stats.bootstrap_mean(values, seed=4)
    assert stats.bootstrap_mean([2.5]) == stats.Interval(2.5, 2.5, 2.5, 1)
    assert stats.bootstrap_mean([]) is None


def test_curve_band_is_nan_where_a_run_has_no_value():
    mean, low, high = stats.bootstrap_means(np.array([[np.nan, 1.0], [0.0, 3.0]]))
    assert np.isnan(mean[0]) and np.isnan(low[0])
    assert (mean[1], low[1], high[1]) == (2.0, 1.0, 3.0)


def test_step_function_holds_the_last_value_and_finds_the_first_crossing():
    xs, ys = [0, 5, 11], [0.0, 1.0, 2.0]
    assert [stats.step_value(xs, ys, at) for at in (-1, 0, 4.9, 5, 10, 100)] == [
        None, 0.0, 0.0, 1.0, 1.0, 2.0]
    assert stats.first_reaching(xs, ys, 1.5) == 11
    assert stats.first_reaching(xs, ys, 2.5) is None


# --- one run ------------------------------------------------------------------------

def test_best_score_is_a_step_function_of_each_budget(groups):
    run = groups[1]  # small, seed 1: 1.0 after sample 4 (5 samples), 2.0 after 10
    assert [(p.samples, p.wall, p.score) for p in run.best] == [
        (0, 0.0, 0.0), (5, 5.0, 1.0), (10, 10.0, 2.0)]
    assert run.best_at("samples", 9) == 1.0 and run.best_at("samples", 10) == 2.0
    assert run.best_at("gpu_hours", 0.049) == 0.0 and run.best_at("gpu_hours", 0.05) == 1.0
    assert run.best_at("samples", 21) is None  # a budget the run never spent
    assert run.reached("wall", 1.5) == 10.0 and run.reached("wall", 9) is None


def test_a_discarded_sample_that_beat_its_prompt_is_an_improvement_as_the_scheduler_counted_it(
        tmp_path):
    """The scheduler's reward (outcomes.improved) is judged when the database
    answers, registered or discarded (its island was reset since the prompt);
    the reports count improvements by the same rule."""
    path = write_run(tmp_path / "r", samples=3, registrations=[(0, 1.0, [0])], rejections=(),
                     duplicates=())
    lines = (path / runlog.EVENTS).read_text().splitlines()
    lines += [json.dumps(line) for line in [
        {"t": T0 + 9, "kind": "sample", "sample": 3, "sampler": "small", "island": 0, "epoch": 0,
         "parents": [0], "latency": 0.1, "gpu_seconds": 0.0},
        {"t": T0 + 9, "kind": "evaluation", "sample": 3, "sampler": "small", "hash": "h3",
         "duplicate": False, "status": "ok", "score": 2.0, "scores": {"a": 2.0}, "reason": "",
         "duration": 0.5, "program": ""},
        {"t": T0 + 9, "kind": "discard", "sample": 3, "sampler": "small", "island": 0,
         "reason": "stale epoch: island 0 was reset since the prompt (epoch 0 -> 1)"}]]
    (path / runlog.EVENTS).write_text("\n".join(lines) + "\n")
    run = rundata.read_run(path)
    assert run.improvements == 2 and run.samplers["small"].improvements == 2
    assert run.kinds["discard"] == 1


def test_outcomes_improvements_and_sampler_costs_are_counted(tmp_path):
    # Sample 7 registers 0.5 from parent 1 (score 1.0): registered, but no improvement.
    run = rundata.read_run(write_run(
        tmp_path / "r", registrations=[(4, 1.0, [0]), (7, 0.5, [1]), (12, 1.5, [2, 1])]))
    assert run.improvements == 2
    assert run.outcomes == {("valid", "scored"): 3,
                            ("duplicate", "same normal form as an earlier program"): 1,
                            ("rejected", "not code: invalid syntax (line N)"): 1,
                            ("invalid", "error: NameError: name '…' is not defined"): 7,
                            ("invalid", "error: ZeroDivisionError: float division by zero"): 8}
    assert run.valid_rate == pytest.approx(4 / 20)
    assert run.improvements_per_1k == pytest.approx(100.0)
    small = run.samplers["small"]
    assert (small.samples, small.prompt_tokens, small.completion_tokens) == (20, 2000, 1000)
    assert small.gpu_seconds == pytest.approx(720.0) and small.improvements == 2
    assert np.mean(small.latencies) == pytest.approx(0.375)


def test_a_model_on_cpus_is_charged_its_cpu_seconds_as_the_scheduler_charges_it(tmp_path):
    run = rundata.read_run(write_run(tmp_path / "r", gpu_seconds=0.0, cpu_seconds=9.0,
                                     registrations=[(4, 1.0, [0])]))
    proposal = budget.proposal_seconds(budget.Cost(seconds=0.25, cpu_seconds=9.0))
    evaluations = 18 * 0.5  # every sample but the duplicate and the rejection
    assert run.compute == pytest.approx(20 * proposal + evaluations) == pytest.approx(189.0)
    assert run.cpu_seconds == run.samplers["small"].cpu_seconds == pytest.approx(180.0)
    text = rendered(report.show, run)
    assert "0.05 CPU-hours of proposals" in text
    assert re.search(r"small\s+│\s+20\s+│.*│\s+0\s+│\s+0.05\s+│\s+0.00\s+│", text)


def test_show_says_who_scores_and_what_a_program_can_forge(tmp_path):
    path = write_run(tmp_path / "r")
    lines = (path / runlog.EVENTS).read_text().splitlines()
    start = json.loads(lines[0])
    forge = "everything: [evaluator] split = off runs the program beside the scorer"
    lines[0] = json.dumps({**start, "split": False, "scoring": "the run function", "forgeable":
                           forge})
    (path / runlog.EVENTS).write_text("\n".join(lines) + "\n")
    text = rendered(report.show, rundata.read_run(path))
    assert re.search(r"scoring\s+the run function \(split off\)", text)
    assert re.search(r"forgeable\s+" + re.escape(forge), text)  # [evaluator]: not markup
    old = rendered(report.show, rundata.read_run(write_run(tmp_path / "old")))
    assert "forgeable" not in old  # logs older than the fields: nothing claimed


def test_show_prints_lineage_outcomes_and_samplers_and_resets_empty_an_island(tmp_path):
    path = write_run(tmp_path / "r", islands=2,
                     registrations=[(4, 1.0, [0]), (9, 2.0, [2]), (12, 3.0, [3])],
                     resets=[(15, 1, 9, 3.0)])  # island 1 refounded: program 9
    run = rundata.read_run(path)
    assert run.islands[1] == [9]
    text = rendered(report.show, run)
    assert "4 ← 3 ← 2 ← 0" in text  # best on island 0, through its best parents
    assert "9 ← 0" in text  # the founder, copied from the initial program's copy
    assert re.search(r"invalid\s+│\s+error: NameError: name '…' is not defined\s+│\s+7", text)
    assert re.search(r"invalid\s+│\s+error: ZeroDivisionError: float division by zero\s+│\s+8",
                     text)
    assert re.search(r"small\s+│\s+20\s+│\s+20.0%", text)  # samples and valid rate
    assert "ended: sample budget reached" in text


def test_show_says_when_and_why_a_sampler_stalled(tmp_path):
    path = write_run(tmp_path / "r", end=False)
    message = ("sampler 'small' stalled: its last 50 samples were all duplicates or "
               "rejections: duplicate of a parent in its prompt (50)")
    with open(path / runlog.EVENTS, "a") as file:
        file.write(json.dumps({"t": T0 + 21, "kind": "stall", "sampler": "small", "count": 50,
                               "reasons": {"duplicate of a parent in its prompt": 50},
                               "message": message}) + "\n")
    run = rundata.read_run(path)
    assert run.stalls == [(20, message)]
    text = rendered(report.show, run)
    assert "stalls" in text and f"after 20 samples: {message}" in text


# --- logs that are being written, or were cut off ---------------------------------

def test_truncated_last_line_is_skipped_with_a_warning_that_reports_show(tmp_path):
    path = write_run(tmp_path / "r", registrations=[(4, 1.0, [0])], end=False)
    with open(path / runlog.EVENTS, "a") as file:
        file.write('{"t": 1021.0, "kind": "sample", "sampler": "sm')
    with pytest.warns(UserWarning, match="skipped a truncated"):
        run = rundata.read_run(path)
    assert run.samples == 20 and run.running
    text = rendered(report.show, run)
    assert "warning:" in text and "events.jsonl:" in text


def test_a_live_run_is_read_as_far_as_it_is_written(tmp_path):
    log = runlog.RunLog(tmp_path)
    log.write_config({"seed": 0, "samplers": [{"name": "m"}]})
    log.append("run_start", name="live", seed=0, samplers=["m"])
    log.append("registration", sample=None, program_id=0, island=0, score=-5.0, parents=[],
               sampler="")
    log.append("sample", sample=0, sampler="m", island=0, parents=[0])
    first = rundata.read_run(tmp_path)
    assert first.running and first.samples == 1 and first.best_score == -5.0
    assert first.samplers["m"].outcomes == {}  # its evaluation is still in flight

    log.append("evaluation", sample=0, sampler="m", status="ok", score=-4.0, duplicate=False)
    log.append("registration", sample=0, program_id=1, island=0, score=-4.0, parents=[0],
               sampler="m")
    log.append("scheduler", decision={"m": 1.0})  # a kind this reader does not know
    second = rundata.read_run(tmp_path)
    assert second.best_score == -4.0 and second.improvements == 1
    comparison = only(compare.compare([first, second], by="seed"))
    assert comparison.budgets["samples"] == 1.0
    log.append("run_end", reason="stopped", counters={}, holdout={"holdout": -4.5})
    log.close()
    assert not rundata.read_run(tmp_path).running
    assert rundata.read_run(tmp_path).holdout == {"holdout": -4.5}


def test_wall_time_does_not_count_the_time_a_run_was_down_before_resume(tmp_path):
    log_lines = [{"t": 0.0, "kind": "run_start"}, {"t": 10.0, "kind": "sample"},
                 {"t": 12.0, "kind": "run_end", "reason": "stopped"},
                 {"t": 1000.0, "kind": "resume"}, {"t": 1005.0, "kind": "sample"}]
    (tmp_path / runlog.EVENTS).write_text("".join(json.dumps(e) + "\n" for e in log_lines))
    (tmp_path / runlog.CONFIG).write_text("{}")
    run = rundata.read_run(tmp_path)
    assert run.wall == 17.0 and run.samples == 2
    assert run.running  # resumed after its run_end, and not ended again


# --- comparisons ----------------------------------------------------------------------

def test_equal_budget_table_has_the_known_means_and_intervals(groups):
    comparison = only(compare.compare(groups, by="sampler"))
    assert list(comparison.groups) == ["big", "small"]
    # Every run spent 20 samples; the small runs 20 s and 0.2 GPU-hours at most, and
    # 729 compute-seconds (20 x 36 GPU-seconds and 18 evaluations of 0.5 s).
    assert comparison.budgets == {"samples": 20, "wall": 20.0, "compute": 729.0,
                                  "gpu_hours": 0.2}
    assert cells(comparison, "best score at 729 compute")["big"].interval.mean == 0.0
    at_samples = cells(comparison, "best score at 20 samples")
    # Few runs: Student's t intervals, the values listed.
    half = 4.302653 / math.sqrt(3)  # t(0.975, 2 df) x sd 1 / sqrt(3)
    assert at_samples["small"].interval == stats.Interval(
        2.0, pytest.approx(2.0 - half), pytest.approx(2.0 + half), 3, "t", (1.0, 2.0, 3.0))
    assert at_samples["big"].interval == stats.Interval(
        5.0, pytest.approx(5.0 - 12.706205), pytest.approx(5.0 + 12.706205), 2, "t", (4.0, 6.0))
    assert cells(comparison, "best score at 20.0s")["big"].interval.mean == 5.0
    # 0.2 GPU-hours is two samples of the big sampler: before its first improvement.
    assert cells(comparison, "best score at 0.2 GPU")["big"].interval.mean == 0.0
    improvements = cells(comparison, "improvements per 1k")["small"].interval
    assert (improvements.mean, improvements.values) == (100.0, (50.0, 100.0, 150.0))
    assert cells(comparison, "valid rate")["big"].interval.mean == pytest.approx(
        100 * (1 + 1.5) / 20)  # one duplicate plus 1 or 2 registrations of 20 samples


def test_threshold_times_count_only_the_runs_that_reached_it(groups):
    comparison = only(compare.compare(groups, by="sampler", threshold=2.0,
                                      budgets={"samples": 8}))
    reached = cells(comparison, "samples to reach 2")
    assert (reached["small"].interval.mean, reached["small"].reached,
            reached["small"].total) == (10.0, 2, 3)
    # Both big runs pass 2 with their first improvement (4.0), at sample 3, after 6 s.
    assert reached["big"].interval == stats.Interval(3.0, 3.0, 3.0, 2, "t", (3.0, 3.0))
    assert cells(comparison, "wall time to reach 2")["big"].interval.mean == 6.0
    assert cells(comparison, "best score at 8 samples")["small"].interval.mean == 1.0
    assert compare_view.cell_text(reached["small"], "samples") == "10 [10, 10] {10, 10} (2/3)"
    # The default threshold is the lowest final best: every run reaches it.
    default = only(compare.compare(groups, by="sampler"))
    assert default.threshold == 1.0
    assert all(cell.reached == cell.total
               for cell in cells(default, "samples to reach 1").values())


def test_runs_are_grouped_by_policy_or_any_dotted_config_key(tmp_path):
    runs = [rundata.read_run(write_run(tmp_path / f"r{i}", seed=i, model=model, policy=policy))
            for i, (model, policy) in enumerate([("qwen-0.5b", "fixed"), ("qwen-7b", "fixed"),
                                                 ("qwen-7b", "round_robin")])]
    assert only(compare.compare(runs, by="samplers.0.model")).groups == {
        "qwen-0.5b": [0], "qwen-7b": [1, 2]}
    assert only(compare.compare(runs, by="policy")).groups == {"fixed": [0, 1],
                                                               "round_robin": [2]}
    assert only(compare.compare(runs, by="seed")).groups == {"0": [0], "1": [1], "2": [2]}
    assert list(only(compare.compare(runs, by="sampler")).groups) == [
        "small (qwen-0.5b)", "small (qwen-7b)"]
    with pytest.raises(KeyError, match="config has no key 'samplers.0.modle'"):
        compare.compare(runs, by="samplers.0.modle")


def test_runs_whose_configs_differ_beyond_the_compared_key_are_flagged(tmp_path):
    paths = [write_run(tmp_path / "a", seed=0, sampler="small"),
             write_run(tmp_path / "b", seed=1, sampler="big"),
             write_run(tmp_path / "c", seed=2, sampler="big", database__islands=4)]
    runs = [rundata.read_run(path) for path in paths]
    report_ = compare.compare(runs, by="sampler")
    comparison = only(report_)
    assert [d.key for d in comparison.differences] == ["database.islands"]
    assert comparison.flagged == {2: ["database.islands"]}
    text = rendered(compare_view.render, report_)
    assert "differs: database.islands" in text and "flagged" in text
    # Compared by model size, the sampler names differ too: flagged as well.
    by_islands = only(compare.compare(runs, by="database.islands"))
    assert [d.key for d in by_islands.differences] == ["samplers.0.name"]
    assert by_islands.flagged == {0: ["samplers.0.name"]}
    # Seeds, names and output folders never count as a difference.
    same = [rundata.read_run(write_run(tmp_path / f"s{i}", seed=i, out=f"o{i}"))
            for i in range(2)]
    assert only(compare.compare(same, by="sampler")).flagged == {}


def test_plot_steps_where_runs_improve_and_thins_long_curves(groups):
    small = groups[:3]  # improvements after 5, 10 and 15 samples
    assert list(compare_view._grid(small, "samples", 20.0, 400)) == [0, 5, 10, 15, 20]
    assert list(compare_view._grid(small, "samples", 12.0, 400)) == [0, 5, 10, 12]
    assert list(compare_view._grid(small, "samples", 20.0, 3)) == [0, 10, 20]


def test_plot_is_a_valid_png_with_curves(groups, tmp_path):
    import matplotlib.image

    out = tmp_path / "compare.png"
    compare_view.plot(compare.compare(groups), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 300
    assert image[..., :3].std() > 0.01  # not a blank canvas


# --- export -------------------------------------------------------------------------

def test_csv_export_has_a_row_per_event_and_nested_values_as_json(tmp_path):
    path = write_run(tmp_path / "r", registrations=[(4, 1.0, [0])])
    out = report.export(path, "csv")
    assert out == path / "events.csv"
    with open(out, newline="") as file:
        rows = list(csv.DictReader(file))
    events = list(runlog.read_events(path))
    assert len(rows) == len(events)
    assert rows[0]["kind"] == "run_start" and float(rows[0]["t"]) == T0
    registration = next(row for row in rows if row["kind"] == "registration"
                        and row["sample"] == "4")
    assert json.loads(registration["parents"]) == [0]
    assert float(registration["score"]) == 1.0


def test_parquet_export_without_pyarrow_says_how_to_get_it(tmp_path, monkeypatch):
    path = write_run(tmp_path / "r")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now fails
    with pytest.raises(report.ExportError, match="pip install pyarrow"):
        report.export(path, "parquet")
    assert not (path / "events.parquet").exists()


def test_parquet_export_round_trips_when_pyarrow_is_installed(tmp_path):
    parquet = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")
    path = write_run(tmp_path / "r", registrations=[(4, 1.0, [0])])
    table = parquet.read_table(report.export(path, "parquet", batch=7))
    assert table.num_rows == len(list(runlog.read_events(path)))
    assert table.column("score").type == "double"


def test_cli_compare_writes_plot_and_html_and_export_names_its_file(groups, tmp_path, capsys,
                                                                  monkeypatch):
    from funsearch import cli

    monkeypatch.setenv("COLUMNS", "300")  # rich wraps to the terminal width
    plot, page = tmp_path / "out.png", tmp_path / "out.html"
    folder = groups[0].dir.parent  # a folder of run directories
    assert cli.main(["compare", str(folder), "--by", "sampler", "--plot", str(plot),
                     "--html", str(page)]) == 0
    assert "best score at 20 samples" in capsys.readouterr().out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = page.read_text()
    assert "best score at 20 samples" in html and "2 [-0.484138, 4.48414] {1, 2, 3}" in html
    image = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(image) == plot.read_bytes()

    assert cli.main(["compare", str(folder), "--by", "nope"]) == 2
    assert "config has no key 'nope'" in " ".join(capsys.readouterr().err.split())
    assert cli.main(["show", str(groups[0].dir)]) == 0
    assert "top 3 programs per island" in capsys.readouterr().out
    assert cli.main(["export", str(groups[0].dir)]) == 0
    assert "events.csv" in capsys.readouterr().out


# --- comparisons a person can trust ---------------------------------------------------------

def _failed_start(path, reason):
    log = runlog.RunLog(path)
    log.write_config({"name": "synthetic", "seed": 0, "problem": {"spec": "problems/tsp.py"},
                      "samplers": [{"name": "small"}]})
    log.append("start_failed", reason=reason)
    log.close()
    return path


def test_runs_that_never_started_are_left_out_with_the_reason(groups, tmp_path):
    folder = groups[0].dir.parent
    _failed_start(folder / "typo", "unknown key 'samplers.small.settings.crosover_rate'")
    starting = runlog.RunLog(folder / "starting")  # killed before its run_start
    starting.write_config({"name": "synthetic", "seed": 9})
    starting.close()
    write_run(folder / "no-samples", seed=5, samples=0, registrations=())
    runs = [rundata.read_run(path) for path in rundata.find_runs([folder])]
    result = compare.compare(runs, by="sampler")
    comparison = only(result)
    assert sum(len(members) for members in comparison.groups.values()) == 5
    assert {run.name: reason for run, reason in result.excluded} == {
        "typo": "failed to start: unknown key 'samplers.small.settings.crosover_rate'",
        "starting": "not started (no run_start in its log)",
        "no-samples": "no samples yet"}
    # Equal budgets are where every compared run has data: never 0 samples.
    assert comparison.budgets["samples"] == 20
    assert not any(row.label.startswith("best score at 0 ") for row in comparison.rows)
    text = rendered(compare_view.render, result)
    assert "left out 3 of 8 runs (nothing to compare):" in text
    assert "equal budgets 20 samples, 20.0s, 729 compute-seconds, 0.2 GPU-hours: the most every " \
           "run here has spent, so every run has a value there" in text


def test_runs_of_two_problems_are_never_grouped_or_averaged_together(tmp_path):
    paths = [write_run(tmp_path / f"tsp-{s}", seed=s, problem="aaaa1111",
                       registrations=[(3, 1.0 + s, [0])]) for s in range(3)]
    paths += [write_run(tmp_path / f"bins-{s}", seed=s, problem="bbbb2222",
                        spec="problems/bin_packing.py", registrations=[(3, 9.0, [0])])
              for s in range(2)]
    result = compare.compare([rundata.read_run(path) for path in paths], by="sampler")
    assert [(c.problem, c.groups) for c in result.comparisons] == [
        ("tsp.py on 'train'", {"small": [0, 1, 2]}),
        ("bin_packing.py on 'train'", {"small": [0, 1]})]
    end = cells(result.comparisons[0], "best score at the end")["small"].interval
    assert end.mean == pytest.approx(2.0) and end.n == 3
    text = rendered(compare_view.render, result)
    assert "the runs are of 2 problems: tsp.py on 'train' (3 runs); bin_packing.py on " \
           "'train' (2 runs). Each is compared on its own" in text


def test_logs_without_a_problem_hash_are_told_apart_by_spec_and_inputs(tmp_path):
    paths = [write_run(tmp_path / "a", spec="problems/tsp.py"),
             write_run(tmp_path / "b", spec="problems/bin_packing.py")]
    result = compare.compare([rundata.read_run(path) for path in paths], by="sampler")
    assert len(result.comparisons) == 2


def test_groups_of_fewer_than_three_runs_get_a_warning_and_a_t_interval(groups):
    result = compare.compare(groups, by="sampler")
    big = cells(only(result), "best score at 20 samples")["big"].interval
    assert big.method == "t" and big.values == (4.0, 6.0)
    assert big.low < 4.0 and big.high > 6.0  # wider than the two values: not [min, max]
    text = rendered(compare_view.render, result)
    assert "warning: too few runs to tell much: big has 2 runs; run 3 or more seeds" in text
    assert "Student's t" in text


def _pair(tmp_path, reference_scores, group_scores, group_seeds=None):
    paths = [write_run(tmp_path / f"ref-{s}", seed=s, sampler="ref",
                       registrations=[(3, score, [0])])
             for s, score in enumerate(reference_scores)]
    seeds = group_seeds or range(len(group_scores))
    paths += [write_run(tmp_path / f"new-{s}", seed=s, sampler="new",
                        registrations=[(3, score, [0])])
              for s, score in zip(seeds, group_scores, strict=True)]
    return compare.compare([rundata.read_run(path) for path in paths], by="sampler",
                           reference="ref")


def test_the_difference_to_the_reference_is_paired_by_seed_when_the_seeds_match(tmp_path):
    """Seeds that differ a lot among themselves, and `new` 0.5 better on each:
    paired, the difference is certain; unpaired, the seeds' spread hides it."""
    result = _pair(tmp_path, [1.0, 5.0, 9.0], [1.5, 5.5, 9.5])
    comparison = only(result)
    row = next(row for row in comparison.rows if row.label == "best score at 20 samples")
    contrast = row.contrasts["new"]
    assert contrast.paired and contrast.p_higher == 1.0
    assert (contrast.difference.mean, contrast.difference.low, contrast.difference.high) == (
        pytest.approx(0.5), pytest.approx(0.5), pytest.approx(0.5))
    assert compare_view.verdict(comparison, row, "new") == (
        "new is better than ref at 20 samples: +0.5 [+0.5, +0.5], P(new better) 1.00; "
        "paired by seed, 3 seeds")

    unpaired = _pair(tmp_path / "other", [1.0, 5.0, 9.0], [1.5, 5.5, 9.5],
                     group_seeds=[10, 11, 12])
    row = only(unpaired).rows[0]
    contrast = row.contrasts["new"]
    assert not contrast.paired and contrast.difference.low < 0 < contrast.difference.high
    assert 0.5 < contrast.p_higher < 0.6
    assert compare_view.verdict(only(unpaired), row, "new").startswith(
        "new and ref cannot be told apart at 20 samples: +0.5 [")


def test_a_wrong_reference_names_the_groups(tmp_path):
    with pytest.raises(ValueError, match=r"--reference 'nope': no such group \(groups: new, "
                                         r"ref\)"):
        paths = [write_run(tmp_path / f"{name}", sampler=name) for name in ("ref", "new")]
        compare.compare([rundata.read_run(path) for path in paths], by="sampler",
                        reference="nope")


def test_by_a_sampler_setting_a_run_that_leaves_it_out_has_its_default(tmp_path):
    paths = [write_run(tmp_path / "default", seed=0),
             write_run(tmp_path / "written", seed=1, settings={"crossover_rate": 0.2}),
             write_run(tmp_path / "more", seed=2, settings={"crossover_rate": 0.5})]
    runs = [rundata.read_run(path) for path in paths]
    comparison = only(compare.compare(runs, by="samplers.0.settings.crossover_rate"))
    assert comparison.groups == {"0.2": [0, 1], "0.5": [2]}
    assert comparison.flagged == {}  # written as the default is not a difference
    with pytest.raises(KeyError, match=r"config has no key 'samplers.0.settings.crosover_rate' "
                                       r"in any run; did you mean "
                                       r"samplers.0.settings.crossover_rate"):
        compare.compare(runs, by="samplers.0.settings.crosover_rate")


def test_a_sampler_setting_that_differs_inside_a_group_is_flagged(tmp_path):
    paths = [write_run(tmp_path / "a", seed=0),
             write_run(tmp_path / "b", seed=1, settings={"crossover_rate": 0.5})]
    comparison = only(compare.compare([rundata.read_run(p) for p in paths], by="sampler"))
    assert [d.key for d in comparison.differences] == ["samplers.0.settings.crossover_rate"]


def test_no_threshold_rows_by_default_when_a_run_never_beat_its_start(tmp_path):
    paths = [write_run(tmp_path / "a", seed=0, registrations=[(3, 1.0, [0])]),
             write_run(tmp_path / "b", seed=1)]  # stays at the initial 0.0
    comparison = only(compare.compare([rundata.read_run(p) for p in paths], by="seed"))
    assert comparison.threshold is None
    assert not any("to reach" in row.label for row in comparison.rows)
    assert any("some run never beat its initial program" in note for note in comparison.notes)
