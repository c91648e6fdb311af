"""Micro-Attention network (seed 000: Wang, Peng, Bi, Chen, "Micro-Attention for
Micro-Expression Recognition", Neurocomputing 2020).

A pre-activation ResNet-10 (one block per stage, 64/128/256/512 channels) with a
micro-attention unit in every block (Sec. 3.2, Fig. 2):

  L1 = shortcut (identity, or the 1x1 stride-2 projection when the block downsamples)
  L2 = BN-ReLU(conv1(preact))        L3 = conv2(L2)        T = L1 + L3
  M  = sigmoid(mean_c(W* [L1, L2, L3]))                                   Eq. (1)
  O  = T * (1 + M)                                                        Eq. (2)

W* is a 1x1 convolution 3C -> C without bias; the channel mean is the authors'
frozen 1x1 convolution C -> 1 of weight 1/C (no parameters). `attention=False`
gives the plain pre-activation ResNet-10 of the paper's ablation (Table 3:
4.9 M parameters; 5.9 M with micro-attention, 5 classes, 224x224).

The authors' Caffe net reads a 1-channel grey-scale apex frame through a
BatchNorm+Scale layer on the data (`input_batchnorm`).

`attention_unit="hourglass"` is the paper's comparator, "Residual Network with
complex attention" [29] (Peng, Wang, Chen, FG 2018; Tables 2-4, 6; 11.2 M in
Table 3). Its public abstract gives only "in every block of the network, an
attention branch is added to the output of the last convolution layer"; the
rest is assumed, after the soft mask branch of Wang et al. 2017 (Sec. 3.1-3.2,
bottom-up/top-down with skip, H = (1 + M) * F): see `HourglassMask`.
"""

from collections.abc import Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mer_jax.models import layers
from mer_jax.models.contract import ModelSpec, SmallPreset

DEFAULT_INPUT_SHAPE = (224, 224, 1)
DEFAULT_NUM_CLASSES = 5
# What computes each block's attention map M when `attention` is on (config rule).
ATTENTION_UNITS = ("micro", "hourglass")
# Ablations of Table 3, as keyword arguments of `Model`.
ABLATIONS = {
    "micro_attention": {"attention": True},
    "resnet10": {"attention": False},
    "complex_attention": {"attention": True, "attention_unit": "hourglass"},
}


def _pad(k: int) -> tuple[tuple[int, int], tuple[int, int]]:
    # Symmetric padding as in Caffe/PyTorch (Flax 'SAME' pads strided convs asymmetrically).
    return ((k // 2, k // 2), (k // 2, k // 2))


class MicroAttentionUnit(nn.Module):
    """Eq. (1): one spatial map M in (0, 1), broadcast over the block's C channels."""

    features: int
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, l1, l2, l3):
        stacked = jnp.concatenate([l1, l2, l3], axis=-1)
        conv = layers.conv_class(self.conv_impl)
        embedded = conv(self.features, (1, 1), use_bias=False, dtype=self.dtype, name="embed")(
            stacked
        )
        # Channel mean in float32: the frozen 1/C convolution of the Caffe net.
        return nn.sigmoid(jnp.mean(embedded.astype(jnp.float32), axis=-1, keepdims=True))


class PreActBlock(nn.Module):
    """Pre-activation residual block (He et al. 2016) with optional micro-attention, Fig. 2."""

    features: int
    strides: int = 1
    attention: bool = True
    attention_unit: str = "micro"  # ATTENTION_UNITS
    mask_levels: int = 1  # HourglassMask.levels
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x, *, train: bool):
        norm = layers.batch_norm(frozen=not train, dtype=self.dtype)
        conv = partial(layers.conv_class(self.conv_impl), use_bias=False, dtype=self.dtype)
        preact = nn.relu(norm(name="bn1")(x))
        if self.strides != 1 or x.shape[-1] != self.features:
            shortcut = conv(self.features, (1, 1), (self.strides,) * 2, name="proj")(preact)
        else:
            shortcut = x
        l2 = conv(self.features, (3, 3), (self.strides,) * 2, padding=_pad(3), name="conv1")(preact)
        l2 = nn.relu(norm(name="bn2")(l2))
        l3 = conv(self.features, (3, 3), padding=_pad(3), name="conv2")(l2)
        out = shortcut + l3
        if not self.attention:
            return out, None
        if self.attention_unit == "hourglass":
            mask = HourglassMask(
                self.features,
                levels=self.mask_levels,
                dtype=self.dtype,
                conv_impl=self.conv_impl,
                name="hourglass_mask",
            )(l3, train=train)
        else:
            mask = MicroAttentionUnit(
                self.features, dtype=self.dtype, conv_impl=self.conv_impl, name="micro_attention"
            )(shortcut, l2, l3)
        return out * (1.0 + mask.astype(out.dtype)), mask


