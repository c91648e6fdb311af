"""EVM against a NumPy port of the MIT reference (matlabPyrTools MEX edges, the amplify_* scripts)."""

import math

import jax
import numpy as np
import pytest
import scipy.signal

from mer_jax.preprocess import evm

# ---------------------------------------------------------------- reference port
_M = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])  # ntsc2rgb
_BINOM5 = math.sqrt(2) * np.array([1, 4, 6, 4, 1]) / 16  # namedFilter('binom5')


def _reflect1(filt, pos, expand):
    """matlabPyrTools MEX edges.c `reflect1` for a 1-D filter (x_pos = pos, y_pos = 0)."""
    fd = len(filt)
    out = np.zeros(fd)
    base = fd - 1 if pos > 0 else 0
    over = pos - 1 if pos > 0 else (pos + 1 if pos < 0 else 0)
    mid = fd // 2 if pos < 0 else (fd - 1) // 2
    if not expand:
        for k in range(fd):
            out[abs(base - abs(over - base + k))] += filt[k]
        return out
    over = abs(over)
    res, f = base, base - over
    while f > base - fd:
        out[abs(res)] += filt[abs(f)]
        res, f = res - 1, f - 1
    if over != mid and pos != 0:
        res, f = base, base - 2 * mid + over
        while f > base - fd:
            out[abs(res)] += filt[abs(f)]
            res, f = res - 1, f - 1
    return out


def _corr_dn(x, filt):
    """convolve.c internal_reduce along the last axis (step 2, start 0): corrDn(..., 'reflect1')."""
    n, fd, mid = x.shape[-1], len(filt), len(filt) // 2
    start, stop, ctr_stop = -mid, n - mid, min(n - fd, n - mid)
    out, pos = [], start
    while pos < 1:
        out.append(x[..., 0:fd] @ _reflect1(filt, pos - 1, False))
        pos += 2
    while pos < ctr_stop:
        out.append(x[..., pos : pos + fd] @ filt)
        pos += 2
    while pos < stop:
        out.append(x[..., ctr_stop : ctr_stop + fd] @ _reflect1(filt, pos - ctr_stop + 1, False))
        pos += 2
    return np.stack(out, axis=-1)


def _up_conv(x, filt, size):
    """convolve.c internal_expand along the last axis (step 2, start 0, stop size): upConv."""
    fd, mid = len(filt), len(filt) // 2
    out = np.zeros((*x.shape[:-1], size))
    start, stop, ctr_stop = -mid, size - mid, min(size - fd, size - mid)
    i, pos = 0, start
    while pos < stop:
        if pos < 1:
            at, taps = 0, _reflect1(filt, pos - 1, True)
        elif pos < ctr_stop:
            at, taps = pos, filt
        else:
            at, taps = ctr_stop, _reflect1(filt, pos - ctr_stop + 1, True)
        out[..., at : at + fd] += x[..., i : i + 1] * taps
        i, pos = i + 1, pos + 2
    assert i == x.shape[-1]
    return out


