"""Dense + mixed attention (seed 001): Table 13's budget, Eqs. (4)-(8) against NumPy, ablations."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax import models
from mer_jax.models import dense_mixed_attention as dma


def _shapes(module, *args, **kwargs):
    return jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))["params"]


def _size(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


# Hand arithmetic, written from the paper's layer definitions (not from the code).
def _dense_layer(c_in, k, ksize=5):
    return ksize * ksize * c_in * k + k + 2 * k  # conv kernel + bias, BN scale + offset


def _attention(c, r, channel=True, spatial=True, ksize=5):
    return channel * 2 * c * (c // r) + spatial * ksize * ksize * 2  # Eq. (5) W0, W1; Eq. (7)


def _expected_total(n=3, c0=3, k=41, layers=(3, 3, 3, 3), r=4, channel=True, spatial=True):
    total, c = 0, c0
    for num_layers in layers:
        for _ in range(num_layers):
            total += _dense_layer(c, k)
            c += k
        total += _attention(c, r, channel, spatial)
    return total + 49 * c * n + n


def test_default_parameter_count_matches_table_13():
    count = models.count_params(dma.Model(num_classes=3), dma.DEFAULT_INPUT_SHAPE)
    assert count == _expected_total()
    assert abs(count - 3.115e6) / 3.115e6 < 5e-4, count
    assert dma.DEFAULT_INPUT_SHAPE == (112, 112, 3)


def test_one_dense_layer_and_one_attention_block_by_hand():
    layer = _shapes(dma.DenseLayer(growth_rate=41), jnp.zeros((1, 8, 8, 126)), train=False)
    assert layer["conv"]["kernel"].shape == (5, 5, 126, 41)
    assert _size(layer) == 25 * 126 * 41 + 41 + 2 * 41 == 129_273
    block = _shapes(dma.MixedAttention(reduction=4), jnp.zeros((1, 7, 7, 495)))
    assert block["channel"]["w0"]["kernel"].shape == (495, 123)
    assert block["channel"]["w1"]["kernel"].shape == (123, 495)
    assert block["spatial"]["conv"]["kernel"].shape == (5, 5, 2, 1)
    assert _size(block) == 2 * 495 * 123 + 50 == 121_820


@pytest.mark.parametrize(
    "name,channel,spatial",
    [("no_attention", False, False), ("channel_only", True, False), ("spatial_only", False, True)],
)
def test_ablation_counts_drop_exactly_the_removed_branch(name, channel, spatial):
    model = dma.Model(num_classes=3, **dma.ABLATIONS[name])
    count = models.count_params(model, dma.DEFAULT_INPUT_SHAPE)
    assert count == _expected_total(channel=channel, spatial=spatial)


def test_residual_backbone_count():
    model = dma.Model(num_classes=3, **dma.ABLATIONS["residual_mixed"])
    count = models.count_params(model, dma.DEFAULT_INPUT_SHAPE)
    widths, c_in, expected = (126, 249, 372, 495), 3, 0
    for w in widths:  # 1x1 projection, then 3 residual units of one 5x5 conv + BN each
        expected += c_in * w + w + 3 * (25 * w * w + w + 2 * w) + _attention(w, 4)
        c_in = w
    assert count == expected + 49 * 495 * 3 + 3 == 35_220_008


def test_ablations_listed_with_mixed_dense_first():
    assert list(dma.ABLATIONS)[0] == "mixed"
    assert dma.ABLATIONS["mixed"] == {"attention": "mixed", "backbone": "dense"}
    assert {kw.get("attention", "mixed") for kw in dma.ABLATIONS.values()} == set(dma.ATTENTIONS)


# --- NumPy references -------------------------------------------------------------------------


def _np_conv_same(x, w, b=None):
    k = w.shape[0]
    xp = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))  # N,H,W,C,k,k
    y = np.einsum("nhwcij,ijco->nhwo", win, w)
    return y if b is None else y + b


def _np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _np_mixed_attention(h, w0, w1, ws, slope, channel=True, spatial=True):
    """Eqs. (5)-(8) written out: returns H^, M_c, M_s."""
    m_c = m_s = None
    if channel:

        def mlp(v):
            z = v @ w0
            return np.where(z > 0, z, slope * z) @ w1

        m_c = _np_sigmoid(mlp(h.mean(axis=(1, 2))) + mlp(h.max(axis=(1, 2))))
        h = h * m_c[:, None, None, :]
    if spatial:
        pooled = np.stack([h.mean(-1), h.max(-1)], axis=-1)
        m_s = _np_sigmoid(_np_conv_same(pooled, ws))
        h = h * m_s
    return h, m_c, m_s


def _branches(channel, spatial):
    return {name for name, on in (("channel", channel), ("spatial", spatial)) if on}


@pytest.mark.parametrize("channel,spatial", [(True, True), (True, False), (False, True)])
def test_mixed_attention_matches_numpy(channel, spatial):
    rng = np.random.default_rng(0)
    h = rng.normal(size=(2, 6, 5, 12)).astype(np.float32)
    block = dma.MixedAttention(channel=channel, spatial=spatial, reduction=3, leaky_slope=0.3)
    params = _shapes(block, h)
    # The flags remove the other branch's parameters, not just its effect.
    assert set(params) == _branches(channel, spatial)
    params = jax.tree_util.tree_map(  # random weights, wide enough to exercise LeakyReLU < 0
        lambda p: rng.normal(size=p.shape).astype(np.float32) * 0.5, params
    )
    out, weights = jax.jit(block.apply)({"params": params}, h)
    p = jax.tree_util.tree_map(np.asarray, params)
    ref, m_c, m_s = _np_mixed_attention(
        h.astype(np.float64),
        p["channel"]["w0"]["kernel"] if channel else None,
        p["channel"]["w1"]["kernel"] if channel else None,
        p["spatial"]["conv"]["kernel"] if spatial else None,
        0.3,
        channel,
        spatial,
    )
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert set(weights) == _branches(channel, spatial)
    if channel:
        assert weights["channel"].shape == (2, 12)
        np.testing.assert_allclose(weights["channel"], m_c, rtol=1e-5, atol=1e-6)
    if spatial:
        assert weights["spatial"].shape == (2, 6, 5, 1)
        np.testing.assert_allclose(weights["spatial"], m_s, rtol=1e-5, atol=1e-6)


def test_dense_block_matches_numpy_eq4_in_train_mode():
    """H^i = BN(ReLU(Conv5x5(concat(H^0..H^{i-1})))), BN on batch statistics; output = concat."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 6, 6, 2)).astype(np.float32)
    block = dma.DenseBlock(num_layers=2, growth_rate=3)
    variables = jax.eval_shape(lambda: block.init(jax.random.key(3), x, train=False))
    params = jax.tree_util.tree_map(  # random conv weights, BN scale ~1 and offset ~0
        lambda q: rng.normal(size=q.shape).astype(np.float32) * 0.3, variables["params"]
    )
    for i in (1, 2):
        params[f"layer{i}"]["bn"]["scale"] += 1.0
    stats = jax.tree_util.tree_map(
        lambda q: np.zeros(q.shape, np.float32), variables["batch_stats"]
    )
    apply = jax.jit(partial(block.apply, train=True, mutable=["batch_stats"]))
    y, _ = apply({"params": params, "batch_stats": stats}, x)
    p = jax.tree_util.tree_map(np.asarray, params)
    feats = x.astype(np.float64)
    for i in (1, 2):
        layer = p[f"layer{i}"]
        z = np.maximum(_np_conv_same(feats, layer["conv"]["kernel"], layer["conv"]["bias"]), 0)
        z = (z - z.mean((0, 1, 2))) / np.sqrt(z.var((0, 1, 2)) + 1e-5)
        z = z * layer["bn"]["scale"] + layer["bn"]["bias"]
        feats = np.concatenate([feats, z], axis=-1)
    assert y.shape == (3, 6, 6, 2 + 2 * 3)
    np.testing.assert_allclose(y, feats, rtol=1e-5, atol=1e-5)


