"""AMAN (seed 003): ResNet-18 parameter arithmetic, trunk/head split, Eq. (5)-(10) against
NumPy, and the torchvision .npz/.pth loader against a NumPy torchvision-semantics forward
pass (the .pth tests need torch and skip without it)."""

import re
import sys
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax import models
from mer_jax.errors import UserError
from mer_jax.models import aman, weights

TORCHVISION_RESNET18_PARAMS = 11_689_512  # torchvision.models.resnet18(), fc included
TORCHVISION_FC_PARAMS = 512 * 1000 + 1000


# ---------------------------------------------------------------------------
# A torchvision resnet18 state_dict, written out independently of the code under test.
# ---------------------------------------------------------------------------
def torchvision_resnet18_shapes(width=64):
    """Key -> shape of torchvision's resnet18().state_dict() (width 64 is the real one)."""
    shapes = {}

    def bn(prefix, c):
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["conv1.weight"] = (width, 3, 7, 7)
    bn("bn1", width)
    cin = width
    for layer, cout in enumerate((width, 2 * width, 4 * width, 8 * width), start=1):
        for b in range(2):
            c_in = cin if b == 0 else cout
            shapes[f"layer{layer}.{b}.conv1.weight"] = (cout, c_in, 3, 3)
            bn(f"layer{layer}.{b}.bn1", cout)
            shapes[f"layer{layer}.{b}.conv2.weight"] = (cout, cout, 3, 3)
            bn(f"layer{layer}.{b}.bn2", cout)
            if b == 0 and layer > 1:
                shapes[f"layer{layer}.{b}.downsample.0.weight"] = (cout, cin, 1, 1)
                bn(f"layer{layer}.{b}.downsample.1", cout)
        cin = cout
    shapes["fc.weight"] = (1000, 8 * width)
    shapes["fc.bias"] = (1000,)
    return shapes


