"""Eulerian video magnification (Wu, Rubinstein, Shih, Guttag, Durand, Freeman, SIGGRAPH 2012).

A JAX port of the MIT reference MATLAB code (`amplify_spatial_lpyr_temporal_{ideal,
butter,iir}.m` with matlabPyrTools' `buildLpyr`/`reconLpyr`), batched over clips
(N, T, H, W, 3). Per frame: RGB -> YIQ (`rgb2ntsc`), a Laplacian pyramid of each
channel, a temporal band-pass of every pyramid coefficient (FFT along time, or
first-order IIR sections run with lax.scan), per-level
amplification (the lambda_c schedule of Sec. 3.2 / Fig. 6), reconstruction,
chrominance attenuation, added back to the frame, YIQ -> RGB, clipped to [0, 1].

Pyramid (matlabPyrTools): filter `binom5` = sqrt(2) [1, 4, 6, 4, 1] / 16 (the
sqrt(2) scales the band values by 2 per level but cancels in reconstruction),
'reflect1' edges (mirror about the edge sample, no repeat), reduce = filter then
keep samples 0, 2, 4, ... (ceil(n/2) of them), expand = zero-insert, filter.
'auto' height = 1 + maxPyrHt: the number of floor-halvings while both sides are
>= 5 (the bands themselves have ceil sizes). Checked against a port of the MEX
edge code: identical whenever an expanded dimension has >= 6 samples; the MEX
code treats a 5-sample expansion (filter overhanging both edges) differently,
which only occurs at the two coarsest levels of some sizes (e.g. 10 or 160).

Quirks of the reference, kept unless an option says otherwise:
- `ideal_bandpassing` zeroes the FFT bins outside `f_k > wl & f_k < wh` with
  f_k = k fs / T, k = 0..T-1, and returns `real(ifft(.))`. The conjugate bin
  T-k of an in-band bin sits at (T-k) fs / T > fs / 2 and is dropped unless wh
  exceeds it, so for wh <= fs/2 the output is exactly HALF the ideal band-pass
  (the effective amplification is alpha / 2: seed 001's alpha = 15 acts as 7.5);
  DC is never kept (wl >= 0) and
  neither is the Nyquist bin when wh <= fs/2 (strict <). `two_sided=True` keeps
  both bins of each |f| in (wl, wh): the true band-pass at full amplitude.
- `butter(1, fl/samplingRate)`: MATLAB's cut-off is a fraction of Nyquist, so
  the reference's -3 dB points are at fl/2 and fh/2 Hz
  (`butter_cutoff="exact"` uses 2 f / fs). The band is lowpass(fh) - lowpass(fl),
  first order, run causally from the first frame with state = first frame.
- `iir`: two exponential moving averages with weights r1 > r2 (the reference's
  arguments: here `high` = r1, `low` = r2, no fps).
- Levels: finest and coarsest bands are zeroed; level l (lambda halving from
  sqrt(H^2 + W^2) / 3 at the coarsest) gets min(alpha, 2 (lambda (1 + alpha) /
  lambda_c - 1)), which is negative for fine levels when lambda < lambda_c /
  (1 + alpha): the reference then attenuates/inverts them; kept.
- `ntsc2rgb` clamps negatives to 0 and divides any pixel with a channel > 1 by
  its largest channel (hue-preserving), then the script clips to [0, 1].
- Frame alignment: the reference renders filtered frame k on input frame k + 1
  (ideal) and drops the last 10 frames of every video; here filtered frame t is
  added to frame t and all T frames are returned. As in the reference the
  causal filters leave frame 0 unchanged.
Defaults follow the reference's face example (`reproduceResults`, face2:
butter 0.5-10 Hz, alpha 20, lambda_c 80, chromAttenuation 0) for lambda_c and
chrominance; `filter` defaults to "ideal".

Seed 001 (Gan et al.) magnifies "0.1-0.4 Hz" at alpha = 15. Its clips are 30-70
frames at 100-200 fps, whose FFT bins are fs / T >= 1.4 Hz apart: no bin lies in
(0.1, 0.4) Hz, the ideal filter returns zeros and nothing is magnified (a first-
order Butterworth passes almost nothing either). `band_units="nyquist"` reads
the band as fractions of Nyquist (MATLAB's convention for normalised
frequencies, the likely source of the numbers): 0.1-0.4 -> 0.05-0.2 fs, e.g.
10-40 Hz at 200 fps, i.e. temporal periods of 5-20 frames at any frame rate,
which holds an FFT bin for every T >= 6 (bin k = k / T cycles per frame).

`magnify_against_onset` is the Eulerian stand-in for AMAN's learned magnifier
(seed 003): each frame against the clip's onset frame, at factors 1..9.
"""

