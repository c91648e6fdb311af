"""MEGC 2019 baselines STSTNet and OFF-ApexNet: parameter arithmetic from the layer tables,
shapes, the forward pass against NumPy, the Grad-CAM layer and the registry / CLI listing."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax import cli, models
from mer_jax.models import off_apexnet, ststnet


# ---------------------------------------------------------------------------
# Parameter arithmetic (layer by layer, written independently of the modules)
# ---------------------------------------------------------------------------
def _conv(k, i, o):
    return k * k * i * o + o


def _dense(i, o):
    return i * o + o


def _ststnet_params(classes):
    # STSTNet Table I: C1-k 3x3 on the 3-channel input with 3 | 5 | 8 filters, each followed by
    # batch norm (scale + offset, the authors' releases); P1 -> 10x10, P2 -> 5x5x16; FC 400.
    convs = _conv(3, 3, 3) + _conv(3, 3, 5) + _conv(3, 3, 8)  # 84 + 140 + 224
    norms = 2 * (3 + 5 + 8)
    return convs + norms + _dense(5 * 5 * 16, classes)


def _off_apexnet_params(classes, hidden=1024):
    # Per stream conv 5x5 (1 -> 6), conv 5x5 (6 -> 16); 2 x 7x7x16 = 1568 -> 1024 -> 1024 -> K.
    stream = _conv(5, 1, 6) + _conv(5, 6, 16)  # 156 + 2416
    return (
        2 * stream
        + _dense(2 * 7 * 7 * 16, hidden)
        + _dense(hidden, hidden)
        + _dense(hidden, classes)
    )


@pytest.mark.parametrize("classes", [3, 5])
def test_parameter_counts_match_the_layer_tables(classes):
    count = models.count_params
    assert count(ststnet.Model(num_classes=classes), (28, 28, 3)) == _ststnet_params(classes)
    assert count(off_apexnet.Model(num_classes=classes), (28, 28, 2)) == _off_apexnet_params(
        classes
    )


def test_parameter_counts_against_the_published_figures():
    """STSTNet Sec. IV / Table V: STSTNet 1670 (0.00167 M), OFF-ApexNet 2.77 M (3 classes)."""
    ststnet_count = models.count_params(ststnet.Model(), ststnet.DEFAULT_INPUT_SHAPE)
    apexnet_count = models.count_params(off_apexnet.Model(), off_apexnet.DEFAULT_INPUT_SHAPE)
    assert ststnet_count == 1683 and abs(ststnet_count / 1670 - 1) < 0.01
    assert apexnet_count == 2_664_475 and abs(apexnet_count / 2.77e6 - 1) < 0.05
    # The batch norms are the only non-Table-I parameters: without them, 1651.
    assert ststnet_count - 2 * 16 == 1651


# ---------------------------------------------------------------------------
# Shapes, errors, registry
# ---------------------------------------------------------------------------
def _random_variables(module, seed, *args):
    """Random NumPy weights of `module`'s shapes (no jitted init); running variances > 0."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(functools.partial(module.init, train=False), jax.random.key(0), *args)

    def draw(path, leaf):
        name = path[-1].key
        if name == "var":
            return rng.uniform(0.5, 2.0, size=leaf.shape).astype(np.float32)
        scale = 1 / np.sqrt(np.prod(leaf.shape[:-1])) if name == "kernel" else 0.3
        return (scale * rng.normal(size=leaf.shape)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes)


@functools.cache
def _run(name, size=12):
    """One jitted eval apply per model on random weights (3 examples, `size` x `size`)."""
    module = {"ststnet": ststnet, "off_apexnet": off_apexnet}[name]
    model = module.Model(num_classes=3)
    channels = module.DEFAULT_INPUT_SHAPE[-1]
    x = np.random.default_rng(1).normal(size=(3, size, size, channels)).astype(np.float32)
    variables = _random_variables(model, 2, x)
    logits, out = jax.jit(functools.partial(model.apply, train=False))(variables, x)
    return model, x, variables, logits, out


def test_shapes_at_the_papers_input():
    for module, maps in ((ststnet, (10, 10, 16)), (off_apexnet, (7, 7, 32))):
        model = module.Model()
        x = jnp.zeros((2, *module.DEFAULT_INPUT_SHAPE))
        (logits, out), _ = jax.eval_shape(
            lambda x, m=model: m.init_with_output(jax.random.key(0), x), x
        )
        assert logits.shape == (2, 3) and logits.dtype == jnp.float32
        assert out["stream_features"].shape == (2, *maps)
    # STSTNet's flattened features are Table I's FC input, 5 x 5 x 16 = 400.
    (_, out), _ = jax.eval_shape(
        lambda x: ststnet.Model().init_with_output(jax.random.key(0), x), jnp.zeros((1, 28, 28, 3))
    )
    assert out["pre_logits"].shape == (1, 400)


def test_bad_inputs_raise_one_clear_error():
    with pytest.raises(ValueError, match="optical strain"):
        ststnet.Model().init(jax.random.key(0), jnp.zeros((1, 28, 28, 2)))
    with pytest.raises(ValueError, match="horizontal and vertical"):
        off_apexnet.Model().init(jax.random.key(0), jnp.zeros((1, 28, 28, 3)))