def fake_state_dict(width, seed=0):
    """Random values with sane scales (He-init convs, BN near identity) so activations stay O(1)."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in torchvision_resnet18_shapes(width).items():
        if key.endswith("num_batches_tracked"):
            state[key] = np.array(7, np.int64)
        elif key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif key.endswith("weight") and len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        elif key.endswith(".weight") and len(shape) == 1:
            state[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            state[key] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    return state


def _leaves(tree):
    return {
        tuple(k.key for k in path): leaf
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def _model_shapes(model, shape):
    return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *shape))))


def random_variables(module, *inputs, seed=0):
    """Random variables of `module` drawn in NumPy at eval_shape's shapes.

    He-scaled kernels, BatchNorm near identity; avoids compiling every initializer
    (a real `init` of ResNet-18 costs seconds on a busy CPU).
    """
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = path[-1].key
        if name == "kernel":
            fan_in = int(np.prod(leaf.shape[:-1]))
            return (rng.standard_normal(leaf.shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        if name in ("scale", "var"):
            return rng.uniform(0.5, 1.5, leaf.shape).astype(np.float32)
        return (0.1 * rng.standard_normal(leaf.shape)).astype(np.float32)

    shapes = jax.eval_shape(partial(module.init, jax.random.key(0)), *inputs)
    return jax.tree_util.tree_map_with_path(draw, shapes)


# ---------------------------------------------------------------------------
# Parameter counts.
# ---------------------------------------------------------------------------
def _conv(cin, cout, k):
    return k * k * cin * cout


def _bn(c):
    return 2 * c  # scale + bias


def _stage_params(cin, cout, downsample):
    block0 = _conv(cin, cout, 3) + _bn(cout) + _conv(cout, cout, 3) + _bn(cout)
    if downsample:
        block0 += _conv(cin, cout, 1) + _bn(cout)
    block1 = 2 * (_conv(cout, cout, 3) + _bn(cout))
    return block0 + block1


def test_parameter_counts_match_resnet18_arithmetic():
    stem = _conv(3, 64, 7) + _bn(64)
    layers = [
        _stage_params(64, 64, False),
        _stage_params(64, 128, True),
        _stage_params(128, 256, True),
        _stage_params(256, 512, True),
    ]
    backbone = stem + sum(layers)
    assert backbone == TORCHVISION_RESNET18_PARAMS - TORCHVISION_FC_PARAMS == 11_176_512
    # The test's own torchvision key list agrees (parameters only, buffers excluded).
    shapes = torchvision_resnet18_shapes()
    learnable = [s for k, s in shapes.items() if k.endswith(("weight", "bias"))]
    assert sum(int(np.prod(s)) for s in learnable) == TORCHVISION_RESNET18_PARAMS

    num_classes = 5
    leaves = _leaves(_model_shapes(aman.Model(num_classes), aman.DEFAULT_INPUT_SHAPE)["params"])
    count = lambda keep: sum(int(v.size) for p, v in leaves.items() if keep(p))  # noqa: E731
    heads = ("magnification_attention", "frame_attention", "classifier")
    assert count(lambda p: p[-2] not in heads) == backbone
    # Frozen = stem + layer1..3 (the authors' cached trunk); trainable = layer4 + MA + FA + FC.
    assert count(lambda p: aman.FROZEN(p)) == stem + sum(layers[:3]) == 2_782_784
    trainable = layers[3] + 513 + 513 + 512 * num_classes + num_classes
    assert count(lambda p: not aman.FROZEN(p)) == trainable == 8_397_319
    assert count(lambda p: p[0] == "head") == trainable
    assert aman.FROZEN(("params", "trunk", "conv1", "kernel"))
    assert not aman.FROZEN(("head", "layer4", "block_0", "conv1", "kernel"))

    full = models.count_params(aman.Model(num_classes), aman.DEFAULT_INPUT_SHAPE)
    assert full == backbone + trainable - layers[3]
    for name, kwargs in aman.ABLATIONS.items():
        # Removing the MA or the FA module removes exactly one Linear(512, 1).
        expected = full - (0 if name == "aman" else 513)
        assert (
            models.count_params(aman.Model(num_classes, **kwargs), aman.DEFAULT_INPUT_SHAPE)
            == expected
        )
    assert list(aman.ABLATIONS)[0] == "aman"


def test_frozen_through_moves_stages_between_trunk_and_head():
    shape = (2, 2, 32, 32, 3)
    base = _leaves(_model_shapes(aman.Model(3, width=8), shape)["params"])
    for cut, head_stages in (
        ("layer2", {"layer3", "layer4"}),
        ("stem", {"layer2", "layer3", "layer4", "layer1"}),
    ):
        moved = _leaves(_model_shapes(aman.Model(3, width=8, frozen_through=cut), shape)["params"])
        assert {p[1] for p in moved if p[0] == "head" and p[1].startswith("layer")} == head_stages
        # Same leaves, only re-parented.
        assert sorted(p[1:] for p in moved) == sorted(p[1:] for p in base)
    none = _leaves(_model_shapes(aman.Model(3, width=8, frozen_through="none"), shape)["params"])
    assert not any(aman.FROZEN(p) for p in none)


# ---------------------------------------------------------------------------
# Eq. (5)-(10) against NumPy.
# ---------------------------------------------------------------------------
def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def numpy_aggregate(f, p, magnification_pool, frame_pool, single_factor=-1):
    """f: (N, n, k, D) image features; p: head params (Dense kernels/biases)."""
    out = {}
    if magnification_pool == "attention":
        q, qb = p["magnification_attention"]["kernel"][:, 0], p["magnification_attention"]["bias"]
        alpha = _sigmoid(f @ q + qb)  # Eq. (5), (N, n, k)
        out["magnification_weights"] = alpha
        f_m = (alpha[..., None] * f).sum(2) / alpha.sum(2)[..., None]  # Eq. (6)-(7)
    elif magnification_pool == "mean":
        f_m = f.mean(2)
    else:
        f_m = f[:, :, single_factor]
    if frame_pool == "attention":
        w, wb = p["frame_attention"]["kernel"][:, 0], p["frame_attention"]["bias"]
        beta = _sigmoid(f_m @ w + wb)  # Eq. (8), (N, n)
        out["frame_weights"] = beta
        f_v = (beta[..., None] * f_m).sum(1) / beta.sum(1)[..., None]  # Eq. (9)-(10)
    else:
        f_v = f_m.mean(1)
    out["pre_logits"] = f_v
    logits = f_v @ p["classifier"]["kernel"] + p["classifier"]["bias"]
    return logits, out


@pytest.mark.parametrize("ablation", list(aman.ABLATIONS))
def test_ma_fa_aggregation_matches_numpy(ablation):
    rng = np.random.default_rng(1)
    n_clips, n, k, d = 2, 4, 3, 16
    # frozen_through='layer4': the head is avgpool + MA + FA + FC, features are F_i themselves.
    head = aman.Head(
        num_classes=3, width=d // 8, frozen_through="layer4", **aman.ABLATIONS[ablation]
    )
    feats = rng.normal(size=(n_clips, n, k, 2, 2, d)).astype(np.float32)
    # Random weights and biases, large enough that the sigmoid weights spread out.
    params = jax.tree_util.tree_map(
        lambda v: (rng.normal(size=v.shape) * 0.5).astype(np.float32),
        jax.eval_shape(head.init, jax.random.key(0), feats)["params"],
    )
    logits, out = head.apply({"params": params}, feats)
    p = jax.tree_util.tree_map(np.asarray, params)
    ref_logits, ref = numpy_aggregate(feats.mean((3, 4)), p, **aman.ABLATIONS[ablation])
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-5, atol=1e-5)
    assert logits.dtype == jnp.float32 and logits.shape == (n_clips, 3)
    assert {k for k in out if k.endswith("_weights")} == {k for k in ref if k.endswith("_weights")}
    for key, value in ref.items():
        np.testing.assert_allclose(out[key], value, rtol=1e-5, atol=1e-5, err_msg=key)
    if "magnification_weights" in ref:
        assert out["magnification_weights"].shape == (n_clips, n, k)
        assert ref["magnification_weights"].std() > 0.05  # the test exercises non-uniform weights
    if "frame_weights" in ref:
        assert out["frame_weights"].shape == (n_clips, n)


def test_head_in_bfloat16_returns_float32_logits():
    head = aman.Head(num_classes=3, width=2, frozen_through="layer4", dtype=jnp.bfloat16)
    feats = jnp.ones((1, 2, 2, 1, 1, 16))
    logits, _ = head.apply(random_variables(head, feats), feats)
    assert logits.dtype == jnp.float32


# ---------------------------------------------------------------------------
# Head(Trunk(x)) == Model(x), frozen trunk.
# ---------------------------------------------------------------------------
def test_head_of_trunk_equals_model_and_trunk_is_frozen():
    model = aman.Model(num_classes=3, width=8)
    x = np.random.default_rng(4).uniform(size=(2, 3, 2, 32, 32, 3)).astype(np.float32)
    variables = random_variables(model, x)
    trunk_vars, head_vars = aman.split_variables(variables)
    assert aman.join_variables(trunk_vars, head_vars).keys() == variables.keys()
    trunk, head = aman.trunk_of(model), aman.head_of(model)

    feats = trunk.apply(trunk_vars, x)
    assert feats.shape == (2, 3, 2, 2, 2, 32)  # /16 after layer3, 4 * width channels
    np.testing.assert_array_equal(feats, model.apply(variables, x, method="trunk_features"))
    logits, out = model.apply(variables, x)
    head_logits, head_out = head.apply(head_vars, feats)
    np.testing.assert_allclose(logits, head_logits, rtol=1e-6, atol=1e-6)
    assert out["magnification_weights"].shape == (2, 3, 2) and out["frame_weights"].shape == (2, 3)
    assert out["pre_logits"].shape == (2, 64)

    # Training mode: only the head's BatchNorm statistics move; the result matches the head alone.
    (train_logits, _), state = model.apply(variables, x, train=True, mutable=["batch_stats"])
    (head_train_logits, _), head_state = head.apply(
        head_vars, feats, train=True, mutable=["batch_stats"]
    )
    np.testing.assert_allclose(train_logits, head_train_logits, rtol=1e-5, atol=1e-5)
    new_trunk, new_head = aman.split_variables(state)
    jax.tree_util.tree_map(
        np.testing.assert_array_equal, new_trunk["batch_stats"], trunk_vars["batch_stats"]
    )
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6),
        new_head["batch_stats"],
        head_state["batch_stats"],
    )
    old = variables["batch_stats"]["head"]["layer4"]["block_0"]["bn1"]["mean"]
    assert not np.allclose(new_head["batch_stats"]["layer4"]["block_0"]["bn1"]["mean"], old)

    def loss(trunk_params):
        params = {"trunk": trunk_params, "head": variables["params"]["head"]}
        logits, _ = model.apply(
            {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
        )[0]
        return jnp.sum(logits**2)

    # Stop-gradient: the frozen trunk gets no gradient (and costs no backward pass).
    grads = jax.grad(loss)(variables["params"]["trunk"])
    for path, g in _leaves(grads).items():
        assert not np.any(g), path


def test_bad_inputs_raise_naming_the_argument():
    model = aman.Model(num_classes=3, width=8)
    with pytest.raises(ValueError, match="input x"):
        model.init(jax.random.key(0), jnp.zeros((1, 2, 32, 32, 3)))
    with pytest.raises(ValueError, match="input x"):
        model.init(jax.random.key(0), jnp.zeros((1, 2, 2, 32, 32, 1)))
    with pytest.raises(ValueError, match="frozen_through"):
        aman.Model(3, width=8, frozen_through="layer5").init(
            jax.random.key(0), jnp.zeros((1, 1, 1, 32, 32, 3))
        )
    head = aman.Head(3, width=8)
    with pytest.raises(ValueError, match="features"):
        head.init(jax.random.key(0), jnp.zeros((1, 2, 2, 2, 2, 16)))
    with pytest.raises(ValueError, match="single_factor"):
        aman.Head(
            3, width=2, frozen_through="layer4", magnification_pool="single", single_factor=2
        ).init(jax.random.key(0), jnp.zeros((1, 2, 2, 1, 1, 16)))
    with pytest.raises(ValueError, match="magnification_pool"):
        aman.Head(3, width=2, frozen_through="layer4", magnification_pool="max").init(
            jax.random.key(0), jnp.zeros((1, 2, 2, 1, 1, 16))
        )


# ---------------------------------------------------------------------------
# The torchvision loader.
# ---------------------------------------------------------------------------
def test_loader_places_every_torchvision_tensor(tmp_path):
    state = fake_state_dict(64)
    path = tmp_path / "resnet18.npz"
    np.savez(path, **state)
    loaded = aman.load_torchvision_resnet18(path)

    # Exactly the model's ResNet leaves, with the model's shapes.
    want = _model_shapes(aman.Model(5), aman.DEFAULT_INPUT_SHAPE)
    for collection in ("params", "batch_stats"):
        model_leaves = {
            p: v.shape for p, v in _leaves(want[collection]).items() if aman.is_resnet_leaf(p)
        }
        got = {p: v.shape for p, v in _leaves(loaded[collection]).items()}
        assert got == model_leaves, collection

    p, s = loaded["params"], loaded["batch_stats"]
    # OIHW -> HWIO: torch w[o, i, y, x] lands at kernel[y, x, i, o].
    np.testing.assert_array_equal(
        p["trunk"]["conv1"]["kernel"][2, 5, 1, 7], state["conv1.weight"][7, 1, 2, 5]
    )
    np.testing.assert_array_equal(
        p["trunk"]["layer2"]["block_1"]["conv2"]["kernel"],
        state["layer2.1.conv2.weight"].transpose(2, 3, 1, 0),
    )
    np.testing.assert_array_equal(
        p["head"]["layer4"]["block_0"]["downsample_conv"]["kernel"][0, 0],
        state["layer4.0.downsample.0.weight"][:, :, 0, 0].T,
    )
    np.testing.assert_array_equal(
        p["head"]["layer4"]["block_0"]["downsample_bn"]["scale"],
        state["layer4.0.downsample.1.weight"],
    )
    np.testing.assert_array_equal(p["trunk"]["bn1"]["bias"], state["bn1.bias"])
    np.testing.assert_array_equal(
        s["trunk"]["layer3"]["block_1"]["bn2"]["var"], state["layer3.1.bn2.running_var"]
    )
    np.testing.assert_array_equal(
        s["head"]["layer4"]["block_1"]["bn1"]["mean"], state["layer4.1.bn1.running_mean"]
    )

    # frozen_through re-routes layer3 into the head; merge_variables accepts the result.
    cut = aman.load_torchvision_resnet18(path, frozen_through="layer2")
    assert "layer3" in cut["params"]["head"] and "layer3" not in cut["params"]["trunk"]


def test_loader_errors_name_the_key_and_file(tmp_path):
    state = fake_state_dict(8)
    missing = dict(state)
    del missing["layer3.1.bn2.running_var"]
    np.savez(tmp_path / "missing.npz", **missing)
    with pytest.raises(ValueError, match=r"layer3\.1\.bn2\.running_var.*missing\.npz"):
        aman.load_torchvision_resnet18(tmp_path / "missing.npz", width=8)

    wrong = dict(state, **{"layer1.0.conv1.weight": np.zeros((8, 8, 5, 5), np.float32)})
    np.savez(tmp_path / "wrong.npz", **wrong)
    with pytest.raises(ValueError, match=r"layer1\.0\.conv1\.weight.*wrong\.npz.*\(8, 8, 5, 5\)"):
        aman.load_torchvision_resnet18(tmp_path / "wrong.npz", width=8)

    np.savez(
        tmp_path / "resnet34.npz", **state, **{"layer1.2.conv1.weight": np.zeros((8, 8, 3, 3))}
    )
    with pytest.raises(ValueError, match=r"layer1\.2\.conv1\.weight"):
        aman.load_torchvision_resnet18(tmp_path / "resnet34.npz", width=8)

    # A DataParallel checkpoint ('module.' prefix) loads like the plain one.
    np.savez(tmp_path / "plain.npz", **state)
    np.savez(tmp_path / "parallel.npz", **{f"module.{k}": v for k, v in state.items()})
    jax.tree_util.tree_map(
        np.testing.assert_array_equal,
        aman.load_torchvision_resnet18(tmp_path / "parallel.npz", width=8),
        aman.load_torchvision_resnet18(tmp_path / "plain.npz", width=8),
    )

    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        aman.load_torchvision_resnet18(tmp_path / "nowhere.npz")

    # The full-width file against a width-8 expectation: shape error on the first key.
    np.savez(tmp_path / "full.npz", **{"conv1.weight": np.zeros((64, 3, 7, 7), np.float32)})
    with pytest.raises(ValueError, match=r"conv1\.weight"):
        aman.load_torchvision_resnet18(tmp_path / "full.npz", width=8)


def _save(path, state):
    """`state` written as `path`'s suffix says: np.savez, or torch.save of tensors."""
    if path.suffix == ".npz":
        np.savez(path, **state)
    else:
        torch = pytest.importorskip("torch")
        torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}, path)


