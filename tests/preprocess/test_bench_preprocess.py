"""`mer-jax bench-preprocess` on tiny synthetic clips: every step reports positive speeds."""

import json

import numpy as np
import pytest

from mer_jax import cli
from mer_jax.preprocess import bench as bench_preprocess


def test_synthetic_clips_move_to_the_apex_and_back():
    clips = bench_preprocess.synthetic_clips(2, 11, 16, seed=1)
    assert clips.shape == (2, 11, 16, 16, 3) and clips.dtype == np.uint8
    diff = np.abs(clips.astype(int) - clips[:, :1]).mean(axis=(2, 3, 4))
    assert (diff.argmax(axis=1) == 5).all() and (diff[:, 0] == 0).all()
    np.testing.assert_array_equal(clips, bench_preprocess.synthetic_clips(2, 11, 16, seed=1))


def test_every_step_reports_positive_throughput():
    result = bench_preprocess.run(clips=2, frames=11, size=16, batch=1)
    assert set(result) >= {"device", "clips", "frames", "size", "batch", "steps"}
    assert result["device"]["platform"] == "cpu"
    wanted = {"tvl1_opencv", "tvl1_jax", "farneback", "dis", "evm_jax", "evm_apex_jax", "tim"}
    wanted |= {"apex_interframe_diff", "face_crop"}
    assert set(result["steps"]) == set(bench_preprocess.STEPS) >= wanted
    for name, r in result["steps"].items():
        assert r["clips_per_s"] > 0 and r["ms_per_clip"] > 0, name
        assert r["ms_per_clip"] == pytest.approx(1000.0 / r["clips_per_s"])
        assert (r["compile_s"] is not None) == r["batched"] and r["what"], name
    assert "| tvl1_jax | yes |" in bench_preprocess.format_table(result)


def test_cli_json_and_errors(capsys):
    argv = ["bench-preprocess", "--clips", "2", "--frames", "4", "--size", "16", "--json"]
    assert cli.main([*argv, "--step", "dis", "--step", "apex_interframe_diff"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["steps"]) == ["dis", "apex_interframe_diff"] and out["clips"] == 2
    assert cli.main([*argv, "--step", "tim"]) == 2  # TIM to 11 frames needs >= 11
    assert "--frames must be >= 11" in capsys.readouterr().err
