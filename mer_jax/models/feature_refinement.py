"""Feature Refinement, FR (seed 002: Zhou, Mao, Huang, Zhang, Zhang, "Feature refinement: An
expression-specific feature learning and fusion method for micro-expression recognition",
Pattern Recognition 2022).

Input: TV-L1 optical flow from onset to apex, face cropped, the horizontal (channel 0) and
vertical (channel 1) components each resized to 28x28 (Sec. 4.2): x has shape (N, 28, 28, 2).

Expression-shared features (Sec. 3.1): one stream per flow component, each two Inception-v1
blocks [55] with 6 then 16 filters per branch ("motivated by LeNet"). The paper draws the
block only in Fig. 1; the branch layout is that of the public Keras Dual-Inception [38]
(github.com/xly135846/MEGC2019, apparently the authors': the paper's Keras 2.2.4 / TF 1.11
set-up), which is Inception-v1's: 1x1 | 1x1-3x3 | 1x1-5x5 | 3x3 max-pool-1x1, every
convolution 'same' and ReLU, the four branches concatenated, then a 2x2 max-pool
(28 -> 14 -> 7, so 7 * 7 * 64 = 3136 features per stream). The two flattened streams are
concatenated (6272) and, as in Dual-Inception, a fully connected ReLU layer of 1024 units
gives the expression-shared feature z. The text only says "the flattened two sets of feature
maps are concentrated into an expression-shared feature", but Table 7 fixes this reading:
FR adds ~1.18 M parameters per class (11.4231 M - 10.2418 M, less the 1 k of the last FC),
i.e. an attention FC of about 1024 x 1024, where a 6272-d z would need 39 M per class.

Expression proposal module (Sec. 3.2, Fig. 2), K = num_classes branches:

    a_k  = softmax(FC_k(z))       (same size as z)                               Eq. (2)
    z*_k = a_k * z                                                               Eq. (3)
    p_k  = sigmoid(FC(ReLU(FC(z*_k))))              detector k, two FC layers
    L_prop = 1/K sum_k BCE(p_k, 1[y == k])                                   Eq. (4)-(5)

Fusion and classification (Sec. 3.3):

    z' = sum_k z*_k                                                              Eq. (6)
    logits = FC(Dropout_0.5(ReLU(FC(z'))))                                       Eq. (7)
    L = lambda L_prop + L_cls,  lambda = 0.85 (`PROPOSAL_WEIGHT`)                 Eq. (8)

`aux_loss` returns lambda * L_prop per example; Eq. (4) sums over the N samples and the
engine takes the batch mean of L_cls + aux_loss, the usual scaling of both terms.

Widths the paper does not state: the detector's hidden layer (`detector_features` = 128, what
Table 7's per-class increment leaves after the 1024 x 1024 attention FC: 1.1803 M - 1.0496 M
~ 1026 * 128) and the classifier's hidden layer (`head_features` = 256, chosen to fit the
totals). Counts at (28, 28, 2): Basic Inception 6,449,867 (3 classes) and 6,450,892 (4)
against the paper's 6.4803 M and 6.4813 M (-0.47 %); FR 10,252,750 (3) and
11,433,936 (4) against 10.2418 M and 11.4231 M (+0.1 %). The Keras Dual-Inception reads
each flow component as a 3-channel picture (+48 parameters per stream); the remaining ~30 k
of the paper's Basic Inception is not explained by the text.

Ablations (Sec. 4.3, Table 1): `basic_inception` has no proposal module, i.e. the
Dual-Inception head flatten -> FC(1024) -> FC with Sec. 3.3's dropout added (Table 7's
Basic Inception has a ~1024-d last FC); `fr_fc` uses "only fully-connected layers in the
proposal module", read as z*_k = FC_k(z) (no softmax, no product with z; detectors and
L_prop kept); `fr_concatenated` fuses by concatenation, z' = [z*_1, ..., z*_K]. Table 1(a)'s
Dual-Inception differs from Basic Inception only in its data (mid-position frame as apex), so
it is not a model ablation.

Initialisation follows Keras' defaults (Glorot-uniform kernels, zero biases).
"""

from collections.abc import Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mer_jax.models import layers
from mer_jax.models.contract import ModelSpec, SmallPreset