def test_pth_gives_exactly_the_variables_of_the_same_arrays_as_npz(tmp_path):
    torch = pytest.importorskip("torch")
    state = fake_state_dict(8, seed=5)
    np.savez(tmp_path / "weights.npz", **state)
    want = aman.load_torchvision_resnet18(tmp_path / "weights.npz", width=8)
    tensors = {k: torch.from_numpy(v) for k, v in state.items()}
    checkpoints = {
        "plain.pth": tensors,
        "wrapped.pt": {"state_dict": tensors, "epoch": 3},
        "model.pth": {"model": {f"module.{k}": v for k, v in tensors.items()}, "epoch": 3},
    }
    for name, obj in checkpoints.items():
        torch.save(obj, tmp_path / name)
        got = aman.load_torchvision_resnet18(tmp_path / name, width=8)
        assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want), name
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            assert a.dtype == b.dtype == np.float32
            np.testing.assert_array_equal(a, b)

    # A half-precision checkpoint reads as float32 (NumPy has no bfloat16 for .numpy()).
    half = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tensors.items()}
    torch.save(half, tmp_path / "half.pth")
    rounded = {
        k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in half.items()
    }
    np.savez(tmp_path / "rounded.npz", **rounded)
    jax.tree_util.tree_map(
        np.testing.assert_array_equal,
        aman.load_torchvision_resnet18(tmp_path / "half.pth", width=8),
        aman.load_torchvision_resnet18(tmp_path / "rounded.npz", width=8),
    )

    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    with pytest.raises(UserError, match=r"list\.pth holds no state_dict"):
        aman.load_torchvision_resnet18(tmp_path / "list.pth", width=8)
    (tmp_path / "garbage.pth").write_bytes(b"not a torch file")
    with pytest.raises(UserError, match=r"garbage\.pth: torch\.load failed"):
        aman.load_torchvision_resnet18(tmp_path / "garbage.pth", width=8)


