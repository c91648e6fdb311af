"""Face detection and cropping of a clip (OpenCV Haar cascade, Viola and Jones 2001).

The seeds crop the face before resizing (seed 000: apex frame, face cropped;
seed 001: "face cropped (OpenCV)"; seed 002: flow of the cropped face). One box
per clip, found on the onset frame and applied to every frame, so the crop does
not jitter and the motion between frames is the face's own.

Boxes are `Box(x, y, size)`: a square of `size` pixels whose top-left corner is
column x, row y, always inside the image.
"""

import functools
from typing import NamedTuple

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"


class Box(NamedTuple):
    x: int  # left column
    y: int  # top row
    size: int  # side of the square, in pixels


class FaceNotFoundError(ValueError):
    """No face in the frame a clip's box is taken from."""


@functools.cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + name
    classifier = cv2.CascadeClassifier(path)
    if classifier.empty():
        raise FileNotFoundError(
            f"Haar cascade {path} missing or unreadable (the opencv-*-python wheels < 5 ship it)"
        )
    return classifier


def _grey(image: np.ndarray, clip: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    elif image.ndim == 3 and image.shape[-1] == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    elif image.ndim != 2:
        raise ValueError(f"clip {clip}: expected an (H, W[, 1 or 3]) frame, got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"clip {clip}: expected a uint8 frame, got {image.dtype}")
    return image


def detect_faces(
    image: np.ndarray,
    *,
    scale_factor: float = 1.1,
    min_neighbors: int = 5,
    min_size: int = 30,
    clip: str = "?",
) -> np.ndarray:
    """Frontal faces in a uint8 grey or RGB image -> (K, 4) int array of (x, y, w, h), largest first."""
    grey = cv2.equalizeHist(_grey(image, clip))
    found = _cascade(CASCADE).detectMultiScale(
        grey, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_size, min_size)
    )
    found = np.asarray(found, np.int64).reshape(-1, 4)
    return found[np.argsort(-(found[:, 2] * found[:, 3]), kind="stable")]


def square_box(face, image_hw: tuple[int, int], margin: float) -> Box:
    """Square of side round(max(w, h) * (1 + 2 margin)) centred on the face, moved (and if
    needed shrunk) to lie inside an image of (height, width)."""
    x, y, w, h = (int(v) for v in face)
    height, width = image_hw
    size = min(int(round(max(w, h) * (1 + 2 * margin))), height, width)
    cx, cy = x + w / 2, y + h / 2
    left = int(np.clip(round(cx - size / 2), 0, width - size))
    top = int(np.clip(round(cy - size / 2), 0, height - size))
    return Box(left, top, size)


def crop_box(onset_frame: np.ndarray, *, margin: float = 0.1, clip: str = "?", **detect) -> Box:
    """The clip's box: the largest face on its onset frame, widened by `margin` of its side on
    every side, made square and clamped to the frame. `detect` goes to `detect_faces`."""
    if margin < 0:
        raise ValueError(f"clip {clip}: margin must be >= 0, got {margin}")
    faces = detect_faces(onset_frame, clip=clip, **detect)
    if len(faces) == 0:
        raise FaceNotFoundError(
            f"clip {clip}: no face found on the onset frame ({np.shape(onset_frame)}); "
            "pass the dataset's cropped release or a box by hand"
        )
    return square_box(faces[0], np.shape(onset_frame)[:2], margin)


def crop_clip(frames: np.ndarray, box: Box, size: int, *, clip: str = "?") -> np.ndarray:
    """Apply one box to every frame of a (T, H, W[, C]) clip -> (T, size, size[, C]), same dtype.

    Area interpolation when shrinking, bilinear when growing (as `preprocess.resize`).
    """
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4):
        raise ValueError(f"clip {clip}: expected (T, H, W[, C]) frames, got {frames.shape}")
    x, y, side = (int(v) for v in box)
    height, width = frames.shape[1:3]
    if side <= 0 or x < 0 or y < 0 or x + side > width or y + side > height:
        raise ValueError(f"clip {clip}: box {tuple(box)} not inside frames of {height}x{width}")
    if size <= 0:
        raise ValueError(f"clip {clip}: size must be > 0, got {size}")
    crops = frames[:, y : y + side, x : x + side]
    interp = cv2.INTER_AREA if size < side else cv2.INTER_LINEAR
    out = [cv2.resize(np.ascontiguousarray(c), (size, size), interpolation=interp) for c in crops]
    return np.stack(out).reshape(len(frames), size, size, *frames.shape[3:])