def _max_pyr_ht(h, w):
    return 0 if h < 5 or w < 5 else 1 + _max_pyr_ht(h // 2, w // 2)


def _build_lpyr(im, ht):
    """buildLpyr(im, ht) on (..., H, W): list of bands, fine to coarse."""
    if ht <= 1:
        return [im]
    lo = _corr_dn(im, _BINOM5)  # along W (filt1', step [1 2])
    lo2 = np.swapaxes(_corr_dn(np.swapaxes(lo, -1, -2), _BINOM5), -1, -2)  # along H
    hi = np.swapaxes(_up_conv(np.swapaxes(lo2, -1, -2), _BINOM5, im.shape[-2]), -1, -2)
    hi2 = _up_conv(hi, _BINOM5, im.shape[-1])
    return [im - hi2, *_build_lpyr(lo2, ht - 1)]


def _recon_lpyr(bands):
    if len(bands) == 1:
        return bands[0]
    res = _recon_lpyr(bands[1:])
    hi = np.swapaxes(_up_conv(np.swapaxes(res, -1, -2), _BINOM5, bands[0].shape[-2]), -1, -2)
    return bands[0] + _up_conv(hi, _BINOM5, bands[0].shape[-1])


def _rgb2ntsc(rgb):
    return np.linalg.solve(_M, rgb.reshape(-1, 3).T).T.reshape(rgb.shape)


def _ntsc2rgb(yiq):
    a = yiq.reshape(-1, 3) @ _M.T
    a = np.maximum(0, a)
    d = (a > 1).any(axis=1)
    a[d] = a[d] / a[d].max(axis=1, keepdims=True)
    return a.reshape(yiq.shape)


def _gains(h, w, n_levels, alpha, lambda_c):
    """The per-level loop of amplify_spatial_lpyr_temporal_*.m (returned fine to coarse)."""
    gains = [0.0] * n_levels
    delta = lambda_c / 8 / (1 + alpha)
    lam = (h**2 + w**2) ** 0.5 / 3
    for level in range(n_levels, 0, -1):
        cur = (lam / delta / 8 - 1) * 2
        if level in (n_levels, 1):
            gains[level - 1] = 0.0
        elif cur > alpha:
            gains[level - 1] = alpha
        else:
            gains[level - 1] = cur
        lam /= 2
    return gains


def _ideal_bandpassing(x, wl, wh, fs):
    """ideal_bandpassing.m along axis 0."""
    n = x.shape[0]
    freq = np.arange(n) / n * fs
    mask = (freq > wl) & (freq < wh)
    f = np.fft.fft(x, axis=0)
    f[~mask] = 0
    return np.real(np.fft.ifft(f, axis=0))


def _pyr(frame_yiq, ht):
    """One frame's three channel pyramids, as in the scripts: list over levels of (3, h, w)."""
    per_channel = [_build_lpyr(frame_yiq[..., c], ht) for c in range(3)]
    return [np.stack([p[level] for p in per_channel]) for level in range(ht)]


def _render(frame_yiq, filtered, chrom):
    out = np.stack([_recon_lpyr([f[c] for f in filtered]) for c in range(3)], axis=-1)
    out[..., 1:] *= chrom
    return np.clip(_ntsc2rgb(frame_yiq + out), 0, 1)


def _reference_magnify(clip, alpha, lambda_c, low, high, fs, chrom, kind):
    """amplify_spatial_lpyr_temporal_{ideal,butter,iir} on one clip (T, H, W, 3) in [0, 1].

    Frame alignment as in mer_jax.preprocess.evm (filtered frame t on frame t, all frames).
    For 'iir', low = r2 and high = r1.
    """
    t_len, h, w, _ = clip.shape
    ht = 1 + _max_pyr_ht(h, w)
    gains = _gains(h, w, ht, alpha, lambda_c)
    frames = [_rgb2ntsc(f) for f in clip]
    pyrs = [_pyr(f, ht) for f in frames]
    if kind == "ideal":
        stacks = [
            _ideal_bandpassing(np.stack([p[lv] for p in pyrs]), low, high, fs) for lv in range(ht)
        ]
        filtered = [[g * stacks[lv][t] for lv, g in enumerate(gains)] for t in range(t_len)]
        return np.stack([_render(frames[t], filtered[t], chrom) for t in range(t_len)])
    if kind == "butter":
        high_b, high_a = scipy.signal.butter(1, high / fs, "low")
        low_b, low_a = scipy.signal.butter(1, low / fs, "low")
    else:
        high_b, high_a = np.array([high, 0.0]), np.array([1.0, high - 1.0])
        low_b, low_a = np.array([low, 0.0]), np.array([1.0, low - 1.0])
    lowpass1, lowpass2, prev = pyrs[0], pyrs[0], pyrs[0]
    out = [np.clip(_ntsc2rgb(frames[0]), 0, 1)]
    for t in range(1, t_len):
        pyr = pyrs[t]
        lowpass1 = [
            (-high_a[1] * l1 + high_b[0] * p + high_b[1] * q) / high_a[0]
            for l1, p, q in zip(lowpass1, pyr, prev)
        ]
        lowpass2 = [
            (-low_a[1] * l2 + low_b[0] * p + low_b[1] * q) / low_a[0]
            for l2, p, q in zip(lowpass2, pyr, prev)
        ]
        prev = pyr
        filtered = [g * (a - b) for g, a, b in zip(gains, lowpass1, lowpass2)]
        out.append(_render(frames[t], filtered, chrom))
    return np.stack(out)


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("shape", [(48, 64), (33, 27)])  # 32x32: the magnify tests
def test_pyramid_matches_matlabpyrtools_port(shape):
    rng = np.random.default_rng(sum(shape))
    im = rng.random((2, *shape))
    ht = 1 + _max_pyr_ht(*shape)
    assert evm.max_pyramid_levels(*shape) == ht
    expected = _build_lpyr(im, ht)
    got, recon = jax.jit(lambda x: (b := evm.build_lpyr(x), evm.recon_lpyr(b)))(np.float32(im))
    assert [b.shape for b in got] == [b.shape for b in expected]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=2e-5)
    np.testing.assert_allclose(recon, _recon_lpyr(expected), atol=2e-5)
    np.testing.assert_allclose(_recon_lpyr(expected), im, atol=1e-12)