def test_unknown_suffix_and_pth_without_torch_are_user_errors(tmp_path, monkeypatch):
    path = tmp_path / "resnet18.h5"
    path.write_bytes(b"\x89HDF")
    with pytest.raises(
        UserError, match=r"resnet18\.h5: unknown suffix '\.h5'.*\.npz, \.pth or \.pt"
    ):
        aman.load_torchvision_resnet18(path, width=8)
    # No torch (None in sys.modules makes `import torch` fail): install it or convert.
    monkeypatch.setitem(sys.modules, "torch", None)
    path = tmp_path / "resnet18.pth"
    path.write_bytes(b"PK")
    with pytest.raises(UserError) as err:
        aman.load_torchvision_resnet18(path, width=8)
    message = str(err.value)
    assert "torch is not installed" in message and "pip install torch" in message
    assert message.endswith(f"{weights.NPZ_COMMAND} {path} {tmp_path / 'resnet18'}.npz")
    # aman's docstring shows the same conversion command.
    assert weights.NPZ_COMMAND in aman.load_torchvision_resnet18.__doc__
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nowhere.pt"))):
        aman.load_torchvision_resnet18(tmp_path / "nowhere.pt", width=8)


# NumPy forward pass with torchvision semantics (NCHW, OIHW, symmetric padding, eval-mode BN).
def _np_conv(x, w, stride, pad):
    n, _, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((n, o, ho, wo), np.float64)
    for i in range(k):
        for j in range(k):
            patch = xp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return out


