"""Micro-Attention (seed 000): parameter budget of Table 3, shapes, and Eq. (1)-(2) against a
reference; the "complex attention" comparator [29] (hourglass mask) likewise."""

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax import config as config_lib
from mer_jax import models
from mer_jax.models import micro_attention

WIDTHS = (64, 128, 256, 512)


def test_parameter_counts_match_table_3():
    count = lambda **kw: models.count_params(
        micro_attention.Model(num_classes=5, **kw), (224, 224, 1)
    )
    plain, full = count(attention=False), count()
    complex_ = count(attention_unit="hourglass")
    assert abs(plain - 4.9e6) < 0.05e6, plain
    assert abs(full - 5.9e6) < 0.05e6, full
    assert abs(complex_ - 11.2e6) < 0.05e6, complex_
    # The attention units add exactly sum(3C * C) over the four stages (1x1 conv 3C->C, no bias).
    assert full - plain == sum(3 * c * c for c in WIDTHS)
    # Hourglass mask per block: a basic unit (two 3x3 convs C->C, two BN of 2C), the head's BN
    # (2C) and its 1x1 conv C->1 with bias (C + 1); a second level adds another basic unit.
    assert complex_ - plain == sum(18 * c * c + 4 * c + 2 * c + c + 1 for c in WIDTHS)
    deeper = count(attention_unit="hourglass", mask_levels=2)
    assert deeper - complex_ == sum(18 * c * c + 4 * c for c in WIDTHS)


def test_catalogue_lists_the_ablations_of_table_3():
    rows = {
        r["ablation"]: r["params"] for r in models.catalogue() if r["model"] == "micro_attention"
    }
    assert rows == {
        "micro_attention": 5_944_775,
        "resnet10": 4_900_295,
        "complex_attention": 11_173_899,
    }


def test_attention_unit_choices_are_checked():
    rule = config_lib.model_rules("micro_attention")["attention_unit"]
    assert rule.ok("hourglass") and rule.ok("micro") and not rule.ok("complex")
    model = micro_attention.Model(num_classes=3, width=4, attention_unit="complex")
    with pytest.raises(ValueError, match="attention_unit"):
        model.init(jax.random.key(0), jnp.ones((1, 32, 32, 1)))


@pytest.mark.parametrize(
    "kwargs", [{}, {"attention": False}, {"attention_unit": "hourglass"}], ids=str
)
def test_shapes_and_attention_maps(kwargs):
    attention = kwargs.get("attention", True)
    model = micro_attention.Model(num_classes=3, width=8, **kwargs)
    x = jnp.ones((2, 64, 64, 1))
    variables = jax.jit(model.init)(jax.random.key(0), x)  # one program, not op by op
    logits, out = jax.jit(model.apply)(variables, x)
    assert logits.shape == (2, 3) and logits.dtype == jnp.float32
    assert out["pre_logits"].shape == (2, 64)
    maps = sorted(k for k in out if k.startswith("attention"))
    if not attention:
        assert maps == []
        return
    # Stem /4, then stages at /4, /8, /16, /32.
    assert [out[k].shape for k in maps] == [
        (2, 16, 16, 1),
        (2, 8, 8, 1),
        (2, 4, 4, 1),
        (2, 2, 2, 1),
    ]
    for k in maps:
        assert np.all((np.asarray(out[k]) > 0) & (np.asarray(out[k]) < 1))


