"""Held-out attention maps: the engine's pooled `out` leaves, the sweep's .npz and the report.

The maps the engine returns must be those of each fold's final weights on the
samples that fold holds out, the same under every fold strategy, step loop,
fold grouping and device layout (a subprocess with 4 simulated CPU devices).
Those comparisons train in float64 (x64 enabled; the engine keeps the tiny
model's parameters in float64), where different programs' rounding stays near
1e-16 instead of growing through training as float32's would.
"""

import json
import subprocess
import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib.image
import ml_collections
import numpy as np
import pytest

from mer_jax import config as config_lib
from mer_jax import engine, export, gradcam, heldout_maps, models, protocols, report, sweep
from tests.xla_flags import subprocess_env

NUM_CLASSES = 3
ROOT = Path(__file__).resolve().parents[1]
# Float64 training and maps: programs differ by float64 rounding (~1e-16) grown by one epoch.
F64 = dict(rtol=1e-9, atol=1e-12)


def _setup(n=18, subjects=3, size=16):
    """3 LOSO folds of 6 grey 16x16 images, a class-dependent bright square; one epoch."""
    rng = np.random.default_rng(0)
    subj = np.array([f"s{i % subjects}" for i in range(n)])
    labels = rng.integers(0, NUM_CLASSES, n).astype(np.int32)
    images = rng.integers(0, 256, (n, size, size, 1)).astype(np.uint8)
    for i, y in enumerate(labels):
        images[i, 2 + 3 * y : 5 + 3 * y, 2:6] = 255
    table = protocols.loso(subj)
    schedule, folds, codes = engine.prepare(
        table, subj, labels, NUM_CLASSES, batch_size=6, balance=True, epochs=1, seed=0
    )
    data = engine.Data(jnp.asarray(images), jnp.asarray(labels), jnp.asarray(codes))
    cfg = ml_collections.ConfigDict(
        dict(name="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="constant")
    )
    return engine.make_optimizer(cfg, schedule.steps_per_epoch), schedule, data, folds


class _Tiny(nn.Module):
    """Conv + BatchNorm + a spatial mask and channel weights: compiles in about a second."""

    @nn.compact
    def __call__(self, image, *, train=False):
        x = nn.Conv(4, (3, 3), name="conv")(engine.to_float(image))
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(x)
        mask = nn.sigmoid(nn.Conv(1, (3, 3), name="mask")(x))
        weights = nn.sigmoid(nn.Dense(4, name="gate")(x.mean(axis=(1, 2))))
        features = (x * mask * weights[:, None, None, :]).mean(axis=(1, 2))
        out = {
            "spatial_mask": mask,
            "block": {"channel_weights": weights},
            "pre_logits": features,
            "total": jnp.sum(mask),  # no example axis: never returned
        }
        return nn.Dense(NUM_CLASSES, name="head")(features), out


def _maps(folds, data, per_class=2, **kw):
    """engine.Maps of the entries the report keeps (`heldout_maps.select_heldout`)."""
    pos, valid = heldout_maps.select_heldout(
        folds.test_idx, folds.test_valid, data.labels, per_class
    )
    return engine.Maps(pos, valid, **kw)


def _entries(out):
    """[(fold, slot, test position)] of the kept maps."""
    return [(f, j, int(out.maps_pos[f, j])) for f, j in zip(*np.nonzero(out.maps_valid))]


def test_select_heldout_spreads_classes_over_folds_and_keeps_repeated_samples():
    # Fold 1 tests sample 2 again (a cross-dataset task): two entries, one per fold.
    test_idx = np.array([[0, 1, 2, 3], [2, 4, 5, 0], [6, 7, 0, 0]])
    test_valid = np.array([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0]], bool)
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 2])
    pos, valid = heldout_maps.select_heldout(test_idx, test_valid, labels, per_class=2)
    kept = [(f, int(test_idx[f, pos[f, j]])) for f, j in zip(*np.nonzero(valid))]
    # (fold, sample) entries of class 0 in fold order: (0,0) (0,2) (1,2) (1,4) (2,6), picks
    # floor((i + 1/6) 5 / 2) = 0, 2; class 1: (0,1) (0,3) (1,5), floor((i + 1/2) 3 / 2) = 0, 2;
    # class 2: (2,7). Sample 2 is kept from fold 1, which tests it too.
    assert kept == [(0, 0), (0, 1), (1, 2), (1, 5), (2, 7)]
    assert pos.shape == (3, 2) and valid.sum(axis=1).tolist() == [2, 2, 1]
    pos, valid = heldout_maps.select_heldout(test_idx, test_valid, labels, per_class=10)
    assert valid.sum() == test_valid.sum()  # every entry, the repeated sample twice
    assert sorted(test_idx[f, pos[f, j]] for f, j in zip(*np.nonzero(valid))) == sorted(
        test_idx[test_valid]
    )