import math
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

BINOM5 = math.sqrt(2.0) * np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
# MATLAB ntsc2rgb; rgb2ntsc uses its exact inverse.
YIQ_TO_RGB = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])
RGB_TO_YIQ = np.linalg.inv(YIQ_TO_RGB)
FILTERS = ("ideal", "butter", "iir")
_HIGHEST = jax.lax.Precision.HIGHEST


# ---------------------------------------------------------------- colour


def rgb_to_yiq(rgb):
    """MATLAB `rgb2ntsc` on (..., 3)."""
    return jnp.einsum("...c,dc->...d", rgb, jnp.asarray(RGB_TO_YIQ, rgb.dtype), precision=_HIGHEST)


def yiq_to_rgb(yiq):
    """MATLAB `ntsc2rgb` on (..., 3): negatives to 0, pixels with a channel > 1 divided by their max."""
    rgb = jnp.einsum("...c,dc->...d", yiq, jnp.asarray(YIQ_TO_RGB, yiq.dtype), precision=_HIGHEST)
    rgb = jnp.maximum(rgb, 0.0)
    peak = jnp.max(rgb, axis=-1, keepdims=True)
    return jnp.where(peak > 1.0, rgb / jnp.maximum(peak, 1.0), rgb)


# ---------------------------------------------------------------- Laplacian pyramid


def max_pyramid_levels(height: int, width: int, filter_size: int = 5) -> int:
    """matlabPyrTools `1 + maxPyrHt([H W], 5)`: buildLpyr's 'auto' height."""
    levels = 1
    while height >= filter_size and width >= filter_size:
        levels += 1
        height, width = height // 2, width // 2
    return levels


def _pad_reflect(x, axis):
    pad = [(0, 0)] * x.ndim
    pad[axis] = (2, 2)
    return jnp.pad(x, pad, mode="reflect")


def _reduce(x, axis):
    """corrDn(binom5, 'reflect1', step 2, start 1) along `axis`: ceil(n/2) samples."""
    x = jnp.moveaxis(x, axis, -1)
    m = (x.shape[-1] + 1) // 2
    xp = _pad_reflect(x, -1)
    out = sum(BINOM5[k] * xp[..., k : k + 2 * m - 1 : 2] for k in range(5))
    return jnp.moveaxis(out, -1, axis)


def _expand(x, size, axis):
    """upConv(binom5, 'reflect1', step 2, start 1, stop size) along `axis`."""
    x = jnp.moveaxis(x, axis, -1)
    up = jnp.stack([x, jnp.zeros_like(x)], axis=-1).reshape(*x.shape[:-1], -1)[..., :size]
    up = _pad_reflect(up, -1)
    out = sum(BINOM5[k] * up[..., k : k + size] for k in range(5))
    return jnp.moveaxis(out, -1, axis)


def build_lpyr(images, levels: int | None = None):
    """matlabPyrTools `buildLpyr(im, levels)` on (..., H, W): bands fine -> coarse (low-pass last)."""
    height, width = images.shape[-2:]
    top = max_pyramid_levels(height, width)
    levels = top if levels is None else int(levels)
    if not 1 <= levels <= top:
        raise ValueError(f"levels={levels}: a {height}x{width} image allows 1..{top} levels")
    bands, x = [], images
    for _ in range(levels - 1):
        low = _reduce(_reduce(x, -1), -2)
        up = _expand(_expand(low, x.shape[-2], -2), x.shape[-1], -1)
        bands.append(x - up)
        x = low
    bands.append(x)
    return bands


def recon_lpyr(bands):
    """matlabPyrTools `reconLpyr`: the inverse of `build_lpyr`."""
    x = bands[-1]
    for band in bands[-2::-1]:
        x = band + _expand(_expand(x, band.shape[-2], -2), band.shape[-1], -1)
    return x


