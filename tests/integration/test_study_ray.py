"""A study's runs as Ray tasks, several at once."""

from pathlib import Path

import pytest

from funsearch.study import runner, studyfile, synthetic

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.ray


def test_a_study_makes_its_runs_as_ray_tasks_two_at_a_time(ray_cluster, tmp_path):
    path = tmp_path / "STUDY.toml"
    path.write_text(f"""
name = "ray-study"
experiment = "{ROOT / 'experiments' / 'tsp_quickstart.toml'}"
budget = 400
overrides = {{ "runtime.kind" = "inline", "evaluator.workers" = 1 }}
[runs]
count = 5
parallel = 2
executor = "ray"
[arms.a]
[arms.b]
overrides = {{ "samplers.0.samples_per_prompt" = 1 }}
""")
    world = synthetic.World(400.0, {"a": synthetic.TrueArm(1.2, 0.2, 0.5, 0.05),
                                    "b": synthetic.TrueArm(1.1, 0.2, 0.5, 0.05)})
    state = runner.run_study(studyfile.load(path), tmp_path / "s",
                             run_function=synthetic.SyntheticRuns(world))
    assert len(state.done()) == 5 and state.ended.startswith("budget of runs spent")
    assert {record.arm for record in state.done()} == {"a", "b"}
