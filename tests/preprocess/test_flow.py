"""Optical flow: JAX TV-L1 against ground-truth motion and OpenCV's TV-L1, its building
blocks against cv2 / NumPy, optical strain against a NumPy reference, clip helpers.

Every float32 JAX TV-L1 call here has the same shapes and settings ((2, 64, 64),
OpenCV's defaults), so the flow program compiles once; the batch test runs the
same shapes in float64 (one more program, see `test_batched_equals_per_pair`).

Tolerances must hold on any x86-64 CPU, whose float32 rounding may differ from
this one's (FMA, vector width, summation order). TV-L1 amplifies rounding at
single pixels: inputs perturbed by one float32 ulp move some pixels by up to
~3 px, while mean EPEs and medians move by < 0.004 px. So end-to-end float32
checks bound means and medians only, with margins of several times that
spread; element-wise equality of two programs is checked in float64.
"""

import inspect

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax.preprocess import flow, tvl1_jax

N = 64
MARGIN = 4  # interior EPE leaves out this many border pixels


def _texture(x, y):
    """A smooth random texture, defined everywhere (so warped images are exact samples)."""
    rng = np.random.default_rng(0)
    out = np.zeros_like(x, dtype=np.float64)
    for _ in range(12):
        k = rng.uniform(2 * np.pi / 20, 2 * np.pi / 6)  # wavelengths 6..20 px
        angle, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        out += np.cos(k * (np.cos(angle) * x + np.sin(angle) * y) + phase)
    return (out + 12) / 24  # in [0, 1]


def _pair(u, v):
    """prev(x) = next(x + (u, v)) exactly: next = texture, prev = texture at x + flow."""
    y, x = np.mgrid[0:N, 0:N].astype(np.float64)
    prev = _texture(x + u, y + v).astype(np.float32)
    nxt = _texture(x, y).astype(np.float32)
    truth = np.stack([np.broadcast_to(u, (N, N)), np.broadcast_to(v, (N, N))], -1)
    return prev, nxt, truth.astype(np.float32)


def _cases():
    y, x = np.mgrid[0:N, 0:N].astype(np.float64)
    translation = _pair(1.3, -0.7)  # sub-pixel, both axes
    nonrigid = _pair(
        1.5 * np.sin(2 * np.pi * x / N) * np.cos(np.pi * y / N),
        1.2 * np.cos(2 * np.pi * (x + y) / (1.5 * N)),
    )
    return [translation, nonrigid]


def _epe(a, b, margin=0):
    d = np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1)
    return float(d[..., margin : N - margin, margin : N - margin].mean()) if margin else d.mean()


@pytest.fixture(scope="module")
def flows():
    cases = _cases()
    prev = np.stack([c[0] for c in cases])
    nxt = np.stack([c[1] for c in cases])
    truth = np.stack([c[2] for c in cases])
    jax_flow = np.asarray(flow.tvl1(prev, nxt))
    cv_flow = np.stack([flow.tvl1_opencv(a, b) for a, b in zip(prev, nxt)])
    return prev, nxt, truth, jax_flow, cv_flow


# ---------------------------------------------------------------------------
# TV-L1 end to end
# ---------------------------------------------------------------------------


def test_tvl1_recovers_known_motion_and_matches_opencv(flows):
    """Measured (64x64, OpenCV defaults, OpenCV 4.14; EPE in px, whole image / 4 px interior):

                    translation      non-rigid (|u| <= 1.9 px)
    JAX vs truth    0.055 / 0.047    0.149 / 0.113
    cv2 vs truth    0.051 / 0.042    0.151 / 0.112
    JAX vs cv2      0.018 / 0.011    0.031 / 0.012

    Inputs perturbed by 1-3 float32 ulps (what another CPU's rounding does) moved
    these by at most 0.004 px (JAX vs cv2 non-rigid: 0.027-0.031); an older
    environment measured 0.082 / 0.063 and 0.150 / 0.116 against truth. The
    bounds leave >= 0.014 px (>= 3x that spread) above every measured value.
    Median interior flow of the (1.3, -0.7) translation: JAX (1.266, -0.733), cv2
    (1.272, -0.728): both lock ~0.03 px toward the pixel grid (cv2 too with
    epsilon=0 or 100 inner iterations), so the bound is 0.05.
    """
    prev, nxt, truth, jax_flow, cv_flow = flows
    assert jax_flow.shape == (2, N, N, 2) and jax_flow.dtype == np.float32
    bounds_truth = [(0.15, 0.10), (0.25, 0.18)]
    for k, (whole, interior) in enumerate(bounds_truth):
        assert _epe(jax_flow[k], truth[k]) < whole, k
        assert _epe(jax_flow[k], truth[k], MARGIN) < interior, k
        # Never much worse than OpenCV on the same pair.
        assert _epe(jax_flow[k], truth[k]) < _epe(cv_flow[k], truth[k]) + 0.02, k
        assert _epe(jax_flow[k], cv_flow[k]) < 0.06, k
        assert _epe(jax_flow[k], cv_flow[k], MARGIN) < 0.03, k
    # The translation itself, to a few hundredths of a pixel.
    inner = jax_flow[0, MARGIN:-MARGIN, MARGIN:-MARGIN].reshape(-1, 2)
    np.testing.assert_allclose(np.median(inner, axis=0), [1.3, -0.7], atol=0.05)


