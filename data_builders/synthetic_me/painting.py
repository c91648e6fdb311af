"""Painting a synthetic subject's neutral face: soft ellipses and strokes over a gradient.

`neutral_face(identity, size)` draws a `faces.Identity` (positions are
fractions of the image side) at size x size: background, neck, face and hair,
then cheeks, nose and folds, mouth, eyes and brows, then a skin texture and a
lighting gradient. Pure NumPy + OpenCV, deterministic.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from data_builders.synthetic_me.faces import Identity

SOFT = 0.6  # px: the anti-aliasing ramp of the features' edges


@functools.lru_cache(maxsize=8)
def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel row and column coordinates (y, x) of a size x size image, float32."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return y, x


def _soft_ellipse(x, y, centre, half_axes, angle=0.0, soft=SOFT):
    """Anti-aliased filled ellipse, alpha in [0, 1]; everything in px."""
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = x - centre[0], y - centre[1]
    u = (c * dx + s * dy) / half_axes[0]
    v = (-s * dx + c * dy) / half_axes[1]
    dist = (1.0 - np.sqrt(u * u + v * v)) * min(half_axes)
    return np.clip(0.5 + dist / (2 * soft), 0.0, 1.0)


def _segment(x, y, p, q, half_width, soft=SOFT):
    """A thick line from p to q as an ellipse."""
    d = q - p
    half_len = 0.5 * np.hypot(*d) + half_width
    return _soft_ellipse(x, y, (p + q) / 2, (half_len, half_width), np.arctan2(d[1], d[0]), soft)


def _over(img, alpha, colour):
    a = alpha[..., None]
    return img * (1 - a) + np.asarray(colour, np.float32) * a


class _Canvas:
    """The pixel grid and the identity's geometry in pixels at one size."""

    def __init__(self, idt: Identity, size: int):
        self.idt, self.size = idt, size
        self.y, self.x = grid(size)
        px = lambda p: np.asarray(p) * size - 0.5  # noqa: E731
        self.lm = {k: px(v) for k, v in idt.landmarks.items()}
        self.centre = px(idt.centre)
        self.ax, self.ay = idt.axes * size
        self.dark = idt.feature_darkness

    def ellipse(self, centre, half_axes, angle=0.0, soft=SOFT):
        return _soft_ellipse(self.x, self.y, centre, half_axes, angle, soft)

    def segment(self, p, q, half_width):
        return _segment(self.x, self.y, p, q, half_width)


def _head(c: _Canvas) -> np.ndarray:
    """Background gradient, neck, face ellipse, hair."""
    idt, x, y, size, ax, ay = c.idt, c.x, c.y, c.size, c.ax, c.ay
    g = (x / size - 0.5) * np.cos(idt.background_angle) + (y / size - 0.5) * np.sin(
        idt.background_angle
    )
    g = np.clip(g + 0.5, 0, 1)[..., None]
    img = idt.background[0] * (1 - g) + idt.background[1] * g
    neck = c.ellipse(c.centre + (0, 1.1 * ay), (0.55 * ax, 0.7 * ay), 0.0, 1.0)
    img = _over(img, neck, idt.skin * 0.8)
    img = _over(img, c.ellipse(c.centre, (ax, ay), 0.0, 0.8), idt.skin)
    u, v = (x - c.centre[0]) / ax, (y - c.centre[1]) / ay
    head = c.ellipse(c.centre - (0, 0.04 * ay), (1.06 * ax, 1.1 * ay), 0.0, 0.8)
    hair = head * np.clip(0.5 + (idt.hairline + 0.25 * u * u - v) * ay / (2 * SOFT), 0, 1)
    return _over(img, hair, idt.hair)


def _cheeks_nose_chin(c: _Canvas, img: np.ndarray) -> np.ndarray:
    idt, lm, ax, ay, dark = c.idt, c.lm, c.ax, c.ay, c.dark
    for side in "lr":
        sign = -1 if side == "l" else 1
        cheek, ala, corner = lm[f"cheek_{side}"], lm[f"nose_ala_{side}"], lm[f"mouth_corner_{side}"]
        img = _over(img, 0.15 * c.ellipse(cheek, (0.16 * ax, 0.09 * ay), 0, 2), idt.lips)
        bridge = np.array([lm["nose_tip"][0] + sign * 0.09 * ax, lm["nose_tip"][1] - 0.17 * ay])
        img = _over(
            img, 0.12 * dark * c.ellipse(bridge, (0.025 * ax, 0.16 * ay), 0, 1), idt.skin * 0.6
        )
        img = _over(img, 0.5 * c.ellipse(ala, (0.065 * ax, 0.055 * ay), 0), idt.skin * 0.82)
        nostril = np.array([ala[0] - sign * 0.07 * ax, ala[1] + 0.025 * ay])
        img = _over(
            img, 0.8 * c.ellipse(nostril, (0.04 * ax, 0.02 * ay), sign * 0.3), idt.skin * 0.35
        )
        fold_top = ala + (sign * 0.07 * ax, 0.02 * ay)
        fold_end = corner + (sign * 0.07 * ax, 0.08 * ay)
        fold = c.segment(fold_top, fold_end, 0.013 * ay)
        img = _over(img, 0.3 * dark * fold, idt.skin * 0.55)
    chin_crease = lm["lip_lower"] + (0, 0.09 * ay)
    img = _over(
        img, 0.5 * dark * c.ellipse(chin_crease, (0.13 * ax, 0.022 * ay), 0), idt.skin * 0.5
    )
    return _over(
        img, 0.2 * dark * c.ellipse(lm["chin"], (0.2 * ax, 0.06 * ay), 0, 1.5), idt.skin * 0.7
    )


