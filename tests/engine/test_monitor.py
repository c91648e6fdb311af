"""The epoch-end monitor (engine/monitor.py): plateaus, early stopping and best weights on
each fold's validation split, inside the one program; the leakage guard over validation;
seeds x folds on one fold axis.

References: the monitor's rules written out in plain Python (PyTorch ReduceLROnPlateau,
mode 'min', threshold 1e-4 'rel', cooldown 0; early stopping after `patience` epochs
without improvement); the same folds trained alone, each seed alone, and a training
without a monitor stopped at the kept epoch. Float64 (x64) where results are compared.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mer_jax import engine, protocols

NUM_CLASSES = 3
PARAMS_F64 = dict(rtol=1e-8, atol=1e-11)


class _Linear(nn.Module):
    """One dense layer: programs that compile in about a second."""

    @nn.compact
    def __call__(self, image, *, train=False):
        x = engine.to_float(image).reshape(image.shape[0], -1)
        return nn.Dense(NUM_CLASSES, name="head")(x), {}


def _problem(n=48, subjects=6, size=6, seed=0):
    rng = np.random.default_rng(seed)
    subj = np.array([f"s{i % subjects}" for i in range(n)])
    labels = rng.integers(0, NUM_CLASSES, n).astype(np.int32)
    images = rng.normal(0.0, 1.0, (n, size, size, 1))
    for i, y in enumerate(labels):  # a learnable but noisy signal
        images[i, y, :, 0] += 1.5
    return subj, labels, images


def _tx(steps_per_epoch):
    cfg = ml_collections.ConfigDict(
        dict(name="sgd", lr=0.3, momentum=0.9, weight_decay=0.0, schedule="constant",
             decay_every_epochs=1, decay_rate=0.1)
    )  # fmt: skip
    return engine.make_optimizer(cfg, steps_per_epoch)


def _prepare(monitoring, *, seeds=(0,), k=1, epochs=6, final_model=False, labels=None):
    subj, true_labels, images = _problem()
    labels = true_labels if labels is None else labels
    tables = engine.seed_tables(protocols.loso(subj), subj, labels, seeds, k)
    schedule, folds, codes = engine.prepare(
        tables, subj, labels, NUM_CLASSES, batch_size=8, balance=False, epochs=epochs,
        seeds=seeds, final_model=final_model, validation_subjects=k, monitoring=monitoring,
    )  # fmt: skip
    data = engine.Data(jnp.asarray(images), jnp.asarray(labels), jnp.asarray(codes))
    return schedule, folds, data, tables


def _train(schedule, folds, data, strategy=("vmap", "scan")):
    layout = engine.Layout(strategy=strategy[0], step_loop=strategy[1])
    tx = _tx(schedule.steps_per_epoch)
    return engine.train_folds(_Linear(), tx, schedule, engine.Augment(), data, folds, layout)


def _take(folds, rows):
    return jax.tree_util.tree_map(lambda x: x[np.asarray(rows)], folds)


# ---------------------------------------------------------------------------
# The rules, against plain Python.
# ---------------------------------------------------------------------------
def _reference(values, factor, patience, stop_after, threshold=1e-4):
    """PyTorch ReduceLROnPlateau (min, rel threshold, cooldown 0) and early stopping:
    (lr scale after each epoch, best epoch after each, stopped epoch or -1)."""
    best, best_epoch, bad, scale, stopped = np.inf, -1, 0, 1.0, -1
    scales, bests = [], []
    for epoch, value in enumerate(values):
        if stopped < 0:
            better = np.isfinite(value) and value < (
                best * (1 - threshold) if best < np.inf else np.inf
            )
            if better:
                best, best_epoch, bad = value, epoch, 0
            else:
                bad += 1
            if factor and bad > patience:
                scale, bad = scale * factor, 0
            if stop_after and epoch - best_epoch >= stop_after:
                stopped = epoch
        scales.append(scale)
        bests.append(best_epoch)
    return np.array(scales), np.array(bests), stopped


@pytest.mark.parametrize("factor,patience,stop_after", [(0.5, 1, 0), (0.1, 0, 3), (0.0, 0, 2)])
def test_monitor_update_follows_the_reference_rules(factor, patience, stop_after):
    rng = np.random.default_rng(1)
    values = np.concatenate([np.linspace(2, 1, 4), 1 + rng.uniform(0, 0.2, 5), [np.nan, 0.5]])
    values[6] = 1.0 - 1e-6  # below the best, but not by the relative threshold 1e-4
    settings = engine.Monitoring(
        validation=True, plateau_factor=factor, plateau_patience=patience, early_stopping=stop_after
    )
    monitor = engine.monitor.initial_monitor(jnp.float32)
    update = jax.jit(lambda m, v, e, t: engine.monitor.update(settings, m, v, e, t))
    scales, bests = [], []
    for epoch, value in enumerate(values):
        training = monitor.stopped_epoch < 0
        monitor, _ = update(monitor, jnp.float32(value), epoch, training)
        scales.append(float(monitor.lr_scale))
        bests.append(int(monitor.best_epoch))
    want_scales, want_bests, want_stopped = _reference(
        values.astype(np.float32), factor, patience, stop_after
    )
    np.testing.assert_allclose(scales, want_scales, rtol=1e-6)
    assert bests == want_bests.tolist()
    assert int(monitor.stopped_epoch) == want_stopped


# ---------------------------------------------------------------------------
# In the program.
# ---------------------------------------------------------------------------
def test_folds_keep_their_best_validation_epoch_and_test_labels_never_matter():
    """Early stopping and the kept weights follow the validation loss alone: each fold's
    held-out logits are those of the same fold trained without a monitor for (best epoch + 1)
    epochs, and relabelling a fold's test subject changes none of its choices."""
    with jax.enable_x64(True):
        watch = engine.Monitoring(validation=True, plateau_factor=0.5, plateau_patience=0,
                                  early_stopping=2)  # fmt: skip
        schedule, folds, data, tables = _prepare(watch)
        out = _train(schedule, folds, data, ("loop", "python"))
        assert out.val_loss is not None and np.isfinite(out.val_loss).all()
        for f in range(len(tables[0].names)):
            scales, bests, stopped = _reference(out.val_loss[:, f], 0.5, 0, 2)
            assert out.best_epoch[f] == bests[-1] and out.stopped_epoch[f] == stopped
            np.testing.assert_allclose(out.lr_scale[f], scales[-1], rtol=1e-12)
        assert (out.stopped_epoch >= 0).any()  # the test exercises a stop
        # The kept weights: the same fold, no monitor, trained to its best epoch.
        blind = engine.Monitoring(validation=False)
        for best in sorted(set(out.best_epoch.tolist())):
            rows = np.flatnonzero(out.best_epoch == best)
            s, fo, d, _ = _prepare(blind, epochs=best + 1)
            plain = _train(s, _take(fo, rows), d)
            np.testing.assert_allclose(out.logits[rows], plain.logits, **PARAMS_F64)
        # Relabel fold 0's test subject: fold 0's validation, choices and weights do not move.
        subj = _problem()[0]
        labels = _problem()[1].copy()
        test = subj == tables[0].names[0]
        labels[test] = (labels[test] + 1) % NUM_CLASSES
        s, fo, d, t = _prepare(watch, labels=labels)
        assert (t[0].validation()[0] == tables[0].validation()[0]).all()
        again = _train(s, _take(fo, [0]), d)
        np.testing.assert_allclose(again.val_loss[:, 0], out.val_loss[:, 0], **PARAMS_F64)
        assert again.best_epoch[0] == out.best_epoch[0]
        assert again.stopped_epoch[0] == out.stopped_epoch[0]
        np.testing.assert_allclose(again.logits[0], out.logits[0], **PARAMS_F64)


