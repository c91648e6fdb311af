"""Convolution as patches x GEMM (mer_jax.models.layers) against `lax.conv_general_dilated`, alone,
under vmap over per-fold weights, inside every model, and through the fold-parallel engine."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax import lax

from mer_jax import engine, models, protocols
from mer_jax.models import layers
from tests.engine import test_engine_models

# (input shape N,*spatial,C; kernel; strides; padding; kernel dilation)
CONVS = [
    ((2, 9, 9, 3), (3, 3), (1, 1), "SAME", (1, 1)),
    ((2, 9, 8, 3), (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1)),  # ResNet's symmetric stride 2
    ((1, 15, 15, 2), (7, 7), (2, 2), ((3, 3), (3, 3)), (1, 1)),  # the stem
    ((2, 8, 8, 4), (1, 1), (2, 2), "VALID", (1, 1)),  # strided 1x1 projection
    ((2, 12, 12, 3), (5, 5), (1, 1), "SAME", (2, 2)),  # dilated
    ((2, 7, 9, 3), (2, 3), (1, 2), "SAME", (1, 1)),  # even, non-square kernel: asymmetric SAME
    ((2, 10, 3), (3,), (1,), ((2, 0),), (1,)),  # 1-D, causal-style padding
    ((1, 5, 6, 7, 2), (3, 1, 2), (1, 2, 1), "SAME", (1, 1, 1)),  # 3-D
]


def _dimension_numbers(ndim):
    """Flax's channels-last layout: (N, *spatial, C) inputs, (*spatial, I, O) kernels."""
    spatial = tuple(range(1, ndim - 1))
    lhs = (0, ndim - 1, *spatial)
    return lax.ConvDimensionNumbers(lhs, (ndim - 1, ndim - 2, *range(ndim - 2)), lhs)


@pytest.fixture
def float64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("shape,kernel,strides,padding,dilation", CONVS)
def test_gemm_conv_equals_lax_conv_values_and_gradients(
    float64, shape, kernel, strides, padding, dilation
):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=shape))
    w = jnp.asarray(rng.normal(size=(*kernel, shape[-1], 5)))
    dn = _dimension_numbers(len(shape))

    def conv(fn, x, w):
        return fn(x, w, strides, padding, rhs_dilation=dilation, dimension_numbers=dn)

    want = conv(lax.conv_general_dilated, x, w)
    got = conv(layers.gemm_conv_general_dilated, x, w)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    cot = jnp.asarray(rng.normal(size=want.shape))
    grads = [
        jax.grad(lambda x, w, fn=fn: jnp.sum(conv(fn, x, w) * cot), argnums=(0, 1))(x, w)
        for fn in (lax.conv_general_dilated, layers.gemm_conv_general_dilated)
    ]
    for want_g, got_g in zip(*grads):
        np.testing.assert_allclose(got_g, want_g, rtol=1e-11, atol=1e-11)


def test_flax_conv_with_gemm_matches_nn_conv_in_bfloat16():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(2, 12, 12, 8)), jnp.bfloat16)
    xla = layers.conv_class("xla")(16, (3, 3), (2, 2), padding=((1, 1), (1, 1)), dtype=jnp.bfloat16)
    gemm = layers.conv_class("gemm")(
        16, (3, 3), (2, 2), padding=((1, 1), (1, 1)), dtype=jnp.bfloat16
    )
    variables = xla.init(jax.random.key(0), x)
    want, got = xla.apply(variables, x), gemm.apply(variables, x)
    assert got.dtype == want.dtype == jnp.bfloat16
    np.testing.assert_allclose(
        np.asarray(got, np.float32), np.asarray(want, np.float32), rtol=0.05, atol=0.05
    )


def test_layouts_and_groups_it_does_not_rewrite_go_to_lax():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(2, 4, 9, 9)), jnp.float32)  # NCHW
    w = jnp.asarray(rng.normal(size=(6, 2, 3, 3)), jnp.float32)  # OIHW, 2 groups
    args = ((1, 1), "SAME")
    kw = dict(dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=2)
    want = lax.conv_general_dilated(x, w, *args, **kw)
    np.testing.assert_allclose(layers.gemm_conv_general_dilated(x, w, *args, **kw), want)
    with pytest.raises(ValueError, match="train.conv_impl"):
        layers.conv_class("cudnn")


def test_vmapped_over_fold_weights_gemm_is_a_batched_matmul_not_a_grouped_conv():
    """The point of 'gemm': per-fold weights under vmap give dot_general with a fold batch
    dimension; XLA's conv becomes one convolution with feature_group_count = folds."""
    folds, rng = 3, np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(folds, 2, 8, 8, 4)), jnp.float32)
    xla = layers.conv_class("xla")(5, (3, 3), padding="SAME", use_bias=False)
    gemm = layers.conv_class("gemm")(5, (3, 3), padding="SAME", use_bias=False)
    variables = jax.vmap(lambda k: xla.init(k, x[0]))(jax.random.split(jax.random.key(0), folds))

    def forward(module):
        return jax.vmap(lambda v, xs: module.apply(v, xs))

    def train_grad(module):
        return jax.vmap(jax.grad(lambda v, xs: jnp.sum(module.apply(v, xs) ** 2)))

    np.testing.assert_allclose(
        forward(gemm)(variables, x), forward(xla)(variables, x), rtol=1e-5, atol=1e-5
    )
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3),
        train_grad(gemm)(variables, x),
        train_grad(xla)(variables, x),
    )
    hlo_xla = jax.jit(train_grad(xla)).lower(variables, x).as_text()
    hlo_gemm = jax.jit(train_grad(gemm)).lower(variables, x).as_text()
    assert f"feature_group_count = {folds}" in hlo_xla
    assert "convolution" not in hlo_gemm
    assert "dot_general" in hlo_gemm