def test_pooled_maps_equal_each_folds_model_applied_to_its_held_out_samples():
    """micro_attention (seed 000): the engine's maps == model.apply of that fold's final weights."""
    tx, schedule, data, folds = _setup()
    model = models.build("micro_attention", NUM_CLASSES, width=4)
    aug = engine.Augment(crop_size=12, flip=True)
    out = engine.train_folds(
        model, tx, schedule, aug, data, folds, engine.Layout("loop", "python"),
        maps=_maps(folds, data, keys="", dtype=jnp.float32),
    )  # fmt: skip
    assert set(out.maps) == {f"attention_{k}" for k in range(1, 5)} | {"pre_logits"}
    index, fold, pos, pooled = heldout_maps.pooled_maps(out)
    labels, images = np.asarray(data.labels), np.asarray(data.images)
    assert np.bincount(labels[index], minlength=NUM_CLASSES).tolist() == [2, 2, 2]
    assert len(set(fold.tolist())) > 1  # spread over folds
    for m, (f, p) in enumerate(zip(fold, pos)):
        i = index[m]
        assert folds.test_valid[f, p] and folds.test_idx[f, p] == i
        variables = jax.tree_util.tree_map(
            lambda x, f=f: x[f], {"params": out.state.params, **out.state.model_state}
        )
        x = images[i : i + 1, 2:14, 2:14].astype(np.float32) / 255.0  # the centre crop
        logits, expected = model.apply(variables, jnp.asarray(x), train=False)
        np.testing.assert_allclose(out.logits[f, p], logits[0], rtol=1e-4, atol=1e-5)
        for name, value in pooled.items():
            assert value.dtype == np.float32
            np.testing.assert_allclose(value[m], expected[name][0], rtol=1e-4, atol=1e-6)
    # The maps differ between examples (the comparison is not between constants).
    assert np.ptp(pooled["attention_1"], axis=0).max() > 1e-3


def test_maps_agree_across_fold_strategies_step_loops_and_groups():
    tx, schedule, data, folds = _setup()
    aug = engine.Augment(crop_size=12)
    run = lambda *layout, maps=None, **kw: engine.train_folds(
        _Tiny(), tx, schedule, aug, data, folds, engine.Layout(*layout, **kw), maps=maps
    )
    with jax.enable_x64(True):
        base = run("vmap", "scan", maps=_maps(folds, data, dtype=jnp.float64))
        others = {
            "loop": run("loop", "python", maps=_maps(folds, data, dtype=jnp.float64)),
            # lax.map in 2 calls of 2 folds (1 padding fold); only the weights and the mask.
            "map": run(
                "map", "scan", fold_group=2, folds_per_call=2,
                maps=_maps(folds, data, keys="weights$|mask$", dtype=jnp.float64),
            ),
        }  # fmt: skip
        default = run("vmap", "scan", maps=_maps(folds, data))
        off = run("vmap", "scan")
    assert set(base.maps) == {"spatial_mask", "block/channel_weights", "pre_logits"}
    assert base.maps["spatial_mask"].shape == (3, base.maps_pos.shape[1], 12, 12, 1)
    assert others["map"].fold_groups == (2, 2)
    assert set(others["map"].maps) == {"spatial_mask", "block/channel_weights"}
    for name, other in others.items():
        np.testing.assert_array_equal(other.maps_pos, base.maps_pos, err_msg=name)
        np.testing.assert_array_equal(other.maps_valid, base.maps_valid, err_msg=name)
        for key, value in other.maps.items():
            assert value.dtype == np.float64
            np.testing.assert_allclose(
                value[other.maps_valid], base.maps[key][base.maps_valid], **F64,
                err_msg=f"{name}: {key}",
            )  # fmt: skip
    assert np.ptp(base.maps["spatial_mask"][base.maps_valid], axis=0).max() > 1e-2
    # The default dtype is float16: the same maps rounded (2^-11 relative, at most).
    assert set(default.maps) == set(base.maps)
    for key, value in default.maps.items():
        assert value.dtype == np.float16
        np.testing.assert_allclose(value.astype(np.float64), base.maps[key], rtol=1e-3, atol=1e-7)
    # Maps are an extra program after training: the training itself is the same.
    assert off.maps is None and off.maps_pos is None
    np.testing.assert_array_equal(off.logits, base.logits)