def level_gains(height: int, width: int, levels: int, alpha: float, lambda_c: float | None):
    """Per-level amplification, fine -> coarse, as in amplify_spatial_lpyr_temporal_*.

    lambda = sqrt(H^2 + W^2) / 3 at the coarsest level, halved per level;
    delta = lambda_c / 8 / (1 + alpha); currAlpha = 2 (lambda / delta / 8 - 1);
    finest and coarsest 0, else alpha if currAlpha > alpha, else currAlpha.
    `lambda_c=None`: alpha on every level but the finest and coarsest.
    """
    if lambda_c is not None and alpha <= -1.0:
        raise ValueError(f"level_gains: alpha={alpha} must be > -1 with lambda_c={lambda_c}")
    gains = np.zeros(levels)
    lam = math.sqrt(height**2 + width**2) / 3.0
    for level in range(levels, 0, -1):  # 1-based, coarse to fine, as the reference loops
        if level not in (1, levels):
            if lambda_c is None:
                gains[level - 1] = alpha
            else:
                delta = lambda_c / 8.0 / (1.0 + alpha)
                current = (lam / delta / 8.0 - 1.0) * 2.0  # exaggeration_factor = 2
                gains[level - 1] = alpha if current > alpha else current
        lam /= 2.0
    return gains


# ---------------------------------------------------------------- temporal filters


def ideal_mask(num_frames: int, low: float, high: float, fps: float, *, two_sided=False):
    """(T,) bool: the FFT bins `ideal_bandpassing(x, dim, low, high, fps)` keeps.

    Bin k has frequency k fps / T (k = 0..T-1) and is kept when low < f < high;
    `two_sided=True` uses min(k, T - k) fps / T instead (both halves of the spectrum).
    """
    k = np.arange(num_frames)
    freq = (np.minimum(k, num_frames - k) if two_sided else k) * fps / num_frames
    return (freq > low) & (freq < high)


def ideal_bandpass(x, mask, axis: int = 1):
    """real(ifft(fft(x) * mask)) along `axis`, as the reference's `ideal_bandpassing`."""
    shape = [1] * x.ndim
    shape[axis] = -1
    spectrum = jnp.fft.fft(x, axis=axis) * jnp.reshape(mask, shape)
    return jnp.real(jnp.fft.ifft(spectrum, axis=axis)).astype(x.dtype)


def butter1_lowpass(wn: float):
    """MATLAB `[b, a] = butter(1, wn, 'low')` (bilinear transform, pre-warped), wn in (0, 1)."""
    if not 0.0 < wn < 1.0:
        raise ValueError(f"butter: normalised cut-off {wn} must lie in (0, 1)")
    w = math.tan(math.pi * wn / 2.0)
    return np.array([w, w]) / (1.0 + w), np.array([1.0, (w - 1.0) / (w + 1.0)])


def first_order_bandpass(bands, high, low):
    """lowpass_high - lowpass_low of first-order sections along axis 1 (time), via lax.scan.

    `high`, `low`: (b0, b1, a1) of y_t = b0 x_t + b1 x_{t-1} - a1 y_{t-1},
    started as the reference does (y_0 = x_0, x_{-1} = x_0), so frame 0 gives 0.
    `bands`: a pytree of (N, T, ...) arrays.
    """
    xs = jax.tree.map(lambda b: jnp.moveaxis(b, 1, 0), bands)
    first = jax.tree.map(lambda x: x[0], xs)

    def step(carry, x):
        lp_high, lp_low, prev = carry
        lp_high = jax.tree.map(
            lambda y, x, p: high[0] * x + high[1] * p - high[2] * y, lp_high, x, prev
        )
        lp_low = jax.tree.map(lambda y, x, p: low[0] * x + low[1] * p - low[2] * y, lp_low, x, prev)
        return (lp_high, lp_low, x), jax.tree.map(jnp.subtract, lp_high, lp_low)

    rest = jax.tree.map(lambda x: x[1:], xs)
    _, out = jax.lax.scan(step, (first, first, first), rest)
    out = jax.tree.map(lambda f, o: jnp.concatenate([jnp.zeros_like(f)[None], o]), first, out)
    return jax.tree.map(lambda o: jnp.moveaxis(o, 0, 1), out)


# ---------------------------------------------------------------- magnification


def _as_unit_float(frames, name):
    frames = jnp.asarray(frames)
    if frames.ndim != 5 or frames.shape[-1] not in (1, 3):
        raise ValueError(f"{name}: frames must be (N, T, H, W, 3) or (..., 1), got {frames.shape}")
    if frames.dtype == jnp.uint8:
        return frames.astype(jnp.float32) / 255.0  # im2double
    if not jnp.issubdtype(frames.dtype, jnp.floating):
        raise TypeError(f"{name}: frames must be uint8 or float in [0, 1], got {frames.dtype}")
    return frames


def _to_planes(x):
    """(..., H, W, C) RGB -> (..., C, H, W) YIQ (grey stays as its one plane)."""
    return jnp.moveaxis(rgb_to_yiq(x) if x.shape[-1] == 3 else x, -1, -3)