@pytest.fixture(scope="module")
def flows64(flows):
    """The batch [a, b] and the batches [a, a], [b, b], in float64: one (2, 64, 64) program."""
    prev, nxt = (np.asarray(x, np.float64) for x in flows[:2])
    with jax.enable_x64(True):
        batched = np.asarray(flow.tvl1(prev, nxt))
        alone = [np.asarray(flow.tvl1(prev[[k, k]], nxt[[k, k]])) for k in range(2)]
    return batched, alone


def test_batched_equals_per_pair(flows64):
    """Pairs in a batch do not interact: [a, b] == [a, a][0], [b, b][0] and [1].

    Compared in float64: in float32 one ulp of difference between two batch
    positions (another CPU may vectorise them differently) can move a pixel by
    pixels (module docstring). Perturbing float64 inputs by 2^-52 .. 2^-30 moved
    no pixel by more than 6e6 times the relative perturbation, so even a
    difference of 100 float64 ulps (2.2e-14) stays below 1.5e-7 px: bound 1e-6.
    """
    batched, alone = flows64
    assert batched.dtype == np.float64 and batched.shape == (2, N, N, 2)
    for k in range(2):
        np.testing.assert_allclose(alone[k][0], batched[k], rtol=0, atol=1e-6)
        np.testing.assert_allclose(alone[k][1], batched[k], rtol=0, atol=1e-6)


def test_float64_agrees_with_float32_on_average(flows, flows64):
    """The float64 path is the same algorithm: mean EPE to float32 within the rounding spread."""
    assert _epe(flows64[0], flows[3]) < 0.02


def test_defaults_are_opencvs():
    algo = cv2.optflow.DualTVL1OpticalFlow_create()
    getters = {
        "tau": algo.getTau,
        "lambda_": algo.getLambda,
        "theta": algo.getTheta,
        "scales": algo.getScalesNumber,
        "warps": algo.getWarpingsNumber,
        "epsilon": algo.getEpsilon,
        "iterations": algo.getInnerIterations,
        "outer_iterations": algo.getOuterIterations,
        "scale_step": algo.getScaleStep,
        "median": algo.getMedianFiltering,
    }
    signature = inspect.signature(flow.tvl1).parameters
    for name, get in getters.items():
        assert flow.TVL1_DEFAULTS[name] == pytest.approx(get()), name
        assert signature[name].default == pytest.approx(get()), name
    assert algo.getGamma() == 0  # the illumination term tvl1 leaves out


def test_uint8_and_float_inputs_agree_in_opencv():
    """OpenCV reads float input as [0, 1] (x 255). u8 / 255 * 255 is exact in float32 for
    every u8 value, so both calls solve the same problem on this CPU, in any rounding."""
    prev, nxt, _ = _cases()[0]
    as_u8 = lambda im: np.clip(np.rint(im * 255), 0, 255).astype(np.uint8)
    a = flow.tvl1_opencv(as_u8(prev), as_u8(nxt))
    b = flow.tvl1_opencv(as_u8(prev).astype(np.float32) / 255, as_u8(nxt).astype(np.float32) / 255)
    assert _epe(a, b) < 1e-3


# ---------------------------------------------------------------------------
# Building blocks against OpenCV and NumPy
# ---------------------------------------------------------------------------


# Building blocks: one step on values <= 255, where a float32 ulp is <= 3e-5; a 16-tap sum
# in any order and with or without FMA stays within 1e-3 (measured here: 3e-5).