def test_level_gains_schedule():
    # 32x32, 4 levels: lambda = sqrt(2048)/3 = 15.085 at the coarsest, halving.
    lam = math.sqrt(32**2 + 32**2) / 3
    # alpha 10, lambda_c 80: currAlpha = 2 (lambda * 11 / 80 - 1), below alpha.
    expected = [0.0, 2 * (lam / 4 * 11 / 80 - 1), 2 * (lam / 2 * 11 / 80 - 1), 0.0]
    np.testing.assert_allclose(evm.level_gains(32, 32, 4, 10.0, 80.0), expected, rtol=1e-12)
    assert expected[1] < 0  # the reference attenuates (inverts) fine levels here
    np.testing.assert_allclose(evm.level_gains(32, 32, 4, 10.0, 4.0), [0, 10, 10, 0])
    np.testing.assert_allclose(evm.level_gains(64, 48, 5, 3.0, None), [0, 3, 3, 3, 0])
    np.testing.assert_allclose(
        evm.level_gains(48, 64, 5, 20.0, 80.0), _gains(48, 64, 5, 20.0, 80.0), rtol=1e-12
    )


def test_ideal_filter_half_amplitude_quirk_and_two_sided():
    t, fs = 40, 100.0
    time = np.arange(t)
    wave = np.cos(2 * np.pi * 5 * time / t + 0.3)  # bin 5 = 12.5 Hz
    other = np.cos(2 * np.pi * 9 * time / t) + 3.0  # 22.5 Hz and DC
    x = np.stack([wave, other], axis=1)[None].astype(np.float32)  # (1, T, 2)
    masks = [evm.ideal_mask(t, 10.0, 15.0, fs, two_sided=s) for s in (False, True)]
    ref, full = (np.asarray(evm.ideal_bandpass(x, m, axis=1))[0] for m in masks)
    np.testing.assert_allclose(ref, _ideal_bandpassing(x[0], 10.0, 15.0, fs), atol=1e-5)
    np.testing.assert_allclose(ref[:, 0], 0.5 * wave, atol=1e-5)  # half amplitude
    np.testing.assert_allclose(full[:, 0], wave, atol=1e-5)
    np.testing.assert_allclose(ref[:, 1], 0, atol=1e-5)  # out of band and DC removed
    np.testing.assert_allclose(full[:, 1], 0, atol=1e-5)


def test_butter_coefficients_and_reference_cutoff():
    for wn in (0.005, 0.1, 0.5, 0.9):
        b, a = evm.butter1_lowpass(wn)
        sb, sa = scipy.signal.butter(1, wn, "low")
        np.testing.assert_allclose(b, sb, rtol=1e-12)
        np.testing.assert_allclose(a, sa, rtol=1e-12)
    # The reference passes fl / fs, so the -3 dB point is at fl / 2 Hz.
    fs, fl = 30.0, 4.0
    b, a = evm.butter1_lowpass(fl / fs)
    _, resp = scipy.signal.freqz(b, a, worN=[fl / 2], fs=fs)
    np.testing.assert_allclose(abs(resp[0]), 1 / math.sqrt(2), rtol=1e-9)
    with pytest.raises(ValueError, match="cut-off"):
        evm.butter1_lowpass(1.0)


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    return rng.random((2, 8, 32, 32, 3)).astype(np.float32)