def _mouth(c: _Canvas, img: np.ndarray) -> np.ndarray:
    """Lips, slit, corners."""
    idt, lm, ay = c.idt, c.lm, c.ay
    cl, cr = lm["mouth_corner_l"], lm["mouth_corner_r"]
    mid = (cl + cr) / 2
    half = 0.5 * np.hypot(*(cr - cl))
    angle = np.arctan2(*(cr - cl)[::-1])
    up = mid[1] - lm["lip_upper"][1]
    low = lm["lip_lower"][1] - mid[1]
    upper = c.ellipse((mid[0], mid[1] - up / 2), (0.92 * half, up / 2 + 0.01 * ay), angle)
    lower = c.ellipse((mid[0], mid[1] + low / 2), (0.8 * half, low / 2 + 0.01 * ay), angle)
    img = _over(img, 0.85 * np.maximum(upper, lower), idt.lips)
    img = _over(img, 0.9 * c.ellipse(mid, (half, 0.02 * ay), angle), idt.lips * 0.25)
    for corner in (cl, cr):
        img = _over(
            img, 0.6 * c.dark * c.ellipse(corner, (0.035 * ay, 0.03 * ay), 0), idt.skin * 0.4
        )
    return img


def _eyes(c: _Canvas, img: np.ndarray) -> np.ndarray:
    """Shadow below, sclera, iris, pupil, upper lid."""
    idt = c.idt
    ew, eh = idt.eye_size[0] * c.ax, idt.eye_size[1] * c.ay
    for side in "lr":
        eye = c.lm[f"eye_{side}"]
        shadow = c.ellipse(eye + (0, 1.7 * eh), (0.9 * ew, 0.5 * eh), 0, 1)
        img = _over(img, 0.18 * c.dark * shadow, idt.skin * 0.6)
        sclera = c.ellipse(eye, (ew, eh), 0)
        img = _over(img, 0.9 * sclera, (225, 222, 215))
        iris_c = eye + idt.gaze * (0.4 * ew, 0.2 * eh)
        img = _over(img, sclera * c.ellipse(iris_c, (1.15 * eh, 1.15 * eh), 0), idt.iris)
        img = _over(img, sclera * c.ellipse(iris_c, (0.5 * eh, 0.5 * eh), 0), (15, 12, 10))
        lid = c.ellipse(eye - (0, 0.85 * eh), (1.05 * ew, 0.3 * eh), 0)
        img = _over(img, 0.85 * lid, idt.hair * 0.6)
    return img


def _brows(c: _Canvas, img: np.ndarray) -> np.ndarray:
    """Two segments each, arched."""
    idt = c.idt
    half_t = idt.brow_thickness * c.ay
    for side in "lr":
        inner, outer = c.lm[f"brow_inner_{side}"], c.lm[f"brow_outer_{side}"]
        top = (inner + outer) / 2 - (0, 0.04 * c.ay)
        brow = np.maximum(c.segment(outer, top, 0.8 * half_t), c.segment(top, inner, half_t))
        img = _over(img, idt.brow_darkness * brow, idt.hair)
    return img


def _texture_and_light(c: _Canvas, img: np.ndarray) -> np.ndarray:
    """Texture (moves with the face; mostly luminance, a little chroma), then a lighting
    gradient."""
    idt, size = c.idt, c.size
    tex = sum(
        a * cv2.resize(t[..., :1] + 0.25 * t, (size, size), interpolation=cv2.INTER_CUBIC)
        for a, t in zip((0.05, 0.03, 0.03), idt.texture)
    )
    img = img * (1.0 + tex)
    light = (c.x / size - 0.5) * np.cos(idt.light_angle) + (c.y / size - 0.5) * np.sin(
        idt.light_angle
    )
    return img * (1.0 + 2 * idt.light_strength * light)[..., None]


def neutral_face(identity: Identity, size: int) -> np.ndarray:
    """The identity's neutral face, float32 RGB (size, size, 3) in [0, 255]."""
    c = _Canvas(identity, size)
    img = _head(c)
    for part in (_cheeks_nose_chin, _mouth, _eyes, _brows, _texture_and_light):
        img = part(c, img)
    return np.clip(img, 0, 255).astype(np.float32)
