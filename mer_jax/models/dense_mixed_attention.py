"""Dense connections + mixed attention (seed 001: Gan, Xiao, Zhu, Jain, Struc,
"Transfer-Learning Enabled Micro-Expression Recognition Using Dense Connections
and Mixed Attention", Knowledge-Based Systems 2022).

Input: one EVM-magnified apex frame, face crop, 112x112 colour (Sec. 4.1.2).
Stacked dense blocks (Sec. 3.3.1); after each block the mixed attention module
sits on the block's skip pathway (its concatenated output, Sec. 3.3.2) and an
average pool down-samples it (the paper's transition: pooling only, no 1x1
compression). Four blocks take 112 -> 7; the 7x7 features are flattened into one
fully connected layer (Sec. 3.4, Eq. 9):

  H_j^i = BN(ReLU(Conv5x5(concat(H_j^0, ..., H_j^{i-1}))))                  Eq. (4)
  M_c = sigmoid(W1 LReLU(W0 avg_hw(H)) + W1 LReLU(W0 max_hw(H)))            Eq. (5)
  H' = H * M_c                                                             Eq. (6)
  M_s = sigmoid(Conv5x5([mean_c(H'), max_c(H')]))                          Eq. (7)
  H^ = H' * M_s                                                            Eq. (8)

Eq. (4) puts BN *after* the ReLU (conv -> ReLU -> BN), unlike DenseNet's
BN -> ReLU -> conv; the paper's order is implemented. W0 (C -> C/r) and W1
(C/r -> C) carry no bias and the spatial 5x5 conv (2 -> 1) none either, as
Eqs. (5) and (7) write them; the backbone convs keep a bias (the Keras default
of the authors' implementation, Sec. 4.2). The LeakyReLU slope is Keras's
default 0.3; kernels use Keras's Glorot-uniform initialiser.

Size (Table 13: 3.115 M parameters at 112x112; depth, growth rate k and r are
not given). No stem (Eq. (4) feeds the image to block 1 as H_1^0); with L layers
per block, block j ends with C_j = 3 + j L k channels and the parameters are

  sum_layers (25 c_in k + 3k)  +  sum_j (2 C_j floor(C_j / r) + 50)  +  49 C_4 n + n.

Searched (4 blocks so that four 2x2 pools give 7x7): uniform L = 1..15,
k = 4..64, r in {2, 4, 8, 16}, with and without a DenseNet-style stem conv of 2k
channels, with and without biases; 3 classes (CDE, the paper's main protocol).
Closest: L = 3, k = 41, r = 4 -> 3,114,644 (-0.011 %; C_j = 126, 249, 372, 495).
Runners-up: L = 8, k = 15, r = 4 -> 3,116,444 (+0.046 %); stem 96, L = 2, k = 48,
r = 2 (MLP biases) -> 3,113,483 (-0.049 %); L = 4, k = 31, r = 8 -> 3,110,992
(-0.13 %). Non-uniform depths per block hit 3.115 M to within 100 parameters in
dozens of ways (e.g. stem 64, L = (3, 4, 9, 11), k = 16, r = 8 -> 3,114,987), so
the budget cannot identify the authors' net; the uniform, stem-free design adds
nothing the paper does not describe. Keras's "Total params" would also count the
BN moving statistics (+984 -> 3,115,628, +0.020 %). 5 classes (SDE on CASME II /
SAMM) add 2 * (49 * 495 + 1) = 48,512. The default net does 4.26 G multiply-adds
at 112x112 (XLA's cost analysis: 8.1 GFLOPs, padding taps excluded); Table 13's
"6.26 x 10^6 FLOPs" fits no 3.1 M-parameter conv net at that size (the first 5x5
conv alone is 38.6 M multiply-adds).

Ablations (Tables 11-12): `attention` in {'mixed', 'channel', 'spatial', 'none'};
`backbone='residual'` swaps each dense block for residual units of the same depth,
x <- x + BN(ReLU(Conv5x5(x))), at the dense block's output width C_j (a 1x1
projection enters each stage) so that every attention site and the head see
tensors of the same shape: 35,220,008 parameters by default (Sec. 4.7 gives no
size; Sec. 4.5.1 only remarks that a ResNet extractor has more parameters than
the dense module); `residual_widths` overrides the widths.
"""

from collections.abc import Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from mer_jax.models import layers
from mer_jax.models.contract import ModelSpec, SmallPreset

DEFAULT_INPUT_SHAPE = (112, 112, 3)
DEFAULT_NUM_CLASSES = 3
# Tables 11 (attention) and 12 (backbone), as keyword arguments of `Model`.
ABLATIONS = {
    "mixed": {"attention": "mixed", "backbone": "dense"},
    "no_attention": {"attention": "none"},
    "channel_only": {"attention": "channel"},
    "spatial_only": {"attention": "spatial"},
    "residual_mixed": {"attention": "mixed", "backbone": "residual"},
}
ATTENTIONS = ("mixed", "channel", "spatial", "none")
BACKBONES = ("dense", "residual")

