"""Apex frame spotting: annotated apex, mid-clip, and interframe-Diff.

- `ground_truth`: the annotated apex (CASME II, SAMM), checked against each
  clip's frame range.
- `mid_clip` (seed 000 on SMIC, which has no apex annotation: "the frame at the
  middle of each video clip"): onset + (offset - onset) // 2, i.e.
  floor((onset + offset) / 2). For a clip indexed 0..T-1 that is (T - 1) // 2:
  the middle frame for odd T, the earlier of the two middle frames for even T.
- `interframe_diff` (seed 002, Eq. (1), after Liong et al.): t_apex =
  argmax_t mean_{x,y} |I(x, y, t) - I(x, y, onset)| over the clip's own frames
  t in [onset, length); the mean runs over every non-time axis (convert to grey
  first for the paper's intensity version). Ties go to the earliest frame.

All take batches; `mid_clip` and `interframe_diff` are pure jnp (jit-able) and
never select a padded frame (t >= length).
"""

import jax
import jax.numpy as jnp
import numpy as np


def _concrete(x):
    try:
        return np.asarray(x)
    except jax.errors.TracerArrayConversionError:
        return None


def ground_truth(apex, lengths) -> np.ndarray:
    """Annotated apex indices (N,), checked to lie in [0, length) for every clip."""
    apex, lengths = np.asarray(apex), np.asarray(lengths)
    if apex.shape != lengths.shape:
        raise ValueError(f"ground_truth: apex shape {apex.shape} != lengths shape {lengths.shape}")
    bad = np.flatnonzero((apex < 0) | (apex >= lengths))
    if bad.size:
        b = int(bad[0])
        raise ValueError(f"ground_truth: clip {b}: apex {apex[b]} outside its {lengths[b]} frames")
    return apex.astype(np.int32)


def mid_clip(onset, offset):
    """Seed 000's SMIC apex: onset + (offset - onset) // 2 (floor of the midpoint)."""
    onset, offset = jnp.asarray(onset), jnp.asarray(offset)
    lo, hi = _concrete(onset), _concrete(offset)
    if lo is not None and hi is not None and (lo > hi).any():
        b = int(
            np.flatnonzero(np.broadcast_to(lo > hi, np.broadcast_shapes(lo.shape, hi.shape)))[0]
        )
        raise ValueError(f"mid_clip: clip {b}: onset after offset")
    return onset + (offset - onset) // 2


def interframe_diff(frames, lengths=None, onset=None):
    """Seed 002's apex: argmax over each clip's frames of mean |I_t - I_onset|.

    frames (N, T, ...) (uint8 or float; compared in float32), lengths (N,)
    (default T), onset (N,) (default 0). Returns int32 (N,).
    """
    frames = jnp.asarray(frames)
    if frames.ndim < 2:
        raise ValueError(f"interframe_diff: frames must be (N, T, ...), got {frames.shape}")
    n, t = frames.shape[:2]
    lengths = jnp.full((n,), t) if lengths is None else jnp.asarray(lengths)
    onset = jnp.zeros((n,), jnp.int32) if onset is None else jnp.asarray(onset)
    if lengths.shape != (n,) or onset.shape != (n,):
        raise ValueError(
            f"interframe_diff: lengths {lengths.shape} and onset {onset.shape} must be ({n},)"
        )
    lo, ln = _concrete(onset), _concrete(lengths)
    if lo is not None and ln is not None:
        bad = np.flatnonzero((ln < 1) | (ln > t) | (lo < 0) | (lo >= ln))
        if bad.size:
            b = int(bad[0])
            raise ValueError(
                f"interframe_diff: clip {b}: onset {lo[b]} / length {ln[b]} invalid for T={t}"
            )
    x = frames.astype(jnp.float32)
    first = jnp.take_along_axis(x, onset.reshape(n, 1, *([1] * (x.ndim - 2))), axis=1)
    diff = jnp.mean(jnp.abs(x - first), axis=tuple(range(2, x.ndim)))  # (N, T)
    steps = jnp.arange(t)[None, :]
    valid = (steps >= onset[:, None]) & (steps < lengths[:, None])
    return jnp.argmax(jnp.where(valid, diff, -jnp.inf), axis=1).astype(jnp.int32)


APEX_METHODS = ("ground_truth", "mid_clip", "interframe_diff")
