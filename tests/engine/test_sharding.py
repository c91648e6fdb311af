"""The fold axis over devices, padding folds, and the memory rule that splits folds into groups.

The multi-device test runs this file as a script in two subprocesses, one
with 4 simulated CPU devices (the XLA flag must be set before jax is
imported) and one with the default single device (the plain, unsharded
engine), and compares what they trained. Both use XLA's lowest backend
optimisation level so the two compilations fit a CI budget; the layout, not
the compiler's code, is under test.

Both train in float64 (x64 enabled, the model's dtype float64: the engine keeps
parameters and optimizer state in float64), so the programs' different
summation orders differ by float64 rounding that training cannot amplify to
anything a float32 tolerance would have to absorb.
"""

import dataclasses
import subprocess
import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mer_jax import engine, models, protocols
from mer_jax.engine import layout
from tests.xla_flags import subprocess_env

NUM_CLASSES = 3
NUM_FOLDS = 6  # not a multiple of the 4 simulated devices: two padding folds
DEVICES = 4
ROOT = Path(__file__).resolve().parents[2]
# Float64 throughout (the linear model): differences start at float64 rounding, 1e-9 is far above.
F64 = dict(rtol=1e-9, atol=1e-12)
# micro_attention returns float32 logits (a float32 loss): a few float32 ulps (1.2e-7) ...
OUT_F32 = dict(rtol=1e-6, atol=1e-6)
# ... and keeps its parameters in float64: rounding grows over 2 epochs, far less than to 1e-8.
PARAMS_F64 = dict(rtol=1e-8, atol=1e-11)


def _setup(epochs=1):
    """tests/engine/test_engine.py's tiny problem with 6 subjects: 6 LOSO folds, 12x12 images."""
    rng = np.random.default_rng(0)
    n = 36
    subj = np.array([f"s{i % NUM_FOLDS}" for i in range(n)])
    labels = rng.integers(0, NUM_CLASSES, n).astype(np.int32)
    images = rng.integers(0, 256, (n, 12, 12, 1)).astype(np.uint8)
    for i, y in enumerate(labels):  # a learnable signal: a class-dependent bright square
        images[i, 2 + 3 * y : 5 + 3 * y, 2:6] = 255
    table = protocols.loso(subj)
    schedule, folds, codes = engine.prepare(
        table, subj, labels, NUM_CLASSES, batch_size=8, balance=True, epochs=epochs, seed=0
    )
    data = engine.Data(jnp.asarray(images), jnp.asarray(labels), jnp.asarray(codes))
    # Plateau: optax's lax.cond inside shard_map (it once failed shard_map's vma check).
    cfg = ml_collections.ConfigDict(
        dict(name="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="plateau",
             decay_rate=0.5, patience=1)
    )  # fmt: skip
    tx = engine.make_optimizer(cfg, schedule.steps_per_epoch)
    aug = engine.Augment(crop_size=10, flip=True, color_shift=20.0)
    return tx, schedule, aug, data, folds


class _Linear(nn.Module):
    """A one-layer model: an engine program that compiles in seconds, not tens of seconds."""

    @nn.compact
    def __call__(self, image, *, train=False):
        x = engine.to_float(image).reshape(image.shape[0], -1)
        return nn.Dense(NUM_CLASSES, name="head")(x), {}


def _resumed(tx, schedule, data, folds, directory) -> dict:
    """Train 1 epoch with a checkpointer, then 2 from its checkpoint: the second run restores
    the state sharded as it was trained and continues as the 2-epoch run ('python_*')."""
    layout = engine.Layout(strategy="vmap", step_loop="python")
    run = lambda epochs: engine.train_folds(
        _Linear(), tx, dataclasses.replace(schedule, epochs=epochs), engine.Augment(), data,
        folds, layout, checkpointer=engine.Checkpointer(directory, every=1, log=print),
    )  # fmt: skip
    first, resumed = run(1), run(2)
    shardings = [
        a.sharding == b.sharding
        for a, b in zip(*(jax.tree_util.tree_leaves(o.state) for o in (first, resumed)))
    ]
    return dict(
        resumed_logits=resumed.logits,
        resumed_loss=resumed.train_loss,
        first_loss=first.train_loss,
        resumed_same_sharding=all(shardings),
    )