# Tiny instances of every model (same as the engine equivalence tests).
MODEL_CASES = {
    "micro_attention": (dict(width=4), (16, 16, 1)),
    "dense_mixed_attention": (
        dict(growth_rate=4, layers_per_block=(1, 1), head_size=2),
        (16, 16, 3),
    ),
    "feature_refinement": (
        dict(shared_features=32, detector_features=8, head_features=16),
        (28, 28, 2),
    ),
    "aman": (dict(width=4, frozen_through="layer1"), (2, 2, 16, 16, 3)),
    "stanet": (dict(width=4, hourglass_depth=1), (3, 16, 16, 2)),
}


@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_every_model_computes_the_same_with_gemm_convolutions(float64, name):
    """In float64 (params cast too): train-mode BatchNorm over a batch of 2 divides by small
    variances, which would amplify float32 summation-order differences between the two."""
    kwargs, shape = MODEL_CASES[name]
    xla = models.build(name, 3, conv_impl="xla", dtype=jnp.float64, **kwargs)
    gemm = models.build(name, 3, conv_impl="gemm", dtype=jnp.float64, **kwargs)
    x = jnp.asarray(np.random.default_rng(4).uniform(size=(2, *shape)), jnp.float64)
    variables = jax.jit(xla.init)(jax.random.key(0), x)  # one program: op by op is slower
    assert jax.tree_util.tree_structure(jax.eval_shape(gemm.init, jax.random.key(0), x)) == (
        jax.tree_util.tree_structure(variables)
    )
    variables = jax.tree_util.tree_map(lambda v: v.astype(jnp.float64), variables)
    # Training mode: batch statistics and dropout too (the convolutions are the same in eval).
    rngs = {"dropout": jax.random.key(1)}
    train = lambda m: jax.jit(
        lambda v, x, r: m.apply(v, x, train=True, rngs=r, mutable=["batch_stats"])
    )
    (want, want_out), want_state = train(xla)(variables, x, rngs)
    (got, got_out), got_state = train(gemm)(variables, x, rngs)
    # Logits leave the models as float32: agreement to float32 resolution; the rest float64.
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9),
        (got_out, got_state),
        (want_out, want_state),
    )


def test_resolve_conv_impl(monkeypatch):
    for strategy in engine.FOLD_STRATEGIES:
        assert engine.resolve_conv_impl("auto", strategy) == "xla"  # CPU: XLA's convolutions
        assert engine.resolve_conv_impl("gemm", strategy) == "gemm"
    with pytest.raises(ValueError, match="train.conv_impl"):
        engine.resolve_conv_impl("im2col", "vmap")
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert engine.resolve_conv_impl("auto", "auto") == "gemm"
    assert engine.resolve_conv_impl("auto", "map") == "gemm"
    assert engine.resolve_conv_impl("auto", "loop") == "xla"
    assert engine.resolve_conv_impl("xla", "vmap") == "xla"


def test_fold_parallel_training_with_gemm_matches_xla_convolutions():
    """In float64 (x64 on, the model's dtype float64: the engine keeps parameters and optimizer
    state in float64), so two epochs cannot amplify summation-order differences."""
    classes = test_engine_models.NUM_CLASSES
    subjects, labels, x = test_engine_models._problem((16, 16, 1), np.uint8, subjects=3)
    table = protocols.loso(subjects)
    schedule, folds, codes = engine.prepare(
        table, subjects, labels, classes, batch_size=4, balance=True, epochs=2, seed=0
    )
    data = engine.Data(jnp.asarray(x), jnp.asarray(labels), jnp.asarray(codes))
    opt = ml_collections.ConfigDict(
        dict(name="sgd", lr=1e-3, momentum=0.9, weight_decay=0.0, schedule="constant")
    )
    tx = engine.make_optimizer(opt, schedule.steps_per_epoch)
    with jax.enable_x64(True):
        outs = {
            impl: engine.train_folds(
                models.build(
                    "micro_attention", classes, width=4, conv_impl=impl, dtype=jnp.float64
                ),
                tx,
                schedule,
                engine.Augment(),
                data,
                folds,
                engine.Layout(strategy="vmap", step_loop="scan"),
            )
            for impl in ("xla", "gemm")
        }
    # Losses and logits leave micro_attention as float32: a few float32 ulps.
    for name in ("train_loss", "logits"):
        got, want = getattr(outs["gemm"], name), getattr(outs["xla"], name)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)
    # Parameters stay float64: float64 rounding grown by two epochs, far below 1e-8.
    for got, want in zip(
        jax.tree_util.tree_leaves(outs["gemm"].state.params),
        jax.tree_util.tree_leaves(outs["xla"].state.params),
        strict=True,
    ):
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-8, atol=1e-11)