# --- Whole model ------------------------------------------------------------------------------


@pytest.mark.parametrize("ablation", list(dma.ABLATIONS))
def test_shapes_and_attention_outputs_per_ablation(ablation):
    kwargs = dma.ABLATIONS[ablation]
    model = dma.Model(num_classes=3, growth_rate=2, layers_per_block=(1, 1, 1, 1), **kwargs)
    x = jnp.zeros((2, 112, 112, 3))

    def forward():
        variables = model.init(jax.random.key(5), x)
        return model.apply(variables, x, train=True, mutable=["batch_stats"])[0]

    logits, out = jax.eval_shape(forward)
    assert logits.shape == (2, 3) and logits.dtype == jnp.float32
    widths = (5, 7, 9, 11)  # 3 + j * 1 * 2 channels after block j
    assert out["pre_logits"].shape == (2, 7 * 7 * 11)
    attention = kwargs.get("attention", "mixed")
    expected = {"pre_logits"}
    for j, (side, c) in enumerate(zip((112, 56, 28, 14), widths), start=1):
        if attention in ("mixed", "channel"):
            expected.add(f"channel_attention_{j}")
            assert out[f"channel_attention_{j}"].shape == (2, c)
        if attention in ("mixed", "spatial"):
            expected.add(f"spatial_attention_{j}")
            assert out[f"spatial_attention_{j}"].shape == (2, side, side, 1)
    assert set(out) == expected


