"""`mer-jax bench`: the three throughput figures, their ratios, FLOPs, shapes, data and errors.

Compiles are the cost here, so the runs are tiny: a one-stage width-4 micro-attention
net (581 parameters) and a one-Inception-block feature-refinement net.
"""

import argparse
import json

import numpy as np
import pytest

from mer_jax.engine import bench

# ResNet-10 + micro-attention cut to its first stage: stem, one block, head.
TINY_MA = [
    "--model",
    "micro_attention",
    "--input-size",
    "16",
    "--width",
    "4",
    "--model-kwarg",
    "stage_blocks=(1,)",
    "--model-kwarg",
    "input_batchnorm=False",
    "--folds",
    "2",
    "--batch",
    "2",
    "--steps",
    "2",
    "--warmup",
    "1",
]


def _args(argv):
    parser = argparse.ArgumentParser(prog="mer-jax")
    bench.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["bench", *argv])


def _run_json(argv, capsys):
    args = _args([*argv, "--json"])
    assert args.fn is bench.cmd_bench
    assert args.fn(args) == 0
    return json.loads(capsys.readouterr().out)


# ---------------------------------------------------------------------------
# Independent references.
# ---------------------------------------------------------------------------
def _valid_taps(size: int, kernel: int, stride: int, pad: int) -> int:
    """Sum over output positions of the kernel taps that land inside the input (one axis)."""
    out = (size + 2 * pad - kernel) // stride + 1
    return sum(sum(0 <= o * stride - pad + j < size for j in range(kernel)) for o in range(out))


def _conv_flops(size, kernel, stride, pad, cin, cout) -> int:
    """Multiply-adds x 2 of a square convolution over the non-padding taps."""
    return 2 * cin * cout * _valid_taps(size, kernel, stride, pad) ** 2


def _tiny_ma_reference(width=4, size=16, classes=5):
    """(params, conv FLOPs of one training example) of TINY_MA, by hand.

    Stem 7x7/2 (16 -> 8), max-pool 3x3/2 (-> 4), one pre-activation block of two
    3x3 convolutions (no projection: channels and stride unchanged), the micro-attention
    1x1 embedding 3w -> w, head BatchNorm, dense. Training = forward + weight gradients
    + input gradients, except the stem's input gradient (the image is no parameter).
    """
    w = width
    params = 7 * 7 * 1 * w + 2 * w + 9 * w * w + 2 * w + 9 * w * w + 3 * w * w + 2 * w
    params += w * classes + classes
    stem = _conv_flops(size, 7, 2, 3, 1, w)
    block = 2 * _conv_flops(4, 3, 1, 1, w, w) + _conv_flops(4, 1, 1, 0, 3 * w, w)
    dense = 2 * w * classes
    train = 2 * stem + 3 * (block + dense)
    return params, train


def test_reference_arithmetic():
    # Stem of a 16-pixel side: taps per output 4, 6, 7, 7, 7, 7, 7, 5.
    assert _valid_taps(16, 7, 2, 3) == 50
    assert _valid_taps(4, 3, 1, 1) == 10
    assert _tiny_ma_reference()[0] == 581


