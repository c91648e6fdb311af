"""AMAN (seed 003: Wei, Zheng, Zong, Jiang, Lu, Liu, "A Novel Micro-Expression
Recognition Approach Using Attention-Based Magnification-Adaptive Networks",
ICASSP 2022).

A clip is n = 11 frames, each magnified against the onset frame at k = 9
factors (amp 1..9, Eq. (3)), 224x224 RGB: input x of shape (N, n, k, H, W, 3)
in [0, 1]. Every image goes through a ResNet-18 (torchvision layout, Sec. 3.1.1)
to a 512-d feature F (Eq. (4)); then

  MA module  alpha_i = sigmoid(F_i . q0 + b)   F_m = sum_i alpha_i F_i / sum_i alpha_i   Eq. (5)-(7)
  FA module  beta_j = sigmoid(F_m_j . p0 + b)  F_v = sum_j beta_j F_m_j / sum_j beta_j   Eq. (8)-(10)

and a fully-connected layer classifies F_v. q0 and p0 are `Linear(512, 1)` as
in the authors' code (with bias). Sum-normalised sigmoid weights equal
softmax(log_sigmoid(z)), which is how they are computed here (no 0/0).

The paper freezes "the former residual blocks" and fine-tunes the last; the
authors' code caches ResNet-18 features through layer3 (256x14x14 per image)
and trains layer4 -> avgpool. The model is therefore split in two:
`Trunk` (input normalisation, stem, layer1..`frozen_through`; BatchNorm always
in inference mode, its output behind a stop-gradient) and `Head` (the
remaining stages, avgpool, MA, FA, classifier) on trunk features of shape
(N, n, k, h, w, c). `Model` is Head(Trunk(x)); `Model.trunk_features` and
`Model.from_features` (via `model.apply(..., method=...)`) or `trunk_of` /
`head_of` with `split_variables` let a trainer compute the frozen features
once per clip and train the head on them. `FROZEN` marks the trunk's params.

Ablations (Table 3, "we kept only one module each time"):
- `ma_only`: the FA module removed; frames averaged with equal weights.
- `fa_only`: the MA module removed, which the paper describes as the
  "single-magnification method": one factor per frame, `single_factor`
  (default the last one, amp = k; the paper does not say which).
- `fa_only_mean`: our variant, factors averaged with equal weights then FA.

Pretrained weights: the paper pre-trains ResNet-18 on FER2017 (not
published); `load_torchvision_resnet18` reads any torchvision `resnet18`
state_dict, as .pth/.pt (torch installed) or saved as .npz.
"""

import dataclasses
import os
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mer_jax.errors import UserError
from mer_jax.models import layers, weights
from mer_jax.models.contract import ModelSpec, SmallPreset, TrunkHead

DEFAULT_INPUT_SHAPE = (11, 9, 224, 224, 3)  # (frames n, factors k, H, W, C), Sec. 3.1
DEFAULT_NUM_CLASSES = 5  # CASME II / SAMM; SMIC-HS has 3
ABLATIONS = {
    "aman": {"magnification_pool": "attention", "frame_pool": "attention"},
    "ma_only": {"magnification_pool": "attention", "frame_pool": "mean"},
    "fa_only": {"magnification_pool": "single", "frame_pool": "attention"},
    "fa_only_mean": {"magnification_pool": "mean", "frame_pool": "attention"},
}

STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")
FROZEN_THROUGH = ("none", *STAGES)
MAGNIFICATION_POOLS = ("attention", "mean", "single")
FRAME_POOLS = ("attention", "mean")
# torchvision's ImageNet input normalisation (transforms.Normalize), on [0, 1] pixels.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_BLOCKS_PER_STAGE = 2  # ResNet-18: [2, 2, 2, 2] BasicBlocks


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"aman: {name}={value!r} is not one of {list(allowed)}")