def test_forward_in_train_mode_updates_batch_stats_and_yields_weights_in_unit_interval():
    model = dma.Model(num_classes=3, growth_rate=2, layers_per_block=(1, 2), head_size=2)
    x = jnp.asarray(np.random.default_rng(4).normal(size=(2, 16, 16, 3)), jnp.float32)

    @jax.jit
    def forward(x):
        variables = model.init(jax.random.key(5), x)
        (logits, out), state = model.apply(variables, x, train=True, mutable=["batch_stats"])
        return logits, out, variables["batch_stats"], state["batch_stats"]

    logits, out, before, after = forward(x)
    assert logits.shape == (2, 3) and np.all(np.isfinite(np.asarray(logits)))
    assert out["pre_logits"].shape == (2, 2 * 2 * (3 + 2 + 4))
    assert sorted(k for k in out if "attention" in k) == [
        "channel_attention_1",
        "channel_attention_2",
        "spatial_attention_1",
        "spatial_attention_2",
    ]
    for key in out:
        if "attention" in key:
            w = np.asarray(out[key])
            assert np.all((w > 0) & (w < 1)), key
    mean_before = before["block1"]["layer1"]["bn"]["mean"]
    mean_after = after["block1"]["layer1"]["bn"]["mean"]
    assert not np.allclose(mean_before, mean_after)


def test_bfloat16_compute_keeps_float32_params_and_logits():
    model = dma.Model(num_classes=3, growth_rate=2, layers_per_block=(1, 1), dtype=jnp.bfloat16)
    x = jnp.ones((1, 28, 28, 3))

    def forward():
        variables = model.init(jax.random.key(6), x)
        return variables["params"], model.apply(variables, x)

    params, (logits, out) = jax.eval_shape(forward)
    assert {p.dtype for p in jax.tree_util.tree_leaves(params)} == {np.dtype(np.float32)}
    assert logits.dtype == jnp.float32 and out["pre_logits"].shape == (1, 7 * 7 * 7)


def test_adaptive_pool_matches_block_means():
    x = np.arange(2 * 14 * 14 * 3, dtype=np.float32).reshape(2, 14, 14, 3)
    ref = x.reshape(2, 7, 2, 7, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(dma.adaptive_avg_pool(jnp.asarray(x), 7), ref, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs,shape,match",
    [
        ({"attention": "cbam"}, (1, 32, 32, 3), "Model.attention"),
        ({"backbone": "vgg"}, (1, 32, 32, 3), "Model.backbone"),
        ({"residual_widths": (8, 8)}, (1, 32, 32, 3), "Model.residual_widths"),
        ({}, (32, 32, 3), "image must be"),
        ({}, (1, 8, 32, 3), "image is 8x32"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, shape, match):
    model = dma.Model(num_classes=3, growth_rate=2, **kwargs)
    with pytest.raises(ValueError, match=match):
        jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape)))