_kernel_init = nn.initializers.xavier_uniform()  # Keras glorot_uniform


def _pad(k: int) -> tuple[tuple[int, int], tuple[int, int]]:
    return ((k // 2, k // 2), (k // 2, k // 2))


def _norm(train: bool, dtype: Any, name: str) -> nn.BatchNorm:
    return layers.batch_norm(frozen=not train, dtype=dtype)(name=name)


def adaptive_avg_pool(x: jnp.ndarray, size: int) -> jnp.ndarray:
    """Average pool (N, H, W, C) to (N, size, size, C); bins as PyTorch's adaptive pool."""
    h, w = x.shape[1:3]
    if (h, w) == (size, size):
        return x

    def bins(n):
        return [(i * n // size, -(-(i + 1) * n // size)) for i in range(size)]

    x = jnp.stack([x[:, a:b].mean(axis=1) for a, b in bins(h)], axis=1)
    return jnp.stack([x[:, :, a:b].mean(axis=2) for a, b in bins(w)], axis=2)


class DenseLayer(nn.Module):
    """One layer of Eq. (4): BN(ReLU(Conv5x5(x))), `growth_rate` new channels."""

    growth_rate: int
    kernel_size: int = 5
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x, *, train: bool):
        k = self.kernel_size
        y = layers.conv_class(self.conv_impl)(
            self.growth_rate,
            (k, k),
            padding=_pad(k),
            kernel_init=_kernel_init,
            dtype=self.dtype,
            name="conv",
        )(x)
        return _norm(train, self.dtype, "bn")(nn.relu(y))


class DenseBlock(nn.Module):
    """Sec. 3.3.1: every layer reads the concatenation of the block input and all earlier outputs."""

    num_layers: int
    growth_rate: int
    kernel_size: int = 5
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x, *, train: bool):
        for i in range(self.num_layers):
            y = DenseLayer(
                self.growth_rate,
                self.kernel_size,
                self.dtype,
                conv_impl=self.conv_impl,
                name=f"layer{i + 1}",
            )(x, train=train)
            x = jnp.concatenate([x, y], axis=-1)
        return x


class ResidualStage(nn.Module):
    """Table 12's residual extractor: x <- x + BN(ReLU(Conv5x5(x))), `num_layers` times."""

    features: int
    num_layers: int
    kernel_size: int = 5
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x, *, train: bool):
        conv = layers.conv_class(self.conv_impl)
        if x.shape[-1] != self.features:
            x = conv(
                self.features, (1, 1), kernel_init=_kernel_init, dtype=self.dtype, name="proj"
            )(x)
        for i in range(self.num_layers):
            k = self.kernel_size
            y = conv(
                self.features,
                (k, k),
                padding=_pad(k),
                kernel_init=_kernel_init,
                dtype=self.dtype,
                name=f"conv{i + 1}",
            )(x)
            x = x + _norm(train, self.dtype, f"bn{i + 1}")(nn.relu(y))
        return x


class ChannelAttention(nn.Module):
    """Eq. (5): M_c of shape (N, C), a shared bias-free MLP C -> C/r -> C on avg- and max-pooled H."""

    reduction: int = 4
    leaky_slope: float = 0.3
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        channels = x.shape[-1]
        dense = partial(nn.Dense, use_bias=False, kernel_init=_kernel_init, dtype=self.dtype)
        w0 = dense(max(1, channels // self.reduction), name="w0")
        w1 = dense(channels, name="w1")

        def mlp(v):
            return w1(nn.leaky_relu(w0(v), self.leaky_slope)).astype(jnp.float32)

        return nn.sigmoid(mlp(x.mean(axis=(1, 2))) + mlp(x.max(axis=(1, 2))))


class SpatialAttention(nn.Module):
    """Eq. (7): M_s of shape (N, H, W, 1) = sigmoid(Conv5x5([mean_c, max_c])), no bias."""

    kernel_size: int = 5
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x):
        pooled = jnp.concatenate(
            [x.mean(axis=-1, keepdims=True), x.max(axis=-1, keepdims=True)], axis=-1
        )
        k = self.kernel_size
        logits = layers.conv_class(self.conv_impl)(
            1,
            (k, k),
            padding=_pad(k),
            use_bias=False,
            kernel_init=_kernel_init,
            dtype=self.dtype,
            name="conv",
        )(pooled)
        return nn.sigmoid(logits.astype(jnp.float32))


class MixedAttention(nn.Module):
    """Eqs. (5)-(8): channel attention, then spatial attention on the channel-weighted H'.

    Returns `(H^, weights)` with `weights` holding `channel` (N, C) and/or
    `spatial` (N, H, W, 1) for the enabled branches.
    """

    channel: bool = True
    spatial: bool = True
    reduction: int = 4
    kernel_size: int = 5
    leaky_slope: float = 0.3
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x):
        weights = {}
        if self.channel:
            m_c = ChannelAttention(self.reduction, self.leaky_slope, self.dtype, name="channel")(x)
            weights["channel"] = m_c
            x = x * m_c[:, None, None, :].astype(x.dtype)
        if self.spatial:
            m_s = SpatialAttention(
                self.kernel_size, self.dtype, conv_impl=self.conv_impl, name="spatial"
            )(x)
            weights["spatial"] = m_s
            x = x * m_s.astype(x.dtype)
        return x, weights


class Model(nn.Module):
    """Dense blocks with mixed attention on each block's skip path (Sec. 3.3-3.4).

    `growth_rate` is the width knob (41 gives Table 13's 3.115 M parameters);
    `head_size` is the side of the features the FC reads (7 in the paper; other
    inputs are average-pooled to it). Returns `(logits, out)`; `out` holds
    `channel_attention_j` (N, C_j) and `spatial_attention_j` (N, h, w, 1) for
    each block j whose branch is enabled, and `pre_logits` (N, head_size^2 C).
    """

    num_classes: int = DEFAULT_NUM_CLASSES
    growth_rate: int = 41
    layers_per_block: Sequence[int] = (3, 3, 3, 3)
    reduction: int = 4
    kernel_size: int = 5
    attention_kernel_size: int = 5
    leaky_slope: float = 0.3
    head_size: int = 7
    attention: str = "mixed"
    backbone: str = "dense"
    residual_widths: Sequence[int] | None = None
    dtype: Any = jnp.float32
    conv_impl: str = "xla"  # layers.CONV_IMPLS: how convolutions compute, same results

    def _check(self, image):
        if self.attention not in ATTENTIONS:
            raise ValueError(f"Model.attention must be one of {ATTENTIONS}, got {self.attention!r}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"Model.backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if not self.layers_per_block or min(self.layers_per_block) < 1:
            raise ValueError(
                f"Model.layers_per_block needs >= 1 layer per block, got {self.layers_per_block!r}"
            )
        if self.residual_widths is not None and len(self.residual_widths) != len(
            self.layers_per_block
        ):
            raise ValueError(
                f"Model.residual_widths needs one width per block "
                f"({len(self.layers_per_block)}), got {self.residual_widths!r}"
            )
        if image.ndim != 4:
            raise ValueError(f"image must be (N, H, W, C), got shape {image.shape}")
        smallest = 2 ** len(self.layers_per_block)
        if min(image.shape[1:3]) < smallest:
            raise ValueError(
                f"image is {image.shape[1]}x{image.shape[2]}; {len(self.layers_per_block)} "
                f"average-pool transitions need at least {smallest}x{smallest}"
            )

    @nn.compact
    def __call__(self, image, *, train: bool = False):
        self._check(image)
        out = {}
        x = image.astype(self.dtype)
        widths = self.residual_widths
        if widths is None:  # The dense blocks' output widths C_j.
            widths, c = [], image.shape[-1]
            for num_layers in self.layers_per_block:
                c += num_layers * self.growth_rate
                widths.append(c)
        for j, num_layers in enumerate(self.layers_per_block, start=1):
            if self.backbone == "dense":
                x = DenseBlock(
                    num_layers,
                    self.growth_rate,
                    self.kernel_size,
                    self.dtype,
                    conv_impl=self.conv_impl,
                    name=f"block{j}",
                )(x, train=train)
            else:
                x = ResidualStage(
                    widths[j - 1],
                    num_layers,
                    self.kernel_size,
                    self.dtype,
                    conv_impl=self.conv_impl,
                    name=f"block{j}",
                )(x, train=train)
            if self.attention != "none":
                x, weights = MixedAttention(
                    channel=self.attention in ("mixed", "channel"),
                    spatial=self.attention in ("mixed", "spatial"),
                    reduction=self.reduction,
                    kernel_size=self.attention_kernel_size,
                    leaky_slope=self.leaky_slope,
                    dtype=self.dtype,
                    conv_impl=self.conv_impl,
                    name=f"attention{j}",
                )(x)
                for branch, w in weights.items():
                    out[f"{branch}_attention_{j}"] = w
            x = nn.avg_pool(x, (2, 2), (2, 2))
        x = adaptive_avg_pool(x, self.head_size)
        x = x.reshape(x.shape[0], -1)
        out["pre_logits"] = x.astype(jnp.float32)
        logits = nn.Dense(
            self.num_classes, kernel_init=_kernel_init, dtype=self.dtype, name="head"
        )(x)
        return logits.astype(jnp.float32), out


SPEC = ModelSpec(
    "dense_mixed_attention",
    "001",
    Model,
    DEFAULT_INPUT_SHAPE,
    DEFAULT_NUM_CLASSES,
    ABLATIONS,
    width_kwarg="growth_rate",
    small=SmallPreset(size=48, kwargs={"growth_rate": 8}),
    gradcam_layer="block4",  # the last dense block (before its mixed attention)
)