DEFAULT_INPUT_SHAPE = (28, 28, 2)
# SMIC-HS / MEGC 2019 composite (CDE) have 3 classes; CASME II and SAMM runs use 4 or 5.
DEFAULT_NUM_CLASSES = 3
PROPOSAL_WEIGHT = 0.85  # lambda of Eq. (8); appendix, CDE ablation and CDMER settings.
FUSIONS = ("sum", "concat")
ABLATIONS = {
    "fr": {"proposal": True, "attention": True, "fusion": "sum"},
    "basic_inception": {"proposal": False},
    "fr_fc": {"proposal": True, "attention": False, "fusion": "sum"},
    "fr_concatenated": {"proposal": True, "attention": True, "fusion": "concat"},
}

_kernel_init = nn.initializers.glorot_uniform()  # Keras' default kernel initialiser


class InceptionBlock(nn.Module):
    """Inception-v1 block of Sec. 3.1 (Dual-Inception [38] layout), then a 2x2 max-pool.

    Branches 1x1 | 1x1-3x3 | 1x1-5x5 | 3x3 max-pool-1x1, `filters` each, ReLU, concatenated:
    4 * filters output channels.
    """

    filters: int
    dtype: Any = jnp.float32
    conv_impl: str = "xla"

    @nn.compact
    def __call__(self, x):
        conv = partial(
            layers.conv_class(self.conv_impl),
            self.filters,
            padding="SAME",
            kernel_init=_kernel_init,
            dtype=self.dtype,
        )
        b1 = nn.relu(conv((1, 1), name="b1_1x1")(x))
        b2 = nn.relu(conv((1, 1), name="b2_1x1")(x))
        b2 = nn.relu(conv((3, 3), name="b2_3x3")(b2))
        b3 = nn.relu(conv((1, 1), name="b3_1x1")(x))
        b3 = nn.relu(conv((5, 5), name="b3_5x5")(b3))
        b4 = nn.max_pool(x, (3, 3), strides=(1, 1), padding="SAME")
        b4 = nn.relu(conv((1, 1), name="b4_1x1")(b4))
        y = jnp.concatenate([b1, b2, b3, b4], axis=-1)
        return nn.max_pool(y, (2, 2), strides=(2, 2))


class ExpressionProposal(nn.Module):
    """Sec. 3.2: K attention units (Eq. (2)-(3)) and K expression detectors.

    Returns z*_k stacked (N, K, D), the attention a_k stacked (N, K, D) (None when
    `attention=False`: z*_k = FC_k(z), the FR-fc ablation) and detector logits (N, K).
    """

    num_classes: int
    detector_features: int = 128
    attention: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z):
        dense = partial(nn.Dense, kernel_init=_kernel_init, dtype=self.dtype)
        features, weights, detector_logits = [], [], []
        for k in range(self.num_classes):
            projected = dense(z.shape[-1], name=f"attention_{k + 1}")(z)
            if self.attention:
                # Softmax over the D features in float32: one D-way distribution per branch.
                a_k = nn.softmax(projected.astype(jnp.float32), axis=-1)
                z_k = a_k.astype(self.dtype) * z
                weights.append(a_k)
            else:
                z_k = projected
            h = nn.relu(dense(self.detector_features, name=f"detector_{k + 1}_fc1")(z_k))
            detector_logits.append(dense(1, name=f"detector_{k + 1}_fc2")(h)[:, 0])
            features.append(z_k)
        attention = jnp.stack(weights, axis=1) if weights else None
        logits = jnp.stack(detector_logits, axis=1).astype(jnp.float32)
        return jnp.stack(features, axis=1), attention, logits


