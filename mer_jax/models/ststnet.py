"""STSTNet, the MEGC 2019 baseline (Liong, Gan, See, Khor, Huang, "Shallow Triple Stream
Three-dimensional CNN (STSTNet) for Micro-expression Recognition", FG 2019, arXiv:1902.03634).

Input (Sec. II, Eq. (4)-(7)): from the onset and apex frames, the TV-L1 optical flow
(u, v) and its optical strain magnitude |eps| = sqrt(e_xx^2 + e_yy^2 + 1/2 (du/dy + dv/dx)^2),
stacked into one three-channel image and resized to 28x28: x has shape (N, 28, 28, 3),
channels (u, v, strain) as the view `flow_28_strain` stores them (data_builders/views.py).

Network (Sec. II, last paragraph, and Table I):

    three streams on the same input, each
        C1-k: 3x3 convolution, 3 | 5 | 8 filters, stride 1, 'same'      28 x 28 x F_k
        P1-k: 3x3 max-pool, stride 3, 'same'                          10 x 10 x F_k
    concatenated over channels                                       10 x 10 x 16
    P2: 2x2 average pool, stride 2, no padding                       5 x 5 x 16
    FC: flattened (400) -> num_classes, softmax in the loss

Table I leaves out what sits between the layers; the authors' own releases fill it in:
the MATLAB `STSTNet.mat` (github.com/christy1206/STSTNet) holds a ReLU, a batch
normalisation and a dropout layer per stream, and their PyTorch `main.py` orders them
conv -> ReLU -> BatchNorm -> max-pool -> Dropout(0.5) in each stream (the same file pads the
convolutions by 2, 30x30 maps, where Table I says 'same'; both pool to 10x10, and this
file follows Table I). Batch normalisation as PyTorch's defaults (`layers.batch_norm`);
kernels initialised as PyTorch's default (uniform, bound 1/sqrt(fan_in)), biases zero.

Parameters: 448 (convolutions) + 32 (batch-norm scale and offset) + 1,203 (FC) = 1,683 at
3 classes; Sec. IV and Table V give "1670" (0.00167 M). Table I alone (no batch norm) gives
1,651; neither count is exactly the paper's, whose arithmetic the text does not show.

Training (Sec. II): Adam, initial learning rate 0.00005, 500 epochs; batch 256 in the
authors' MATLAB and PyTorch scripts (experiments/baselines/ststnet_megc2019.py).
"""

from collections.abc import Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from mer_jax.models import layers
from mer_jax.models.contract import ModelSpec, SmallPreset

DEFAULT_INPUT_SHAPE = (28, 28, 3)
DEFAULT_NUM_CLASSES = 3  # MEGC 2019 composite: negative, positive, surprise
ABLATIONS = {"ststnet": {}}

# PyTorch's default convolution / linear kernel initialiser: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


class TripleStream(nn.Module):
    """The three streams of Table I (C1-k, P1-k) side by side, concatenated over channels.

    Each stream: 3x3 'same' convolution -> ReLU -> batch norm -> 3x3 stride-3 'same'
    max-pool -> dropout. Returns (N, ceil(H/3), ceil(W/3), sum(filters)).
    """

    filters: Sequence[int] = (3, 5, 8)
    kernel_size: int = 3
    pool_size: int = 3
    dropout_rate: float = 0.5
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        conv = partial(
            layers.conv_class(self.conv_impl),
            kernel_size=(self.kernel_size, self.kernel_size),
            padding="SAME",
            kernel_init=_kernel_init,
            dtype=self.dtype,
        )
        norm = layers.batch_norm(frozen=not train, dtype=self.dtype)
        window = (self.pool_size, self.pool_size)
        streams = []
        for k, filters in enumerate(self.filters):
            h = nn.relu(conv(filters, name=f"conv{k + 1}")(x))
            h = norm(name=f"bn{k + 1}")(h)
            h = nn.max_pool(h, window, strides=window, padding="SAME")
            streams.append(nn.Dropout(self.dropout_rate, deterministic=not train)(h))
        return jnp.concatenate(streams, axis=-1)


class Model(nn.Module):
    """STSTNet (Table I): triple stream -> 2x2 average pool -> flatten -> FC.

    `filters` are the streams' kernel counts (3, 5, 8 in the paper), each multiplied by
    `width` (1 in the paper; `mer-jax bench --width`). Returns `(logits, out)`; `out` holds
    `stream_features` (the concatenated max-pooled maps, the Grad-CAM layer) and
    `pre_logits` (the flattened average-pooled features, 400 at 28x28).
    """

    num_classes: int = DEFAULT_NUM_CLASSES
    filters: Sequence[int] = (3, 5, 8)
    width: int = 1
    kernel_size: int = 3
    pool_size: int = 3
    dropout_rate: float = 0.5
    dtype: Any = jnp.float32
    conv_impl: str = "xla"  # layers.CONV_IMPLS: how convolutions compute, same results

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(
                "STSTNet input `x` must be (N, H, W, 3) = horizontal flow, vertical flow and "
                f"optical strain (view flow_<S>_strain), got shape {tuple(x.shape)}"
            )
        if self.num_classes < 1:
            raise ValueError(f"Model field `num_classes` must be >= 1, got {self.num_classes}")
        features = TripleStream(
            tuple(f * self.width for f in self.filters),
            kernel_size=self.kernel_size,
            pool_size=self.pool_size,
            dropout_rate=self.dropout_rate,
            dtype=self.dtype,
            conv_impl=self.conv_impl,
            name="streams",
        )(x.astype(self.dtype), train=train)
        pooled = nn.avg_pool(features, (2, 2), strides=(2, 2), padding="VALID")  # P2
        flat = pooled.reshape(pooled.shape[0], -1)
        logits = nn.Dense(
            self.num_classes, kernel_init=_kernel_init, dtype=self.dtype, name="head"
        )(flat)
        return logits.astype(jnp.float32), {"stream_features": features, "pre_logits": flat}


SPEC = ModelSpec(
    "ststnet",
    "baseline",  # a MEGC 2019 baseline, not one of the five seed papers
    Model,
    DEFAULT_INPUT_SHAPE,
    DEFAULT_NUM_CLASSES,
    ABLATIONS,
    width_kwarg="width",
    # The paper's network is already CPU-sized (1.7 k parameters at 28x28).
    small=SmallPreset(size=28),
    gradcam_layer="streams",
)