def _split_stages(frozen_through: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(trunk stages, head stages) of the ResNet-18 for `frozen_through`."""
    _choice("frozen_through", frozen_through, FROZEN_THROUGH)
    cut = FROZEN_THROUGH.index(frozen_through)
    return STAGES[:cut], STAGES[cut:]


def _stage_channels(stage: str, width: int) -> int:
    return width if stage == "stem" else width * 2 ** (int(stage[-1]) - 1)


def _pad(k: int) -> tuple[tuple[int, int], tuple[int, int]]:
    # Symmetric padding as in PyTorch (Flax 'SAME' pads strided convs asymmetrically).
    return ((k // 2, k // 2), (k // 2, k // 2))


def _flatten_images(x):
    """(..., H, W, C) -> (prod(...), H, W, C) and the leading shape."""
    return x.reshape(-1, *x.shape[-3:]), x.shape[:-3]


# ---------------------------------------------------------------------------
# ResNet-18 (torchvision layout; every layer named after its state_dict key).
# ---------------------------------------------------------------------------
class BasicBlock(nn.Module):
    """torchvision BasicBlock: conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU."""

    features: int
    strides: int = 1
    frozen_bn: bool = False
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x, *, train: bool):
        norm = layers.batch_norm(frozen=self.frozen_bn or not train, dtype=self.dtype)
        conv = partial(layers.conv_class(self.conv_impl), use_bias=False, dtype=self.dtype)
        s = (self.strides, self.strides)
        y = conv(self.features, (3, 3), s, padding=_pad(3), name="conv1")(x)
        y = nn.relu(norm(name="bn1")(y))
        y = conv(self.features, (3, 3), padding=_pad(3), name="conv2")(y)
        y = norm(name="bn2")(y)
        if self.strides != 1 or x.shape[-1] != self.features:
            x = conv(self.features, (1, 1), s, padding="VALID", name="downsample_conv")(x)
            x = norm(name="downsample_bn")(x)
        return nn.relu(x + y)


class ResNetStage(nn.Module):
    """One of torchvision's layer1..layer4: two BasicBlocks, the first may downsample."""

    features: int
    strides: int
    frozen_bn: bool = False
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x, *, train: bool):
        for b in range(_BLOCKS_PER_STAGE):
            x = BasicBlock(
                self.features,
                strides=self.strides if b == 0 else 1,
                frozen_bn=self.frozen_bn,
                dtype=self.dtype,
                conv_impl=self.conv_impl,
                name=f"block_{b}",
            )(x, train=train)
        return x


def _run_stages(module, stages, x, *, train: bool, frozen_bn: bool, dtype):
    """Apply `stages` of the ResNet-18 (a subset of STAGES, in order) to images x."""
    width = module.width
    for stage in stages:
        if stage == "stem":
            x = layers.conv_class(module.conv_impl)(
                width, (7, 7), (2, 2), padding=_pad(7), use_bias=False, dtype=dtype, name="conv1"
            )(x)
            x = layers.batch_norm(frozen=frozen_bn or not train, dtype=dtype)(name="bn1")(x)
            x = nn.max_pool(nn.relu(x), (3, 3), (2, 2), padding=_pad(3))
        else:
            x = ResNetStage(
                _stage_channels(stage, width),
                strides=1 if stage == "layer1" else 2,
                frozen_bn=frozen_bn,
                dtype=dtype,
                conv_impl=module.conv_impl,
                name=stage,
            )(x, train=train)
    return x


class Trunk(nn.Module):
    """The frozen part, Sec. 3.1.1: ImageNet normalisation, then stem..`frozen_through`.

    Maps images (..., H, W, 3) in [0, 1] to features (..., h, w, c). BatchNorm
    always uses its running statistics (a frozen, cached feature extractor).
    """

    width: int = 64
    frozen_through: str = "layer3"
    normalize: bool = True
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x):
        if x.ndim < 4 or x.shape[-1] != 3:
            raise ValueError(
                f"aman.Trunk: input x must be images (..., H, W, 3), got shape {tuple(x.shape)}"
            )
        stages, _ = _split_stages(self.frozen_through)
        images, lead = _flatten_images(x)
        images = images.astype(jnp.float32)
        if self.normalize:
            images = (images - jnp.array(IMAGENET_MEAN)) / jnp.array(IMAGENET_STD)
        y = _run_stages(
            self, stages, images.astype(self.dtype), train=False, frozen_bn=True, dtype=self.dtype
        )
        return y.reshape(*lead, *y.shape[1:])


def attention_pool(features, scores, axis: int):
    """Eq. (6)-(7) / (9)-(10): sum_i sigmoid(z_i) F_i / sum_i sigmoid(z_i) over `axis`.

    `scores` z holds the logits with a trailing singleton axis; returns the
    pooled features and the sigmoid weights (without the singleton).
    """
    weights = jax.nn.softmax(jax.nn.log_sigmoid(scores), axis=axis)
    return jnp.sum(weights * features, axis=axis), jax.nn.sigmoid(scores[..., 0])