def test_pyramid_resize_is_cv2_inter_linear():
    rng = np.random.default_rng(1)
    img = rng.uniform(0, 255, (37, 45)).astype(np.float32)
    for fx in (0.8, 0.5):
        ref = cv2.resize(img, None, fx=fx, fy=fx, interpolation=cv2.INTER_LINEAR)
        (h, w) = ref.shape
        mine = (
            tvl1_jax._linear_resize_matrix(37, h, 1 / fx)
            @ img
            @ tvl1_jax._linear_resize_matrix(45, w, 1 / fx).T
        )
        np.testing.assert_allclose(mine, ref, atol=1e-3)
    ref = cv2.resize(img, (57, 50), interpolation=cv2.INTER_LINEAR)  # the flow's zoom-in
    mine = (
        tvl1_jax._linear_resize_matrix(37, 50, 37 / 50)
        @ img
        @ tvl1_jax._linear_resize_matrix(45, 57, 45 / 57).T
    )
    np.testing.assert_allclose(mine, ref, atol=1e-3)
    # Level sizes as OpenCV: round(0.8 * size), stopping before a level < 16 px.
    assert tvl1_jax._pyramid_shapes(64, 64, 5, 0.8) == [
        (64, 64),
        (51, 51),
        (41, 41),
        (33, 33),
        (26, 26),
    ]
    assert tvl1_jax._pyramid_shapes(30, 40, 5, 0.5) == [(30, 40)]  # 15 px < 16: one level


def _embed(img, shape):
    """img in the top-left corner of a zero array of `shape`: a padded pyramid level."""
    out = np.zeros(shape, img.dtype)
    out[: img.shape[0], : img.shape[1]] = img
    return out


@pytest.mark.parametrize("border", ["constant", "replicate"])
def test_cubic_warp_is_cv2_remap(border):
    rng = np.random.default_rng(2)
    h, w = 40, 48
    img = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 2)
    # cv2.remap quantises coordinates to 1/32 px: give it representable ones.
    u = np.round(rng.uniform(-3, 3, (h, w)) * 32).astype(np.float32) / 32
    v = np.round(rng.uniform(-3, 3, (h, w)) * 32).astype(np.float32) / 32
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    mode = cv2.BORDER_CONSTANT if border == "constant" else cv2.BORDER_REPLICATE
    ref = cv2.remap(img, x + u, y + v, cv2.INTER_CUBIC, borderMode=mode)
    # On a level padded to 56 x 60, only the (h, w) region counts.
    big = (56, 60)
    mine = tvl1_jax._warp_cubic(
        jnp.asarray(_embed(img, big))[None],
        jnp.asarray(_embed(u, big)),
        jnp.asarray(_embed(v, big)),
        h,
        w,
        border,
    )
    np.testing.assert_allclose(np.asarray(mine)[0, :h, :w], ref, atol=1e-3)


@pytest.mark.parametrize("k", [3, 5])
def test_median_is_cv2_median_blur(k):
    rng = np.random.default_rng(3)
    img = rng.normal(size=(21, 26)).astype(np.float32)
    mine = np.asarray(tvl1_jax._median(jnp.asarray(_embed(img, (30, 32))), k, 21, 26))[:21, :26]
    np.testing.assert_array_equal(mine, cv2.medianBlur(img, k))
    r = k // 2
    padded = np.pad(img, r, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k))
    np.testing.assert_array_equal(mine, np.median(windows, axis=(-2, -1)))


def test_threshold_step_cases():
    """TH operator (Zach et al. Prop. 3): the three cases of rho against lambda theta |grad I1|^2."""
    ix, iy = np.float32(2.0), np.float32(1.0)
    grad = ix**2 + iy**2
    l_t = 0.5
    for rho_c, expected in [(-10.0, l_t), (10.0, -l_t), (1.0, -1.0 / grad)]:
        v1, v2 = tvl1_jax._threshold(0.0, 0.0, ix, iy, grad, np.float32(rho_c), l_t)
        np.testing.assert_allclose([v1, v2], [expected * ix, expected * iy], rtol=1e-6)


# ---------------------------------------------------------------------------
# Optical strain
# ---------------------------------------------------------------------------


def test_optical_strain_matches_numpy_reference():
    rng = np.random.default_rng(4)
    f = rng.normal(size=(3, 9, 11, 2)).astype(np.float32)
    u_y, u_x = np.gradient(f[..., 0].astype(np.float64), axis=(1, 2))
    v_y, v_x = np.gradient(f[..., 1].astype(np.float64), axis=(1, 2))
    ref = np.sqrt(u_x**2 + v_y**2 + 2 * (0.5 * (u_y + v_x)) ** 2)
    np.testing.assert_allclose(flow.optical_strain(f), ref, rtol=1e-5, atol=1e-6)