def _sharded_and_save(path: str) -> None:
    """Subprocess body: 3 folds over 4 simulated devices (one padding fold), in float64."""
    jax.config.update("jax_enable_x64", True)
    tx, schedule, data, folds = _setup()
    outs = {
        loop: engine.train_folds(
            _Tiny(), tx, schedule, engine.Augment(crop_size=12), data, folds,
            engine.Layout("vmap", loop), maps=_maps(folds, data, dtype=jnp.float64),
        )
        for loop in ("scan", "python")
    }  # fmt: skip
    arrays = {"devices": len(jax.devices()), "layout": np.asarray(outs["scan"].layout)}
    for loop, out in outs.items():
        arrays[f"{loop}_pos"], arrays[f"{loop}_valid"] = out.maps_pos, out.maps_valid
        arrays[f"{loop}_logits"] = out.logits
        arrays.update({f"{loop}_map_{k}": v for k, v in out.maps.items()})
    np.savez(path, **arrays)


def test_maps_under_shard_map_with_a_padding_fold_match_one_device(tmp_path):
    """The subprocess compiles with this process's XLA flags (`tests.xla_flags`), as the
    reference here does: optimisation levels round float64 differently (~1e-8 after an epoch)."""
    path = tmp_path / "four.npz"
    env = subprocess_env(devices=4)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.test_attention_maps", str(path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    four = dict(np.load(path))
    assert four["devices"] == 4 and "over 4 devices" in str(four["layout"])
    assert "(1 padding)" in str(four["layout"])
    tx, schedule, data, folds = _setup()
    with jax.enable_x64(True):
        one = engine.train_folds(
            _Tiny(), tx, schedule, engine.Augment(crop_size=12), data, folds,
            engine.Layout("vmap", "scan"), maps=_maps(folds, data, dtype=jnp.float64),
        )  # fmt: skip
    for loop in ("scan", "python"):
        np.testing.assert_array_equal(four[f"{loop}_pos"], one.maps_pos)
        np.testing.assert_array_equal(four[f"{loop}_valid"], one.maps_valid)
        assert four[f"{loop}_logits"].dtype == np.float64
        np.testing.assert_allclose(four[f"{loop}_logits"], one.logits, **F64)
        for key, value in one.maps.items():
            got = four[f"{loop}_map_{key}"]
            assert got.shape == value.shape  # the padding fold dropped
            np.testing.assert_allclose(got, value, **F64, err_msg=key)


# ---------------------------------------------------------------------------
# Through a sweep: attention_maps.npz, attention_maps.png, results.json, summary.md.
# ---------------------------------------------------------------------------
def _micro_attention(tfds_dir):
    c = config_lib.load(f"{ROOT / 'experiments' / 'quickstart.py'}:tiny")
    c.unlock()
    c.data_dir, c.train.epochs = tfds_dir, 1
    return c


def _stanet(tfds_dir):
    """STANet (seed 004) on 4 DIS flows of 32x32 per clip, width 4."""
    c = config_lib.base()
    c.dataset, c.data_dir = "synthetic_me/tiny", tfds_dir
    c.input.representation, c.input.flow_method = "flow_sequence", "dis"
    c.input.image_size, c.input.num_frames = 32, 4
    c.model = "stanet"
    c.model_kwargs = ml_collections.ConfigDict({"width": 4, "hourglass_depth": 1})
    c.train.epochs, c.train.batch_size, c.train.balance = 1, 8, False
    c.optimizer.name, c.optimizer.lr, c.optimizer.schedule = "adam", 1e-3, "constant"
    return c


