"""Face detection and cropping of a clip (OpenCV Haar cascade, Viola and Jones 2001).

The seeds crop the face before resizing (seed 000: apex frame, face cropped;
seed 001: "face cropped (OpenCV)"; seed 002: flow of the cropped face). One box
per clip, found on the onset frame and applied to every frame, so the crop does
not jitter and the motion between frames is the face's own.

Boxes are `Box(x, y, size)`: a square of `size` pixels whose top-left corner is
column x, row y, always inside the image.

Optional alignment (the `landmarks` extra: dlib and its packaged 68-point model):
68 landmarks on the onset frame's face (`landmarks`), one similarity transform that
levels the eyes and fixes their distance and height (`eye_alignment`), applied to
every frame (`align_clip`; `aligned_clip` does all three).
"""

import functools
import math
import os
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


# ---------------------------------------------------------------- 68-landmark alignment (extra)

LANDMARKS_EXTRA = "pip install 'mer-jax[landmarks]'"
NUM_LANDMARKS = 68
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)  # iBUG 300-W scheme, 0-based, image left/right


def _dlib():
    try:
        import dlib
    except ImportError:
        raise ImportError(
            f"68-landmark alignment needs dlib: {LANDMARKS_EXTRA} (dlib-bin and "
            "face_recognition_models; that landmark model is for non-commercial use)"
        ) from None
    return dlib


def landmark_model_path(model: str | None = None) -> str:
    """The dlib 68-point shape predictor file: `model` if given (a user's own, e.g. dlib's
    shape_predictor_68_face_landmarks.dat), else the one the `landmarks` extra packages
    (face_recognition_models, trained on iBUG 300-W: non-commercial use only)."""
    if model:
        path = os.path.abspath(os.fspath(model))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"landmark model {path} not found")
        return path
    try:
        import face_recognition_models
    except ImportError:
        raise ImportError(
            f"no landmark model given and face_recognition_models is not installed: "
            f"{LANDMARKS_EXTRA}, or pass a dlib 68-point shape predictor file"
        ) from None
    return face_recognition_models.pose_predictor_model_location()


@functools.cache
def _shape_predictor(path: str):
    try:
        return _dlib().shape_predictor(path)
    except RuntimeError as e:
        raise ValueError(f"landmark model {path}: not a dlib shape predictor ({e})") from None


def landmarks(image: np.ndarray, face, *, model: str | None = None, clip: str = "?") -> np.ndarray:
    """68 facial landmarks (x, y) in pixels, (68, 2) float64, inside a face box (x, y, w, h)
    (`detect_faces`), by dlib's shape predictor (Kazemi and Sullivan 2014)."""
    path = landmark_model_path(model)
    predictor = _shape_predictor(path)
    x, y, w, h = (int(v) for v in face)
    grey = np.ascontiguousarray(_grey(image, clip))
    shape = predictor(grey, _dlib().rectangle(x, y, x + w - 1, y + h - 1))
    if shape.num_parts != NUM_LANDMARKS:
        raise ValueError(
            f"clip {clip}: landmark model {path} gives {shape.num_parts} points; alignment "
            f"needs the {NUM_LANDMARKS}-point iBUG 300-W scheme"
        )
    return np.array([[shape.part(k).x, shape.part(k).y] for k in range(NUM_LANDMARKS)], float)


def eye_alignment(
    points: np.ndarray,
    size: int,
    *,
    eye_distance: float = 0.35,
    eye_row: float = 0.38,
    clip: str = "?",
) -> np.ndarray:
    """The similarity transform (2, 3) taking a frame to an S x S face whose eye centres
    (means of landmarks 36-41 and 42-47) are level on row `eye_row` S, `eye_distance` S
    apart and centred left-right: rotation, one scale and a shift, so the face is not
    sheared and the motion between frames keeps its shape."""
    points = np.asarray(points, float)
    if points.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"clip {clip}: expected (68, 2) landmarks, got {points.shape}")
    if not (0 < eye_distance < 1 and 0 < eye_row < 1):
        raise ValueError(f"clip {clip}: eye_distance and eye_row must lie in (0, 1)")
    left, right = points[LEFT_EYE].mean(0), points[RIGHT_EYE].mean(0)
    dx, dy = right - left
    distance = math.hypot(dx, dy)
    if distance < 1.0:
        raise ValueError(f"clip {clip}: eye centres {left} and {right} are < 1 px apart")
    scale = eye_distance * size / distance
    cos, sin = dx / distance, dy / distance
    rotate = scale * np.array([[cos, sin], [-sin, cos]])  # undoes the eye line's angle
    shift = np.array([size / 2.0, eye_row * size]) - rotate @ ((left + right) / 2.0)
    return np.hstack([rotate, shift[:, None]])


def align_clip(frames: np.ndarray, matrix: np.ndarray, size: int, *, clip: str = "?") -> np.ndarray:
    """Apply one (2, 3) transform to every frame of a (T, H, W[, C]) clip -> (T, size, size[, C]).

    Bilinear warp with replicated edges; when the transform shrinks, the frames are
    first area-resized by its scale (as `crop_clip`), so fine texture does not alias.
    """
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4):
        raise ValueError(f"clip {clip}: expected (T, H, W[, C]) frames, got {frames.shape}")
    if size <= 0:
        raise ValueError(f"clip {clip}: size must be > 0, got {size}")
    matrix = np.asarray(matrix, float)
    height, width = frames.shape[1:3]
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if scale < 1.0:  # area-resize first; pixel centres map as p = d (q + 1/2) - 1/2
        small = (max(1, round(width * scale)), max(1, round(height * scale)))
        d = np.array([width / small[0], height / small[1]])
        shift = matrix[:, 2] + matrix[:, :2] @ (0.5 * (d - 1.0))
        matrix = np.hstack([matrix[:, :2] * d[None, :], shift[:, None]])
    out = []
    for frame in frames:
        frame = np.ascontiguousarray(frame)
        if scale < 1.0:
            frame = cv2.resize(frame, small, interpolation=cv2.INTER_AREA)
        out.append(
            cv2.warpAffine(
                frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
        )
    return np.stack(out).reshape(len(frames), size, size, *frames.shape[3:])


def aligned_clip(
    frames: np.ndarray,
    onset: int,
    size: int,
    *,
    model: str | None = None,
    eye_distance: float = 0.35,
    eye_row: float = 0.38,
    clip: str = "?",
    **detect,
) -> np.ndarray:
    """Every frame of a (T, H, W[, C]) clip aligned by one transform from its onset frame:
    the largest Haar face there, its 68 landmarks, the eye alignment (`eye_alignment`)."""
    onset_frame = np.asarray(frames)[onset]
    faces = detect_faces(onset_frame, clip=clip, **detect)
    if len(faces) == 0:
        raise FaceNotFoundError(
            f"clip {clip}: no face found on the onset frame ({np.shape(onset_frame)}) to align"
        )
    points = landmarks(onset_frame, faces[0], model=model, clip=clip)
    matrix = eye_alignment(points, size, eye_distance=eye_distance, eye_row=eye_row, clip=clip)
    return align_clip(frames, matrix, size, clip=clip)