@pytest.mark.parametrize(
    "kind,low,high,lambda_c,chrom",
    [
        ("ideal", 4.0, 11.0, 4.0, 0.1),
        ("butter", 0.5, 10.0, 80.0, 0.3),
        ("iir", 0.05, 0.4, 4.0, 0.1),
    ],
)
def test_magnify_matches_reference(clips, kind, low, high, lambda_c, chrom):
    alpha, fs = 10.0, 30.0
    got = np.asarray(
        evm.magnify(
            clips, alpha, low, high, fs, filter=kind, lambda_c=lambda_c, chrom_attenuation=chrom
        )
    )
    for b in range(len(clips)):
        expected = _reference_magnify(clips[b], alpha, lambda_c, low, high, fs, chrom, kind)
        np.testing.assert_allclose(got[b], expected, atol=1e-4)
    assert np.abs(got - clips).max() > 0.1  # something was magnified


def _grating(t_len, shift, size=32, period=8.0):
    """Grey vertical grating displaced by shift[t] px; the same in all three channels."""
    xx = np.arange(size)[None, None, :] - np.asarray(shift)[:, None, None]
    rows = 0.5 + 0.25 * np.sin(2 * np.pi * xx / period)
    return np.repeat(np.broadcast_to(rows, (t_len, size, size))[..., None], 3, axis=-1)


def _displacement(frames, period=8.0):
    """Per-frame shift (px) of the grating from the phase of its fundamental along x."""
    profile = frames[..., 0].mean(axis=-2)  # (..., W)
    x = np.arange(profile.shape[-1])
    phase = np.angle(profile @ np.exp(-2j * np.pi * x / period))
    return -(phase - phase[..., :1]) * period / (2 * np.pi)


def _live_fraction(period=8.0, size=32):
    """Share of the grating's fundamental in the amplified levels (all but finest and coarsest)."""
    grating = _grating(1, [0.0], size, period)[0, ..., 0] - 0.5
    bands = _build_lpyr(grating, 1 + _max_pyr_ht(size, size))
    live = _recon_lpyr([b if 0 < i < len(bands) - 1 else 0 * b for i, b in enumerate(bands)])
    wave = np.exp(-2j * np.pi * np.arange(size) / period)
    return abs(live.mean(axis=0) @ wave) / abs(grating.mean(axis=0) @ wave)


def test_seed001_band_selects_no_bin_in_hz_but_magnifies_as_nyquist_fraction(clips):
    t_len, fs = 8, 200.0  # bins 25 Hz apart; 0.1-0.4 Hz holds none of them
    motion = 0.1 * np.sin(2 * np.pi * np.arange(t_len) / t_len)  # one cycle per clip: 25 Hz
    clip = np.stack([_grating(t_len, motion), clips[1]]).astype(np.float32)
    kwargs = dict(filter="ideal", lambda_c=4.0, chrom_attenuation=0.1)  # same program as above
    as_hz = np.asarray(evm.magnify(clip, 10.0, 0.1, 0.4, fs, **kwargs))
    np.testing.assert_allclose(as_hz, clip, atol=2e-6)
    as_nyquist = np.asarray(evm.magnify(clip, 10.0, 0.1, 0.4, fs, band_units="nyquist", **kwargs))
    # 10-40 Hz keeps the 25 Hz bin at half amplitude (reference ideal filter); gain 10 on the
    # share `kappa` of the grating in the live levels: motion x (1 + 10 / 2 kappa), ~3.8.
    before, after = _displacement(clip[0]), _displacement(as_nyquist[0])
    np.testing.assert_allclose(before, motion - motion[0], atol=1e-3)
    ratio = (after @ before) / (before @ before)
    expected_ratio = 1 + 5 * _live_fraction()
    assert abs(ratio / expected_ratio - 1) < 0.15 and ratio > 3, (ratio, expected_ratio)
    expected = _reference_magnify(clip[0], 10.0, 4.0, 10.0, 40.0, fs, 0.1, "ideal")
    np.testing.assert_allclose(as_nyquist[0], expected, atol=1e-4)


