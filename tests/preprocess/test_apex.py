"""Apex spotting: synthetic clips with a known apex, padded batches, against a NumPy loop."""

import jax
import numpy as np
import pytest

from mer_jax.preprocess import apex


def _blob_clip(length, apex_at, size=24, peak=6.0, rng=None):
    """A Gaussian blob sliding right from the onset position to `peak` px at the apex and back."""
    t = np.arange(length)
    shift = np.where(
        t <= apex_at, t / max(apex_at, 1), (length - 1 - t) / max(length - 1 - apex_at, 1)
    )
    yy, xx = np.mgrid[:size, :size]
    frames = [
        np.exp(-((yy - size / 2) ** 2 + (xx - size / 3 - peak * s) ** 2) / (2 * 2.0**2))
        for s in shift
    ]
    clip = 40 + 180 * np.stack(frames)[..., None]
    if rng is not None:
        clip = clip + rng.normal(0, 1.0, clip.shape)
    return np.clip(clip, 0, 255).astype(np.uint8)


def _reference(frames, lengths, onsets):
    out = []
    for clip, n, o in zip(frames, lengths, onsets):
        clip = clip.astype(np.float64)
        scores = [np.mean(np.abs(clip[t] - clip[o])) for t in range(o, n)]
        out.append(o + int(np.argmax(scores)))
    return np.array(out)


def test_interframe_diff_finds_known_apex_in_padded_batch():
    rng = np.random.default_rng(0)
    lengths = np.array([20, 13, 31, 9])
    apexes = np.array([7, 10, 15, 2])
    t_max = 32
    frames = np.zeros((4, t_max, 24, 24, 1), np.uint8)
    for b, (n, a) in enumerate(zip(lengths, apexes)):
        frames[b, :n] = _blob_clip(n, a, rng=rng)
        frames[b, n:] = 255  # padding far from the onset: selected if the mask failed
    spotted = jax.jit(apex.interframe_diff)(frames, lengths)
    np.testing.assert_array_equal(spotted, apexes)
    np.testing.assert_array_equal(spotted, _reference(frames, lengths, np.zeros(4, int)))
    assert (np.asarray(spotted) < lengths).all()


def test_interframe_diff_onset_and_uint8_matches_float_loop():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (3, 10, 5, 6, 3), dtype=np.uint8)
    lengths = np.array([10, 7, 4])
    onsets = np.array([0, 3, 2])
    # uint8 |a - b| would wrap around; the reference works in float64.
    got = apex.interframe_diff(frames, lengths, onsets)
    np.testing.assert_array_equal(got, _reference(frames, lengths, onsets))
    assert ((np.asarray(got) >= onsets) & (np.asarray(got) < lengths)).all()
    # A static clip: every score is 0, the earliest valid frame (the onset) wins.
    still = np.repeat(frames[:, :1], 10, axis=1)
    np.testing.assert_array_equal(apex.interframe_diff(still, lengths, onsets), onsets)


def test_mid_clip_rounding():
    onset, offset = np.array([0, 0, 5, 10]), np.array([9, 10, 5, 13])
    np.testing.assert_array_equal(apex.mid_clip(onset, offset), [4, 5, 5, 11])
    # A SMIC clip of T frames indexed 0..T-1: (T - 1) // 2.
    for t in (1, 2, 7, 8, 51):
        assert int(apex.mid_clip(0, t - 1)) == (t - 1) // 2
    assert int(jax.jit(apex.mid_clip)(3, 8)) == 5
    with pytest.raises(ValueError, match="clip 1: onset after offset"):
        apex.mid_clip(np.array([0, 9]), np.array([4, 3]))


def test_ground_truth_passthrough_and_errors():
    np.testing.assert_array_equal(apex.ground_truth([3, 0, 6], [4, 1, 7]), [3, 0, 6])
    with pytest.raises(ValueError, match="clip 1: apex 5 outside its 5 frames"):
        apex.ground_truth([0, 5], [3, 5])
    with pytest.raises(ValueError, match="shape"):
        apex.ground_truth([0, 1], [3])


def test_interframe_diff_bad_input():
    frames = np.zeros((2, 6, 4, 4), np.float32)
    with pytest.raises(ValueError, match="clip 1: onset 0 / length 7"):
        apex.interframe_diff(frames, np.array([6, 7]))
    with pytest.raises(ValueError, match="clip 0: onset 6"):
        apex.interframe_diff(frames, np.array([6, 6]), np.array([6, 0]))
    with pytest.raises(ValueError, match="must be"):
        apex.interframe_diff(frames, np.array([6]))
