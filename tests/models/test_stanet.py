"""STANet (seed 004): layer arithmetic, Table 2 ablations, Eq. (2)-(5) and (7) against NumPy."""

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax import models
from mer_jax.models import stanet

SMALL = (2, 4, 32, 32, 2)  # N, t, H, W, C


# NumPy references -------------------------------------------------------------------------


def _conv(x, w, bias=None):
    """'Same' stride-1 convolution, NHWC x HWIO, odd kernel."""
    k = w.shape[0]
    xp = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))  # N,H,W,C,k,k
    y = np.einsum("nhwcij,ijco->nhwo", windows, w)
    return y if bias is None else y + bias


def _bn_train(x, p, eps=1e-5):
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    return (x - mean) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def _conv_bn_relu(x, p):
    return np.maximum(_bn_train(_conv(x, p["conv"]["kernel"]), p["bn"]), 0.0)


def _max_pool(x):
    n, h, w, c = x.shape
    return x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def _cv2_upsample(x, size):
    """OpenCV INTER_LINEAR (half-pixel centres), one channel at a time."""
    return np.stack(
        [
            np.stack(
                [
                    cv2.resize(x[i, ..., c], size[::-1], interpolation=cv2.INTER_LINEAR)
                    for c in range(x.shape[-1])
                ],
                axis=-1,
            )
            for i in range(x.shape[0])
        ]
    )


def _align_corners_upsample(x, size):
    """PyTorch align_corners=True bilinear, written pixel by pixel."""
    n, h, w, c = x.shape
    oh, ow = size
    y = np.zeros((n, oh, ow, c), np.float64)
    for i in range(oh):
        sy = i * (h - 1) / (oh - 1) if oh > 1 else 0.0
        y0 = int(np.floor(sy))
        y1, dy = min(y0 + 1, h - 1), sy - y0
        for j in range(ow):
            sx = j * (w - 1) / (ow - 1) if ow > 1 else 0.0
            x0 = int(np.floor(sx))
            x1, dx = min(x0 + 1, w - 1), sx - x0
            y[:, i, j] = (
                (1 - dy) * (1 - dx) * x[:, y0, x0]
                + (1 - dy) * dx * x[:, y0, x1]
                + dy * (1 - dx) * x[:, y1, x0]
                + dy * dx * x[:, y1, x1]
            )
    return y


def _temporal_attention(h, f, scale=1.0):
    """Eq. (3)-(5) for one clip, h (t, d), f (t, d'); `scale` s in C = tanh(s H^T H)."""
    c = np.tanh(scale * (h @ h.T))
    p = c.sum(axis=1)
    w = np.exp(p - p.max()) / np.exp(p - p.max()).sum()
    return (1 + w)[:, None] * f, w, c


def _perturbed(variables, seed):
    """Params with noise added (random BN affines and biases), as NumPy."""
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(
        lambda p: np.asarray(p) + rng.normal(size=p.shape).astype(np.float32) * 0.1,
        variables["params"],
    )


# Parameter arithmetic ----------------------------------------------------------------------


def _conv_bn(cin, cout, k=3):
    return k * k * cin * cout + 2 * cout  # conv without bias + BN scale/bias