def test_magnify_against_onset(clips):
    t_len = 8
    shift = np.linspace(0.0, 0.15, t_len)
    batch = np.stack([clips[0], _grating(t_len, shift)]).astype(np.float32)
    factors = (1.0, 3.0, 5.0)
    onset = np.array([2, 0])
    got = np.asarray(evm.magnify_against_onset(batch, factors, onset=onset, chrom_attenuation=0.1))
    assert got.shape == (2, 3, t_len, 32, 32, 3)
    # Factor 1 is the clip itself (through the YIQ round trip); the onset frame never changes.
    np.testing.assert_allclose(got[:, 0], batch, atol=2e-6)
    for b in range(2):
        still = np.broadcast_to(batch[b, onset[b]], got[b, :, onset[b]].shape)
        np.testing.assert_allclose(got[b, :, onset[b]], still, atol=2e-6)
    # NumPy reference: x_t + (a - 1) B(x_t - x_onset), B = levels 2..L-1 of the pyramid.
    h, w = 32, 32
    ht = 1 + _max_pyr_ht(h, w)
    for b in range(2):
        yiq = np.stack([_rgb2ntsc(f) for f in batch[b].astype(np.float64)])
        for k, a in enumerate(factors):
            for t in range(t_len):
                bands = _pyr(yiq[t] - yiq[onset[b]], ht)
                filtered = [(0.0 if lv in (0, ht - 1) else a - 1) * x for lv, x in enumerate(bands)]
                expected = _render(yiq[t], filtered, 0.1)
                np.testing.assert_allclose(got[b, k, t], expected, atol=1e-4)
    # The grating's displacement from the onset grows as 1 + (a - 1) kappa.
    kappa = _live_fraction()
    for k, a in enumerate(factors):
        gain = _displacement(got[1, k])[-1] / shift[-1]
        assert abs(gain / (1 + (a - 1) * kappa) - 1) < 0.1, (a, gain, kappa)


@pytest.mark.parametrize(
    "kind,low,high", [("ideal", 4.0, 11.0), ("butter", 0.5, 10.0), ("iir", 0.05, 0.4)]
)
def test_magnify_frame_of_clips_of_different_lengths_matches_reference(clips, kind, low, high):
    """One padded batch, each clip filtered at its own length == the reference on that clip."""
    alpha, fs, lambda_c, chrom = 10.0, 30.0, 4.0, 0.1
    lengths, at = np.array([8, 6]), np.array([5, 3])
    padded = np.concatenate([clips, np.ones_like(clips[:, :2])], axis=1)  # padding is never read
    got = np.asarray(
        evm.magnify_frame(
            padded,
            at,
            alpha,
            low,
            high,
            fs,
            lengths=lengths,
            filter=kind,
            lambda_c=lambda_c,
            chrom_attenuation=chrom,
        )
    )
    assert got.shape == (2, 32, 32, 3)
    for b in range(2):
        clip = clips[b, : lengths[b]]
        expected = _reference_magnify(clip, alpha, lambda_c, low, high, fs, chrom, kind)
        np.testing.assert_allclose(got[b], expected[at[b]], atol=1e-4)
        assert np.abs(got[b] - clip[at[b]]).max() > 0.1  # something was magnified
    with pytest.raises(ValueError, match=r"at\[1\]=6 outside \[0, 6\)"):
        evm.magnify_frame(padded, [0, 6], alpha, low, high, fs, lengths=lengths, filter=kind)
    with pytest.raises(ValueError, match=r"lengths\[0\]=11"):
        evm.magnify_frame(padded, 0, alpha, low, high, fs, lengths=[11, 6], filter=kind)


def test_bad_input_errors(clips):
    with pytest.raises(ValueError, match="frames must be"):
        evm.magnify(clips[0], 10, 1, 5, 30)
    with pytest.raises(ValueError, match="filter='box'"):
        evm.magnify(clips, 10, 1, 5, 30, filter="box")
    with pytest.raises(ValueError, match="low < high"):
        evm.magnify(clips, 10, 5, 1, 30)
    with pytest.raises(ValueError, match="fps"):
        evm.magnify(clips, 10, 1, 5, 0)
    with pytest.raises(ValueError, match="levels=9"):
        evm.magnify(clips, 10, 1, 5, 30, levels=9)
    with pytest.raises(ValueError, match="r2=low < r1=high"):
        evm.magnify(clips, 10, 0.5, 2.0, 30, filter="iir")
    with pytest.raises(ValueError, match="cut-off"):
        evm.magnify(clips, 10, 1, 40, 30, filter="butter")
    with pytest.raises(TypeError, match="uint8 or float"):
        evm.magnify(clips.astype(np.int32), 10, 1, 5, 30)
    with pytest.raises(ValueError, match=r"onset\[1\]=8"):
        evm.magnify_against_onset(clips, (1, 2), onset=np.array([0, 8]))
