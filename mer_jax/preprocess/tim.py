"""Temporal length normalisation: the temporal interpolation model (TIM) and linear resampling.

TIM (Zhou, Zhao, Pietikainen, "Towards a practical lipreading system", CVPR 2011,
Sec. 3; used by seed 003 AMAN with n = 11) treats the N frames of a clip as the
nodes of a path graph P_N, embeds them with the eigenvectors of its Laplacian

    y_k(t) = sin(pi k t / N + pi (N - k) / (2N)) = cos(pi k (t - 1/2) / N),  k = 1..N-1,

fits the linear map from the mean-centred frames to that embedding, and
reconstructs frames at n_out positions equally spaced on the continuous curve,
t in [1, N] (the authors' code samples pos in [1/N, 1], t = N pos). The
eigenvectors are the DCT-II basis, and because the centred frames lie in their
span the whole procedure is a fixed linear map of the frames along time:

    x(t) = mean_i x_i + (2/N) sum_{k=1}^{N-1} cos(pi k (t - 1/2) / N) sum_i cos(pi k (i - 1/2) / N) x_i
    (i = 1..N),

i.e. per-pixel cosine (DCT-II) interpolation. `tim_matrix(n_in, n_out)` is that
map; at integer t it returns the input frame exactly, so both end points are
kept and `tim_matrix(n, n)` is the identity. The authors' code perturbs the
singular values by 0.01 when the centred frames are rank deficient (e.g. two
identical frames); the closed form needs no such fix and differs from their
output only in that case.

`linear` is plain linear interpolation at n_out positions equally spaced in
[0, N - 1] (seed 004 STANet: "linear interpolation ... into 20 frames").

Both take an optional per-clip `lengths` so a zero-padded batch (clips of
different lengths padded to a common T) is resampled clip by clip; padded frames
get weight 0.
"""

import jax
import jax.numpy as jnp
import numpy as np

_HIGHEST = jax.lax.Precision.HIGHEST


def _positions(n_in, n_out: int, xp):
    """n_out points equally spaced in [1, n_in] (the curve parameter t of TIM)."""
    if n_out == 1:
        return xp.ones((1,)) * 1.0
    return 1.0 + (n_in - 1.0) * xp.arange(n_out) / (n_out - 1)


def _tim_weights(n_in, n_out: int, t_max: int, xp):
    # Columns past n_in (padding) get weight 0: frame index i and frequency k both masked.
    t = _positions(n_in, n_out, xp)[:, None, None]  # (n_out, 1, 1)
    i = xp.arange(1, t_max + 1)[None, None, :]  # (1, 1, t_max)
    k = xp.arange(1, max(t_max, 2))[None, :, None]  # (1, K, 1)
    cos_t = xp.cos(np.pi * k * (t - 0.5) / n_in)
    cos_i = xp.cos(np.pi * k * (i - 0.5) / n_in)
    used = (k < n_in) * 1.0
    weights = (1.0 + 2.0 * xp.sum(used * cos_t * cos_i, axis=1)) / n_in
    return weights * (xp.arange(t_max)[None, :] < n_in)


def tim_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float64 matrix of TIM (module docstring): frames_out = M @ frames_in."""
    if int(n_in) < 1 or int(n_out) < 1:
        raise ValueError(f"tim_matrix: n_in={n_in} and n_out={n_out} must both be >= 1")
    return _tim_weights(float(n_in), int(n_out), int(n_in), np)


def linear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of linear interpolation at n_out points spaced evenly in [0, n_in-1]."""
    if int(n_in) < 1 or int(n_out) < 1:
        raise ValueError(f"linear_matrix: n_in={n_in} and n_out={n_out} must both be >= 1")
    return _linear_weights(float(n_in), int(n_out), int(n_in), np)


def _linear_weights(n_in, n_out: int, t_max: int, xp):
    pos = _positions(n_in, n_out, xp)[:, None] - 1.0  # 0-based, in [0, n_in - 1]
    hat = xp.maximum(0.0, 1.0 - xp.abs(pos - xp.arange(t_max)[None, :]))
    return hat * (xp.arange(t_max)[None, :] < n_in)


def _check(frames, n_out: int, axis: int, lengths, name: str):
    if int(n_out) < 1:
        raise ValueError(f"{name}: n_out={n_out} must be >= 1")
    if frames.ndim < 1:
        raise ValueError(f"{name}: frames must have a time axis, got a scalar")
    axis = axis % frames.ndim
    if lengths is not None:
        if axis != 1:
            raise ValueError(f"{name}: lengths needs frames shaped (N, T, ...) with axis=1")
        if jnp.shape(lengths) != frames.shape[:1]:
            raise ValueError(
                f"{name}: lengths shape {jnp.shape(lengths)} != batch shape {frames.shape[:1]}"
            )
        try:
            concrete = np.asarray(lengths)
        except jax.errors.TracerArrayConversionError:
            concrete = None
        if concrete is not None:
            bad = np.flatnonzero((concrete < 1) | (concrete > frames.shape[1]))
            if bad.size:
                raise ValueError(
                    f"{name}: lengths[{bad[0]}]={concrete[bad[0]]} outside [1, {frames.shape[1]}]"
                )
    return axis


def _resample(frames, n_out, axis, lengths, weights_fn, name):
    frames = jnp.asarray(frames)
    axis = _check(frames, n_out, axis, lengths, name)
    if not jnp.issubdtype(frames.dtype, jnp.floating):
        raise TypeError(f"{name}: frames must be floating point, got {frames.dtype}")
    t_max = frames.shape[axis]
    if lengths is None:
        m = jnp.asarray(weights_fn(float(t_max), int(n_out), t_max, np), frames.dtype)
        out = jnp.tensordot(m, frames, axes=([1], [axis]), precision=_HIGHEST)
        return jnp.moveaxis(out, 0, axis)
    n = jnp.asarray(lengths).astype(jnp.float32)
    m = jax.vmap(lambda length: weights_fn(length, int(n_out), t_max, jnp))(n)
    return jnp.einsum("bst,bt...->bs...", m.astype(frames.dtype), frames, precision=_HIGHEST)


def tim(frames, n_out: int, *, axis: int = 1, lengths=None):
    """TIM-resample `frames` (float, time on `axis`) to n_out frames; jit-able for static n_out.

    `lengths` (N,) with frames (N, T, ...) resamples each clip from its first
    lengths[b] frames (a padded batch).
    """
    return _resample(frames, n_out, axis, lengths, _tim_weights, "tim")


def linear(frames, n_out: int, *, axis: int = 1, lengths=None):
    """Linear temporal interpolation to n_out frames (seed 004: 20 frames); see `tim`."""
    return _resample(frames, n_out, axis, lengths, _linear_weights, "linear")
