"""Micro-Attention (seed 000): parameter budget of Table 3, shapes, and Eq. (1)-(2) against a reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax import models
from mer_jax.models import micro_attention


def test_parameter_counts_match_table_3():
    plain = models.count_params(
        micro_attention.Model(num_classes=5, attention=False), (224, 224, 1)
    )
    full = models.count_params(micro_attention.Model(num_classes=5), (224, 224, 1))
    assert abs(plain - 4.9e6) < 0.05e6, plain
    assert abs(full - 5.9e6) < 0.05e6, full
    # The attention units add exactly sum(3C * C) over the four stages (1x1 conv 3C->C, no bias).
    assert full - plain == sum(3 * c * c for c in (64, 128, 256, 512))


def test_catalogue_lists_both_ablations():
    rows = {
        r["ablation"]: r["params"] for r in models.catalogue() if r["model"] == "micro_attention"
    }
    assert rows == {"micro_attention": 5_944_775, "resnet10": 4_900_295}


@pytest.mark.parametrize("attention", [True, False])
def test_shapes_and_attention_maps(attention):
    model = micro_attention.Model(num_classes=3, width=8, attention=attention)
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


@pytest.mark.parametrize("strides,cin", [(1, 4), (2, 4)])
def test_block_matches_reference_eq2(strides, cin):
    """O = T * (1 + M), T = L1 + L3, with L1/L2/L3 as Sec. 3.2 of the paper defines them (train-mode BN)."""
    rng = np.random.default_rng(2)
    features = 4 if strides == 1 else 8
    x = rng.normal(size=(3, 8, 8, cin)).astype(np.float32)
    block = micro_attention.PreActBlock(features, strides=strides)
    variables = block.init(jax.random.key(3), x, train=False)
    # Random BN affine parameters so the reference exercises them.
    params = jax.tree_util.tree_map(
        lambda p: p + rng.normal(size=p.shape).astype(np.float32) * 0.1, variables["params"]
    )
    (out, mask), _ = block.apply(
        {"params": params, "batch_stats": variables["batch_stats"]},
        x,
        train=True,
        mutable=["batch_stats"],
    )
    p = jax.tree_util.tree_map(np.asarray, params)
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
    w = p["micro_attention"]["embed"]["kernel"][0, 0]
    m = 1 / (1 + np.exp(-(np.concatenate([l1, l2, l3], -1) @ w).mean(-1, keepdims=True)))
    np.testing.assert_allclose(mask, m, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out, (l1 + l3) * (1 + m), rtol=1e-4, atol=1e-4)
    assert ("proj" in p) == (strides != 1 or cin != features)
