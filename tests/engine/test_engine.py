"""The fold-parallel engine: equivalence with one fold at a time, leakage guard, sampling,
the program cache.

Equivalence tests train in float64 (`jax.enable_x64`, the model's dtype float64;
the engine then keeps parameters and optimizer state in float64): rounding
differences between programs start near 1e-16 and training cannot amplify them
to anything a float32 tolerance would have to absorb. micro_attention still
returns float32 logits, so losses and logits are compared to a few float32 ulps.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mer_jax import engine, models, protocols

NUM_CLASSES = 3
# float64 parameters: differences start at float64 rounding (~1e-16) and a few epochs of SGD
# grow them by orders of magnitude at most; 1e-8 leaves a wide margin.
PARAMS_F64 = dict(rtol=1e-8, atol=1e-11)
# Losses and logits micro_attention returns in float32: agreement to a few float32 ulps (1.2e-7).
OUT_F32 = dict(rtol=1e-6, atol=1e-6)


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


def _setup(epochs=3, balance=True, seed=0, dtype=jnp.float32):
    subj, labels, images = _problem()
    table = protocols.loso(subj)
    schedule, folds, codes = engine.prepare(
        table, subj, labels, NUM_CLASSES, batch_size=8, balance=balance, epochs=epochs, seed=seed
    )
    data = engine.Data(jnp.asarray(images), jnp.asarray(labels), jnp.asarray(codes))
    model = models.build("micro_attention", NUM_CLASSES, width=4, dtype=dtype)
    aug = engine.Augment(crop_size=10, flip=True, color_shift=20.0)
    return model, _optimizer(schedule.steps_per_epoch), schedule, aug, data, folds, table


@pytest.fixture(scope="module")
def problem():
    """The tiny problem (4 LOSO folds, 12x12 images) and a float64 model, shared by the tests
    that train it (the same shapes, model and optimizer: the same compiled programs)."""
    return _setup(dtype=jnp.float64)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _take(tree, f):
    return jax.tree_util.tree_map(lambda x: x[f : f + 1], tree)


def _layout(strategy, step_loop, **kw):
    return engine.Layout(strategy=strategy, step_loop=step_loop, **kw)


def _assert_states_close(a, b, fold_a, fold_b):
    for name in ("params", "model_state", "opt_state"):  # model_state: BatchNorm statistics
        x_leaves = jax.tree_util.tree_leaves(getattr(a, name))
        y_leaves = jax.tree_util.tree_leaves(getattr(b, name))
        for x, y in zip(x_leaves, y_leaves, strict=True):
            x, y = np.asarray(x)[fold_a], np.asarray(y)[fold_b]
            if np.issubdtype(x.dtype, np.floating):
                assert x.dtype == np.float64, name
                np.testing.assert_allclose(x, y, **PARAMS_F64, err_msg=name)
            else:
                np.testing.assert_array_equal(x, y, err_msg=name)  # step counts


def test_fold_parallel_matches_one_fold_at_a_time(problem, x64):
    """vmap over all folds (steps in lax.scan) == a fold trained alone by its own call: the
    first and the last of 4 (the program is the same for every fold, only data differ)."""
    model, tx, schedule, aug, data, folds, table = problem
    together = engine.train_folds(model, tx, schedule, aug, data, folds, _layout("vmap", "scan"))
    assert table.num_folds == 4
    for f in (0, table.num_folds - 1):
        alone = engine.train_folds(
            model, tx, schedule, aug, data, _take(folds, f), _layout("vmap", "python")
        )
        _assert_states_close(together.state, alone.state, f, 0)
        np.testing.assert_allclose(together.logits[f], alone.logits[0], **OUT_F32)
        np.testing.assert_allclose(together.train_loss[:, f], alone.train_loss[:, 0], **OUT_F32)
        np.testing.assert_array_equal(together.logits[f].argmax(-1), alone.logits[0].argmax(-1))
    # Training moved the parameters (the comparison is not between two initialisations).
    init = jax.jit(
        jax.vmap(engine.make_fold_fns(model, tx, schedule, aug, data.images.shape[1:]).init)
    )(folds.key)
    moved = jax.tree_util.tree_map(
        lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()),
        together.state.params,
        init.params,
    )
    assert max(jax.tree_util.tree_leaves(moved)) > 1e-2


def test_strategies_agree_and_are_deterministic(problem, x64):
    model, tx, schedule, aug, data, folds, _ = problem
    schedule = dataclasses.replace(schedule, epochs=2)
    run = lambda folds, *layout: engine.train_folds(
        model, tx, schedule, aug, data, folds, _layout(*layout)
    )
    base = run(folds, "loop", "python")
    mapped = run(folds, "map", "scan")
    again = run(folds, "loop", "python")
    np.testing.assert_array_equal(base.logits, again.logits)  # same seed, same numbers
    np.testing.assert_array_equal(base.train_loss, again.train_loss)
    for f in range(folds.key.shape[0]):
        _assert_states_close(mapped.state, base.state, f, f)
    np.testing.assert_allclose(mapped.logits, base.logits, **OUT_F32)
    np.testing.assert_allclose(mapped.train_loss, base.train_loss, **OUT_F32)
    _, _, _, _, _, folds2, _ = _setup(epochs=2, seed=1)
    other = run(folds2, "loop", "python")
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
    order = jax.jit(engine.epoch_order, static_argnums=(3, 4, 5))
    a = np.asarray(order(jax.random.key(0), mask, labels, 4, total, True))
    b = np.asarray(order(jax.random.key(1), mask, labels, 4, total, True))
    got = np.bincount(np.asarray(labels)[a], minlength=4)
    assert got.tolist() == [counts.max() if c else 0 for c in counts]
    assert not np.array_equal(a, b)


def test_in_program_guard_raises_on_a_corrupted_fold_table(problem, x64):
    """Bypass the host check: the program itself counts held-out subjects in training batches.
    (In float64, the programs of the tests above: nothing to compile.)"""
    model, tx, schedule, aug, data, folds, table = problem
    bad_mask = np.asarray(folds.train_mask).copy()
    bad_mask[1] = True  # fold 1 now trains on its held-out subject
    bad = folds._replace(train_mask=jnp.asarray(bad_mask))
    schedule = dataclasses.replace(schedule, epochs=1)
    with pytest.raises(protocols.LeakageError, match=r"folds \[1\]"):
        engine.train_folds(model, tx, schedule, aug, data, bad, _layout("loop", "python"))


class _Linear(nn.Module):
    """A one-layer model: programs that compile in about a second."""

    classes: int = NUM_CLASSES

    @nn.compact
    def __call__(self, image, *, train=False):
        x = engine.to_float(image).reshape(image.shape[0], -1)
        return nn.Dense(self.classes, name="head")(x), {}


def test_program_cache_reuses_programs_only_for_the_same_semantics(problem):
    """Same model, optimizer, shapes and layout: no compile. A different model, optimizer or
    x64 mode: another program. A key the cache cannot hash is built every time."""
    _, tx, schedule, _, data, folds, _ = problem
    run = lambda model, tx: engine.train_folds(
        model, tx, schedule, engine.Augment(), data, folds, _layout("vmap", "scan")
    )
    first = run(_Linear(), tx)
    hits, misses = engine.PROGRAMS.hits, engine.PROGRAMS.misses
    again = run(_Linear(), tx)  # an equal model (Flax modules are dataclasses)
    assert engine.PROGRAMS.misses == misses and engine.PROGRAMS.hits > hits
    np.testing.assert_array_equal(again.logits, first.logits)
    # The same optimizer config gives the same transformation object (make_optimizer memoised).
    assert _optimizer(schedule.steps_per_epoch) is tx
    adam = _optimizer(schedule.steps_per_epoch, name="adam")
    for model, tx_ in ((_Linear(classes=NUM_CLASSES + 1), tx), (_Linear(), adam)):
        misses = engine.PROGRAMS.misses
        other = run(model, tx_)
        assert engine.PROGRAMS.misses > misses
        assert other.logits.shape != first.logits.shape or not np.allclose(
            other.logits, first.logits
        )
    with jax.enable_x64(True):  # the same arguments, but float64 programs
        misses = engine.PROGRAMS.misses
        wide = run(_Linear(), tx)
        assert engine.PROGRAMS.misses > misses
        assert jax.tree_util.tree_leaves(wide.state.params)[0].dtype == jnp.float64
    assert jax.tree_util.tree_leaves(first.state.params)[0].dtype == jnp.float32
    cache = engine.ProgramCache(size=2)
    builds = []
    for key in ("a", "b", "a", "c", "b", ["unhashable"], ["unhashable"]):
        cache.get(key, lambda key=key: builds.append(key) or key)
    assert builds == ["a", "b", "c", "b", ["unhashable"], ["unhashable"]] and len(cache) == 2


def test_augment_eval_is_centre_crop_and_train_stays_in_range():
    rng = np.random.default_rng(0)
    image = jnp.asarray(rng.integers(0, 256, (12, 12, 3)).astype(np.uint8))
    aug = engine.Augment(crop_size=8, flip=True, color_shift=20.0, rotate_deg=10.0, prob=1.0)
    augment = jax.jit(engine.augment_image, static_argnums=(2, 3))
    centre = augment(jax.random.key(0), image, aug, False)
    np.testing.assert_allclose(centre, np.asarray(image)[2:10, 2:10] / 255.0, rtol=1e-6)
    keys = jax.random.split(jax.random.key(0), 8)
    crops = jax.jit(jax.vmap(lambda k: engine.augment_image(k, image, aug, True)))(keys)
    assert crops.shape == (8, 8, 8, 3) and 0 <= float(crops.min()) and float(crops.max()) <= 1
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
    update = jax.jit(tx.update)
    steps = []
    for _ in range(12):
        change, state = update({"w": jnp.ones(())}, state, params)
        steps.append(-float(change["w"]))
    np.testing.assert_allclose(steps, [1.0] * 6 + [0.1] * 6, rtol=1e-6)
    with pytest.raises(ValueError, match="optimizer.name"):
        engine.make_optimizer(ml_collections.ConfigDict(dict(cfg, name="lion")), 3)


def test_resolve_strategy_defaults_per_backend_and_rejects_unknown():
    assert engine.resolve_strategy("auto", "auto") == ("loop", "python")  # CI runs on CPU
    assert engine.resolve_strategy("vmap", "scan") == ("vmap", "scan")
    with pytest.raises(ValueError, match="train.fold_strategy"):
        engine.resolve_strategy("pmap", "auto")


def test_a_diverging_fold_freezes_in_the_program_and_the_others_train_on(x64):
    """A NaN pixel in one subject's clip (the linear model's loss turns NaN with it): every
    fold that trains on it stops at its first step with that clip (`diverged_epoch` 0,
    weights still finite); the fold holding that subject out trains exactly as it does alone."""
    subj, labels, images = _problem(n=24, subjects=3, size=6)
    x = images.astype(np.float64)
    x[np.flatnonzero(subj == "s0")[0], 1, 1, 0] = np.nan  # one pixel of one clip of s0
    table = protocols.loso(subj)
    schedule, folds, codes = engine.prepare(
        table, subj, labels, NUM_CLASSES, batch_size=4, balance=False, epochs=2, seed=0
    )
    data = engine.Data(jnp.asarray(x), jnp.asarray(labels), jnp.asarray(codes))
    tx = _optimizer(schedule.steps_per_epoch)
    run = lambda f: engine.train_folds(
        _Linear(), tx, schedule, engine.Augment(), data, f, _layout("vmap", "scan")
    )
    together = run(folds)
    held_out_s0 = list(table.names).index("s0")
    expected = [0 if f != held_out_s0 else -1 for f in range(table.num_folds)]
    assert together.diverged_epoch.tolist() == expected
    assert np.isnan(together.train_loss[:, np.array(expected) == 0]).all()
    for leaf in jax.tree_util.tree_leaves(together.state.params):
        assert np.isfinite(np.asarray(leaf)).all()  # frozen before the NaN reached them
    alone = run(_take(folds, held_out_s0))
    _assert_states_close(together.state, alone.state, held_out_s0, 0)
    np.testing.assert_allclose(
        together.train_loss[:, held_out_s0], alone.train_loss[:, 0], **PARAMS_F64
    )
