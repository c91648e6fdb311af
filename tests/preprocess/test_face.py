"""Face detection and cropping on a real face (Grace Hopper, matplotlib's sample data)."""

import cv2
import numpy as np
import pytest

from mer_jax.preprocess import face

# Hand-read from the 512x600 portrait (grid overlay): forehead under the cap to the
# chin, ear to ear, as (x0, y0, x1, y1). The eyes sit near row 195, the mouth near 275.
HOPPER_FACE = (175, 125, 355, 335)


@pytest.fixture(scope="module")
def hopper(grace_hopper):
    return grace_hopper


def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / (area(a) + area(b) - inter)


def test_detects_the_face_region(hopper):
    faces = face.detect_faces(hopper)
    assert len(faces) == 1, faces
    x, y, w, h = faces[0]
    found = (x, y, x + w, y + h)
    # Measured: (149, 100, 380, 331), IoU 0.69 with the hand box, centres 15 px apart.
    assert _iou(found, HOPPER_FACE) > 0.5, found
    centre = np.array([(x + x + w) / 2, (y + y + h) / 2])
    hand = np.array([(HOPPER_FACE[0] + HOPPER_FACE[2]) / 2, (HOPPER_FACE[1] + HOPPER_FACE[3]) / 2])
    assert np.linalg.norm(centre - hand) < 30, (centre, hand)


def test_crop_box_covers_the_face_and_is_square_inside(hopper):
    box = face.crop_box(hopper, margin=0.1, clip="hopper")
    x0, y0, x1, y1 = HOPPER_FACE
    tol = 10
    assert box.x <= x0 + tol and box.y <= y0 + tol, box
    assert box.x + box.size >= x1 - tol and box.y + box.size >= y1 - tol, box
    assert 0 <= box.x and 0 <= box.y and box.x + box.size <= 512 and box.y + box.size <= 600
    # Not the whole portrait: at most 1.6x the face's side.
    assert box.size <= 1.6 * max(x1 - x0, y1 - y0), box
    # margin widens the detection by margin * side on each side, same centre.
    tight = face.crop_box(hopper, margin=0.0)
    assert box.size == round(tight.size * 1.2)
    assert abs((box.x + box.size / 2) - (tight.x + tight.size / 2)) <= 1


def test_box_is_clamped_when_the_face_touches_the_edge(hopper):
    shifted = np.ascontiguousarray(hopper[:, 150:])  # face now ~25 px from the left edge
    (x, y, w, h) = face.detect_faces(shifted)[0]
    box = face.crop_box(shifted, margin=0.3)
    assert box.size == round(max(w, h) * 1.6)
    assert box.x == 0  # would start left of the image, moved inside
    assert box.y == round(y + h / 2 - box.size / 2)  # vertical position untouched


@pytest.mark.parametrize(
    "face_xywh, hw, margin, expected",
    [
        ((40, 30, 20, 20), (100, 120), 0.5, (30, 20, 40)),  # centred, grown 2x
        ((0, 0, 20, 10), (100, 120), 0.0, (0, 0, 20)),  # top-left corner: clamped
        ((100, 85, 20, 20), (100, 120), 0.25, (90, 70, 30)),  # bottom-right corner
        ((10, 10, 80, 80), (60, 100), 0.5, (20, 0, 60)),  # larger than the image: shrunk
    ],
)
def test_square_box_arithmetic(face_xywh, hw, margin, expected):
    assert face.square_box(face_xywh, hw, margin) == face.Box(*expected)


def test_crop_clip_applies_one_box_to_every_frame(hopper):
    clip = np.stack([hopper, hopper[:, ::-1], 255 - hopper])
    box = face.Box(126, 77, 277)
    out = face.crop_clip(clip, box, 64)
    assert out.shape == (3, 64, 64, 3) and out.dtype == np.uint8
    for t in range(3):
        crop = np.ascontiguousarray(clip[t, 77 : 77 + 277, 126 : 126 + 277])
        np.testing.assert_array_equal(
            out[t], cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA)
        )
    grey = face.crop_clip(clip[..., 0], box, 300)  # (T, H, W) frames, upscaled
    assert grey.shape == (3, 300, 300)


def test_no_face_names_the_clip():
    blank = np.full((240, 320, 3), 128, np.uint8)
    with pytest.raises(face.FaceNotFoundError, match="sub01/EP02_01f"):
        face.crop_box(blank, clip="sub01/EP02_01f")
    assert issubclass(face.FaceNotFoundError, ValueError)


def test_bad_inputs_name_the_clip(hopper):
    with pytest.raises(ValueError, match="clip c1: box .* not inside"):
        face.crop_clip(hopper[None], face.Box(400, 0, 200), 64, clip="c1")
    with pytest.raises(ValueError, match="clip c2: expected a uint8"):
        face.crop_box(hopper.astype(np.float32), clip="c2")
    with pytest.raises(ValueError, match="clip c3: margin"):
        face.crop_box(hopper, margin=-0.1, clip="c3")
