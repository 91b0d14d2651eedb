"""funsearch.models.build's arguments (building itself needs torch: tests/vllm_cpu/)."""

import pytest

from funsearch.models.build import HEAD_DIMS, ModelSpec, main, parse_args


def test_arguments_set_the_sizes():
    out, spec, corpus = parse_args(["m", "--layers", "4", "--hidden", "256", "--heads", "8",
                                    "--vocab", "1024", "--corpus", "problems"])
    assert str(out) == "m" and corpus == ["problems"]
    assert (spec.layers, spec.hidden, spec.heads, spec.vocab) == (4, 256, 8, 1024)
    assert spec.head_dim == 32 and spec.ffn == 704  # Llama's 8/3 x hidden, rounded up to 64
    spec.check()


@pytest.mark.parametrize("fields, message", [
    ({"hidden": 130, "heads": 4}, "not a multiple of --heads"),
    ({"hidden": 192, "heads": 4}, "head size 48"),
    ({"heads": 4, "kv_heads": 3}, "not a multiple of --kv-heads"),
    ({"vocab": 100}, "at least 259 tokens"),
    ({"layers": 0}, "must be positive"),
])
def test_sizes_vllm_cannot_run_are_errors_that_say_why(fields, message):
    with pytest.raises(ValueError, match=message):
        ModelSpec(**fields).check()


def test_every_supported_head_size_is_accepted():
    for head_dim in HEAD_DIMS:
        ModelSpec(hidden=2 * head_dim, heads=2).check()


def test_the_command_line_refuses_a_bad_size_before_building(tmp_path, capsys):
    assert main([str(tmp_path / "m"), "--hidden", "192"]) == 2
    assert "head size 48" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
