"""Feature Refinement (seed 002): Table 7 parameter budget, shapes, Eq. (2)-(8) against NumPy."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax import models
from mer_jax.models import feature_refinement as fr

SMALL = {"filters": (2, 3), "shared_features": 16, "detector_features": 4, "head_features": 8}


# ---------------------------------------------------------------------------
# Parameter arithmetic (layer by layer, written independently of the module)
# ---------------------------------------------------------------------------
def _dense(i, o):
    return i * o + o


def _conv(k, i, o):
    return k * k * i * o + o


def _inception(i, f):
    # 1x1 | 1x1-3x3 | 1x1-5x5 | pool-1x1
    return (
        _conv(1, i, f)
        + _conv(1, i, f)
        + _conv(3, f, f)
        + _conv(1, i, f)
        + _conv(5, f, f)
        + _conv(1, i, f)
    )


def _expected_params(c, ablation, filters=(6, 16), d=1024, g=128, h=256, size=28):
    stream = _inception(1, filters[0]) + _inception(4 * filters[0], filters[1])
    flat = 2 * (size // 4) ** 2 * 4 * filters[1]
    trunk = 2 * stream + _dense(flat, d)
    if ablation == "basic_inception":
        return trunk + _dense(d, c)
    branch = _dense(d, d) + _dense(d, g) + _dense(g, 1)
    fused = c * d if ablation == "fr_concatenated" else d
    return trunk + c * branch + _dense(fused, h) + _dense(h, c)


@pytest.mark.parametrize("num_classes", [3, 4])
def test_parameter_counts_match_arithmetic_and_table_7(num_classes):
    counts = {
        name: models.count_params(fr.Model(num_classes=num_classes, **kw), fr.DEFAULT_INPUT_SHAPE)
        for name, kw in fr.ABLATIONS.items()
    }
    assert counts == {name: _expected_params(num_classes, name) for name in fr.ABLATIONS}
    # Table 7 (millions): Basic Inception / FR on SMIC-HS (3 classes), CASME II and SAMM (4).
    paper = {3: (6.4803e6, 10.2418e6), 4: (6.4813e6, 11.4231e6)}[num_classes]
    assert abs(counts["basic_inception"] / paper[0] - 1) < 0.005, counts
    assert abs(counts["fr"] / paper[1] - 1) < 0.002, counts
    # The 7x7x64 maps of both streams and the 1024-d z are what the budget pins down.
    assert counts["basic_inception"] - _dense(1024, num_classes) > 6272 * 1024


def test_parameters_added_per_class_match_table_7():
    """FR(4 classes) - FR(3 classes) = one proposal branch + one column of each classifier FC."""
    three, four = (models.count_params(fr.Model(num_classes=c), (28, 28, 2)) for c in (3, 4))
    assert abs((four - three) - (11.4231e6 - 10.2418e6)) < 0.0002e6, four - three


# ---------------------------------------------------------------------------
# Shapes and attention maps
# ---------------------------------------------------------------------------
@functools.cache
def _small_run(ablation):
    """One jitted init + eval apply of a small model per ablation, shared by the tests below."""
    model = fr.Model(num_classes=3, **SMALL, **fr.ABLATIONS[ablation])
    x = np.random.default_rng(5).normal(size=(3, 12, 12, 2)).astype(np.float32)
    variables = _random_variables(model, 7, x)
    logits, out = jax.jit(model.apply)(variables, x)
    return x, variables, logits, out


@pytest.mark.parametrize("ablation", list(fr.ABLATIONS))
def test_shapes_per_ablation(ablation):
    _, variables, logits, out = _small_run(ablation)
    assert set(variables) == {"params"}
    assert logits.shape == (3, 3) and logits.dtype == jnp.float32
    if ablation == "basic_inception":
        assert set(out) == {"pre_logits"}
        assert out["pre_logits"].shape == (3, 16)
        assert "proposal" not in variables["params"]
        return
    expected_keys = {
        "shared_features",
        "expression_features",
        "detector_logits",
        "detector_probabilities",
        "refined_features",
        "pre_logits",
    }
    if ablation != "fr_fc":
        expected_keys.add("expression_attention")
    assert set(out) == expected_keys
    assert out["shared_features"].shape == (3, 16)
    assert out["expression_features"].shape == (3, 3, 16)
    assert out["detector_probabilities"].shape == (3, 3)
    p = np.asarray(out["detector_probabilities"])
    assert np.all((p > 0) & (p < 1))
    assert out["refined_features"].shape == ((3, 48) if ablation == "fr_concatenated" else (3, 16))
    assert out["pre_logits"].shape == (3, 8)
    if "expression_attention" in out:
        a = np.asarray(out["expression_attention"])
        assert a.shape == (3, 3, 16) and np.all(a > 0)
        np.testing.assert_allclose(a.sum(-1), 1.0, rtol=1e-5)


def test_bad_input_and_fields_raise():
    model = fr.Model(num_classes=3, **SMALL)
    with pytest.raises(ValueError, match="`x`"):
        model.init(jax.random.key(0), jnp.zeros((1, 12, 12, 3)))
    with pytest.raises(ValueError, match="fusion"):
        fr.Model(num_classes=3, fusion="max", **SMALL).init(
            jax.random.key(0), jnp.zeros((1, 12, 12, 2))
        )


# ---------------------------------------------------------------------------
# NumPy references
# ---------------------------------------------------------------------------
def _np_conv(x, w, b):
    """'same' convolution, stride 1, zero padding; w is (k, k, in, out)."""
    k = w.shape[0]
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    n, hh, ww, _ = x.shape
    y = np.zeros((n, hh, ww, w.shape[-1]), np.float64)
    for i in range(k):
        for j in range(k):
            y += xp[:, i : i + hh, j : j + ww, :] @ w[i, j]
    return y + b


def _np_maxpool3_same(x):
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    n, hh, ww, c = x.shape
    return np.max([xp[:, i : i + hh, j : j + ww, :] for i in range(3) for j in range(3)], axis=0)


def _np_maxpool2(x):
    n, hh, ww, c = x.shape
    x = x[:, : hh // 2 * 2, : ww // 2 * 2]
    return x.reshape(n, hh // 2, 2, ww // 2, 2, c).max(axis=(2, 4))


def _relu(x):
    return np.maximum(x, 0)


def _np_inception(p, x):
    conv = lambda name, h: _relu(_np_conv(h, p[name]["kernel"], p[name]["bias"]))
    b1 = conv("b1_1x1", x)
    b2 = conv("b2_3x3", conv("b2_1x1", x))
    b3 = conv("b3_5x5", conv("b3_1x1", x))
    b4 = conv("b4_1x1", _np_maxpool3_same(x))
    return _np_maxpool2(np.concatenate([b1, b2, b3, b4], axis=-1))


def _np_dense(p, x):
    return x @ p["kernel"] + p["bias"]


def _np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_proposal(p, z, k, attention):
    """Eq. (2)-(3) and the detectors: z*_k (N, K, D), a_k (N, K, D), p_k logits (N, K)."""
    feats, weights, logits = [], [], []
    for i in range(1, k + 1):
        projected = _np_dense(p[f"attention_{i}"], z)
        if attention:
            a = _np_softmax(projected)
            weights.append(a)
            zk = a * z
        else:
            zk = projected
        h = _relu(_np_dense(p[f"detector_{i}_fc1"], zk))
        logits.append(_np_dense(p[f"detector_{i}_fc2"], h)[:, 0])
        feats.append(zk)
    return np.stack(feats, 1), (np.stack(weights, 1) if weights else None), np.stack(logits, 1)


def _random_variables(module, seed, *args):
    """Random NumPy weights of `module`'s shapes (no jitted init: XLA's RNG compiles slowly on CPU).

    Kernels ~ N(0, 1 / fan_in), biases ~ N(0, 0.1^2) so that biases are exercised too.
    """
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(module.init, jax.random.key(0), *args)

    def draw(path, leaf):
        name = path[-1].key
        scale = 0.1 if name == "bias" else 1 / np.sqrt(np.prod(leaf.shape[:-1]))
        return (scale * rng.normal(size=leaf.shape)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def test_inception_block_matches_numpy_conv_reference():
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 3)).astype(np.float32)
    block = fr.InceptionBlock(filters=2)
    variables = _random_variables(block, 1, x)
    y = jax.jit(block.apply)(variables, x)
    assert y.shape == (2, 4, 4, 8)
    np.testing.assert_allclose(y, _np_inception(variables["params"], x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", [True, False])
def test_proposal_module_matches_numpy_on_random_z(attention):
    z = np.random.default_rng(2).normal(size=(4, 10)).astype(np.float32)
    module = fr.ExpressionProposal(3, detector_features=5, attention=attention)
    variables = _random_variables(module, 4, z)
    feats, weights, logits = jax.jit(module.apply)(variables, z)
    ref_feats, ref_weights, ref_logits = _np_proposal(variables["params"], z, 3, attention)
    np.testing.assert_allclose(feats, ref_feats, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-5, atol=1e-6)
    if attention:
        np.testing.assert_allclose(weights, ref_weights, rtol=1e-5, atol=1e-7)
    else:
        assert weights is None


@pytest.mark.parametrize("ablation", ["fr", "fr_fc", "fr_concatenated", "basic_inception"])
def test_forward_matches_numpy_reference(ablation):
    """Two streams -> z -> proposal -> fusion (Eq. (6) or concat) -> FC -> FC, eval mode."""
    kw = fr.ABLATIONS[ablation]
    x, variables, logits, out = _small_run(ablation)
    p = variables["params"]

    streams = []
    for c, name in enumerate(("horizontal", "vertical")):
        h = x[..., c : c + 1]
        h = _np_inception(p[f"{name}_inception1"], h)
        h = _np_inception(p[f"{name}_inception2"], h)
        streams.append(h.reshape(len(x), -1))
    z = _relu(_np_dense(p["shared_fc"], np.concatenate(streams, -1)))
    if ablation == "basic_inception":
        np.testing.assert_allclose(out["pre_logits"], z, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(logits, _np_dense(p["head"], z), rtol=1e-5, atol=1e-5)
        return
    np.testing.assert_allclose(out["shared_features"], z, rtol=1e-5, atol=1e-5)
    # From here on the reference starts from the model's own z (random features) to 1e-5.
    z = np.asarray(out["shared_features"], np.float64)
    feats, weights, det = _np_proposal(p["proposal"], z, 3, kw["attention"])
    fused = feats.sum(1) if kw["fusion"] == "sum" else feats.reshape(len(x), -1)
    hidden = _relu(_np_dense(p["head_fc"], fused))
    np.testing.assert_allclose(out["expression_features"], feats, rtol=1e-5, atol=1e-6)
    if weights is not None:
        np.testing.assert_allclose(out["expression_attention"], weights, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        out["detector_probabilities"], _np_sigmoid(det), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(out["refined_features"], fused, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["pre_logits"], hidden, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, _np_dense(p["head"], hidden), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# Proposal loss (Eq. (4), (5), (8)) and dropout
# ---------------------------------------------------------------------------
def test_aux_loss_matches_numpy_bce():
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(6, 4)).astype(np.float32) * 3
    labels = np.array([0, 3, 1, 1, 2, 0])
    got = fr.aux_loss({"detector_logits": jnp.asarray(logits)}, jnp.asarray(labels))
    p = _np_sigmoid(logits.astype(np.float64))
    t = np.eye(4)[labels]
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))  # Eq. (4), per sample and detector
    expected = 0.85 * bce.mean(axis=1)  # Eq. (5) mean over K, Eq. (8) lambda = 0.85
    assert got.shape == (6,) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # No proposal module (Basic Inception): no proposal loss.
    np.testing.assert_array_equal(fr.aux_loss({"pre_logits": jnp.zeros((6, 2))}, labels), 0.0)
    with pytest.raises(ValueError, match="labels"):
        fr.aux_loss({"detector_logits": jnp.asarray(logits)}, jnp.eye(4)[labels])
    with pytest.raises(ValueError, match="labels"):
        fr.aux_loss({"detector_logits": jnp.asarray(logits)}, labels[:5])


def test_proposal_loss_trains_attention_not_classifier():
    """L_prop reaches FC_k and the trunk through z*_k = a_k * z, but not the classifier."""
    model = fr.Model(num_classes=3, **SMALL)
    x, variables, _, _ = _small_run("fr")
    params = variables["params"]
    labels = jnp.array([0, 2, 1])

    def loss(params):
        _, out = model.apply({"params": params}, x)
        return fr.aux_loss(out, labels).mean()

    grads = jax.jit(jax.grad(loss))(params)
    norm = lambda tree: float(sum(jnp.abs(g).sum() for g in jax.tree_util.tree_leaves(tree)))
    assert norm(grads["proposal"]["attention_1"]) > 0
    assert norm(grads["shared_fc"]) > 0
    assert norm(grads["head_fc"]) == 0 and norm(grads["head"]) == 0


def test_dropout_only_in_train_mode():
    model = fr.Model(num_classes=3, **SMALL)
    x, variables, _, _ = _small_run("fr")
    apply = jax.jit(model.apply, static_argnames="train")
    train_a, out_a = apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)})
    train_b, out_b = apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)})
    train_a2, _ = apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)})
    assert not np.allclose(train_a, train_b)
    np.testing.assert_array_equal(train_a, train_a2)
    # Dropout sits after the classifier's first FC (Sec. 3.3): everything before is unchanged.
    np.testing.assert_array_equal(out_a["pre_logits"], out_b["pre_logits"])
    eval_a, _ = apply(variables, x, train=False, rngs={"dropout": jax.random.key(1)})
    eval_b, _ = apply(variables, x, train=False, rngs={"dropout": jax.random.key(2)})
    eval_none, _ = apply(variables, x, train=False)
    np.testing.assert_array_equal(eval_a, eval_b)
    np.testing.assert_array_equal(eval_a, eval_none)