def _conv(x, w, stride=1):
    k = w.shape[0]
    return jax.lax.conv_general_dilated(
        x, w, (stride, stride), [(k // 2, k // 2)] * 2, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def _bn_train(x, scale, bias, eps=1e-5):
    mean = x.mean(axis=(0, 1, 2))
    var = x.var(axis=(0, 1, 2))
    return (x - mean) / np.sqrt(var + eps) * scale + bias


def test_micro_attention_unit_matches_numpy_eq1():
    rng = np.random.default_rng(0)
    l1, l2, l3 = (rng.normal(size=(2, 5, 5, 4)).astype(np.float32) for _ in range(3))
    unit = micro_attention.MicroAttentionUnit(features=4)
    variables = unit.init(jax.random.key(1), l1, l2, l3)
    w = np.asarray(variables["params"]["embed"]["kernel"])[0, 0]  # (3C, C)
    expected = 1 / (1 + np.exp(-(np.concatenate([l1, l2, l3], -1) @ w).mean(-1, keepdims=True)))
    np.testing.assert_allclose(unit.apply(variables, l1, l2, l3), expected, rtol=1e-5, atol=1e-6)


def _apply_train(module, x, seed):
    """`module` in train mode (batch statistics) with its parameters jittered, so the
    reference exercises BN's affine parameters; returns (its output, NumPy parameters)."""
    rng = np.random.default_rng(seed)
    variables = module.init(jax.random.key(seed), x, train=False)
    params = jax.tree_util.tree_map(
        lambda p: p + rng.normal(size=p.shape).astype(np.float32) * 0.1, variables["params"]
    )
    result, _ = module.apply(
        {"params": params, "batch_stats": variables["batch_stats"]},
        x,
        train=True,
        mutable=["batch_stats"],
    )
    return result, jax.tree_util.tree_map(np.asarray, params)


def _max_pool_3x3_s2(x):
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    h, w = (x.shape[1] - 1) // 2 + 1, (x.shape[2] - 1) // 2 + 1
    windows = [padded[:, i : i + 2 * h : 2, j : j + 2 * w : 2] for i in range(3) for j in range(3)]
    return np.max(windows, axis=0)


def _hourglass_reference(x, p, levels):
    """Pool, pre-activation unit, per level; OpenCV bilinear up + skip; BN-ReLU, 1x1, sigmoid."""
    relu = lambda v: np.maximum(v, 0)
    skips, h = [], x
    for level in range(levels):
        skips.append(h)
        h = _max_pool_3x3_s2(h)
        u = p[f"down{level + 1}"]
        r = relu(_bn_train(h, u["bn1"]["scale"], u["bn1"]["bias"]))
        r = relu(_bn_train(np.asarray(_conv(r, u["conv1"]["kernel"])), **u["bn2"]))
        h = h + np.asarray(_conv(r, u["conv2"]["kernel"]))
    for skip in reversed(skips):
        size = (skip.shape[2], skip.shape[1])
        h = np.stack([cv2.resize(m, size, interpolation=cv2.INTER_LINEAR) for m in h]) + skip
    h = relu(_bn_train(h, **p["bn"]))
    return 1 / (1 + np.exp(-(h @ p["logit"]["kernel"][0, 0] + p["logit"]["bias"])))


@pytest.mark.parametrize("levels", [1, 2])
def test_hourglass_mask_matches_reference(levels):
    x = np.random.default_rng(4).normal(size=(2, 7, 7, 4)).astype(np.float32)
    mask, p = _apply_train(micro_attention.HourglassMask(4, levels=levels), x, seed=5)
    assert mask.shape == (2, 7, 7, 1)
    np.testing.assert_allclose(mask, _hourglass_reference(x, p, levels), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "strides,cin,unit", [(1, 4, "micro"), (2, 4, "micro"), (2, 4, "hourglass")]
)
def test_block_matches_reference_eq2(strides, cin, unit):
    """O = T * (1 + M), T = L1 + L3, with L1/L2/L3 as Sec. 3.2 of the paper defines them (train-mode
    BN); the comparator's M is the hourglass mask of L3 (the last convolution's output)."""
    features = 4 if strides == 1 else 8
    x = np.random.default_rng(2).normal(size=(3, 8, 8, cin)).astype(np.float32)
    block = micro_attention.PreActBlock(features, strides=strides, attention_unit=unit)
    (out, mask), p = _apply_train(block, x, seed=3)
    preact = np.maximum(_bn_train(x, p["bn1"]["scale"], p["bn1"]["bias"]), 0)
    l1 = _conv(preact, p["proj"]["kernel"], strides) if "proj" in p else x
    l2 = np.maximum(
        _bn_train(
            np.asarray(_conv(preact, p["conv1"]["kernel"], strides)),
            p["bn2"]["scale"],
            p["bn2"]["bias"],
        ),
        0,
    )
    l3 = np.asarray(_conv(l2, p["conv2"]["kernel"]))
    if unit == "hourglass":
        assert "micro_attention" not in p
        m = _hourglass_reference(l3, p["hourglass_mask"], levels=1)
    else:
        w = p["micro_attention"]["embed"]["kernel"][0, 0]
        m = 1 / (1 + np.exp(-(np.concatenate([l1, l2, l3], -1) @ w).mean(-1, keepdims=True)))
    np.testing.assert_allclose(mask, m, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out, (l1 + l3) * (1 + m), rtol=1e-4, atol=1e-4)
    assert ("proj" in p) == (strides != 1 or cin != features)


def test_complex_attention_trains():
    """One train-mode forward + gradient of the comparator at a small width, as the engine
    takes it: finite loss, a gradient on every parameter of every mask branch, maps kept."""
    model = micro_attention.Model(
        num_classes=3, width=4, **micro_attention.ABLATIONS["complex_attention"]
    )
    x = jnp.asarray(np.random.default_rng(6).normal(size=(4, 32, 32, 1)), jnp.float32)
    labels = jnp.array([0, 1, 2, 1])
    variables = jax.jit(model.init)(jax.random.key(0), x)

    @jax.jit
    def loss_and_grad(params):
        def loss(params):
            (logits, out), state = model.apply(
                {"params": params, "batch_stats": variables["batch_stats"]},
                x,
                train=True,
                mutable=["batch_stats"],
            )
            nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1).mean()
            return nll, (out, state)

        return jax.value_and_grad(loss, has_aux=True)(params)

    (loss, (out, state)), grads = loss_and_grad(variables["params"])
    assert np.isfinite(float(loss))
    assert sorted(k for k in out if k.startswith("attention")) == [
        f"attention_{i}" for i in range(1, 5)
    ]
    assert out["attention_4"].shape == (4, 1, 1, 1)
    for stage in range(1, 5):
        mask_grads = grads[f"stage{stage}_block1"]["hourglass_mask"]
        for path, g in jax.tree_util.tree_leaves_with_path(mask_grads):
            assert np.all(np.isfinite(g)) and np.abs(g).max() > 0, (stage, path)
    assert "hourglass_mask" in state["batch_stats"]["stage1_block1"]