@pytest.mark.parametrize("name, make", [("micro_attention", _micro_attention), ("stanet", _stanet)])
def test_sweep_writes_attention_maps_consistent_with_results(tmp_path, tfds_dir, name, make):
    config = make(tfds_dir)
    results = sweep.run(config, tmp_path, progress=False, log=lambda message: None)
    saved = json.loads((tmp_path / "results.json").read_text())
    record = saved["attention_maps"]
    npz = dict(np.load(tmp_path / "attention_maps.npz"))
    assert record == json.loads(json.dumps(results["attention_maps"]))
    expected = {
        "micro_attention": {f"attention_{k}" for k in range(1, 5)},
        "stanet": {"spatial_mask", "temporal_weights", "temporal_affinity"},
    }[name]
    # The default keys (no features, no penalty), and Grad-CAM beside them (test_gradcam.py).
    assert set(record["maps"]) == expected | {"gradcam"}
    assert set(npz) == expected | {"gradcam"} | set(report.ATTENTION_META)
    m = record["num_examples"]
    for key in expected:
        assert list(npz[key].shape) == [m, *record["maps"][key]["shape"]]
        assert npz[key].dtype == np.float16 and np.isfinite(npz[key]).all()
    cams = npz["gradcam"]
    assert cams.shape == (m, *npz["input"].shape[1:3], 1) and cams.dtype == np.float32
    assert np.isfinite(cams).all() and (cams >= 0).all()
    assert record["gradcam"]["layer"] == models.spec(name).gradcam_layer
    assert record["gradcam"]["classes"] == npz["prediction"].tolist()  # the same weights
    if name == "micro_attention":  # grey frames: `input` is the model's input itself
        _check_gradcam_against_exported_weights(tmp_path, npz)
    # Up to 2 per class, and each kept example is the one results.json predicted for it.
    preds = saved["predictions"]
    counts = np.bincount(preds["label"], minlength=len(saved["class_names"]))
    kept = np.bincount(npz["label"], minlength=len(counts))
    assert kept.tolist() == np.minimum(counts, 2).tolist() and m == kept.sum()
    where = {clip: i for i, clip in enumerate(preds["clip"])}
    for k, clip in enumerate(npz["clip"]):
        assert npz["label"][k] == preds["label"][where[clip]]
        assert npz["prediction"][k] == preds["pred"][where[clip]]
        assert npz["subject"][k] == preds["subject"][where[clip]]
        fold = saved["folds"][npz["fold"][k]]
        assert fold["subject"] == npz["subject"][k]  # the fold that holds it out
    assert npz["input"].shape[0] == m and npz["input"].ndim in (3, 4)
    # The figure: one row per kept example (2 per class at most), input + one column per map.
    png = matplotlib.image.imread(tmp_path / "attention_maps.png")
    assert png.shape[:2] == (round(220 * m), round(220 * (2 + len(expected))))  # + Grad-CAM
    summary = (tmp_path / "summary.md").read_text()
    assert "![attention maps](attention_maps.png)" in summary
    assert f"Grad-CAM (Selvaraju et al., ICCV 2017, Eq. 1-2) of the predicted class at layer " \
        f"`{record['gradcam']['layer']}`" in summary  # fmt: skip
    for key in expected:
        assert f"| {key} | " in summary


def _check_gradcam_against_exported_weights(workdir, npz):
    """Each kept example's Grad-CAM == gradcam.gradcam of the exported weights of the fold
    that holds it out (weights/, as `mer-jax predict` loads them), upsampled."""
    exported = export.load(workdir)
    layer = models.spec("micro_attention").gradcam_layer
    run = jax.jit(lambda v, x: gradcam.gradcam(exported.model, v, x, layer))
    for k, f in enumerate(npz["fold"]):  # one example at a time: one compiled program
        cams, classes = run(exported.fold_variables(int(f)), npz["input"][k, None, ..., None])
        assert classes[0] == npz["prediction"][k]
        expected = gradcam.upsample(cams, npz["input"].shape[1:3])[0, ..., None]
        np.testing.assert_allclose(npz["gradcam"][k], expected, rtol=1e-4, atol=1e-6)
    assert np.ptp(npz["gradcam"]) > 0