def test_optical_strain_of_linear_fields():
    y, x = np.mgrid[0:12, 0:15].astype(np.float32)
    a, b, c, d = 0.3, -0.2, 0.5, 0.1  # u = a x + b y, v = c x + d y
    strain = flow.optical_strain(np.stack([a * x + b * y, c * x + d * y], -1))
    np.testing.assert_allclose(strain, np.sqrt(a**2 + d**2 + 2 * ((b + c) / 2) ** 2), rtol=1e-5)
    # A rigid rotation moves every pixel but strains none.
    rot = flow.optical_strain(np.stack([-0.1 * y, 0.1 * x], -1))
    np.testing.assert_allclose(rot, 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="flow: expected"):
        flow.optical_strain(np.zeros((4, 4, 3)))


# ---------------------------------------------------------------------------
# Clip helpers and errors
# ---------------------------------------------------------------------------


def _clip():
    """Three RGB frames: +(1.0, 0.5) px from frame 0 to 1, +(-0.8, 1.2) px from 1 to 2."""
    y, x = np.mgrid[0:N, 0:N].astype(np.float64)
    grey = [_texture(x + 1.0, y + 0.5), _texture(x, y), _texture(x + 0.8, y - 1.2)]
    return np.stack([np.repeat(g[..., None], 3, -1) for g in grey]).astype(np.float32)


def test_flow_sequence_and_between():
    """Measured interior medians: JAX sequence (0.998, 0.501), (-0.835, 1.164); cv2 within
    0.011 px EPE of it. Frame 0 -> 2, truth (0.2, 1.7): tvl1 (0.170, 1.742), farneback
    (0.210, 1.695), dis (0.260, 1.643)."""
    frames = _clip()
    # JAX: the two adjacent pairs run as one batch (the program compiled above).
    seq = flow.flow_sequence(frames, method="tvl1_jax")
    assert seq.shape == (2, N, N, 2)
    inner = seq[:, MARGIN:-MARGIN, MARGIN:-MARGIN].reshape(2, -1, 2)
    np.testing.assert_allclose(np.median(inner, axis=1), [[1.0, 0.5], [-0.8, 1.2]], atol=0.06)
    # OpenCV: the same as calling it on each grey pair.
    seq_cv = flow.flow_sequence(frames, method="tvl1")
    grey = [flow.to_grey(f) for f in frames]
    for t in range(2):
        np.testing.assert_array_equal(seq_cv[t], flow.tvl1_opencv(grey[t], grey[t + 1]))
    assert _epe(seq, seq_cv, MARGIN) < 0.03
    # Onset -> apex style: frame 0 -> 2 is the sum of the motions, (0.2, 1.7).
    for method in ("tvl1", "farneback", "dis"):
        between = flow.flow_between(frames, 0, 2, method=method)
        assert between.shape == (N, N, 2) and between.dtype == np.float32
        med = np.median(between[MARGIN:-MARGIN, MARGIN:-MARGIN].reshape(-1, 2), axis=0)
        np.testing.assert_allclose(med, [0.2, 1.7], atol=0.15, err_msg=method)


def test_errors_are_clear(monkeypatch):
    frames = np.zeros((3, 32, 32), np.uint8)
    with pytest.raises(ValueError, match="clip s1/e1: j=5 outside its 3 frames"):
        flow.flow_between(frames, 0, 5, clip="s1/e1")
    with pytest.raises(ValueError, match="unknown; known"):
        flow.flow_between(frames, 0, 1, method="flownet2")
    with pytest.raises(TypeError, match="unknown parameter"):
        flow.tvl1_opencv(frames[0], frames[1], lambda_=0.1, lamda=0.2)
    with pytest.raises(ValueError, match="differ in size"):
        flow.tvl1_opencv(frames[0], frames[1, :16])
    with pytest.raises(ValueError, match="too small"):
        flow.tvl1(np.zeros((1, 8, 8)), np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="needs >= 2 frames"):
        flow.flow_sequence(frames[:1])
    monkeypatch.delattr(cv2, "optflow")
    with pytest.raises(ImportError, match="opencv-contrib-python-headless"):
        flow.tvl1_opencv(frames[0], frames[1])
