"""Grad-CAM (mer_jax.gradcam) against a hand computation, per fold, and on every model.

The reference splits a tiny model at the layer: features A = a 3x3 convolution computed
in NumPy, logits = Dense(mean over frames and positions of tanh(A)), whose gradient
dy^c / dA = W[k, c] (1 - tanh(A)^2) / (T h w) is written out; Eq. (1)-(2) of Selvaraju
et al. (ICCV 2017) then give L^c per frame, averaged over the frames.
"""

import types

import cv2
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax import gradcam, models
from mer_jax.engine.folds import TrainState
from mer_jax.models.contract import TrunkHead

NUM_CLASSES, FRAMES, SIZE = 3, 2, 6
WIDTHS = {"left": 3, "right": 2}


class _Split(nn.Module):
    """(N, T, H, W, 1) -> per-frame convolutions 'left' and 'right' -> tanh -> mean -> Dense."""

    @nn.compact
    def __call__(self, x, *, train=False):
        n = x.shape[0]
        frames = x.reshape(-1, *x.shape[-3:])
        features = jnp.concatenate(
            [nn.Conv(c, (3, 3), padding="SAME", name=name)(frames) for name, c in WIDTHS.items()],
            axis=-1,
        )
        pooled = jnp.tanh(features).mean(axis=(1, 2)).reshape(n, -1, features.shape[-1])
        return nn.Dense(NUM_CLASSES, name="head")(pooled.mean(axis=1)), {}


def _conv_same(frames, kernel, bias):
    """3x3 'SAME' cross-correlation of (P, H, W, C) frames, in NumPy."""
    padded = np.pad(frames, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = frames.shape[1:3]
    out = np.zeros((*frames.shape[:3], kernel.shape[-1]))
    for di in range(3):
        for dj in range(3):
            out += np.einsum("phwc,co->phwo", padded[:, di : di + h, dj : dj + w], kernel[di, dj])
    return out + bias


def _reference(params, x, layers, classes=None):
    """(L^c (N, h, w), c, logits) by hand (see the module docstring)."""
    p = jax.tree_util.tree_map(np.asarray, params)
    n, t = x.shape[:2]
    frames = x.reshape(-1, *x.shape[-3:])
    a = np.concatenate(
        [_conv_same(frames, p[name]["kernel"], p[name]["bias"]) for name in WIDTHS], axis=-1
    )
    pooled = np.tanh(a).mean(axis=(1, 2)).reshape(n, t, -1).mean(axis=1)
    logits = pooled @ p["head"]["kernel"] + p["head"]["bias"]
    classes = logits.argmax(-1) if classes is None else np.asarray(classes)
    w = p["head"]["kernel"][:, np.repeat(classes, t)].T  # (P, K): W[k, c] of each frame's clip
    grad = w[:, None, None, :] * (1 - np.tanh(a) ** 2) / (t * a.shape[1] * a.shape[2])
    channels = np.concatenate([[name in layers] * c for name, c in WIDTHS.items()])
    alpha = grad.mean(axis=(1, 2))[:, channels]  # Eq. (1)
    cams = np.maximum(np.einsum("phwk,pk->phw", a[..., channels], alpha), 0.0)  # Eq. (2)
    return cams.reshape(n, t, *cams.shape[1:]).mean(axis=1), classes, logits


def _variables(seed, x):
    return _Split().init(jax.random.key(seed), jnp.asarray(x), train=False)


def _inputs(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, FRAMES, SIZE, SIZE, 1))


@pytest.mark.parametrize("layer", ["left", "left,right"])
def test_gradcam_equals_the_hand_computation_per_frame(layer):
    with jax.enable_x64(True):
        x = _inputs(4)
        variables = _variables(0, x)
        cams, classes = gradcam.gradcam(_Split(), variables, jnp.asarray(x), layer)
        expected, expected_classes, logits = _reference(variables["params"], x, layer)
        assert cams.dtype == jnp.float64 and cams.shape == (4, SIZE, SIZE)
        np.testing.assert_array_equal(classes, expected_classes)
        np.testing.assert_allclose(cams, expected, rtol=1e-10, atol=1e-14)
        assert np.ptp(expected) > 1e-3 and (expected == 0).any()  # the ReLU cut something
        # Another class than the predicted one, given explicitly.
        other = (expected_classes + 1) % NUM_CLASSES
        cams, classes = gradcam.gradcam(_Split(), variables, jnp.asarray(x), layer, other)
        np.testing.assert_allclose(cams, _reference(variables["params"], x, layer, other)[0],
                                   rtol=1e-10, atol=1e-14)  # fmt: skip
    assert len(set(expected_classes.tolist())) > 1 and logits.shape == (4, NUM_CLASSES)


def test_upsample_is_opencv_bilinear():
    cams = np.random.default_rng(1).random((2, 3, 4)).astype(np.float32)
    up = np.asarray(gradcam.upsample(jnp.asarray(cams), (12, 10)))
    for cam, got in zip(cams, up):
        np.testing.assert_allclose(got, cv2.resize(cam, (10, 12), cv2.INTER_LINEAR), atol=1e-6)


def _stacked(variables):
    """A leading fold axis over several folds' variables."""
    return jax.tree_util.tree_map(lambda *v: jnp.stack(v), *variables)


def _trunk_head():
    """'left' is a frozen trunk, the rest each fold's head (cf. aman.split_variables)."""

    def split(variables):
        trunk = {c: {"left": t["left"]} for c, t in variables.items()}
        head = {c: {k: v for k, v in t.items() if k != "left"} for c, t in variables.items()}
        return trunk, head

    return TrunkHead(lambda model: True, split, trunk_of=None, head_of=None)