class HourglassMask(nn.Module):
    """The comparator's attention branch [29], read as the soft mask of Wang et al. 2017.

    [29]'s abstract says only that each block's branch reads "the output of the last
    convolution layer" (L3 here). Assumed, after Wang et al. Sec. 3.2: `levels`
    times (3x3/2 max-pool, one pre-activation basic unit, as `PreActBlock`), then as many
    bilinear up-samplings, each adding the skip at its resolution; BN-ReLU, a 1x1 conv
    C -> 1 with bias, sigmoid: one spatial map, gating T as Eq. (2) does. One level gives
    18C^2 + 7C + 1 parameters a block: 11,173,899 in all at 224x224x1, 5 classes (Table 3:
    11.2 M); each further level adds 18C^2 + 4C. Chosen to land there: Wang et al.'s
    head of two BN-ReLU-1x1 C -> C convolutions (a C-channel mask) would give 11.9 M.
    """

    features: int
    levels: int = 1
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x, *, train: bool):
        skips, h = [], x
        for level in range(self.levels):
            skips.append(h)
            h = nn.max_pool(h, (3, 3), (2, 2), padding=_pad(3))
            h, _ = PreActBlock(
                self.features,
                attention=False,
                dtype=self.dtype,
                conv_impl=self.conv_impl,
                name=f"down{level + 1}",
            )(h, train=train)
        for skip in reversed(skips):
            h = jax.image.resize(h, skip.shape, "bilinear").astype(skip.dtype) + skip
        h = nn.relu(layers.batch_norm(frozen=not train, dtype=self.dtype)(name="bn")(h))
        logit = layers.conv_class(self.conv_impl)(1, (1, 1), dtype=self.dtype, name="logit")(h)
        return nn.sigmoid(logit.astype(jnp.float32))


class Model(nn.Module):
    """Pre-activation ResNet-10 with micro-attention in every block (Sec. 3.1-3.2).

    `width` is the first stage's channels (64 in the paper); narrower widths are
    for CPU quick-starts and tests. `attention_unit` picks what computes M: the
    micro-attention unit or the comparator's `HourglassMask` (`mask_levels` deep).
    Returns `(logits, out)`, `out` holding the attention maps of each stage
    (`attention_1` .. `attention_4`, shape (N, h, w, 1)) and the pooled features
    `pre_logits`.
    """

    num_classes: int = DEFAULT_NUM_CLASSES
    width: int = 64
    stage_blocks: Sequence[int] = (1, 1, 1, 1)
    attention: bool = True
    attention_unit: str = "micro"  # ATTENTION_UNITS
    mask_levels: int = 1  # down/up levels of the "hourglass" unit's mask branch
    input_batchnorm: bool = True
    dtype: Any = jnp.float32
    conv_impl: str = "xla"  # layers.CONV_IMPLS: how convolutions compute, same results

    @nn.compact
    def __call__(self, image, *, train: bool = False):
        if self.attention_unit not in ATTENTION_UNITS:
            raise ValueError(
                f"Model.attention_unit must be one of {ATTENTION_UNITS}, got {self.attention_unit!r}"
            )
        norm = layers.batch_norm(frozen=not train, dtype=self.dtype)
        out = {}
        x = image.astype(self.dtype)
        if self.input_batchnorm:
            x = norm(name="input_bn")(x)
        x = layers.conv_class(self.conv_impl)(
            self.width,
            (7, 7),
            (2, 2),
            padding=_pad(7),
            use_bias=False,
            dtype=self.dtype,
            name="stem",
        )(x)
        x = nn.max_pool(x, (3, 3), (2, 2), padding=_pad(3))
        for stage, num_blocks in enumerate(self.stage_blocks):
            for block in range(num_blocks):
                strides = 2 if stage > 0 and block == 0 else 1
                x, mask = PreActBlock(
                    self.width * 2**stage,
                    strides=strides,
                    attention=self.attention,
                    attention_unit=self.attention_unit,
                    mask_levels=self.mask_levels,
                    dtype=self.dtype,
                    conv_impl=self.conv_impl,
                    name=f"stage{stage + 1}_block{block + 1}",
                )(x, train=train)
                if mask is not None:
                    suffix = "" if num_blocks == 1 else f"_{block + 1}"
                    out[f"attention_{stage + 1}{suffix}"] = mask
        x = nn.relu(norm(name="head_bn")(x))
        x = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        out["pre_logits"] = x
        logits = nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)
        return logits.astype(jnp.float32), out


SPEC = ModelSpec(
    "micro_attention",
    "000",
    Model,
    DEFAULT_INPUT_SHAPE,
    DEFAULT_NUM_CLASSES,
    ABLATIONS,
    width_kwarg="width",
    small=SmallPreset(size=48, kwargs={"width": 16}),
    gradcam_layer="head_bn",  # the last stage's features, before ReLU and pooling
)
