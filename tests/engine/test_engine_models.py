"""Every seed model through the fold-parallel engine: all folds in one vmapped program ==
each fold trained alone, with each model's own loss terms, dropout and frozen parameters."""

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
        (28, 28, 2),
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
    model = models.build(name, NUM_CLASSES, **kwargs)
    frozen = spec.frozen
    tx = _optimizer(opt, schedule.steps_per_epoch, frozen)
    aug = engine.Augment()
    aux = spec.aux_loss
    run = lambda f, **kw: engine.train_folds(model, tx, schedule, aug, data, f, aux_loss=aux, **kw)
    together = run(folds, strategy="vmap", step_loop="scan")
    # The last fold alone (its keys depend on its fold id only): a program of one fold, the
    # steps called from Python, must reproduce its slice of the vmapped program.
    f = table.num_folds - 1
    alone = run(jax.tree_util.tree_map(lambda a: a[f:], folds), strategy="loop")
    np.testing.assert_allclose(together.train_loss[:, f], alone.train_loss[:, 0], rtol=2e-3)
    np.testing.assert_allclose(together.logits[f], alone.logits[0], rtol=5e-3, atol=5e-3)
    init = jax.jit(jax.vmap(engine.make_fold_fns(model, tx, schedule, aug, shape).init))(folds.key)
    flat_init = dict(jax.tree_util.tree_leaves_with_path(init.params))
    moved = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(together.state.params):
        change = float(jnp.abs(leaf - flat_init[path]).max())
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
    variables = model.init(key, jnp.zeros((1, *x.shape[1:])))
    expected = model.apply(variables, engine.to_float(jnp.asarray(x)), method="trunk_features")
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)
    # The head on cached features is the model's tail: same logits as the whole model.
    _, head_vars = aman.split_variables(variables)
    logits, _ = head.apply(head_vars, features)
    whole, _ = model.apply(variables, engine.to_float(jnp.asarray(x)))
    np.testing.assert_allclose(logits, whole, rtol=1e-4, atol=1e-5)
    assert any("computed once" in line for line in lines)