def _from_planes(yiq_planes):
    x = jnp.moveaxis(yiq_planes, -3, -1)
    return jnp.clip(yiq_to_rgb(x) if x.shape[-1] == 3 else x, 0.0, 1.0)


def _chroma_scale(channels, chrom_attenuation, dtype):
    scale = [1.0] + [chrom_attenuation] * (channels - 1)
    return jnp.asarray(scale, dtype)[:, None, None]


@partial(jax.jit, static_argnames=("gains", "filter", "coeffs", "chrom_attenuation"))
def _magnify(x, temporal, *, gains, filter, coeffs, chrom_attenuation):
    planes = _to_planes(x)
    bands = build_lpyr(planes, len(gains))
    live = [i for i, g in enumerate(gains) if g != 0.0]
    picked = [bands[i] for i in live]
    if filter == "ideal":
        picked = [ideal_bandpass(b, temporal, axis=1) for b in picked]
    else:
        picked = first_order_bandpass(picked, *coeffs)
    filtered = [jnp.zeros_like(b) for b in bands]
    for i, b in zip(live, picked):
        filtered[i] = gains[i] * b
    delta = recon_lpyr(filtered) * _chroma_scale(x.shape[-1], chrom_attenuation, x.dtype)
    return _from_planes(planes + delta)


def _plan(
    name,
    shape,
    alpha,
    low,
    high,
    fps,
    *,
    filter,
    levels,
    lambda_c,
    band_units,
    two_sided,
    butter_cutoff,
    num_frames,
):
    """Checks `magnify`'s arguments; returns (per-level gains, ideal mask or None, IIR coeffs or None)."""
    _, _, h, w, _ = shape
    if filter not in FILTERS:
        raise ValueError(f"{name}: filter={filter!r} is not one of {FILTERS}")
    if band_units not in ("hz", "nyquist"):
        raise ValueError(f"{name}: band_units={band_units!r} is not 'hz' or 'nyquist'")
    if butter_cutoff not in ("reference", "exact"):
        raise ValueError(f"{name}: butter_cutoff={butter_cutoff!r} is not 'reference' or 'exact'")
    if alpha < 0:
        raise ValueError(f"{name}: alpha={alpha} must be >= 0")
    if not 0.0 <= low < high:
        raise ValueError(f"{name}: band needs 0 <= low < high, got low={low}, high={high}")
    if fps <= 0 and filter != "iir":
        raise ValueError(f"{name}: fps={fps} must be > 0")
    if num_frames < 2:
        raise ValueError(f"{name}: clips need >= 2 frames, got T={num_frames}")
    if lambda_c is not None and lambda_c <= 0:
        raise ValueError(f"{name}: lambda_c={lambda_c} must be > 0 (or None)")
    levels = max_pyramid_levels(h, w) if levels is None else levels
    if not 1 <= levels <= max_pyramid_levels(h, w):
        raise ValueError(
            f"{name}: levels={levels}: {h}x{w} frames allow 1..{max_pyramid_levels(h, w)}"
        )
    gains = tuple(float(g) for g in level_gains(h, w, levels, alpha, lambda_c))
    scale = fps / 2.0 if band_units == "nyquist" else 1.0
    mask, coeffs = None, None
    if filter == "ideal":
        mask = ideal_mask(num_frames, low * scale, high * scale, fps, two_sided=two_sided)
    elif filter == "butter":
        norm = fps if butter_cutoff == "reference" else fps / 2.0
        coeffs = tuple(
            (float(b[0]), float(b[1]), float(a[1]))
            for b, a in (butter1_lowpass(high * scale / norm), butter1_lowpass(low * scale / norm))
        )
    else:
        if not 0.0 < low < high <= 1.0:
            raise ValueError(f"{name}: iir needs 0 < r2=low < r1=high <= 1, got {low}, {high}")
        coeffs = ((high, 0.0, high - 1.0), (low, 0.0, low - 1.0))
    return gains, mask, coeffs