def test_no_attention_maps_when_off(tmp_path, tfds_dir):
    config = _micro_attention(tfds_dir)
    config.report.attention_maps = 0
    results = sweep.run(config, tmp_path, progress=False, log=lambda message: None)
    assert "attention_maps" not in results
    assert not (tmp_path / "attention_maps.npz").exists()
    assert not (tmp_path / "attention_maps.png").exists()
    assert "attention_maps" not in json.loads((tmp_path / "results.json").read_text())
    assert "Attention maps" not in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "confusion_matrix.png").exists()


# ---------------------------------------------------------------------------
# The report alone: any leaf rank, never a crash.
# ---------------------------------------------------------------------------
def _odd_maps(m=3):
    rng = np.random.default_rng(0)
    maps = {
        "penalty": rng.random(m),  # rank 0 per example: not drawn
        "weights": rng.random((m, 5)),
        "matrix": rng.random((m, 3, 7)),
        "mask": rng.random((m, 4, 4, 1)),
        "frames": rng.random((m, 3, 4, 4, 2)).astype(np.float16),
        "six": rng.random((m, 1, 2, 2, 2, 2)),  # rank 5: not drawn
    }
    maps["mask"][0, 0, 0, 0] = np.nan
    return maps


def test_report_draws_every_rank_it_can_and_names_the_rest(tmp_path):
    maps = _odd_maps()
    assert [report.map_kind(v.shape[1:]) for v in maps.values()] == [
        "skip", "bars", "matrix", "spatial", "spatial_frames", "skip"
    ]  # fmt: skip
    labels = np.array([0, 1, 1])
    for inputs in (None, np.random.default_rng(1).random((3, 8, 8)), np.ones((3, 8, 8, 3))):
        path = tmp_path / "maps.png"
        skipped = report.plot_attention_maps(
            maps, path, inputs=inputs, labels=labels, predictions=labels, class_names=["a", "b"],
            per_class=1,
        )  # fmt: skip
        assert skipped == ["penalty", "six"]
        rows, columns = 2, 4 + (inputs is not None)  # one per class; 4 drawable maps
        assert matplotlib.image.imread(path).shape[:2] == (220 * rows, 220 * columns)
    middle = maps["frames"][0, 1].astype(np.float32)  # frame 3 // 2, channel mean
    np.testing.assert_allclose(report.spatial_map(maps["frames"][0]), middle.mean(-1), rtol=1e-6)
    flow = np.zeros((2, 5, 5, 2), np.float32)
    flow[1, ..., 0], flow[1, ..., 1] = 3.0, 4.0
    np.testing.assert_allclose(report.display_input(flow, flow=True), np.full((5, 5), 5.0))
    assert report.display_input(np.full((4, 4, 3), 2.0)).shape == (4, 4, 3)


def test_write_report_notes_skipped_maps_and_survives_a_failing_figure(tmp_path, monkeypatch):
    maps = _odd_maps()
    record = {
        "per_class": 2,
        "num_examples": 3,
        "maps": {k: {"shape": list(v.shape[1:]), "dtype": str(v.dtype)} for k, v in maps.items()},
    }
    results = {"model": "m", "class_names": ["a", "b"], "attention_maps": record}
    arrays = {**maps, "label": np.array([0, 1, 1]), "clip": np.array(["x", "y", "z"])}
    paths = report.write_report(results, tmp_path, attention_maps=arrays)
    assert paths["attention_maps_figure"].stat().st_size > 0
    np.testing.assert_array_equal(np.load(paths["attention_maps"])["weights"], maps["weights"])
    summary = (tmp_path / "summary.md").read_text()
    assert "**Not drawn:** penalty, six" in summary and "| frames | 3 x 4 x 4 x 2 |" in summary

    def broken(*args, **kwargs):
        raise RuntimeError("no canvas")

    monkeypatch.setattr(report, "plot_attention_maps", broken)
    other = tmp_path / "broken"
    paths = report.write_report(results, other, attention_maps=arrays)
    assert "attention_maps_figure" not in paths and (other / "attention_maps.npz").exists()
    saved = json.loads((other / "results.json").read_text())["attention_maps"]
    assert saved["figure"] is None and saved["figure_error"] == "RuntimeError: no canvas"
    assert "could not be drawn: RuntimeError: no canvas" in (other / "summary.md").read_text()


if __name__ == "__main__":
    _sharded_and_save(sys.argv[1])
