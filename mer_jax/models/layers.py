"""Convolution as patches x GEMM, for per-fold weights under `jax.vmap`.

Vmapping `lax.conv_general_dilated` over a fold axis of the weights turns it
into a grouped convolution (one group per fold), which cuDNN runs slowly,
backward pass above all (jax#13800; this project has not yet measured it on a
GPU: `mer-jax bench --conv-impl xla --conv-impl gemm` times both in one run).
`gemm_conv_general_dilated` computes the same convolution as

    patches = stack_{offsets} strided_slice(pad(x))      (N, H', W', kh*kw*C)
    y       = patches @ reshape(kernel, (kh*kw*C, O))    (N, H', W', O)

(im2col): under `vmap` the matrix product becomes one batched GEMM over folds.
The patches are cut by slicing, not by an identity convolution, so they are
exact in every precision (an identity conv in TF32 would round them).

`conv_impl` selects it for a model: 'xla' (`lax.conv_general_dilated`) or
'gemm'; the engine picks 'gemm' where fold weights are vmapped on GPU/TPU
(`mer_jax.engine.resolve_conv_impl`).
"""

import itertools
from functools import partial

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

CONV_IMPLS = ("xla", "gemm")


def _channels_last(dimension_numbers, ndim: int) -> bool:
    """Whether `dimension_numbers` are Flax's (N, *spatial, C) / (*spatial, I, O) layout."""
    if dimension_numbers is None:
        return False
    spatial = tuple(range(1, ndim - 1))
    want_lhs = (0, ndim - 1) + spatial
    want_rhs = (ndim - 1, ndim - 2) + tuple(range(ndim - 2))
    if isinstance(dimension_numbers, lax.ConvDimensionNumbers):
        lhs, rhs, out = dimension_numbers
        return tuple(lhs) == want_lhs and tuple(rhs) == want_rhs and tuple(out) == want_lhs
    names = "".join(ch for ch in "HWDXYZ"[: ndim - 2])
    return tuple(dimension_numbers) == ("N" + names + "C", names + "IO", "N" + names + "C")


def gemm_conv_general_dilated(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision=None,
    preferred_element_type=None,
):
    """`lax.conv_general_dilated` for channels-last inputs, as slices + one matrix product.

    Same signature and result as `lax.conv_general_dilated` (to rounding of the
    summation order). Layouts other than Flax's channels-last, grouped
    convolutions and input dilation go to `lax.conv_general_dilated`.
    """
    ndim = lhs.ndim
    spatial_dims = ndim - 2
    lhs_dilation = tuple(lhs_dilation or (1,) * spatial_dims)
    rhs_dilation = tuple(rhs_dilation or (1,) * spatial_dims)
    if (
        not _channels_last(dimension_numbers, ndim)
        or feature_group_count != 1
        or batch_group_count != 1
        or any(d != 1 for d in lhs_dilation)
    ):
        return lax.conv_general_dilated(
            lhs,
            rhs,
            window_strides,
            padding,
            lhs_dilation=lhs_dilation,
            rhs_dilation=rhs_dilation,
            dimension_numbers=dimension_numbers,
            feature_group_count=feature_group_count,
            batch_group_count=batch_group_count,
            precision=precision,
            preferred_element_type=preferred_element_type,
        )
    kernel = rhs.shape[:spatial_dims]
    in_features, out_features = rhs.shape[-2:]
    strides = tuple(window_strides)
    dilated = tuple((k - 1) * d + 1 for k, d in zip(kernel, rhs_dilation))
    if isinstance(padding, str):
        pads = lax.padtype_to_pads(lhs.shape[1:-1], dilated, strides, padding)
    else:
        pads = [tuple(p) for p in padding]
    x = jnp.pad(lhs, ((0, 0), *pads, (0, 0)))
    out_shape = tuple(
        (size - span) // stride + 1 for size, span, stride in zip(x.shape[1:-1], dilated, strides)
    )
    if any(n <= 0 for n in out_shape):
        raise ValueError(f"convolution of input {lhs.shape} with kernel {rhs.shape}: empty output")
    columns = []
    for offset in itertools.product(*(range(k) for k in kernel)):
        start = tuple(o * d for o, d in zip(offset, rhs_dilation))
        stop = tuple(s + (n - 1) * stride + 1 for s, n, stride in zip(start, out_shape, strides))
        columns.append(
            lax.slice(
                x,
                (0, *start, 0),
                (x.shape[0], *stop, x.shape[-1]),
                (1, *strides, 1),
            )
        )
    patches = columns[0] if len(columns) == 1 else jnp.concatenate(columns, axis=-1)
    rows = patches.reshape(-1, patches.shape[-1])
    weights = rhs.reshape(-1, out_features)  # (kh*kw*C, O), rows ordered (offset, channel)
    assert weights.shape[0] == rows.shape[1] == len(columns) * in_features
    y = lax.dot_general(
        rows,
        weights,
        (((1,), (0,)), ((), ())),
        precision=precision,
        preferred_element_type=preferred_element_type,
    )
    return y.reshape(lhs.shape[0], *out_shape, out_features)


def conv_class(conv_impl: str):
    """`nn.Conv`, computing with `lax.conv_general_dilated` ('xla') or as patches x GEMM ('gemm')."""
    if conv_impl == "xla":
        return nn.Conv
    if conv_impl == "gemm":
        return partial(nn.Conv, conv_general_dilated=gemm_conv_general_dilated)
    raise ValueError(f"config key 'train.conv_impl': {conv_impl!r} not in {CONV_IMPLS}")


def batch_norm(*, frozen: bool, dtype) -> partial:
    """`nn.BatchNorm` as PyTorch's `BatchNorm2d` defaults it (running statistics updated
    by 0.1 of each batch's, i.e. Flax momentum 0.9; epsilon 1e-5), the seeds' reference
    framework. `frozen` uses the running statistics (evaluation, or a frozen trunk)."""
    return partial(
        nn.BatchNorm, use_running_average=frozen, momentum=0.9, epsilon=1e-5, dtype=dtype
    )