def temporal_operator(mask, coeffs, num_frames: int) -> np.ndarray:
    """The temporal band-pass as a (T, T) float64 matrix: filtered[t] = sum_s M[t, s] x[s].

    Both filters are linear along time, so `ideal_bandpass` (with `mask`) or
    `first_order_bandpass` (with `coeffs`) of a clip is M applied to its frames
    (computed here in NumPy by filtering the identity).
    """
    eye = np.eye(num_frames)
    if mask is not None:
        return np.real(np.fft.ifft(np.asarray(mask)[:, None] * np.fft.fft(eye, axis=0), axis=0))
    (hb0, hb1, ha1), (lb0, lb1, la1) = coeffs
    out = np.zeros_like(eye)
    lp_high = lp_low = prev = eye[0]
    for t in range(1, num_frames):
        x = eye[t]
        lp_high = hb0 * x + hb1 * prev - ha1 * lp_high
        lp_low = lb0 * x + lb1 * prev - la1 * lp_low
        out[t], prev = lp_high - lp_low, x
    return out


def magnify(
    frames,
    alpha: float,
    low: float,
    high: float,
    fps: float,
    *,
    filter: str = "ideal",
    levels: int | None = None,
    lambda_c: float | None = 80.0,
    chrom_attenuation: float = 0.0,
    band_units: str = "hz",
    two_sided: bool = False,
    butter_cutoff: str = "reference",
):
    """Eulerian motion magnification of clips (N, T, H, W, 3) (uint8, or float in [0, 1]).

    `filter`: "ideal" (FFT band (low, high)), "butter" (first-order Butterworth
    lowpass(high) - lowpass(low)), "iir" (`high` = r1, `low` = r2, fps unused).
    `band_units`: "hz", or "nyquist" (low, high as fractions of fps / 2). All
    clips share T: resample first (`mer_jax.preprocess.tim`), or use `magnify_frame` for one
    frame of clips of different lengths. alpha, band, fps and the options are
    Python numbers (the filters are built in NumPy); the computation is jitted.
    Returns float32 RGB in [0, 1], same shape.
    """
    x = _as_unit_float(frames, "magnify")
    gains, mask, coeffs = _plan(
        "magnify",
        x.shape,
        alpha,
        low,
        high,
        fps,
        filter=filter,
        levels=levels,
        lambda_c=lambda_c,
        band_units=band_units,
        two_sided=two_sided,
        butter_cutoff=butter_cutoff,
        num_frames=x.shape[1],
    )
    return _magnify(
        x,
        None if mask is None else jnp.asarray(mask),
        gains=gains,
        filter=filter,
        coeffs=coeffs,
        chrom_attenuation=float(chrom_attenuation),
    )


@partial(jax.jit, static_argnames=("gains", "chrom_attenuation"))
def _magnify_frame(x, weights, at, *, gains, chrom_attenuation):
    # Pyramid, band gains and reconstruction are linear per frame and the temporal filter is
    # linear along time, so band-passing every coefficient and keeping frame `at` equals the
    # pyramid of the one weighted sum of frames sum_s M[at, s] x_s.
    mixed = _to_planes(jnp.einsum("nt,nt...->n...", weights, x, precision=_HIGHEST))
    bands = build_lpyr(mixed, len(gains))
    delta = recon_lpyr([g * b for g, b in zip(gains, bands)])
    base = _to_planes(jnp.take_along_axis(x, at[:, None, None, None, None], axis=1)[:, 0])
    return _from_planes(base + delta * _chroma_scale(x.shape[-1], chrom_attenuation, x.dtype))


def magnify_frame(
    frames,
    at,
    alpha: float,
    low: float,
    high: float,
    fps: float,
    *,
    lengths=None,
    filter: str = "ideal",
    levels: int | None = None,
    lambda_c: float | None = 80.0,
    chrom_attenuation: float = 0.0,
    band_units: str = "hz",
    two_sided: bool = False,
    butter_cutoff: str = "reference",
):
    """Frame `at[n]` of `magnify(frames[n:n+1, :lengths[n]], ...)` for every clip: (N, H, W, 3).

    Clips of different lengths in one call: clip n's first `lengths[n]` frames
    are its own (the rest is padding, never read), and its temporal filter is
    built for its own length (`temporal_operator`), so each result equals
    magnifying that clip alone and keeping one frame (seed 001 keeps the apex),
    at the cost of one pyramid per clip instead of one per frame. The
    arguments are `magnify`'s; `at`, `lengths`: ints or (N,) (default: T).
    """
    x = _as_unit_float(frames, "magnify_frame")
    n, t = x.shape[:2]
    lengths = np.broadcast_to(np.asarray(t if lengths is None else lengths, np.int64), (n,))
    at = np.broadcast_to(np.asarray(at, np.int64), (n,))
    for b in range(n):
        if not 2 <= lengths[b] <= t:
            raise ValueError(f"magnify_frame: lengths[{b}]={lengths[b]} outside [2, {t}]")
        if not 0 <= at[b] < lengths[b]:
            raise ValueError(f"magnify_frame: at[{b}]={at[b]} outside [0, {lengths[b]})")
    weights, gains = np.zeros((n, t)), None
    for length in np.unique(lengths):
        gains, mask, coeffs = _plan(
            "magnify_frame",
            x.shape,
            alpha,
            low,
            high,
            fps,
            filter=filter,
            levels=levels,
            lambda_c=lambda_c,
            band_units=band_units,
            two_sided=two_sided,
            butter_cutoff=butter_cutoff,
            num_frames=int(length),
        )
        operator = temporal_operator(mask, coeffs, int(length))
        rows = np.flatnonzero(lengths == length)
        weights[rows, :length] = operator[at[rows]]
    return _magnify_frame(
        x,
        jnp.asarray(weights, x.dtype),
        jnp.asarray(at, jnp.int32),
        gains=gains,
        chrom_attenuation=float(chrom_attenuation),
    )