def test_no_test_subject_reaches_training_or_validation_and_the_program_checks():
    schedule, folds, data, tables = _prepare(engine.Monitoring(validation=True), seeds=(0, 1, 2))
    subj = _problem()[0]
    fns = engine.make_fold_fns(_Linear(), _tx(1), schedule, engine.Augment(), data.images.shape[1:])
    batches = jax.jit(jax.vmap(fns.epoch_batches, in_axes=(0, None, None)))
    test_idx, test_valid = np.asarray(folds.test_idx), np.asarray(folds.test_valid)
    val_idx, val_valid = np.asarray(folds.val_idx), np.asarray(folds.val_valid)
    for epoch in range(3):
        idx = np.asarray(batches(folds, data, epoch))
        for row in range(idx.shape[0]):
            tested = set(subj[test_idx[row][test_valid[row]]])
            validated = set(subj[val_idx[row][val_valid[row]]])
            assert tested and validated and not tested & validated
            assert not set(subj[idx[row].ravel()]) & (tested | validated)
    # Bypass the host checks: a validation split holding a test sample raises in the program.
    bad_idx = val_idx.copy()
    bad_idx[1, 0] = test_idx[1, 0]
    bad = folds._replace(val_idx=jnp.asarray(bad_idx))
    with pytest.raises(protocols.LeakageError, match=r"folds \[1\]"):
        _train(schedule, bad, data, ("loop", "python"))
    # And the host check refuses a table whose validation holds a test subject.
    table = tables[0]
    mask = table.validation().copy()
    mask[0] |= table.test_mask[0]
    with pytest.raises(protocols.LeakageError):
        protocols.check_no_leakage(
            type(table)(table.names, table.train_mask, table.test_mask, val_mask=mask), subj
        )


def test_seeds_times_folds_in_one_program_equal_each_seed_alone():
    """Two seeds x (6 folds + final model) with inner validation, plateaus and early stopping
    on one fold axis give each seed's results exactly as that seed alone (float64)."""
    with jax.enable_x64(True):
        watch = engine.Monitoring(validation=True, plateau_factor=0.5, plateau_patience=0,
                                  early_stopping=2)  # fmt: skip
        schedule, folds, data, _ = _prepare(watch, seeds=(3, 7), epochs=3, final_model=True)
        together = _train(schedule, folds, data)
        rows = len(together.diverged_epoch) // 2
        for i, seed in enumerate((3, 7)):
            s, fo, d, _ = _prepare(watch, seeds=(seed,), epochs=3, final_model=True)
            assert s == schedule
            alone = _train(s, fo, d)
            mine = together.select(np.arange(i * rows, (i + 1) * rows))
            np.testing.assert_allclose(mine.logits, alone.logits, **PARAMS_F64)
            np.testing.assert_allclose(mine.train_loss, alone.train_loss, **PARAMS_F64)
            np.testing.assert_allclose(mine.val_loss, alone.val_loss, **PARAMS_F64)
            assert mine.best_epoch.tolist() == alone.best_epoch.tolist()
            assert mine.stopped_epoch.tolist() == alone.stopped_epoch.tolist()
