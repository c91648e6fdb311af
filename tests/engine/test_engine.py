"""The fold-parallel engine: equivalence with one fold at a time, leakage guard, sampling."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mer_jax import engine, models, protocols

NUM_CLASSES = 3


def _problem(seed=0, n=40, subjects=4, size=12):
    rng = np.random.default_rng(seed)
    subj = np.array([f"s{i % subjects}" for i in range(n)])
    labels = rng.integers(0, NUM_CLASSES, n).astype(np.int32)
    images = rng.integers(0, 256, (n, size, size, 1)).astype(np.uint8)
    # A learnable signal: class-dependent bright square.
    for i, y in enumerate(labels):
        images[i, 2 + 3 * y : 5 + 3 * y, 2:6] = 255
    return subj, labels, images


def _optimizer(steps_per_epoch, name="sgd"):
    cfg = ml_collections.ConfigDict(
        dict(
            name=name,
            lr=0.05 if name == "sgd" else 1e-3,
            momentum=0.9,
            weight_decay=5e-4,
            schedule="step",
            decay_every_epochs=2,
            decay_rate=0.1,
        )
    )
    return engine.make_optimizer(cfg, steps_per_epoch)


def _setup(epochs=3, balance=True, seed=0):
    subj, labels, images = _problem()
    table = protocols.loso(subj)
    schedule, folds, codes = engine.prepare(
        table, subj, labels, NUM_CLASSES, batch_size=8, balance=balance, epochs=epochs, seed=seed
    )
    data = engine.Data(jnp.asarray(images), jnp.asarray(labels), jnp.asarray(codes))
    model = models.build("micro_attention", NUM_CLASSES, width=4)
    aug = engine.Augment(crop_size=10, flip=True, color_shift=20.0)
    return model, _optimizer(schedule.steps_per_epoch), schedule, aug, data, folds, table


def _take(tree, f):
    return jax.tree_util.tree_map(lambda x: x[f : f + 1], tree)


def test_fold_parallel_matches_one_fold_at_a_time():
    """vmap over all folds (steps in lax.scan) == a fold trained alone by its own call: the
    first and the last of 4 (the program is the same for every fold, only data differ)."""
    model, tx, schedule, aug, data, folds, table = _setup()
    together = engine.train_folds(
        model, tx, schedule, aug, data, folds, strategy="vmap", step_loop="scan"
    )
    assert table.num_folds == 4
    for f in (0, table.num_folds - 1):
        alone = engine.train_folds(
            model, tx, schedule, aug, data, _take(folds, f), strategy="vmap", step_loop="python"
        )
        for name in ("params", "model_state"):  # model_state: BatchNorm running statistics
            a = jax.tree_util.tree_leaves(getattr(together.state, name))
            b = jax.tree_util.tree_leaves(getattr(alone.state, name))
            for x, y in zip(a, b, strict=True):
                np.testing.assert_allclose(np.asarray(x)[f], np.asarray(y)[0], rtol=2e-3, atol=2e-4)
        np.testing.assert_allclose(together.logits[f], alone.logits[0], rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(together.train_loss[:, f], alone.train_loss[:, 0], rtol=1e-4)
        np.testing.assert_array_equal(together.logits[f].argmax(-1), alone.logits[0].argmax(-1))
    # Training moved the parameters (the comparison is not between two initialisations).
    init = jax.jit(
        jax.vmap(engine.make_fold_fns(model, tx, schedule, aug, data.images.shape[1:]).init)
    )(folds.key)
    moved = jax.tree_util.tree_map(
        lambda a, b: float(jnp.abs(a - b).max()), together.state.params, init.params
    )
    assert max(jax.tree_util.tree_leaves(moved)) > 1e-2


def test_strategies_agree_and_are_deterministic():
    model, tx, schedule, aug, data, folds, _ = _setup(epochs=2)
    runs = {
        (s, loop): engine.train_folds(
            model, tx, schedule, aug, data, folds, strategy=s, step_loop=loop
        )
        for s, loop in [("loop", "python"), ("map", "scan")]
    }
    base = runs[("loop", "python")]
    again = engine.train_folds(
        model, tx, schedule, aug, data, folds, strategy="loop", step_loop="python"
    )
    np.testing.assert_array_equal(base.logits, again.logits)  # same seed, same numbers
    np.testing.assert_allclose(runs[("map", "scan")].logits, base.logits, rtol=2e-3, atol=2e-3)
    _, _, schedule2, _, _, folds2, _ = _setup(epochs=2, seed=1)
    other = engine.train_folds(
        model, tx, schedule2, aug, data, folds2, strategy="loop", step_loop="python"
    )
    assert not np.allclose(other.logits, base.logits)


@pytest.mark.parametrize("balance", [False, True])
def test_epoch_batches_never_hold_a_held_out_sample(balance):
    """Every batch of every fold and epoch: only its own training samples, each at least once."""
    model, tx, schedule, aug, data, folds, table = _setup(balance=balance)
    fns = engine.make_fold_fns(model, tx, schedule, aug, data.images.shape[1:])
    batches = jax.jit(jax.vmap(fns.epoch_batches, in_axes=(0, None, None)))
    labels = np.asarray(data.labels)
    for epoch in range(20):
        idx = np.asarray(batches(folds, data, jnp.int32(epoch)))  # (F, S, B)
        for f in range(table.num_folds):
            seen = idx[f].ravel()
            assert not np.any(table.test_mask[f][seen]), f"fold {f} epoch {epoch}"
            assert set(seen) == set(np.flatnonzero(table.train_mask[f]))
            if balance:
                counts = np.bincount(labels[seen], minlength=NUM_CLASSES)
                largest = np.bincount(labels[table.train_mask[f]], minlength=NUM_CLASSES).max()
                assert counts.min() >= largest


def test_epoch_order_exact_balance_and_shuffle():
    rng = np.random.default_rng(3)
    labels = jnp.asarray(rng.integers(0, 4, 50))
    mask = jnp.asarray(rng.random(50) < 0.7).at[jnp.where(labels == 3, size=50)[0]].set(False)
    counts = np.bincount(np.asarray(labels)[np.asarray(mask)], minlength=4)
    total = int((counts > 0).sum() * counts.max())  # class 3 absent from this fold
    a = np.asarray(engine.epoch_order(jax.random.key(0), mask, labels, 4, total, True))
    b = np.asarray(engine.epoch_order(jax.random.key(1), mask, labels, 4, total, True))
    got = np.bincount(np.asarray(labels)[a], minlength=4)
    assert got.tolist() == [counts.max() if c else 0 for c in counts]
    assert not np.array_equal(a, b)


def test_in_program_guard_raises_on_a_corrupted_fold_table():
    """Bypass the host check: the program itself counts held-out subjects in training batches."""
    model, tx, schedule, aug, data, folds, table = _setup(epochs=1)
    bad_mask = np.asarray(folds.train_mask).copy()
    bad_mask[1] = True  # fold 1 now trains on its held-out subject
    bad = folds._replace(train_mask=jnp.asarray(bad_mask))
    with pytest.raises(protocols.LeakageError, match=r"folds \[1\]"):
        engine.train_folds(model, tx, schedule, aug, data, bad, strategy="loop", step_loop="python")


def test_augment_eval_is_centre_crop_and_train_stays_in_range():
    rng = np.random.default_rng(0)
    image = jnp.asarray(rng.integers(0, 256, (12, 12, 3)).astype(np.uint8))
    aug = engine.Augment(crop_size=8, flip=True, color_shift=20.0, rotate_deg=10.0, prob=1.0)
    centre = engine.augment_image(jax.random.key(0), image, aug, train=False)
    np.testing.assert_allclose(centre, np.asarray(image)[2:10, 2:10] / 255.0, rtol=1e-6)
    crops = [engine.augment_image(jax.random.key(k), image, aug, train=True) for k in range(8)]
    assert all(c.shape == (8, 8, 3) and 0 <= float(c.min()) and float(c.max()) <= 1 for c in crops)
    assert len({np.asarray(c).tobytes() for c in crops}) == 8
    with pytest.raises(ValueError, match="augment.crop_size"):
        engine.augment_image(jax.random.key(0), image, engine.Augment(crop_size=16), train=False)


def test_step_schedule_decays_every_n_epochs():
    cfg = ml_collections.ConfigDict(
        dict(
            name="sgd",
            lr=1.0,
            momentum=0.0,
            weight_decay=0.0,
            schedule="step",
            decay_every_epochs=2,
            decay_rate=0.1,
        )
    )
    tx = engine.make_optimizer(cfg, steps_per_epoch=3)
    params = {"w": jnp.zeros(())}
    state = tx.init(params)
    steps = []
    for _ in range(12):
        update, state = tx.update({"w": jnp.ones(())}, state, params)
        steps.append(-float(update["w"]))
    np.testing.assert_allclose(steps, [1.0] * 6 + [0.1] * 6, rtol=1e-6)
    with pytest.raises(ValueError, match="optimizer.name"):
        engine.make_optimizer(ml_collections.ConfigDict(dict(cfg, name="lion")), 3)


def test_resolve_strategy_defaults_per_backend_and_rejects_unknown():
    assert engine.resolve_strategy("auto", "auto") == ("loop", "python")  # CI runs on CPU
    assert engine.resolve_strategy("vmap", "scan") == ("vmap", "scan")
    with pytest.raises(ValueError, match="train.fold_strategy"):
        engine.resolve_strategy("pmap", "auto")
