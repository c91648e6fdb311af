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

Seed 003 (AMAN, Sec. 2.1) first TIM-normalises every clip to one length, "then
we successively sample n number of frames from the beginning at a certain
interval". Neither the length nor the interval is given; Sec. 3.1.2 sweeps n
"from 1 to the maximum length(20) of the video", so the TIM length is
AMAN_TIM_LENGTH = 20 and, as n = 20 must fit, the interval is the largest whole
step that fits n frames into 20 from the first: (L - 1) // (n - 1)
(`sample_indices`; n = 11 -> 1, frames 0..10: from the onset to about the
middle of onset..offset, where the apex usually lies). `tim_then_sample` does
both; with length = n it is TIM straight to n frames (interval 1).

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


AMAN_TIM_LENGTH = 20  # seed 003 Sec. 3.1.2: n is swept up to "the maximum length(20)"


def sample_indices(num_frames: int, length: int, interval: int = 0) -> np.ndarray:
    """The n = `num_frames` frame indices seed 003 takes of a clip TIM-normalised to
    `length` frames: 0, s, 2s, ... with s = `interval`, or (0: the default) the largest
    whole step that fits, (length - 1) // (n - 1) (module docstring)."""
    n, length, interval = int(num_frames), int(length), int(interval)
    if n < 1 or length < n or interval < 0:
        raise ValueError(
            f"frame sampling: {n} frames at interval {interval} of a clip TIM-normalised to "
            f"{length} frames: need 1 <= num_frames <= tim_length and interval >= 0"
        )
    step = interval or (length - 1) // max(n - 1, 1) or 1
    if (n - 1) * step > length - 1:
        raise ValueError(
            f"frame sampling: {n} frames every {step} need {(n - 1) * step + 1} of the "
            f"{length} TIM frames; lower the interval or raise tim_length"
        )
    return np.arange(n) * step


def tim_then_sample(
    frames,
    num_frames: int,
    *,
    length: int = AMAN_TIM_LENGTH,
    interval: int = 0,
    axis: int = 1,
    lengths=None,
):
    """Seed 003's input frames: `frames` TIM-normalised to `length` frames, then the
    `sample_indices(num_frames, length, interval)` of them (see `tim` for the arguments)."""
    index = sample_indices(num_frames, length, interval)
    return jnp.take(tim(frames, length, axis=axis, lengths=lengths), index, axis=axis)