def _train_and_save(path: str) -> None:
    """Subprocess body: train every fold, save what came out.

    micro_attention (width 4) with the steps in lax.scan; then, cheaper to
    compile, a linear model with Python steps and with the 'map' strategy.
    """
    jax.config.update("jax_enable_x64", True)
    tx, schedule, aug, data, folds = _setup(epochs=2)
    others = {}
    for name, kw in (("python", dict(strategy="vmap", step_loop="python")),
                     ("map", dict(strategy="map", step_loop="scan", fold_group=2))):  # fmt: skip
        linear = engine.train_folds(
            _Linear(), tx, schedule, engine.Augment(), data, folds, engine.Layout(**kw)
        )
        others[f"{name}_logits"], others[f"{name}_loss"] = linear.logits, linear.train_loss
        others[f"{name}_groups"] = np.asarray(linear.fold_groups)
    others.update(_resumed(tx, schedule, data, folds, path + ".checkpoints"))
    model = models.build("micro_attention", NUM_CLASSES, width=4, dtype=jnp.float64)
    messages = []
    out = engine.train_folds(
        model, tx, schedule, aug, data, folds, engine.Layout(strategy="vmap", step_loop="scan"),
        log=messages.append,
    )  # fmt: skip
    sharding = out.fold_sharding
    leaves = jax.tree_util.tree_leaves(out.state)
    np.savez(
        path,
        devices=len(jax.devices()),
        logits=out.logits,
        train_loss=out.train_loss,
        fold_groups=np.asarray(out.fold_groups),
        layout=np.asarray(out.layout),
        logged=np.asarray(messages),
        state_rows=np.asarray([leaf.shape[0] for leaf in leaves]),
        # Per-fold arrays as trained: devices spanned, folds per device, fully replicated?
        sharding_devices=-1 if sharding is None else len(sharding.device_set),
        shard_rows=-1 if sharding is None else sharding.shard_shape((sum(out.fold_groups),))[0],
        replicated=sharding is not None and sharding.is_fully_replicated,
        train_s=out.train_s,
        compile_s=out.compile_s,
        **{f"leaf{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)},
        **others,
    )


def _launch(tmp_path, name, devices):
    env = subprocess_env(devices)
    path = tmp_path / f"{name}.npz"
    command = [sys.executable, "-m", "tests.engine.test_sharding", str(path)]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return proc, path


def test_sharded_sweep_matches_unsharded(tmp_path):
    """6 folds over 4 devices (2 padding folds) == the same 6 folds on one device, fold by fold."""
    runs = {name: _launch(tmp_path, name, d) for name, d in (("one", 0), ("four", DEVICES))}
    out = {}
    try:
        for name, (proc, path) in runs.items():
            log, _ = proc.communicate(timeout=600)
            assert proc.returncode == 0, f"{name} subprocess failed:\n{log[-4000:]}"
            out[name] = dict(np.load(path))
    finally:
        for proc, _ in runs.values():
            if proc.poll() is None:
                proc.kill()
    one, four = out["one"], out["four"]
    # The reference really is the plain one-device engine; the other really is sharded.
    assert one["devices"] == 1 and one["sharding_devices"] == -1
    assert tuple(one["fold_groups"]) == (NUM_FOLDS,)
    assert four["devices"] == DEVICES
    assert tuple(four["fold_groups"]) == (8,)  # 6 folds padded to a multiple of 4
    assert four["sharding_devices"] == DEVICES and four["shard_rows"] == 2
    assert not four["replicated"]
    assert "over 4 devices" in str(four["layout"]) and "(2 padding)" in str(four["layout"])
    assert str(four["logged"][0]) == f"fold layout: {four['layout']}"
    # Padding folds are dropped: every output has the 6 real folds only.
    assert four["logits"].shape == one["logits"].shape and one["logits"].shape[0] == NUM_FOLDS
    assert four["train_loss"].shape == (2, NUM_FOLDS)
    assert set(four["state_rows"]) == {NUM_FOLDS}
    # Same training, fold by fold (rounding only: the grouped convolutions differ in size).
    np.testing.assert_allclose(four["train_loss"], one["train_loss"], **OUT_F32)
    assert np.abs(np.diff(one["train_loss"], axis=0)).max() > 1e-2  # it did train
    np.testing.assert_allclose(four["logits"], one["logits"], **OUT_F32)
    np.testing.assert_array_equal(four["logits"].argmax(-1), one["logits"].argmax(-1))
    leaves = [k for k in one if k.startswith("leaf")]
    assert len(leaves) == len([k for k in four if k.startswith("leaf")]) > 10
    for k in leaves:
        if np.issubdtype(one[k].dtype, np.floating):
            assert one[k].dtype == four[k].dtype == np.float64, k
            np.testing.assert_allclose(four[k], one[k], **PARAMS_F64, err_msg=k)
        else:
            np.testing.assert_array_equal(four[k], one[k], err_msg=k)
    # The compiled programs hold no cross-device collective (train_folds scans their HLO).
    assert str(four["layout"]).endswith("; no collectives")
    # Python steps (numpy step numbers, per-step index slices) and lax.map inside each device.
    for name in ("python", "map"):
        assert tuple(four[f"{name}_groups"]) == (8,) and tuple(one[f"{name}_groups"]) == (6,)
        assert four[f"{name}_loss"].dtype == np.float64
        np.testing.assert_allclose(four[f"{name}_loss"], one[f"{name}_loss"], **F64)
        np.testing.assert_allclose(four[f"{name}_logits"], one[f"{name}_logits"], **F64)
    # A checkpoint restores sharded as trained, and the resumed run is the uninterrupted one.
    for out in (one, four):
        assert out["resumed_same_sharding"]
        np.testing.assert_array_equal(out["resumed_loss"][:1], out["first_loss"])
        np.testing.assert_allclose(out["resumed_loss"], out["python_loss"], **F64)
        np.testing.assert_allclose(out["resumed_logits"], out["python_logits"], **F64)
    gap = max(np.abs(four[k] - one[k]).max() for k in leaves)
    print(
        f"max |logit gap| {np.abs(four['logits'] - one['logits']).max():.2e}, "
        f"max |state gap| {gap:.2e}; "
        f"CPU, 4 simulated devices vs 1: compile {four['compile_s']:.1f} s vs "
        f"{one['compile_s']:.1f} s, train {four['train_s']:.2f} s vs {one['train_s']:.2f} s"
    )


# ---------------------------------------------------------------------------
# The memory rule.
# ---------------------------------------------------------------------------
MIB = 2**20


@pytest.mark.parametrize(
    "free, folds, devices, resident, transient, expected",
    [
        # Per device ceil(68/4)=17 folds x 10 MiB stay; 0.9 x 2048 - 170 = 1673.2 MiB left,
        # 1673.2 / 300 = 5.58 -> 5 folds per device per call -> 20 folds per call.
        (2048 * MIB, 68, 4, 10 * MIB, 300 * MIB, 20),
        # Plenty of memory: all 17 folds per device at once (never more than there are).
        (80 * 1024 * MIB, 68, 4, 10 * MIB, 300 * MIB, 68),
        # One device, 26 folds: 0.9 x 1000 - 26 x 2 = 848 -> 848 / 100 = 8.48 -> 8.
        (1000 * MIB, 26, 1, 2 * MIB, 100 * MIB, 8),
        # Too little for even one fold: the floor is one fold per device.
        (10 * MIB, 26, 2, 1 * MIB, 100 * MIB, 2),
    ],
)
def test_max_folds_per_call_arithmetic(free, folds, devices, resident, transient, expected):
    got = engine.max_folds_per_call(free, folds, devices, resident, transient)
    assert got == expected
    assert got % devices == 0


@pytest.mark.parametrize(
    "folds, most, devices, expected",
    [
        (68, 20, 4, (20, 4)),  # 4 calls; ceil(68/4) = 17 per call, rounded up to 4 devices: 20
        (68, 68, 4, (68, 1)),  # one call, no padding
        (6, 6, 4, (8, 1)),  # one call padded to the device count
        (26, 8, 1, (7, 4)),  # 4 calls of 7 (not 8, 8, 8, 2): 2 padding folds, one program
        (6, 1, 1, (1, 6)),
    ],
)
def test_fold_groups_fewest_equal_calls(folds, most, devices, expected):
    size, calls = engine.fold_groups(folds, most, devices)
    assert (size, calls) == expected
    assert size <= devices * -(-most // devices) and size % devices == 0
    assert size * calls >= folds and size * calls - folds < calls * devices


def test_memory_rule_splits_folds_into_groups_with_the_same_results(monkeypatch):
    """Fake free memory: plenty -> one call of 6 folds; 1 byte -> 6 calls of 1; same training
    (in float64: see the module docstring)."""
    tx, schedule, _, data, folds = _setup(epochs=2)
    run = lambda folds_per_call=0, **kw: engine.train_folds(
        _Linear(), tx, schedule, engine.Augment(), data, folds,
        engine.Layout(strategy="vmap", folds_per_call=folds_per_call), **kw,
    )  # fmt: skip
    assert engine.device_free_bytes(jax.devices()[:1]) is None  # CPU keeps no statistics
    with jax.enable_x64(True):
        monkeypatch.setattr(layout, "device_free_bytes", lambda devices: 10**12)
        whole = run()
        assert whole.fold_groups == (NUM_FOLDS,) and "memory rule" in whole.layout
        monkeypatch.setattr(layout, "device_free_bytes", lambda devices: 1)
        messages = []
        split = run(log=messages.append)
        assert split.fold_groups == (1,) * NUM_FOLDS
        assert "not to fit" in split.layout and messages == [f"fold layout: {split.layout}"]
        forced = run(folds_per_call=4)  # forced: 2 calls of 3 folds, the rule not consulted
    assert forced.fold_groups == (3, 3) and "forced" in forced.layout
    assert whole.train_loss.dtype == np.float64
    for other in (split, forced):
        np.testing.assert_allclose(other.train_loss, whole.train_loss, **F64)
        np.testing.assert_allclose(other.logits, whole.logits, **F64)
        for a, b in zip(
            jax.tree_util.tree_leaves(other.state),
            jax.tree_util.tree_leaves(whole.state),
            strict=True,
        ):
            assert a.shape[0] == NUM_FOLDS
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), **F64)
    assert np.abs(whole.train_loss[0] - whole.train_loss[1]).max() > 1e-3  # training happened