class Head(nn.Module):
    """The trainable part: remaining ResNet stages, avgpool, MA (Eq. 5-7), FA (Eq. 8-10), FC.

    Input: trunk features (N, n, k, h, w, c). Returns `(logits, out)` with
    `magnification_weights` alpha (N, n, k) when the MA module is on,
    `frame_weights` beta (N, n) when the FA module is on, `frame_features`
    F_m (N, n, D) and `pre_logits` F_v (N, D), D = 8 * width.
    """

    num_classes: int = DEFAULT_NUM_CLASSES
    width: int = 64
    frozen_through: str = "layer3"
    magnification_pool: str = "attention"
    frame_pool: str = "attention"
    single_factor: int = -1
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, features, *, train: bool = False):
        _choice("magnification_pool", self.magnification_pool, MAGNIFICATION_POOLS)
        _choice("frame_pool", self.frame_pool, FRAME_POOLS)
        trunk_stages, stages = _split_stages(self.frozen_through)
        channels = _stage_channels(trunk_stages[-1], self.width) if trunk_stages else 3
        if features.ndim != 6 or features.shape[-1] != channels:
            raise ValueError(
                f"aman.Head: features must be (N, n, k, h, w, {channels}) for "
                f"frozen_through={self.frozen_through!r}, width={self.width}; "
                f"got shape {tuple(features.shape)}"
            )
        n_clips, n_frames, n_factors = features.shape[:3]
        if self.magnification_pool == "single" and not -n_factors <= self.single_factor < n_factors:
            raise ValueError(
                f"aman.Head: single_factor={self.single_factor} outside the {n_factors} factors"
            )
        out = {}
        images, _ = _flatten_images(features)
        y = _run_stages(
            self, stages, images.astype(self.dtype), train=train, frozen_bn=False, dtype=self.dtype
        )
        # avgpool -> F_i (Eq. 4); attention arithmetic in float32.
        f = jnp.mean(y.astype(jnp.float32), axis=(1, 2)).reshape(n_clips, n_frames, n_factors, -1)
        dense = partial(nn.Dense, 1, dtype=self.dtype, param_dtype=jnp.float32)

        # MA module over the k magnification factors, Eq. (5)-(7).
        if self.magnification_pool == "attention":
            scores = dense(name="magnification_attention")(f).astype(jnp.float32)
            f_m, out["magnification_weights"] = attention_pool(f, scores, axis=2)
        elif self.magnification_pool == "mean":
            f_m = jnp.mean(f, axis=2)
        else:
            f_m = f[:, :, self.single_factor]
        out["frame_features"] = f_m

        # FA module over the n frames, Eq. (8)-(10).
        if self.frame_pool == "attention":
            scores = dense(name="frame_attention")(f_m).astype(jnp.float32)
            f_v, out["frame_weights"] = attention_pool(f_m, scores, axis=1)
        else:
            f_v = jnp.mean(f_m, axis=1)
        out["pre_logits"] = f_v
        f_v = nn.Dropout(self.dropout_rate, deterministic=not train)(f_v)
        logits = nn.Dense(self.num_classes, dtype=self.dtype, name="classifier")(f_v)
        return logits.astype(jnp.float32), out


def _part_of(model: "Model", part: type[nn.Module]) -> nn.Module:
    """`part` (Trunk or Head) with the settings of `model` it shares by name."""
    names = {f.name for f in dataclasses.fields(part)} - {"parent", "name"}
    return part(**{n: getattr(model, n) for n in names})


def trunk_of(model: "Model") -> Trunk:
    """The `Trunk` of `model` as a standalone module (apply it to `split_variables(...)[0]`)."""
    return _part_of(model, Trunk)


def head_of(model: "Model") -> Head:
    """The `Head` of `model` as a standalone module (apply it to `split_variables(...)[1]`)."""
    return _part_of(model, Head)