class Model(nn.Module):
    """FR (Fig. 1): two-stream Inception -> proposal module -> fusion -> classifier.

    `filters` are the two Inception blocks' filters per branch (6, 16 in the paper);
    `shared_features` the size of z; `detector_features` / `head_features` the hidden widths
    of the detectors and of the classifier. Shrink them for CPU tests. Returns
    `(logits, out)`; `out` holds `shared_features` (z), `expression_attention` (a_k, (N, K, D)),
    `expression_features` (z*_k, (N, K, D)), `refined_features` (z'), `detector_logits` and
    `detector_probabilities` ((N, K)), and `pre_logits` (the classifier's hidden layer).
    """

    num_classes: int = DEFAULT_NUM_CLASSES
    filters: Sequence[int] = (6, 16)
    shared_features: int = 1024
    detector_features: int = 128
    head_features: int = 256
    dropout_rate: float = 0.5
    proposal: bool = True
    attention: bool = True
    fusion: str = "sum"
    dtype: Any = jnp.float32
    conv_impl: str = "xla"  # layers.CONV_IMPLS: how convolutions compute, same results

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        if x.ndim != 4 or x.shape[-1] != 2:
            raise ValueError(
                "FR input `x` must be (N, H, W, 2) = horizontal and vertical optical flow, "
                f"got shape {tuple(x.shape)}"
            )
        if self.fusion not in FUSIONS:
            raise ValueError(f"Model field `fusion` must be one of {FUSIONS}, got {self.fusion!r}")
        if self.num_classes < 1:
            raise ValueError(f"Model field `num_classes` must be >= 1, got {self.num_classes}")
        dense = partial(nn.Dense, kernel_init=_kernel_init, dtype=self.dtype)
        out = {}

        # Expression-shared features (Sec. 3.1): one Inception stream per flow component.
        x = x.astype(self.dtype)
        streams = []
        for c, stream in enumerate(("horizontal", "vertical")):
            h = x[..., c : c + 1]
            for i, filters in enumerate(self.filters):
                h = InceptionBlock(
                    filters,
                    dtype=self.dtype,
                    conv_impl=self.conv_impl,
                    name=f"{stream}_inception{i + 1}",
                )(h)
            streams.append(h.reshape(h.shape[0], -1))
        flat = jnp.concatenate(streams, axis=-1)
        z = nn.relu(dense(self.shared_features, name="shared_fc")(flat))

        if not self.proposal:
            # Basic Inception: the Dual-Inception head on the flattened maps, plus dropout.
            hidden = z
        else:
            out["shared_features"] = z
            # Expression-specific features (Sec. 3.2).
            expression, attention, detector_logits = ExpressionProposal(
                self.num_classes,
                detector_features=self.detector_features,
                attention=self.attention,
                dtype=self.dtype,
                name="proposal",
            )(z)
            if attention is not None:
                out["expression_attention"] = attention
            out["expression_features"] = expression
            out["detector_logits"] = detector_logits
            out["detector_probabilities"] = jax.nn.sigmoid(detector_logits)
            # Fusion (Sec. 3.3, Eq. (6)) and the two-layer classifier.
            if self.fusion == "sum":
                refined = jnp.sum(expression, axis=1)
            else:
                refined = expression.reshape(expression.shape[0], -1)
            out["refined_features"] = refined
            hidden = nn.relu(dense(self.head_features, name="head_fc")(refined))
        out["pre_logits"] = hidden
        hidden = nn.Dropout(self.dropout_rate, deterministic=not train)(hidden)
        logits = dense(self.num_classes, name="head")(hidden)
        return logits.astype(jnp.float32), out


def aux_loss(out: dict, labels: jax.Array) -> jax.Array:
    """lambda * L_prop per example, Eq. (4)-(5) and (8); zero without proposal module (N,)."""
    labels = jnp.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"aux_loss `labels` must be (N,) class indices, got {labels.shape}")
    if "detector_logits" not in out:
        return jnp.zeros(labels.shape, jnp.float32)
    logits = out["detector_logits"].astype(jnp.float32)
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"aux_loss `labels` has {labels.shape[0]} rows but out['detector_logits'] has "
            f"{logits.shape[0]}"
        )
    targets = jax.nn.one_hot(labels, logits.shape[-1], dtype=jnp.float32)
    # Binary cross-entropy on logits: -[t log p + (1 - t) log(1 - p)], p = sigmoid(logit).
    bce = -(targets * jax.nn.log_sigmoid(logits) + (1.0 - targets) * jax.nn.log_sigmoid(-logits))
    return PROPOSAL_WEIGHT * jnp.mean(bce, axis=-1)


SPEC = ModelSpec(
    "feature_refinement",
    "002",
    Model,
    DEFAULT_INPUT_SHAPE,
    DEFAULT_NUM_CLASSES,
    ABLATIONS,
    width_kwarg="shared_features",
    small=SmallPreset(
        size=28,
        kwargs={"shared_features": 128, "detector_features": 32, "head_features": 64},
    ),
    aux_loss=aux_loss,
    classifier=("head", "proposal"),
    gradcam_layer="horizontal_inception2,vertical_inception2",  # both streams: one map
)