# ---------------------------------------------------------------------------
# Full runs (compiled; keep few and tiny).
# ---------------------------------------------------------------------------
def test_json_micro_attention_figures_ratios_and_flops(capsys):
    # auto (CPU: a loop over folds) and vmap, both with the lax.scan step loop that
    # accelerators use; sequential shares the loop program, one_model runs batch F*B.
    # Each strategy with XLA's convolutions ('auto' on CPU) and as patches x GEMM.
    r = _run_json(
        [
            *TINY_MA,
            *("--strategy", "auto", "--strategy", "vmap", "--step-loop", "scan"),
            *("--conv-impl", "auto", "--conv-impl", "gemm"),
        ],
        capsys,
    )
    for key in (
        "fold_parallel",
        "sequential",
        "one_model",
        "ratios",
        "compile_s",
        "flops_per_image",
        "tflops",
        "device",
        "config",
    ):
        assert key in r
    runs = ("fold_parallel", "sequential", "one_model")
    for key in runs:
        assert r[key] > 0 and np.isfinite(r[key])
        assert r["compile_s"][key] > 0
    # On CPU 'auto' is a loop over folds: sequential is the very same program, and the
    # driver's program cache compiled it once.
    assert r["compile_s"]["sequential"] < r["compile_s"]["fold_parallel"] / 10
    assert r["ratios"]["fold_parallel/one_model"] == pytest.approx(
        r["fold_parallel"] / r["one_model"], rel=1e-12
    )
    assert r["ratios"]["fold_parallel/sequential"] == pytest.approx(
        r["fold_parallel"] / r["sequential"], rel=1e-12
    )
    # Every requested strategy x convolution was timed; the first is the headline figure.
    assert list(r["fold_parallel_by_strategy"]) == [
        "loop+scan",
        "loop+scan+gemm",
        "vmap+scan",
        "vmap+scan+gemm",
    ]
    assert all(v > 0 for v in r["fold_parallel_by_strategy"].values())
    assert r["fold_parallel"] == r["fold_parallel_by_strategy"]["loop+scan"]
    c = r["config"]
    assert (c["strategy"], c["step_loop"], c["conv_impl"]) == ("loop", "scan", "xla")
    assert c["input_shape"] == [16, 16, 1] and c["input_dtype"] == "uint8"
    assert (c["folds"], c["batch"], c["steps"], c["warmup"]) == (2, 2, 2, 1)
    assert c["model_kwargs"]["width"] == 4 and c["model_kwargs"]["attention"] is True
    params, train_flops = _tiny_ma_reference()
    assert c["params"] == params
    assert r["device"]["platform"] == "cpu"

    flops = r["flops_per_image"]
    if flops == "n/a":
        assert all(v == "n/a" for v in r["tflops"].values())
    else:
        # XLA counts at least the convolutions' multiply-adds; BatchNorm, ReLU, the
        # attention sigmoid, pooling and the SGD update add elementwise work on top.
        assert train_flops <= flops <= 2 * train_flops
        for key in runs:
            assert r["tflops"][key] == pytest.approx(flops * r[key] / 1e12, rel=1e-12)


def test_feature_refinement_smoke_default_strategy(monkeypatch):
    """Flow input (float, 2 channels), the model's aux loss, CPU default loop + Python steps;
    every run is timed through the engine's own driver (its run phase, one call each)."""
    from mer_jax import engine

    calls = []
    run_call = engine.run_call
    monkeypatch.setattr(engine, "run_call", lambda *a: calls.append(a[1]) or run_call(*a))
    args = _args(
        [
            "--model",
            "feature_refinement",
            "--input-size",
            "8",
            "--width",
            "8",
            "--model-kwarg",
            "filters=(2,)",
            "--model-kwarg",
            "detector_features=4",
            "--model-kwarg",
            "head_features=4",
            "--folds",
            "1",  # one_model (batch F*B = B) then shares the fold program: one compile
            "--batch",
            "2",
            "--steps",
            "2",
            "--warmup",
            "0",
        ]
    )
    r = bench.run_bench(bench.config_from_args(args))
    assert calls == [0, 0, 0]  # fold_parallel, sequential, one_model: no warm-up call
    c = r["config"]
    assert (c["strategy"], c["step_loop"]) == ("loop", "python")
    assert c["ablation"] == "fr" and c["model_kwargs"]["shared_features"] == 8
    assert c["input_shape"] == [8, 8, 2] and c["input_dtype"] == "float32"
    for key in ("fold_parallel", "sequential", "one_model"):
        assert r[key] > 0
    assert r["flops_per_image"] == "n/a" or r["flops_per_image"] > 0
    text = bench.format_result(r)
    for key in ("fold_parallel", "sequential", "one_model", "fold_parallel / one_model"):
        assert key in text
    assert f"{r['one_model']:.1f}" in text