class Model(nn.Module):
    """AMAN end to end, Fig. 2: Head(Trunk(x)) on x of shape (N, n, k, H, W, 3) in [0, 1].

    `width` is ResNet-18's first-stage channels (64 in the paper; narrower for
    CPU tests); features are 8 * width wide. `frozen_through` is the last
    frozen ResNet stage ('layer3' as in the authors' code; 'none' trains all).
    `normalize` applies torchvision's ImageNet mean/std to the input.
    """

    num_classes: int = DEFAULT_NUM_CLASSES
    width: int = 64
    frozen_through: str = "layer3"
    magnification_pool: str = "attention"
    frame_pool: str = "attention"
    single_factor: int = -1
    dropout_rate: float = 0.0
    normalize: bool = True
    dtype: Any = jnp.float32
    conv_impl: str = "xla"  # layers.CONV_IMPLS: how convolutions compute, same results

    def setup(self):
        self.trunk = trunk_of(self)
        self.head = head_of(self)

    def __call__(self, x, *, train: bool = False):
        if x.ndim != 6:
            raise ValueError(
                f"aman.Model: input x must be (N, frames, factors, H, W, 3), got shape {tuple(x.shape)}"
            )
        return self.from_features(self.trunk_features(x), train=train)

    def trunk_features(self, x):
        """Frozen features (N, n, k, h, w, c); gradient-free (the paper's frozen blocks)."""
        return jax.lax.stop_gradient(self.trunk(x))

    def from_features(self, features, *, train: bool = False):
        """`(logits, out)` from `trunk_features` output."""
        return self.head(features, train=train)


def FROZEN(path: tuple[str, ...]) -> bool:  # noqa: N802 - name fixed by the model contract
    """True for the trunk's parameters (path from the params root; a leading 'params' is skipped)."""
    if path and path[0] == "params":
        path = path[1:]
    return bool(path) and path[0] == "trunk"


def split_variables(variables) -> tuple[dict, dict]:
    """Model variables -> (trunk variables, head variables), collection by collection."""
    trunk, head = {}, {}
    for collection, tree in variables.items():
        unknown = set(tree) - {"trunk", "head"}
        if unknown:
            raise UserError(
                f"aman.split_variables: collection {collection!r} has entries {sorted(unknown)}"
            )
        if "trunk" in tree:
            trunk[collection] = tree["trunk"]
        if "head" in tree:
            head[collection] = tree["head"]
    return trunk, head


def join_variables(trunk_variables, head_variables) -> dict:
    """Inverse of `split_variables`."""
    out = {}
    for part, tree in (("trunk", trunk_variables), ("head", head_variables)):
        for collection, value in tree.items():
            out.setdefault(collection, {})[part] = value
    return out