def test_parameter_counts_follow_layer_arithmetic():
    w, c_in, k = 32, 2, stanet.DEFAULT_NUM_CLASSES
    trunk = (
        _conv_bn(c_in, w)
        + _conv_bn(w, 2 * w)
        + _conv_bn(2 * w, 4 * w)
        + _conv_bn(4 * w, 8 * w)
        + (8 * w * k + k)
    )
    c = 4 * w  # SAB: conv_in, 3 down levels, 1x1 conv-BN, 1x1 conv with bias; no up-path convs
    sab = _conv_bn(2 * w, c) + 3 * _conv_bn(c, c) + _conv_bn(c, c, k=1) + (c * c + c)
    d = 8 * w  # LSTM over frame features: 4 gates x (input kernel, recurrent kernel, bias)
    lstm = 4 * (d * d + d * d + d)

    def count(**kwargs):
        return models.count_params(stanet.Model(**kwargs), stanet.DEFAULT_INPUT_SHAPE)

    counts = {name: count(**kwargs) for name, kwargs in stanet.ABLATIONS.items()}
    assert counts["baseline"] == trunk == 389_636
    # SAB adds the hourglass; the l1 term adds no parameters; TAB (Eq. 3-5) adds those of
    # the LSTM that gives H, none with H = F(X).
    assert counts["sab"] == counts["sab_l1"] == trunk + sab == 939_908
    assert counts["sab_tab_l1"] == trunk + sab + lstm == 1_465_220
    assert count(temporal_context="features") == trunk + sab


def test_baseline_has_no_mask_params():
    def tree(kwargs):
        model = stanet.Model(num_classes=3, width=4, **kwargs)
        return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(SMALL)))

    assert "spatial_attention" not in tree(stanet.ABLATIONS["baseline"])["params"]["frame_encoder"]
    assert "spatial_attention" in tree(stanet.ABLATIONS["sab"])["params"]["frame_encoder"]


def test_ablation_table_and_defaults():
    assert list(stanet.ABLATIONS) == ["sab_tab_l1", "baseline", "sab", "sab_l1"]
    assert stanet.ABLATIONS["sab_l1"]["l1_lambda"] == 1e-8  # Sec. 4.1
    assert stanet.DEFAULT_INPUT_SHAPE == (20, 192, 192, 2)
    full = stanet.Model()
    assert all(getattr(full, k) == v for k, v in stanet.ABLATIONS["sab_tab_l1"].items())
    assert full.temporal_context == "lstm" and full.affinity_scale is None


# Shapes, Eq. (5) aggregation and Eq. (7) per ablation ----------------------------------------


