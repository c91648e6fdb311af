"""OFF-ApexNet, a MEGC 2019 baseline (Gan, Liong, Yau, Huang, Tan, "OFF-ApexNet on
micro-expression recognition system", Signal Processing: Image Communication 74 (2019),
arXiv:1805.08699).

Input: TV-L1 optical flow from the onset to the apex frame, horizontal (u, channel 0) and
vertical (v, channel 1) components resized to 28x28: x has shape (N, 28, 28, 2), the view
`flow_28` (data_builders/views.py).

Network: one CNN stream per flow component, the streams' features concatenated and
classified by fully connected layers. Per stream (LeNet-like):

    conv1: 5x5, 6 filters, stride 1, 'same', ReLU        28 x 28 x 6
    pool1: 2x2 max-pool, stride 2                         14 x 14 x 6
    conv2: 5x5, 16 filters, stride 1, 'same', ReLU       14 x 14 x 16
    pool2: 2x2 max-pool, stride 2                         7 x 7 x 16
    both streams flattened and concatenated               1568
    FC1: 1024, ReLU, dropout 0.5
    FC2: 1024, ReLU, dropout 0.5
    output: num_classes, softmax in the loss

The paper itself was not reachable when this file was written; the layout is pinned down by
(a) STSTNet's Table V (same authors, FG 2019): OFF-ApexNet has depth 5 (two convolutional
and three fully connected layers) and a 28 x 28 x 2 input; (b) Dual-Inception (Zhou et al.,
MEGC 2019; `feature_refinement.py`), the two-stream flow network of the same challenge, with
one stream per component at 28x28, LeNet's 6 and 16 filters, 2x2 pools and a 1024-unit FC;
(c) public PyTorch reimplementations with this two-stream 5x5 (6, 16) ->
1568 -> 1024 -> 1024 layout, dropout 0.5. The MEB toolkit's single-stream `OffApexNet`
(both components in one 3x3 stream, one FC) disagrees with (a) and is not followed.
The streams' maps are concatenated over channels and then flattened (7 x 7 x 32), a fixed
permutation of FC1's input rows against [flatten(u), flatten(v)]: the same network.

Parameters: 2 x (156 + 2,416) convolutions + 1,606,656 (FC1) + 1,049,600 (FC2) + 3,075
(output) = 2,664,475 at 3 classes; Table V of STSTNet lists 2.77 M (4 % more, not
explained by the layout above; a third-party count of the same layout, the Off-TANet
README, gives 2.66 M). Initialisation: Glorot-uniform kernels, zero biases (TensorFlow's
default; the initialiser is not named in the sources above).
"""

from collections.abc import Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from mer_jax.models import layers
from mer_jax.models.contract import ModelSpec, SmallPreset

DEFAULT_INPUT_SHAPE = (28, 28, 2)
DEFAULT_NUM_CLASSES = 3  # MEGC 2019 composite: negative, positive, surprise
ABLATIONS = {"off_apexnet": {}}
STREAMS = ("horizontal", "vertical")

_kernel_init = nn.initializers.glorot_uniform()


class TwoStream(nn.Module):
    """One LeNet-like stream per flow component (conv-pool-conv-pool), concatenated over
    channels: (N, H/4, W/4, 2 * filters[-1])."""

    filters: Sequence[int] = (6, 16)
    kernel_size: int = 5
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x):
        conv = partial(
            layers.conv_class(self.conv_impl),
            kernel_size=(self.kernel_size, self.kernel_size),
            padding="SAME",
            kernel_init=_kernel_init,
            dtype=self.dtype,
        )
        maps = []
        for c, stream in enumerate(STREAMS):
            h = x[..., c : c + 1]
            for i, filters in enumerate(self.filters):
                h = nn.relu(conv(filters, name=f"{stream}_conv{i + 1}")(h))
                h = nn.max_pool(h, (2, 2), strides=(2, 2))
            maps.append(h)
        return jnp.concatenate(maps, axis=-1)


class Model(nn.Module):
    """OFF-ApexNet: two flow streams -> FC1 -> FC2 -> output.

    `filters` are each stream's convolution widths (6, 16), `hidden_features` the width of
    FC1 and FC2 (1024; `mer-jax bench --width`). Returns `(logits, out)`; `out` holds
    `stream_features` (the pooled maps of both streams, the Grad-CAM layer) and `pre_logits`
    (FC2's output, before its dropout).
    """

    num_classes: int = DEFAULT_NUM_CLASSES
    filters: Sequence[int] = (6, 16)
    kernel_size: int = 5
    hidden_features: int = 1024
    dropout_rate: float = 0.5
    dtype: Any = jnp.float32
    conv_impl: str = "xla"  # layers.CONV_IMPLS: how convolutions compute, same results

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        if x.ndim != 4 or x.shape[-1] != 2:
            raise ValueError(
                "OFF-ApexNet input `x` must be (N, H, W, 2) = horizontal and vertical optical "
                f"flow (view flow_<S>), got shape {tuple(x.shape)}"
            )
        if self.num_classes < 1:
            raise ValueError(f"Model field `num_classes` must be >= 1, got {self.num_classes}")
        dense = partial(nn.Dense, kernel_init=_kernel_init, dtype=self.dtype)
        features = TwoStream(
            self.filters,
            kernel_size=self.kernel_size,
            dtype=self.dtype,
            conv_impl=self.conv_impl,
            name="streams",
        )(x.astype(self.dtype))
        dropout = nn.Dropout(self.dropout_rate, deterministic=not train)
        h = nn.relu(dense(self.hidden_features, name="fc1")(features.reshape(len(x), -1)))
        hidden = nn.relu(dense(self.hidden_features, name="fc2")(dropout(h)))
        logits = dense(self.num_classes, name="head")(dropout(hidden))
        return logits.astype(jnp.float32), {"stream_features": features, "pre_logits": hidden}


SPEC = ModelSpec(
    "off_apexnet",
    "baseline",  # a MEGC 2019 baseline, not one of the five seed papers
    Model,
    DEFAULT_INPUT_SHAPE,
    DEFAULT_NUM_CLASSES,
    ABLATIONS,
    width_kwarg="hidden_features",
    small=SmallPreset(size=28, kwargs={"hidden_features": 128}),
    gradcam_layer="streams",
)