# ---------------------------------------------------------------------------
# Pretrained weights from a torchvision ResNet-18 state_dict.
# ---------------------------------------------------------------------------
_BN_LEAVES = {"weight": ("params", "scale"), "bias": ("params", "bias")}
_BN_STATS = {"running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


def _resnet18_keys(width: int) -> dict[str, tuple[tuple[int, ...], str, tuple[str, ...], str]]:
    """torchvision key -> (torch shape, stage, Flax module path inside the stage, leaf kind)."""
    keys = {}

    def conv(prefix, stage, path, cout, cin, k):
        keys[f"{prefix}.weight"] = ((cout, cin, k, k), stage, path, "kernel")

    def bn(prefix, stage, path, c):
        for name in (*_BN_LEAVES, *_BN_STATS):
            keys[f"{prefix}.{name}"] = ((c,), stage, path, name)

    conv("conv1", "stem", ("conv1",), width, 3, 7)
    bn("bn1", "stem", ("bn1",), width)
    cin = width
    for stage in STAGES[1:]:
        cout = _stage_channels(stage, width)
        for b in range(_BLOCKS_PER_STAGE):
            p, path = f"{stage}.{b}", (stage, f"block_{b}")
            conv(f"{p}.conv1", stage, (*path, "conv1"), cout, cin, 3)
            bn(f"{p}.bn1", stage, (*path, "bn1"), cout)
            conv(f"{p}.conv2", stage, (*path, "conv2"), cout, cout, 3)
            bn(f"{p}.bn2", stage, (*path, "bn2"), cout)
            if b == 0 and (stage != "layer1" or cin != cout):
                conv(f"{p}.downsample.0", stage, (*path, "downsample_conv"), cout, cin, 1)
                bn(f"{p}.downsample.1", stage, (*path, "downsample_bn"), cout)
            cin = cout
    return keys


def load_torchvision_resnet18(
    path: str | os.PathLike, *, frozen_through: str = "layer3", width: int = 64
) -> dict:
    """ResNet-18 variables for `Model` from a torchvision `resnet18` state_dict file.

    The file (config key `init.pretrained`) is read by `weights.read_state_dict`:
    a .pth/.pt as `torch.save` wrote it, when torch is installed (a checkpoint
    holding the weights under 'state_dict' or 'model' is unwrapped), or a .npz.
    Without torch, convert a .pth once where torch is installed (the command is
    `weights.NPZ_COMMAND`):

        python -c "import sys, numpy as np, torch; s = torch.load(sys.argv[1], map_location='cpu'); s = s.get('state_dict', s.get('model', s)); np.savez(sys.argv[2], **{k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in s.items()})" resnet18.pth resnet18.npz

    (torchvision's ImageNet weights: `torch.save(torchvision.models.resnet18(
    weights='IMAGENET1K_V1').state_dict(), 'resnet18.pth')`; or a
    face-expression checkpoint with the same keys). A common 'module.' prefix
    (DataParallel) is stripped; `fc.*` and `*.num_batches_tracked` are dropped.
    Conv weights go OIHW -> HWIO. Returns `{'params': {'trunk': ..., 'head': ...},
    'batch_stats': {...}}` holding only the ResNet leaves, split at
    `frozen_through` as `Model(frozen_through=..., width=...)` lays them out;
    merge it into initialised variables with `weights.merge_variables`.
    """
    _split_stages(frozen_through)
    path = os.fspath(path)
    state = weights.read_state_dict(path, what="aman: ResNet-18")
    expected = _resnet18_keys(width)
    ignored = [k for k in state if k.startswith("fc.") or k.endswith(".num_batches_tracked")]
    unexpected = sorted(set(state) - set(expected) - set(ignored))
    if unexpected:
        raise ValueError(
            f"aman: {path} is not a torchvision resnet18 state_dict: unexpected keys {unexpected[:5]}"
            + (f" (+{len(unexpected) - 5} more)" if len(unexpected) > 5 else "")
        )
    trunk_stages, _ = _split_stages(frozen_through)
    variables: dict = {"params": {}, "batch_stats": {}}
    for key, (shape, stage, module_path, kind) in expected.items():
        if key not in state:
            raise UserError(f"aman: key {key!r} missing from ResNet-18 weights file {path}")
        value = np.asarray(state[key], np.float32)
        if value.shape != shape:
            raise ValueError(
                f"aman: key {key!r} in {path} has shape {value.shape}, expected {shape} "
                f"(ResNet-18 width {width})"
            )
        if kind == "kernel":
            collection, leaf, value = "params", "kernel", value.transpose(2, 3, 1, 0)
        else:
            collection, leaf = {**_BN_LEAVES, **_BN_STATS}[kind]
        part = "trunk" if stage in trunk_stages else "head"
        node = variables[collection].setdefault(part, {})
        for name in module_path:
            node = node.setdefault(name, {})
        node[leaf] = value
    return variables


def is_resnet_leaf(path: tuple[str, ...]) -> bool:
    """True for ResNet-18 leaves (those a torchvision state_dict provides)."""
    heads = ("magnification_attention", "frame_attention", "classifier")
    return not any(p in heads for p in path)


def load_pretrained(model: "Model", path: str | os.PathLike) -> dict:
    """Model-contract hook (`config.init.pretrained`): ResNet-18 weights laid out for `model`."""
    return load_torchvision_resnet18(path, frozen_through=model.frozen_through, width=model.width)


SPEC = ModelSpec(
    "aman",
    "003",
    Model,
    DEFAULT_INPUT_SHAPE,
    DEFAULT_NUM_CLASSES,
    ABLATIONS,
    width_kwarg="width",
    small=SmallPreset(size=32, frames=(2, 3), kwargs={"width": 8}),
    frozen=FROZEN,
    load_pretrained=load_pretrained,
    trunk_head=TrunkHead(
        active=lambda model: model.frozen_through != "none",
        split_variables=split_variables,
        trunk_of=trunk_of,
        head_of=head_of,
    ),
    classifier=("head/classifier",),
    gradcam_layer="head/layer4",  # ResNet-18 layer4, per frame and factor
)
