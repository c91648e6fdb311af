"""Every seed model through the fold-parallel engine: all folds in one vmapped program ==
each fold trained alone, with each model's own loss terms, dropout and frozen parameters.

The comparison trains in float64 (`jax.enable_x64`, each model's dtype float64, so
the engine keeps parameters and optimizer state in float64): in float32, RMSprop
on near-zero gradients once amplified the rounding differences between the
vmapped and the one-fold program to 1.3% of the loss by the second epoch.
"""

from functools import partial

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mer_jax import engine, models, protocols

NUM_CLASSES = 3

# (model, Model kwargs, one example's shape, uint8 pixels or float flow, optimizer)
CASES = {
    "dense_mixed_attention": (
        dict(growth_rate=4, layers_per_block=(1, 1), head_size=2),
        (16, 16, 3),
        np.uint8,
        "adam",
    ),
    "feature_refinement": (
        dict(shared_features=32, detector_features=8, head_features=16),
        (16, 16, 2),
        np.float32,
        "sgd",
    ),
    "aman": (dict(width=4, frozen_through="layer1"), (2, 2, 16, 16, 3), np.uint8, "rmsprop"),
    "stanet": (dict(width=4, hourglass_depth=1), (3, 16, 16, 2), np.float32, "adam"),
}


def _problem(shape, dtype, n=12, subjects=2, seed=0):
    rng = np.random.default_rng(seed)
    subj = np.array([f"s{i % subjects}" for i in range(n)])
    labels = rng.integers(0, NUM_CLASSES, n).astype(np.int32)
    if dtype == np.uint8:
        x = rng.integers(0, 256, (n, *shape)).astype(np.uint8)
    else:
        x = rng.normal(0, 1, (n, *shape)).astype(np.float32)
    for i, y in enumerate(labels):  # a learnable, class-dependent patch
        x[i, ..., 2 + 3 * y : 5 + 3 * y, 2:6, :] = 255 if dtype == np.uint8 else 3.0
    return subj, labels, x


def _optimizer(name, steps_per_epoch, frozen):
    cfg = ml_collections.ConfigDict(
        dict(
            name=name,
            lr=0.01 if name == "sgd" else 1e-3,
            momentum=0.9 if name == "sgd" else 0.0,
            weight_decay=1e-4,
            schedule="step",
            decay_every_epochs=1,
            decay_rate=0.5,
        )
    )
    return engine.make_optimizer(cfg, steps_per_epoch, frozen=frozen)


# float64 parameters: differences start at float64 rounding (~1e-16); two epochs of training,
# RMSprop's division by near-zero gradient norms included, grow them far less than to 1e-8.
PARAMS_F64 = dict(rtol=1e-8, atol=1e-11)
# The models return float32 logits (so the loss is float32 too): a few float32 ulps (1.2e-7).
OUT_F32 = dict(rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fold_parallel_equals_one_fold_at_a_time(name):
    kwargs, shape, dtype, opt = CASES[name]
    spec = models.spec(name)
    subj, labels, x = _problem(shape, dtype)
    table = protocols.loso(subj)
    schedule, folds, codes = engine.prepare(
        table, subj, labels, NUM_CLASSES, batch_size=4, balance=True, epochs=2, seed=0
    )
    data = engine.Data(jnp.asarray(x), jnp.asarray(labels), jnp.asarray(codes))
    frozen = spec.frozen
    tx = _optimizer(opt, schedule.steps_per_epoch, frozen)
    aug = engine.Augment()
    with jax.enable_x64(True):
        model = models.build(name, NUM_CLASSES, dtype=jnp.float64, **kwargs)
        run = lambda f, layout: engine.train_folds(
            model, tx, schedule, aug, data, f, layout, aux_loss=spec.aux_loss
        )
        together = run(folds, engine.Layout(strategy="vmap", step_loop="scan"))
        # The last fold alone (its keys depend on its fold id only): a program of one fold,
        # the steps called from Python, must reproduce its slice of the vmapped program.
        f = table.num_folds - 1
        alone = run(jax.tree_util.tree_map(lambda a: a[f:], folds), engine.Layout(strategy="loop"))
        fns = engine.make_fold_fns(model, tx, schedule, aug, shape)
        init = jax.jit(jax.vmap(fns.init))(folds.key)
    np.testing.assert_allclose(together.train_loss[:, f], alone.train_loss[:, 0], **OUT_F32)
    np.testing.assert_allclose(together.logits[f], alone.logits[0], **OUT_F32)
    for part in ("params", "model_state", "opt_state"):
        pairs = zip(
            jax.tree_util.tree_leaves(getattr(together.state, part)),
            jax.tree_util.tree_leaves(getattr(alone.state, part)),
            strict=True,
        )
        for a, b in pairs:
            a, b = np.asarray(a)[f], np.asarray(b)[0]
            if np.issubdtype(a.dtype, np.floating):
                assert a.dtype == np.float64, part
                np.testing.assert_allclose(a, b, **PARAMS_F64, err_msg=part)
            else:
                np.testing.assert_array_equal(a, b, err_msg=part)
    flat_init = dict(jax.tree_util.tree_leaves_with_path(init.params))
    moved = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(together.state.params):
        change = float(np.abs(np.asarray(leaf) - np.asarray(flat_init[path])).max())
        names = tuple(str(getattr(k, "key", k)) for k in path)
        if frozen is not None and frozen(names):
            assert change == 0.0, f"frozen parameter {names} changed"
        else:
            moved.append(change)
    assert max(moved) > 1e-4  # training changed the trainable parameters
    if frozen is not None:
        assert len(moved) < len(flat_init)  # and some parameters really were frozen


def test_frozen_trunk_runs_once_and_the_head_trains_on_its_features():
    """AMAN (seed 003): the frozen ResNet trunk is applied once per clip, shared by all folds."""
    from mer_jax import sweep
    from mer_jax.models import aman

    model = models.build("aman", NUM_CLASSES, width=4, frozen_through="layer2")
    _, _, x = _problem((2, 2, 16, 16, 3), np.uint8, n=5)
    lines = []
    features, head, initial = sweep.frozen_trunk_features(
        aman.SPEC.trunk_head, model, jnp.asarray(x), None, seed=3, log=lines.append, chunk=2
    )
    assert isinstance(head, aman.Head) and initial is None
    key = jax.random.fold_in(jax.random.key(3), 2**31 - 1)
    # Jitted: op by op, Flax would compile hundreds of small programs.
    variables = jax.jit(model.init)(key, jnp.zeros((1, *x.shape[1:])))
    pixels = engine.to_float(jnp.asarray(x))
    trunk = jax.jit(partial(model.apply, method="trunk_features"))
    expected = trunk(variables, pixels)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)
    # The head on cached features is the model's tail: same logits as the whole model.
    _, head_vars = aman.split_variables(variables)
    logits, _ = jax.jit(head.apply)(head_vars, features)
    whole, _ = jax.jit(model.apply)(variables, pixels)
    np.testing.assert_allclose(logits, whole, rtol=1e-4, atol=1e-5)
    assert any("computed once" in line for line in lines)
