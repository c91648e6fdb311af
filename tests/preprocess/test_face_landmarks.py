"""68-landmark alignment (`mer_jax.preprocess.face`): geometry against points moved by a known
similarity, landmarks from a dlib model the tests train on cartoon faces, and errors."""

import math
import sys

import numpy as np
import pytest

from mer_jax.preprocess import face
from tests.conftest import place_face, points_box, render_face, train_landmark_model


def _eyes(points):
    return points[36:42].mean(0), points[42:48].mean(0)


def _apply(matrix, points):
    return points @ matrix[:, :2].T + matrix[:, 2]


@pytest.mark.parametrize("angle,scale,size", [(17.0, 80.0, 64), (-12.0, 200.0, 48)])
def test_eye_alignment_puts_level_eyes_at_the_set_place(angle, scale, size):
    points = place_face(angle, scale, (150.0, 120.0))
    matrix = face.eye_alignment(points, size, eye_distance=0.4, eye_row=0.35)
    # A similarity: one scale, no shear.
    gram = matrix[:, :2] @ matrix[:, :2].T
    np.testing.assert_allclose(gram, gram[0, 0] * np.eye(2), atol=1e-9)
    left, right = _eyes(_apply(matrix, points))
    np.testing.assert_allclose(left, [size / 2 - 0.2 * size, 0.35 * size], atol=1e-9)
    np.testing.assert_allclose(right, [size / 2 + 0.2 * size, 0.35 * size], atol=1e-9)


def _smooth_face(points, xy):
    """A smooth picture defined in frame coordinates: a ramp plus a blob on each eye and the
    mouth, evaluated at (..., 2) positions (x, y) in pixels."""
    sigma = 0.1 * np.ptp(points[:, 0])
    centres = [*_eyes(points), points[48:60].mean(0)]
    blobs = sum(np.exp(-((xy - c) ** 2).sum(-1) / (2 * sigma**2)) for c in centres)
    return 40.0 + 0.25 * xy[..., 0] + 150.0 * blobs


@pytest.mark.parametrize("picture,size", [(200, 64), (100, 128)])  # shrinking, then growing
def test_align_clip_samples_the_frame_where_the_transform_says(picture, size):
    """out[q] == frame[M^-1 q] on a smooth picture, for every frame of the clip (one M)."""
    grid = np.stack(np.meshgrid(np.arange(picture), np.arange(picture)), -1).astype(float)
    out_grid = np.stack(np.meshgrid(np.arange(size), np.arange(size)), -1).astype(float)
    clips, wants, matrix = [], [], None
    for shift in (0.0, 3.0):  # the face moves; the transform is the first frame's
        points = place_face(15.0, 0.6 * picture, (picture / 2 + shift, picture / 2))
        matrix = face.eye_alignment(points, size) if matrix is None else matrix
        clips.append(np.clip(np.rint(_smooth_face(points, grid)), 0, 255).astype(np.uint8))
        inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
        wants.append(_smooth_face(points, _apply(inverse, out_grid)))
    got = face.align_clip(np.stack(clips), matrix, size)
    assert got.shape == (2, size, size) and got.dtype == np.uint8
    for g, want in zip(got, wants):
        diff = np.abs(g - want)
        # ~0.35 / 2.3 measured (uint8 rounding, bilinear); a half-pixel slip gives 1.05 / 7.2.
        assert diff.mean() < 0.6 and diff.max() < 4.0, (diff.mean(), diff.max())
    colour = face.align_clip(np.repeat(np.stack(clips)[..., None], 3, -1), matrix, size)
    assert colour.shape == (2, size, size, 3)
    np.testing.assert_array_equal(colour[..., 1], got)


def test_landmarks_from_a_model_the_test_trains_level_a_tilted_face(landmark_model):
    size = 96
    errors = []
    for angle in (-14.0, -5.0, 8.0, 16.0):  # held out: angles the training draw never hit
        truth = place_face(angle, 0.6 * size, (size / 2 + 3, size / 2 - 2))
        image = render_face(truth, size)
        found = face.landmarks(image, points_box(truth), model=landmark_model)
        assert found.shape == (68, 2) and found.dtype == np.float64
        errors.append(np.abs(found - truth).mean())
        # The whole chain: the true eyes, moved by the transform from the found landmarks.
        left, right = _eyes(_apply(face.eye_alignment(found, 64), truth))
        tilt = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
        assert abs(tilt) < 3.0, (angle, tilt)
    assert np.mean(errors) < 1.5, errors


def test_landmark_errors(landmark_model, tmp_path, monkeypatch):
    image = render_face(place_face(0.0, 50.0, (48, 48)), 96)
    box = points_box(place_face(0.0, 50.0, (48, 48)))
    five = train_landmark_model(tmp_path / "five.dat", num_parts=5, images=10)
    with pytest.raises(ValueError, match="gives 5 points; alignment needs the 68-point"):
        face.landmarks(image, box, model=five, clip="c1")
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.dat: not a dlib shape predictor"):
        face.landmarks(image, box, model=str(junk))
    with pytest.raises(FileNotFoundError, match="missing.dat not found"):
        face.landmarks(image, box, model=str(tmp_path / "missing.dat"))
    monkeypatch.setitem(sys.modules, "face_recognition_models", None)
    with pytest.raises(ImportError, match=r"mer-jax\[landmarks\]"):
        face.landmarks(image, box)
    noise = np.random.default_rng(0).integers(0, 256, (2, 96, 96), dtype=np.uint8)
    with pytest.raises(face.FaceNotFoundError, match="clip c2: no face found on the onset frame"):
        face.aligned_clip(noise, 0, 32, model=landmark_model, clip="c2")
    with pytest.raises(ValueError, match="< 1 px apart"):
        face.eye_alignment(np.zeros((68, 2)), 32)