@pytest.mark.parametrize(
    "name,kwargs",
    [
        *stanet.ABLATIONS.items(),
        ("features_context", {"temporal_context": "features"}),
        ("literal_eq3", {"temporal_context": "features", "affinity_scale": 1.0}),
    ],
)
def test_ablation_outputs_and_aux_loss(name, kwargs):
    n, t, h, w, _ = SMALL
    width = 4
    model = stanet.Model(num_classes=3, width=width, **kwargs)
    x = jax.random.normal(jax.random.key(1), SMALL)
    variables = model.init(jax.random.key(0), x)
    (logits, out), _ = model.apply(variables, x, train=True, mutable=["batch_stats"])
    assert logits.shape == (n, 3) and logits.dtype == jnp.float32
    f = np.asarray(out["frame_features"])
    assert f.shape == (n, t, 8 * width) and out["pre_logits"].shape == (n, 8 * width)
    labels = jnp.zeros((n,), jnp.int32)
    aux = np.asarray(stanet.aux_loss(out, labels))
    assert aux.shape == (n,) and aux.dtype == np.float32

    spatial = model.spatial_attention
    assert ("spatial_mask" in out) == spatial
    if spatial:
        mask = np.asarray(out["spatial_mask"])
        assert mask.shape == (n, t, h // 4, w // 4, 4 * width)
        assert np.all((mask > 0) & (mask < 1))
        expected = model.l1_lambda * np.abs(mask).sum(axis=(1, 2, 3, 4))
        np.testing.assert_allclose(aux, expected, rtol=1e-5)
        assert (model.l1_lambda > 0) == np.all(aux > 0)
    else:
        np.testing.assert_array_equal(aux, 0.0)

    temporal = model.temporal_attention
    assert ("temporal_weights" in out) == temporal
    if temporal and model.temporal_context == "features":
        scale = model.affinity_scale or 1 / np.sqrt(f.shape[-1])
        refs = [_temporal_attention(f[i].astype(np.float64), f[i], scale) for i in range(n)]
        np.testing.assert_allclose(out["temporal_weights"], [r[1] for r in refs], rtol=1e-5)
        expected = np.stack([r[0].mean(axis=0) for r in refs])
    elif temporal:
        weights = np.asarray(out["temporal_weights"])
        assert weights.shape == (n, t) and out["temporal_affinity"].shape == (n, t, t)
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
        expected = ((1 + weights)[..., None] * f).mean(axis=1)
    else:
        expected = f.mean(axis=1)
    np.testing.assert_allclose(out["pre_logits"], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_temporal_attention_matches_numpy_in_float64(scale):
    rng = np.random.default_rng(0)
    # Small-magnitude states so tanh(s H^T H) is not saturated and the weights differ.
    h = rng.normal(size=(3, 6, 5)) * 0.4
    f = rng.normal(size=(3, 6, 7))
    with jax.enable_x64(True):
        out, weights, affinity = stanet.temporal_attention(jnp.asarray(h), jnp.asarray(f), scale)
        assert out.dtype == weights.dtype == jnp.float64
    for i in range(3):
        ref_out, ref_w, ref_c = _temporal_attention(h[i], f[i], scale)
        np.testing.assert_allclose(affinity[i], ref_c, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(weights[i], ref_w, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(out[i], ref_out, rtol=1e-12, atol=1e-14)
    assert np.ptp(np.asarray(weights), axis=1).min() > 1e-2


def test_literal_eq3_on_frame_features_saturates():
    """Why the default scales H^T H: non-negative features like F(X)'s at initialisation
    (d = 256, ~0.45 each) give C = tanh(H^T H) = 1, uniform weights and no gradient."""
    h = np.abs(np.random.default_rng(1).normal(size=(2, 8, 256))) * 0.6
    f = np.ones((2, 8, 3))

    def weights(h, scale):
        return stanet.temporal_attention(h, jnp.asarray(f), scale)[1]

    np.testing.assert_allclose(weights(jnp.asarray(h), 1.0), 1 / 8, rtol=1e-6)
    grad = jax.grad(lambda h: jnp.sum(weights(h, 1.0)[:, 0]))(jnp.asarray(h, jnp.float32))
    assert float(jnp.abs(grad).max()) == 0.0


def test_default_temporal_weights_differ_and_learn_at_init():
    """The default (LSTM states, s = 1/sqrt(d)): on random input at initialisation the
    weights are not uniform, and the loss has a gradient in the LSTM that shapes them."""
    model = stanet.Model(num_classes=3, width=4)
    x = jax.random.normal(jax.random.key(1), SMALL)
    variables = jax.jit(model.init)(jax.random.key(0), x)
    labels = jnp.array([0, 2])

    def loss(params):
        (logits, out), _ = model.apply(
            {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
        )
        ce = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))
        return ce, out["temporal_weights"]

    grads, weights = jax.jit(jax.grad(loss, has_aux=True))(variables["params"])
    assert np.ptp(np.asarray(weights), axis=1).min() > 1e-3
    lstm = jax.tree_util.tree_leaves(grads["context_lstm"])
    assert max(float(jnp.abs(g).max()) for g in lstm) > 1e-6


# Bilinear up-sampling and the hourglass --------------------------------------------------------


@pytest.mark.parametrize("src,dst", [((3, 3), (6, 6)), ((5, 4), (11, 9)), ((1, 2), (3, 5))])
def test_upsample_matches_opencv_and_align_corners_reference(src, dst):
    x = np.random.default_rng(1).normal(size=(2, *src, 3)).astype(np.float32)
    half_pixel = stanet.upsample_bilinear(jnp.asarray(x), dst)
    np.testing.assert_allclose(half_pixel, _cv2_upsample(x, dst), rtol=1e-5, atol=1e-5)
    corners = stanet.upsample_bilinear(jnp.asarray(x), dst, align_corners=True)
    np.testing.assert_allclose(corners, _align_corners_upsample(x, dst), rtol=1e-5, atol=1e-5)


def _sab_reference(x, p, depth):
    skips = [_conv_bn_relu(x, p["conv_in"])]
    for level in range(depth):
        skips.append(_conv_bn_relu(_max_pool(skips[-1]), p[f"down{level + 1}"]))
    y = skips.pop()
    while skips:
        skip = skips.pop()
        y = _cv2_upsample(y.astype(np.float32), skip.shape[1:3]) + skip
    y = np.maximum(_bn_train(_conv(y, p["head1"]["conv"]["kernel"]), p["head1"]["bn"]), 0)
    y = _conv(y, p["head2"]["kernel"], p["head2"]["bias"])
    return 1 / (1 + np.exp(-y))


def test_spatial_attention_branch_matches_numpy():
    """Sec. 3.1: conv + max-pool down, bilinear up + skip addition, 1x1 head, sigmoid."""
    x = np.random.default_rng(2).normal(size=(3, 10, 12, 4)).astype(np.float32)  # odd 5x6, 2x3
    sab = stanet.SpatialAttentionBranch(features=5, depth=3)
    variables = sab.init(jax.random.key(3), x, train=False)
    params = _perturbed(variables, 4)
    mask, _ = sab.apply(
        {"params": params, "batch_stats": variables["batch_stats"]},
        x,
        train=True,
        mutable=["batch_stats"],
    )
    assert mask.shape == (3, 10, 12, 5)
    np.testing.assert_allclose(mask, _sab_reference(x, params, 3), rtol=1e-4, atol=1e-5)


def test_frame_encoder_applies_eq2_before_conv4():
    """S = (1 + m) * L3 (Eq. 2), then conv4 - BN - ReLU after max-pool and a spatial mean."""
    # The frames of SMALL at width 4, so the eager kernels compiled above are reused.
    x = np.random.default_rng(5).normal(size=(8, 32, 32, 2)).astype(np.float32)
    encoder = stanet.FrameEncoder(width=4)
    variables = encoder.init(jax.random.key(6), x, train=False)
    params = _perturbed(variables, 7)
    (f, mask), state = encoder.apply(
        {"params": params, "batch_stats": variables["batch_stats"]},
        x,
        train=True,
        mutable=["batch_stats", "intermediates"],
        capture_intermediates=True,
    )
    inter = state["intermediates"]
    l3 = np.asarray(inter["conv3"]["__call__"][0])
    np.testing.assert_array_equal(inter["spatial_attention"]["__call__"][0], mask)
    # L1, L2, L3 from the trunk's own layers.
    l2 = _max_pool(_conv_bn_relu(_max_pool(_conv_bn_relu(x, params["conv1"])), params["conv2"]))
    np.testing.assert_allclose(l3, _conv_bn_relu(l2, params["conv3"]), rtol=1e-4, atol=1e-4)
    s = (1 + np.asarray(mask)) * l3
    expected = _conv_bn_relu(_max_pool(s), params["conv4"]).mean(axis=(1, 2))
    np.testing.assert_allclose(f, expected, rtol=1e-4, atol=1e-4)


# Bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,shape,match",
    [
        ({}, (2, 32, 32, 2), "argument 'x'.*\\(N, t, H, W, C\\)"),
        ({}, (1, 2, 16, 16, 2), "too small.*hourglass_depth=3.*32x32"),
        ({"temporal_context": "gru"}, SMALL, "temporal_context"),
        ({"affinity_scale": 0.0}, SMALL, "'affinity_scale'=0.0 must be > 0"),
        ({"spatial_attention": False}, SMALL, "l1_lambda"),
    ],
)
def test_bad_input_raises_clear_errors(kwargs, shape, match):
    with pytest.raises(ValueError, match=match):
        stanet.Model(width=2, **kwargs).init(jax.random.key(0), jnp.zeros(shape))