def test_heldout_uses_the_weights_of_each_examples_fold(monkeypatch):
    monkeypatch.setattr(gradcam, "BATCH", 2)  # 5 examples: 3 vmapped steps, 1 padding entry
    x = _inputs(5, seed=2)
    folds = [_variables(seed, x[:1])["params"] for seed in range(3)]
    fold = np.array([2, 0, 2, 1, 0])
    spec = types.SimpleNamespace(name="split", gradcam_layer="left,right", trunk_head=None)
    logged = []
    state = TrainState(_stacked(folds), {}, None, None, None)
    maps, record = gradcam.heldout(spec, _Split(), state, fold, jnp.asarray(x), log=logged.append)
    assert not logged and maps["gradcam"].shape == (5, SIZE, SIZE, 1)
    expected = [_reference(folds[f], x[m : m + 1], "left,right") for m, f in enumerate(fold)]
    np.testing.assert_allclose(
        maps["gradcam"][..., 0], np.concatenate([e[0] for e in expected]), rtol=2e-4, atol=1e-7
    )
    assert record["gradcam"]["classes"] == [int(e[1][0]) for e in expected]
    assert record["gradcam"]["layer"] == "left,right" and record["gradcam"]["class"] == "predicted"
    # The best epoch's weights where a validation split kept them.
    best = TrainState(_stacked(folds[::-1]), {}, None, None, None, best=(_stacked(folds), {}))
    again, _ = gradcam.heldout(spec, _Split(), best, fold, jnp.asarray(x))
    np.testing.assert_allclose(again["gradcam"], maps["gradcam"], rtol=1e-6, atol=1e-9)
    # A frozen trunk ('left', shared) and each fold's head: joined into the full model.
    parts = _trunk_head()
    trunk = parts.split_variables({"params": folds[0]})[0]
    heads = _stacked([parts.split_variables({"params": p})[1]["params"] for p in folds])
    spec.trunk_head = parts
    joined, _ = gradcam.heldout(spec, _Split(), TrainState(heads, {}, None, None, None),
                                fold[:3], jnp.asarray(x[:3]), trunk)  # fmt: skip
    for m, f in enumerate(fold[:3]):
        variables = {**folds[f], "left": folds[0]["left"]}
        np.testing.assert_allclose(joined["gradcam"][m, ..., 0],
                                   _reference(variables, x[m : m + 1], "left,right")[0][0],
                                   rtol=2e-4, atol=1e-7)  # fmt: skip


@pytest.mark.parametrize(
    "layer, said",
    [("", "names no gradcam_layer"), ("middle", "never calls"), ("head", "one feature map")],
)
def test_heldout_skips_a_model_without_its_layer_with_a_log_line(layer, said):
    x = _inputs(1)
    spec = types.SimpleNamespace(name="split", gradcam_layer=layer, trunk_head=None)
    state = TrainState(_stacked([_variables(0, x)["params"]]), {}, None, None, None)
    logged = []
    skipped = gradcam.heldout(spec, _Split(), state, [0], jnp.asarray(x), log=logged.append)
    assert skipped == ({}, {})
    assert len(logged) == 1 and said in logged[0] and "split" in logged[0]


def _random_variables(model, shape, rng):
    """Variables of `model` for one example of `shape` without compiling its init: kernels
    normal with variance 2 / fan-in, other weights 0.1 normal (scales 1 + that), BatchNorm
    statistics mean 0 and variance 1."""
    template = models.variable_shapes(model, shape)

    def leaf(path, s):
        name = jax.tree_util.keystr(path)
        if "'var'" in name or "'mean'" in name:
            return jnp.full(s.shape, float("'var'" in name), s.dtype)
        if len(s.shape) >= 2:
            value = rng.normal(size=s.shape) * np.sqrt(2.0 / np.prod(s.shape[:-1]))
        else:
            value = float("'scale'" in name) + 0.1 * rng.normal(size=s.shape)
        return jnp.asarray(value, s.dtype)

    return jax.tree_util.tree_map_with_path(leaf, template)


@pytest.mark.parametrize("name", list(models.MODELS))
def test_every_registered_model_gives_a_finite_non_negative_map(name):
    """The small preset (`mer-jax bench --preset small`); every class's map."""
    spec = models.spec(name)
    if not spec.gradcam_layer:
        pytest.skip(f"{name} names no gradcam_layer")
    model = spec.build(NUM_CLASSES, **spec.small.kwargs)
    shape = spec.input_shape_at(spec.small.size, spec.small.frames or None)
    rng = np.random.default_rng(0)
    variables = _random_variables(model, shape, rng)
    x = jnp.asarray(np.repeat(rng.random((1, *shape)), NUM_CLASSES, axis=0), jnp.float32)
    run = jax.jit(lambda v, x, c: gradcam.gradcam(model, v, x, spec.gradcam_layer, c))
    cams, classes = run(variables, x, jnp.arange(NUM_CLASSES))
    cams = np.asarray(cams)
    assert cams.ndim == 3 and cams.shape[0] == NUM_CLASSES
    assert 1 <= cams.shape[1] <= shape[-3] and 1 <= cams.shape[2] <= shape[-2]
    assert np.isfinite(cams).all() and (cams >= 0).all()
    assert cams.max() > 0  # the layer is on the logits' gradient path
    up = gradcam.upsample(cams, shape[-3:-1])
    assert up.shape == (NUM_CLASSES, *shape[-3:-1])