def _np_bn(x, sd, prefix):
    g = lambda name: sd[f"{prefix}.{name}"][None, :, None, None]  # noqa: E731
    return (x - g("running_mean")) / np.sqrt(g("running_var") + 1e-5) * g("weight") + g("bias")


def _np_maxpool(x):
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    ho, wo = (x.shape[2] - 1) // 2 + 1, (x.shape[3] - 1) // 2 + 1
    windows = [xp[:, :, i : i + 2 * ho : 2, j : j + 2 * wo : 2] for i in range(3) for j in range(3)]
    return np.max(windows, axis=0)


def np_resnet18_features(images_nhwc, sd):
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = ((images_nhwc - mean) / std).transpose(0, 3, 1, 2)
    x = _np_maxpool(relu(_np_bn(_np_conv(x, sd["conv1.weight"], 2, 3), sd, "bn1")))
    for layer in range(1, 5):
        for b in range(2):
            p = f"layer{layer}.{b}"
            stride = 2 if layer > 1 and b == 0 else 1
            y = relu(_np_bn(_np_conv(x, sd[f"{p}.conv1.weight"], stride, 1), sd, f"{p}.bn1"))
            y = _np_bn(_np_conv(y, sd[f"{p}.conv2.weight"], 1, 1), sd, f"{p}.bn2")
            if f"{p}.downsample.0.weight" in sd:
                x = _np_bn(
                    _np_conv(x, sd[f"{p}.downsample.0.weight"], stride, 0), sd, f"{p}.downsample.1"
                )
            x = relu(x + y)
    return x.mean(axis=(2, 3))