@partial(jax.jit, static_argnames=("gains", "chrom_attenuation"))
def _against_onset(x, onset, *, gains, chrom_attenuation):
    planes = _to_planes(x)  # (N, T, C, H, W)
    reference = jnp.take_along_axis(planes, onset[:, None, None, None, None], axis=1)
    bands = build_lpyr(planes - reference, len(gains[0]))
    live = [i for i in range(len(bands)) if any(g[i] != 0.0 for g in gains)]
    # recon is linear: reconstruct each live band alone once, then mix per factor.
    parts = []
    for i in live:
        only = [jnp.zeros_like(b) for b in bands]
        only[i] = bands[i]
        parts.append(recon_lpyr(only))
    mix = jnp.asarray([[g[i] for i in live] for g in gains], x.dtype)  # (K, live)
    chroma = _chroma_scale(x.shape[-1], chrom_attenuation, x.dtype)
    if parts:
        delta = jnp.einsum("kl,lnt...->nkt...", mix, jnp.stack(parts), precision=_HIGHEST)
    else:
        delta = jnp.zeros((x.shape[0], len(gains), *planes.shape[1:]), x.dtype)
    return _from_planes(planes[:, None] + delta * chroma)


def magnify_against_onset(
    frames,
    factors: Sequence[float],
    *,
    onset=0,
    levels: int | None = None,
    lambda_c: float | None = None,
    chrom_attenuation: float = 0.0,
):
    """Each frame magnified against its clip's onset frame, at every factor (AMAN fallback).

    With d_t = x_t - x_onset (YIQ) and B the Laplacian band selection (finest
    and coarsest level dropped, `lambda_c` schedule optional), frame t at factor
    a is x_onset + a B(d_t) + (d_t - B(d_t)) = x_t + (a - 1) B(d_t): the two-frame
    form of Wu et al.'s Eq. (4) with the temporal filter replaced by the
    difference to the onset, `a` the motion factor of Oh et al. / AMAN (1 = the
    frame itself, 9 = nine times the motion). frames (N, T, H, W, 3), onset int or
    (N,). Returns (N, K, T, H, W, 3) float32 in [0, 1].
    """
    x = _as_unit_float(frames, "magnify_against_onset")
    n, t, h, w, c = x.shape
    factors = tuple(float(a) for a in factors)
    if not factors:
        raise ValueError("magnify_against_onset: factors is empty")
    if min(factors) < 0:
        raise ValueError(f"magnify_against_onset: factors {factors} must be >= 0")
    onset = jnp.broadcast_to(jnp.asarray(onset, jnp.int32), (n,))
    try:
        concrete = np.asarray(onset)
    except jax.errors.TracerArrayConversionError:
        concrete = None
    if concrete is not None and ((concrete < 0) | (concrete >= t)).any():
        b = int(np.flatnonzero((concrete < 0) | (concrete >= t))[0])
        raise ValueError(f"magnify_against_onset: onset[{b}]={concrete[b]} outside [0, {t})")
    levels = max_pyramid_levels(h, w) if levels is None else levels
    if not 1 <= levels <= max_pyramid_levels(h, w):
        raise ValueError(
            f"magnify_against_onset: levels={levels}: {h}x{w} frames allow "
            f"1..{max_pyramid_levels(h, w)}"
        )
    gains = tuple(
        tuple(float(g) for g in level_gains(h, w, levels, a - 1.0, lambda_c)) for a in factors
    )
    return _against_onset(x, onset, gains=gains, chrom_attenuation=float(chrom_attenuation))
