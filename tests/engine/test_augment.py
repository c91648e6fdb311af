"""Augmentation geometry against OpenCV on a real face (Grace Hopper, shrunk to 75x64):
rotation (cv2.warpAffine + getRotationMatrix2D), rescaling then corner crops (cv2.resize),
horizontal flips with the flow sign (cv2.flip), box smoothing (cv2.blur); and the random
wrapper: one draw for every frame of a sequence, float64 kept, bad factors named."""

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax import engine
from mer_jax.engine import augment


@pytest.fixture(scope="module")
def face(grace_hopper):
    """(75, 64, 3) float32 in [0, 1]: non-square, odd height."""
    small = cv2.resize(grace_hopper, (64, 75), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


@pytest.mark.parametrize("angle", [8.0, -10.0])
def test_rotate_matches_opencv_warp_affine(face, angle):
    h, w = face.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    ref = cv2.warpAffine(
        face, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    out = np.asarray(augment.rotate(jnp.asarray(face), angle))
    # OpenCV rounds source coordinates to 1/32 pixel (INTER_BITS = 5): up to 1/64 px off in
    # x and in y, so a bilinear value moves by at most (max |dI/dx| + max |dI/dy|) / 64.
    steps = np.abs(np.diff(face, axis=1)).max() + np.abs(np.diff(face, axis=0)).max()
    np.testing.assert_allclose(out, ref, atol=steps / 64 + 1e-6)
    assert np.abs(out - ref).mean() < steps / 640  # most pixels far closer
    # A quarter turn of a square is exact: counter-clockwise as displayed, like np.rot90.
    square = face[:64]
    np.testing.assert_allclose(
        augment.rotate(jnp.asarray(square), 90.0), np.rot90(square), atol=1e-5
    )


@pytest.mark.parametrize("scale", [0.9, 1.1])
def test_rescale_then_corner_crop_matches_opencv_resize(face, scale):
    h, w = face.shape[:2]
    size = 56
    sh, sw = augment.scaled_size(h, scale), augment.scaled_size(w, scale)
    resized = cv2.resize(face, (sw, sh), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(augment.rescale(jnp.asarray(face), scale), resized, atol=1e-5)
    corners = [(0, 0), (0, sw - size), (sh - size, 0), (sh - size, sw - size)]
    centre = ((sh - size) // 2, (sw - size) // 2)
    crops = [resized[oy : oy + size, ox : ox + size] for oy, ox in [*corners, centre]]
    aug = engine.Augment(crop_size=size, crop_mode="corners", rescale=(scale,))
    keys = jax.random.split(jax.random.key(0), 16)
    out = jax.jit(jax.vmap(lambda k: engine.augment_image(k, face, aug, True)))(keys)
    hits = [int(np.argmin([np.abs(o - c).max() for c in crops])) for o in np.asarray(out)]
    for o, i in zip(np.asarray(out), hits, strict=True):
        np.testing.assert_allclose(o, crops[i], atol=1e-5)
    assert len(set(hits)) >= 4  # the five crops are all drawn


def test_flip_matches_opencv_and_negates_horizontal_flow(face):
    flow = face[:64, :, :2] - 0.5  # square (u, v): no crop
    ref = cv2.flip(flow, 1) * np.array([-1.0, 1.0], np.float32)
    np.testing.assert_array_equal(augment.flip(jnp.asarray(flow), (-1.0, 1.0)), ref)
    np.testing.assert_array_equal(augment.flip(jnp.asarray(face)), cv2.flip(face, 1))
    aug = engine.Augment(flip=True, flip_sign=(-1.0, 1.0))
    keys = jax.random.split(jax.random.key(1), 8)
    out = np.asarray(jax.vmap(lambda k: engine.augment_image(k, flow, aug, True))(keys))
    flipped = [np.array_equal(o, ref) for o in out]
    assert all(f or np.array_equal(o, flow) for f, o in zip(flipped, out, strict=True))
    assert 0 < sum(flipped) < len(out)  # p = 0.5


@pytest.mark.parametrize("window", [2, 3, 6])
def test_smooth_matches_opencv_blur(face, window):
    ref = cv2.blur(face, (window, window))  # BORDER_REFLECT_101, anchor at window // 2
    np.testing.assert_allclose(augment.smooth(jnp.asarray(face), window), ref, atol=1e-6)


def test_frames_share_one_draw_and_float64_is_kept(face):
    """Every geometric draw (smoothing, rotation, rescale, crop, flip) is per example: the
    frames of a sequence get the same transform; under x64 the result stays float64."""
    aug = engine.Augment(
        crop_size=20, crop_mode="corners", flip=True, rotate_deg=10.0, rescale=(0.9, 1.1),
        smooth_max=4, prob=1.0,
    )  # fmt: skip
    small = cv2.resize(face, (24, 26), interpolation=cv2.INTER_AREA)
    frames = np.stack([small, small[::-1, ::-1]])  # two different frames
    keys = jax.random.split(jax.random.key(2), 4)
    run = jax.jit(jax.vmap(lambda k, x: engine.augment_image(k, x, aug, True), (0, None)))
    out = np.asarray(run(keys, frames))
    alone = np.asarray(run(keys, frames[:1]))
    np.testing.assert_allclose(out[:, :1], alone, atol=1e-6)  # frame 0 as if alone
    second = np.asarray(run(keys, frames[1:]))
    np.testing.assert_allclose(out[:, 1:], second, atol=1e-6)
    with jax.enable_x64(True):
        wide = jax.jit(jax.vmap(lambda k, x: engine.augment_image(k, x, aug, True), (0, None)))
        wide = wide(keys, frames.astype(np.float64))
        assert wide.dtype == jnp.float64 and wide.shape == out.shape
        assert np.all(np.isfinite(wide)) and 0 <= wide.min() and wide.max() <= 1


def test_rescale_that_cannot_hold_the_crop_names_the_key(face):
    aug = engine.Augment(crop_size=60, rescale=(0.9, 1.0))  # 0.9 x 64 = 58 < 60
    with pytest.raises(ValueError, match="augment.rescale.*0.9.*68x58.*crop 60"):
        engine.augment_image(jax.random.key(0), face, aug, True)