def test_pad_folds_copies_fold_zero_without_tests():
    _, _, _, _, folds = _setup()
    padded = engine.pad_folds(folds, 8)
    np.testing.assert_array_equal(padded.train_mask[:NUM_FOLDS], folds.train_mask)
    for name in ("train_mask", "heldout_subjects", "test_idx"):
        got = np.asarray(getattr(padded, name))
        np.testing.assert_array_equal(got[NUM_FOLDS:], np.repeat(got[:1], 2, axis=0))
    assert not np.asarray(padded.test_valid)[NUM_FOLDS:].any()
    np.testing.assert_array_equal(padded.test_valid[:NUM_FOLDS], folds.test_valid)
    keys = jax.random.key_data(padded.key)
    np.testing.assert_array_equal(keys[NUM_FOLDS:], np.repeat(keys[:1], 2, axis=0))
    with pytest.raises(ValueError, match="cannot pad 6 folds down to 5"):
        engine.pad_folds(folds, 5)


def test_bad_layout_arguments_are_named():
    tx, schedule, aug, data, folds = _setup()
    with pytest.raises(ValueError, match="train.folds_per_call"):
        engine.train_folds(
            _Linear(), tx, schedule, aug, data, folds, engine.Layout(folds_per_call=-1)
        )
    with pytest.raises(ValueError, match="argument 'devices' is empty"):
        engine.fold_mesh([])
    device = jax.devices()[0]
    with pytest.raises(ValueError, match="lists a device twice"):
        engine.fold_mesh([device, device])
    assert engine.fold_mesh() is None  # one device visible: no mesh, the plain engine
    assert engine.fold_mesh([device]).shape == {"folds": 1}


if __name__ == "__main__":
    _train_and_save(sys.argv[1])