# ---------------------------------------------------------------------------
# Shapes, data, presets (no compiles).
# ---------------------------------------------------------------------------
def test_input_shapes_keep_leading_axes_and_channels():
    assert bench.input_shape("micro_attention", 48) == (48, 48, 1)
    assert bench.input_shape("stanet", 32, [4]) == (4, 32, 32, 2)
    assert bench.input_shape("stanet", 32) == (20, 32, 32, 2)
    assert bench.input_shape("aman", 32, [2, 3]) == (2, 3, 32, 32, 3)
    with pytest.raises(ValueError, match="--frames"):
        bench.input_shape("aman", 32, [2])
    with pytest.raises(ValueError, match="--frames"):
        bench.input_shape("micro_attention", 32, [2])


@pytest.mark.parametrize("shape", [(6, 6, 1), (3, 6, 6, 2)])
def test_random_data_is_a_loso_table(shape):
    folds, batch = 3, 4
    data, table = bench.random_data(shape, folds, batch, num_classes=5)
    subjects = np.asarray(data.subjects)
    images = np.asarray(data.images)
    assert images.shape[1:] == shape
    assert images.dtype == (np.float32 if shape[-1] == 2 else np.uint8)
    assert set(np.asarray(data.labels).tolist()) <= set(range(5))
    # Fold f trains on every subject but f and tests on one sample of subject f.
    for f in range(folds):
        np.testing.assert_array_equal(np.asarray(table.train_mask[f]), subjects != f)
        assert subjects[int(table.test_idx[f, 0])] == f
        expected = np.zeros(folds + 1, bool)
        expected[f] = True
        np.testing.assert_array_equal(np.asarray(table.heldout_subjects[f]), expected)
    assert np.asarray(table.train_mask[0]).sum() >= folds * batch  # one_model's batch


def test_random_data_is_capped(monkeypatch):
    monkeypatch.setattr(bench, "MAX_DATA_BYTES", 2 * 6 * 6 * 5)  # two 6x6 images per subject
    data, _ = bench.random_data((6, 6, 1), 4, 8, num_classes=3)
    assert data.images.shape[0] == 5 * 2


def test_presets_and_width_knob():
    small = bench.config_from_args(_args(["--model", "dense_mixed_attention"]))
    assert small.preset == "small"  # auto on CPU
    assert small.input_shape == (48, 48, 3) and small.model_kwargs["growth_rate"] == 8
    paper = bench.config_from_args(_args(["--model", "stanet", "--preset", "paper"]))
    assert paper.input_shape == (20, 192, 192, 2) and "width" not in paper.model_kwargs
    assert paper.steps == 20
    wide = bench.config_from_args(_args(["--model", "dense_mixed_attention", "--width", "12"]))
    assert wide.model_kwargs["growth_rate"] == 12
    ablated = bench.config_from_args(_args(["--model", "aman", "--ablation", "ma_only"]))
    assert ablated.model_kwargs["frame_pool"] == "mean" and ablated.input_shape == (2, 3, 32, 32, 3)


# ---------------------------------------------------------------------------
# Errors name what is wrong.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, match",
    [
        (["--model", "no_such_net"], "no_such_net"),
        (["--ablation", "no_such_ablation"], "no_such_ablation"),
        (["--model-kwarg", "depth=3"], "depth"),
        (["--model-kwarg", "width"], "--model-kwarg 'width'"),
        (["--model", "stanet", "--frames", "2", "3"], "--frames"),
        (["--all-models", "--width", "4"], "--width"),
        (["--folds", "0"], "--folds"),
    ],
)
def test_bad_arguments_name_themselves(argv, match):
    args = _args(argv)
    with pytest.raises(ValueError, match=match):
        bench.cmd_bench(args)


def test_benchmarks_import_without_the_dataset_stack():
    """GPU machines often lack tensorflow-datasets / grain: `mer-jax bench` and
    `bench-preprocess` (and the CLI that dispatches them) must not need them."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "for name in ('tensorflow_datasets', 'grain', 'array_record'):\n"
        "    sys.modules[name] = None\n"  # any import of them raises ImportError
        "from mer_jax import cli\n"
        "from mer_jax.engine import bench\n"
        "from mer_jax.magnifier import train\n"
        "from mer_jax.preprocess import bench as bench_preprocess\n"
        "assert cli.main(['bench', '--help']) == 0\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