@pytest.mark.parametrize("suffix", [".npz", ".pth"])
def test_pretrained_model_matches_numpy_torchvision_forward(tmp_path, suffix):
    width, n_clips, n, k, size = 8, 2, 3, 2, 32
    state = fake_state_dict(width, seed=3)
    path = tmp_path / f"tiny{suffix}"
    _save(path, state)
    model = aman.Model(num_classes=3, width=width)
    x = np.random.default_rng(4).uniform(size=(n_clips, n, k, size, size, 3)).astype(np.float32)
    init = random_variables(model, x)
    variables = weights.merge_variables(init, aman.load_torchvision_resnet18(path, width=width))
    logits, out = model.apply(variables, x)

    f = np_resnet18_features(x.reshape(-1, size, size, 3).astype(np.float64), state)
    f = f.reshape(n_clips, n, k, -1)
    head_params = jax.tree_util.tree_map(np.asarray, variables["params"]["head"])
    ref_logits, ref = numpy_aggregate(f, head_params, "attention", "attention")
    scale = np.abs(ref["pre_logits"]).max()
    assert scale > 0.1  # activations neither vanished nor exploded
    np.testing.assert_allclose(out["pre_logits"], ref["pre_logits"], rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(
        out["magnification_weights"], ref["magnification_weights"], rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-4, atol=1e-4 * scale)

    with pytest.raises(ValueError, match="shape"):
        weights.merge_variables(
            init, {"params": {"head": {"classifier": {"bias": np.zeros(7, np.float32)}}}}
        )