def test_registry_and_cli_list_both_with_their_hand_counts(capsys, monkeypatch):
    assert {"ststnet", "off_apexnet"} <= set(models.MODELS)
    for name in ("ststnet", "off_apexnet"):
        assert models.spec(name).name == name
    # Only the two baselines in the catalogue: the CLI path, without every model's count.
    monkeypatch.setattr(models, "MODELS", {k: models.MODELS[k] for k in ("ststnet", "off_apexnet")})
    assert cli.main(["models", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["ststnet"]["params"] == _ststnet_params(3)
    assert rows["ststnet"]["input_shape"] == [28, 28, 3]
    assert rows["off_apexnet"]["params"] == _off_apexnet_params(3)
    assert rows["off_apexnet"]["input_shape"] == [28, 28, 2]


# ---------------------------------------------------------------------------
# NumPy references (eval mode: dropout off, batch norm on running statistics)
# ---------------------------------------------------------------------------
def _np_conv_same(x, w, b):
    k = w.shape[0]
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    n, hh, ww, _ = x.shape
    y = np.zeros((n, hh, ww, w.shape[-1]))
    for i in range(k):
        for j in range(k):
            y += xp[:, i : i + hh, j : j + ww, :] @ w[i, j]
    return y + b


def _np_maxpool_same(x, k):
    """k x k max-pool, stride k, TF 'same' padding (ceil(H / k) outputs, -inf padding)."""
    n, hh, ww, c = x.shape
    oh, ow = -(-hh // k), -(-ww // k)
    ph, pw = (oh - 1) * k + k - hh, (ow - 1) * k + k - ww
    xp = np.pad(
        x,
        ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)),
        constant_values=-np.inf,
    )
    return xp.reshape(n, oh, k, ow, k, c).max(axis=(2, 4))


def _np_avgpool2(x):
    n, hh, ww, c = x.shape
    x = x[:, : hh // 2 * 2, : ww // 2 * 2]
    return x.reshape(n, hh // 2, 2, ww // 2, 2, c).mean(axis=(2, 4))


def _relu(x):
    return np.maximum(x, 0)


def test_ststnet_matches_numpy_reference():
    """Table I: per stream conv -> ReLU -> BN -> 3x3/3 max-pool; concat; 2x2 avg-pool; FC."""
    _, x, variables, logits, out = _run("ststnet")
    p, stats = variables["params"]["streams"], variables["batch_stats"]["streams"]
    maps = []
    for k in (1, 2, 3):
        conv, bn, st = p[f"conv{k}"], p[f"bn{k}"], stats[f"bn{k}"]
        h = _relu(_np_conv_same(x, conv["kernel"], conv["bias"]))
        h = (h - st["mean"]) / np.sqrt(st["var"] + 1e-5) * bn["scale"] + bn["bias"]
        maps.append(_np_maxpool_same(h, 3))
    features = np.concatenate(maps, axis=-1)
    assert features.shape == (3, 4, 4, 16)  # 12 -> ceil(12 / 3) = 4
    flat = _np_avgpool2(features).reshape(3, -1)
    head = variables["params"]["head"]
    np.testing.assert_allclose(out["stream_features"], features, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["pre_logits"], flat, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits, flat @ head["kernel"] + head["bias"], rtol=1e-5, atol=1e-5)


def test_off_apexnet_matches_numpy_reference():
    """Per component conv5-ReLU-pool2-conv5-ReLU-pool2; concat; FC1-ReLU-FC2-ReLU-output."""
    _, x, variables, logits, out = _run("off_apexnet")
    p = variables["params"]
    maps = []
    for c, stream in enumerate(off_apexnet.STREAMS):
        h = x[..., c : c + 1]
        for i in (1, 2):
            conv = p["streams"][f"{stream}_conv{i}"]
            h = _np_maxpool_same(_relu(_np_conv_same(h, conv["kernel"], conv["bias"])), 2)
        maps.append(h)
    features = np.concatenate(maps, axis=-1)
    h = _relu(features.reshape(3, -1) @ p["fc1"]["kernel"] + p["fc1"]["bias"])
    h = _relu(h @ p["fc2"]["kernel"] + p["fc2"]["bias"])
    np.testing.assert_allclose(out["stream_features"], features, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["pre_logits"], h, rtol=1e-5, atol=1e-5)
    expected = h @ p["head"]["kernel"] + p["head"]["bias"]
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["ststnet", "off_apexnet"])
def test_gradcam_layer_is_the_spatial_map_before_pooling_and_flattening(name):
    model, x, variables, _, out = _run(name)
    path = models.spec(name).gradcam_layer
    assert path in variables["params"]
    capture = jax.jit(
        lambda v, x: model.apply(
            v, x, capture_intermediates=lambda m, _: m.path == (path,), mutable=["intermediates"]
        )
    )
    _, state = capture(variables, x)
    (captured,) = state["intermediates"][path]["__call__"]
    np.testing.assert_allclose(captured, out["stream_features"], rtol=1e-6)
    assert captured.ndim == 4


def test_dropout_only_in_train_mode_and_batch_stats_update():
    model, x, variables, logits, _ = _run("ststnet")
    train = jax.jit(
        lambda v, x, key: model.apply(
            v, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"]
        )
    )
    (a, _), state = train(variables, x, jax.random.key(1))
    (b, _), _ = train(variables, x, jax.random.key(2))
    assert not np.allclose(a, b)
    # Batch statistics move 0.1 of the way to the batch's (PyTorch's momentum).
    old = variables["batch_stats"]["streams"]["bn1"]["mean"]
    new = state["batch_stats"]["streams"]["bn1"]["mean"]
    conv = variables["params"]["streams"]["conv1"]
    batch_mean = _relu(_np_conv_same(x, conv["kernel"], conv["bias"])).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(new, 0.9 * old + 0.1 * batch_mean, rtol=1e-4, atol=1e-5)
    # Eval mode is deterministic: the cached eval logits again, whatever the dropout key.
    eval_a, _ = jax.jit(lambda v, x: model.apply(v, x, rngs={"dropout": jax.random.key(3)}))(
        variables, x
    )
    np.testing.assert_array_equal(eval_a, logits)
