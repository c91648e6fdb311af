"""STANet (seed 004: "Spatial-Temporal Attention Network for Micro-Expression Recognition").

Input: an optical-flow sequence X = [x_1, ..., x_t] (Sec. 3), t = 20 frames of 192x192
(Sec. 4.1: clips linearly interpolated to 20 frames, frames resized to 192x192, FlowNet 2.0
flow between adjacent frames). FlowNet 2.0 outputs a 2-channel (u, v) field and the paper
says nothing of converting it, so the default input has 2 channels; the colour-coded flow
pictures of Fig. 6 are visualisations. Any channel count works (e.g. 3 for colour-coded
flow). Note 20 interpolated frames give 19 adjacent-pair flows: the preprocessing must
interpolate to 21 frames (or pad) to feed t = 20.

    y = G(F(X)),  F(X) = [f(x_1), ..., f(x_t)]                                  Eq. (1)

F, the Spatial Attention Module (SAM, Sec. 3.1), is one per-frame network shared over
frames. The text names its third feature map L_3 and an hourglass Spatial Attention Branch
(SAB: conv + max-pool down, bilinear up-sampling with a skip addition after each
up-sampling, sigmoid) but Fig. 1, which draws the layers, is not in the text. The layers
here are therefore an assumption, documented as such (a residual-attention module [17] at
L_3, whose mask branch reads the same input as the trunk branch):

    L_1 = maxpool(conv1(x))        (H/2,  width)      conv = 3x3 conv - BN - ReLU
    L_2 = maxpool(conv2(L_1))      (H/4,  2 width)
    L_3 = conv3(L_2)               (H/4,  4 width)
    m   = SAB(L_2)                 (H/4,  4 width), in (0, 1), element-wise like L_3
    S   = (1 + m) * L_3                                                           Eq. (2)
    f   = mean_hw(conv4(maxpool(S)))                    (8 width)

G, the Temporal Attention Module (Sec. 3.2). "The hidden state of F(X) is denoted as a
matrix H = [h_1, ..., h_t], where h_i represents the context information of the t-th
time-step in the entire sequence", citing GCA-LSTM [18]: by default H is the hidden states
of an LSTM run over the frame features (`temporal_context="lstm"`, hidden size = feature
size 8 width); `"features"` takes H = F(X) itself.

    C   = tanh(s H^T H)  (t x t)                                                 Eq. (3)
    w_i = softmax_i(p),  p_i = sum_j C_ij                                        Eq. (4)
    T_i = (1 + w_i) * f(x_i)                                                     Eq. (5)
    y   = mean_i T_i  ->  linear classifier (assumed: the text gives no aggregation layer)

The scale s is not in Eq. (3) (s = 1 there). Unscaled, the affinity saturates: at
initialisation the d = 256 LSTM states give h_i . h_j ~ 4-15 and the non-negative frame
features ~ 100, so C = 1 everywhere, the weights are uniform and tanh passes no gradient.
The default `affinity_scale=None` is s = 1 / sqrt(d), the scaled dot product (Vaswani et
al. 2017): with the LSTM, C starts in ~(0.2, 0.7) and the weights differ and learn.
`temporal_context="features", affinity_scale=1.0` is the literal reading of Eq. (3).

Loss (Sec. 3.3, Eq. (7)): L = L_ce + lambda * ||M(X)||_1 with lambda = 1e-8 (Sec. 4.1);
`aux_loss` returns lambda * sum |m| over (t, h, w, c) of each example's mask, so the
engine's batch mean gives lambda times the per-clip l1 norm averaged like L_ce.

Width: the paper gives no channel counts or parameter total; `width` = 32 (channels
32/64/128/256) is this implementation's choice. Bilinear up-sampling: the paper does not
name a convention; the default `align_corners=False` is PyTorch's `F.interpolate` /
`nn.Upsample` default, identical to `jax.image.resize` and OpenCV `INTER_LINEAR`
(half-pixel centres, edge clamp); `align_corners=True` is the older
`nn.UpsamplingBilinear2d` / Caffe `Interp` convention of residual-attention code.
"""

from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mer_jax.models import layers
from mer_jax.models.contract import ModelSpec, SmallPreset

DEFAULT_INPUT_SHAPE = (20, 192, 192, 2)
# CASME I (4 classes), the dataset of the ablation in Table 2; CASME II has 5, SMIC-HS 3.
DEFAULT_NUM_CLASSES = 4
L1_LAMBDA = 1e-8  # Sec. 4.1, Settings 4).
TEMPORAL_CONTEXTS = ("features", "lstm")
# Ablations of Table 2 (CASME I: 71.35 / 73.10 / 74.85 / 76.61 %), full model first.
ABLATIONS = {
    "sab_tab_l1": {"spatial_attention": True, "temporal_attention": True, "l1_lambda": L1_LAMBDA},
    "baseline": {"spatial_attention": False, "temporal_attention": False, "l1_lambda": 0.0},
    "sab": {"spatial_attention": True, "temporal_attention": False, "l1_lambda": 0.0},
    "sab_l1": {"spatial_attention": True, "temporal_attention": False, "l1_lambda": L1_LAMBDA},
}


def _pad(k: int) -> tuple[tuple[int, int], tuple[int, int]]:
    return ((k // 2, k // 2), (k // 2, k // 2))


def _max_pool(x):
    return nn.max_pool(x, (2, 2), (2, 2))


def _align_corners_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) linear interpolation weights with src = i (n_in - 1) / (n_out - 1)."""
    src = np.arange(size_out) * ((size_in - 1) / (size_out - 1) if size_out > 1 else 0.0)
    lo = np.clip(np.floor(src).astype(int), 0, size_in - 1)
    hi = np.minimum(lo + 1, size_in - 1)
    frac = src - lo
    weights = np.zeros((size_out, size_in), np.float32)
    np.add.at(weights, (np.arange(size_out), lo), 1.0 - frac)
    np.add.at(weights, (np.arange(size_out), hi), frac)
    return weights


def upsample_bilinear(x: jax.Array, size: tuple[int, int], *, align_corners: bool = False):
    """Bilinear resize of NHWC `x` to spatial `size` (the SAB's top-down up-sampling).

    `align_corners=False`: half-pixel centres with edge clamping, as PyTorch's default,
    `jax.image.resize` and `cv2.resize(..., INTER_LINEAR)`; `True`: corner pixels aligned.
    """
    n, h, w, c = x.shape
    if not align_corners:
        return jax.image.resize(x, (n, *size, c), method="bilinear", antialias=False)
    rows = jnp.asarray(_align_corners_matrix(h, size[0]), x.dtype)
    cols = jnp.asarray(_align_corners_matrix(w, size[1]), x.dtype)
    x = jnp.einsum("oh,nhwc->nowc", rows, x, precision=jax.lax.Precision.HIGHEST)
    return jnp.einsum("pw,nowc->nopc", cols, x, precision=jax.lax.Precision.HIGHEST)


def temporal_attention(h: jax.Array, f: jax.Array, scale: float = 1.0):
    """Eq. (3)-(5) for a batch: h (N, t, d) hidden states, f (N, t, d') frame features.

    Returns (T, w, C): T_i = (1 + w_i) f_i (N, t, d'), w (N, t), C = tanh(scale H^T H)
    (N, t, t). Computed in float32 (float64 inputs stay float64) at full matmul precision
    (the softmax of row sums of t tanh terms is sensitive to rounding).
    """
    dtype = jnp.promote_types(h.dtype, jnp.float32)
    h = h.astype(dtype)
    gram = jnp.einsum("ntd,nsd->nts", h, h, precision=jax.lax.Precision.HIGHEST)
    affinity = jnp.tanh(scale * gram)
    weights = jax.nn.softmax(jnp.sum(affinity, axis=-1), axis=-1)
    return (1.0 + weights)[..., None] * f.astype(dtype), weights, affinity


class ConvBNReLU(nn.Module):
    """k x k convolution (no bias: BatchNorm follows) - BatchNorm - ReLU."""

    features: int
    kernel: int = 3
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x, *, train: bool):
        k = self.kernel
        x = layers.conv_class(self.conv_impl)(
            self.features, (k, k), padding=_pad(k), use_bias=False, dtype=self.dtype, name="conv"
        )(x)
        x = layers.batch_norm(frozen=not train, dtype=self.dtype)(name="bn")(x)
        return nn.relu(x)


class SpatialAttentionBranch(nn.Module):
    """Sec. 3.1, the SAB: bottom-up (conv, max-pool) then top-down (bilinear up-sampling,
    skip addition of the bottom-up map of the same size after each up-sampling), sigmoid.

    x (N, h, w, c_in) -> mask m (N, h, w, features) in (0, 1), float32.
    """

    features: int
    depth: int = 3
    align_corners: bool = False
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x, *, train: bool):
        block = partial(ConvBNReLU, self.features, dtype=self.dtype, conv_impl=self.conv_impl)
        skips = [block(name="conv_in")(x, train=train)]
        for level in range(self.depth):
            skips.append(block(name=f"down{level + 1}")(_max_pool(skips[-1]), train=train))
        y = skips.pop()
        while skips:
            skip = skips.pop()
            y = upsample_bilinear(y, skip.shape[1:3], align_corners=self.align_corners) + skip
        y = block(kernel=1, name="head1")(y, train=train)
        y = layers.conv_class(self.conv_impl)(
            self.features, (1, 1), dtype=self.dtype, name="head2"
        )(y)
        return nn.sigmoid(y.astype(jnp.float32))


class FrameEncoder(nn.Module):
    """Sec. 3.1, the SAM f(x_i) for a stack of frames (N*t, H, W, C) -> (features, mask)."""

    width: int = 32
    spatial_attention: bool = True
    hourglass_depth: int = 3
    align_corners: bool = False
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x, *, train: bool):
        block = partial(ConvBNReLU, dtype=self.dtype, conv_impl=self.conv_impl)
        l1 = _max_pool(block(self.width, name="conv1")(x, train=train))
        l2 = _max_pool(block(2 * self.width, name="conv2")(l1, train=train))
        l3 = block(4 * self.width, name="conv3")(l2, train=train)
        mask = None
        s = l3
        if self.spatial_attention:
            mask = SpatialAttentionBranch(
                4 * self.width,
                depth=self.hourglass_depth,
                align_corners=self.align_corners,
                dtype=self.dtype,
                conv_impl=self.conv_impl,
                name="spatial_attention",
            )(l2, train=train)
            s = (1.0 + mask.astype(l3.dtype)) * l3  # Eq. (2)
        s = block(8 * self.width, name="conv4")(_max_pool(s), train=train)
        return jnp.mean(s.astype(jnp.float32), axis=(1, 2)), mask


class Model(nn.Module):
    """STANet: shared per-frame SAM, temporal attention over frames, linear classifier.

    `x` is (N, t, H, W, C) flow. Returns `(logits, out)`; `out` holds `frame_features`
    (N, t, 8 width), `pre_logits` (N, 8 width), with SAB `spatial_mask` (N, t, H/4, W/4,
    4 width) and `mask_l1_penalty` (N,) = l1_lambda * sum |m|, with TAB `temporal_weights`
    (N, t) and `temporal_affinity` (N, t, t). `affinity_scale`: s of Eq. (3) (module
    docstring); None = 1 / sqrt(d), d the size of h_i.
    """

    num_classes: int = DEFAULT_NUM_CLASSES
    width: int = 32
    hourglass_depth: int = 3
    spatial_attention: bool = True
    temporal_attention: bool = True
    l1_lambda: float = L1_LAMBDA
    temporal_context: str = "lstm"
    affinity_scale: float | None = None
    align_corners: bool = False
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32
    conv_impl: str = "xla"  # layers.CONV_IMPLS: how convolutions compute, same results

    def _check(self, x):
        if self.temporal_context not in TEMPORAL_CONTEXTS:
            raise ValueError(
                f"stanet.Model field 'temporal_context': {self.temporal_context!r} is not one "
                f"of {TEMPORAL_CONTEXTS}"
            )
        if self.affinity_scale is not None and not self.affinity_scale > 0:
            raise ValueError(
                f"stanet.Model field 'affinity_scale'={self.affinity_scale} must be > 0 "
                "(None: 1 / sqrt(d))"
            )
        if self.width < 1 or self.hourglass_depth < 1:
            raise ValueError(
                f"stanet.Model fields 'width'={self.width} and "
                f"'hourglass_depth'={self.hourglass_depth} must be >= 1"
            )
        if self.l1_lambda < 0 or (self.l1_lambda > 0 and not self.spatial_attention):
            raise ValueError(
                f"stanet.Model field 'l1_lambda'={self.l1_lambda} penalises the spatial "
                "attention mask: it must be >= 0, and 0.0 when spatial_attention=False"
            )
        if x.ndim != 5:
            raise ValueError(
                f"stanet.Model argument 'x': expected a flow sequence (N, t, H, W, C), got "
                f"shape {x.shape}"
            )
        smallest = 4 * 2**self.hourglass_depth
        if min(x.shape[2:4]) < smallest:
            raise ValueError(
                f"stanet.Model argument 'x': frames of {x.shape[2]}x{x.shape[3]} are too small "
                f"for hourglass_depth={self.hourglass_depth}; need at least {smallest}x{smallest}"
            )

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        self._check(x)
        n, t = x.shape[:2]
        frames = x.reshape((n * t, *x.shape[2:])).astype(self.dtype)
        features, mask = FrameEncoder(
            self.width,
            spatial_attention=self.spatial_attention,
            hourglass_depth=self.hourglass_depth,
            align_corners=self.align_corners,
            dtype=self.dtype,
            conv_impl=self.conv_impl,
            name="frame_encoder",
        )(frames, train=train)
        f = features.reshape((n, t, -1))
        out = {"frame_features": f}
        if mask is not None:
            mask = mask.reshape((n, t, *mask.shape[1:]))
            out["spatial_mask"] = mask
            out["mask_l1_penalty"] = self.l1_lambda * jnp.sum(jnp.abs(mask), axis=(1, 2, 3, 4))
        if self.temporal_attention:
            h = f
            if self.temporal_context == "lstm":
                # Zero initial state in the compute dtype (float64 under the engine's x64).
                zeros = jnp.zeros((n, f.shape[-1]), jnp.promote_types(f.dtype, self.dtype))
                cell = nn.OptimizedLSTMCell(f.shape[-1], name="context_lstm")
                h = nn.RNN(cell)(f, initial_carry=(zeros, zeros))
            scale = self.affinity_scale or 1.0 / float(np.sqrt(h.shape[-1]))
            f, weights, affinity = temporal_attention(h, f, scale)
            out["temporal_weights"] = weights
            out["temporal_affinity"] = affinity
        y = jnp.mean(f, axis=1)
        out["pre_logits"] = y
        y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
        logits = nn.Dense(self.num_classes, dtype=self.dtype, name="head")(y)
        return logits.astype(jnp.float32), out


def aux_loss(out: dict, labels: jax.Array) -> jax.Array:
    """Eq. (7)'s mask term per example: lambda * ||M(X)||_1, zero without SAB or l1 (N,)."""
    if "mask_l1_penalty" not in out:
        return jnp.zeros(labels.shape[:1], jnp.float32)
    return out["mask_l1_penalty"].astype(jnp.float32)


SPEC = ModelSpec(
    "stanet",
    "004",
    Model,
    DEFAULT_INPUT_SHAPE,
    DEFAULT_NUM_CLASSES,
    ABLATIONS,
    width_kwarg="width",
    small=SmallPreset(size=32, frames=(4,), kwargs={"width": 8}),
    aux_loss=aux_loss,
    gradcam_layer="frame_encoder/conv4",  # the SAM's last conv, per frame
)
