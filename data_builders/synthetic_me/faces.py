"""Procedural micro-expression corpus: face identities, AU deformations, clips.

Pure NumPy + OpenCV, no TFDS. Everything is deterministic given `seed`: every
subject and clip draws from its own `np.random.default_rng([seed, stream, ...])`,
so the order in which clips are generated does not matter.

A clip is the subject's neutral face, backward-warped frame by frame
(`frame(x) = neutral(x - d_t(x))`, bilinear, border reflect) by
`d_t = intensity(t) * gains * field`, where `field` is a sum of Gaussian-windowed
local displacements anchored at the subject's landmarks (an action-unit
combination, see `ACTION_UNITS`). A small smooth head motion is composed on top
and a camera (resolution, colour/grey, gamma, contrast, sensor noise) is applied
last.

Geometry is stored as fractions of the image side, so one identity renders at
any size; displacements are in pixels at 112x112 and scale with the size.
`painting` draws an identity's neutral face.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

from data_builders.synthetic_me import painting

REFERENCE_SIZE = 112  # `amplitude_px` and the AU sigmas are pixels at this size.

# Random streams: the first entry after the seed says what a generator is for.
_PLAN, _IDENTITY, _CLIP, _NOISE, _HEAD = range(5)

# Action units as Gaussian-windowed displacements: (anchor, dx, dy, sigma_px).
# For a paired anchor (`brow_inner` -> `brow_inner_l`, `brow_inner_r`) dx is
# outward from the face midline and mirrored; for a single or sided anchor
# (`chin`, `mouth_corner_r`) dx is along image x. dy is down. sigma is in pixels
# at 112x112. `_l` is image-left.
ACTION_UNITS: dict[str, tuple[tuple[str, float, float, float], ...]] = {
    "AU1": (("brow_inner", 0.0, -1.0, 7.0),),  # inner brow raiser
    "AU2": (("brow_outer", 0.0, -1.0, 7.0),),  # outer brow raiser
    "AU4": (("brow_inner", -0.6, 0.8, 6.0),),  # brow lowerer: inner brows down and together
    "AU6": (("cheek", 0.0, -1.0, 8.0),),  # cheek raiser: cheeks and lower lids up
    "AU9": (("nose_ala", 0.0, -1.0, 5.0),),  # nose wrinkler: nose sides up
    "AU12": (("mouth_corner", 0.55, -0.85, 5.0),),  # lip corner puller: up and out
    "AU14": (("mouth_corner_r", 0.7, -0.25, 5.0),),  # dimpler, one side only
    "AU15": (("mouth_corner", 0.15, 1.0, 5.0),),  # lip corner depressor: down
    "AU17": (("chin", 0.0, -1.0, 9.0),),  # chin raiser
    "AU20": (("mouth_corner", 1.0, 0.2, 6.0),),  # lip stretcher: corners out
    "AU24": (("lip_lower", 0.0, -1.0, 5.0), ("lip_upper", 0.0, 0.5, 5.0)),  # lip pressor
    "AU26": (("lip_lower", 0.0, 1.0, 6.0), ("chin", 0.0, 1.0, 9.0)),  # jaw drop
}

# Each class is one AU combination, chosen so classes differ at the apex frame.
CLASS_ACTION_UNITS: dict[str, str] = {
    "happiness": "AU6+AU12",
    "surprise": "AU1+AU2+AU26",
    "disgust": "AU4+AU9",
    "repression": "AU17+AU24",
    "others": "AU20",
    "negative": "AU4+AU15",
    "positive": "AU6+AU12",
}

# Landmarks in face units (u, v): x = cx + u * ax, y = cy + v * ay. Paired
# landmarks are given for the image-left side (u < 0) and mirrored.
_PAIRED_LANDMARKS = {
    "brow_inner": (-0.17, -0.42),
    "brow_outer": (-0.62, -0.45),
    "eye": (-0.38, -0.24),
    "cheek": (-0.40, -0.05),
    "nose_ala": (-0.15, 0.12),
    "mouth_corner": (-0.30, 0.42),
}
_SINGLE_LANDMARKS = {
    "nose_tip": (0.0, 0.10),
    "lip_upper": (0.0, 0.37),
    "lip_lower": (0.0, 0.49),
    "chin": (0.0, 0.74),
}
# Landmark groups that move together between identities: std of the shift in v
# and of the outward spread in u, face units.
_GROUP_JITTER = {
    "brow": (0.025, 0.02),
    "eye": (0.02, 0.025),
    "cheek": (0.02, 0.02),
    "nose": (0.02, 0.02),
    "mouth": (0.02, 0.025),
    "chin": (0.02, 0.0),
}
_LANDMARK_GROUP = {
    "brow_inner": "brow",
    "brow_outer": "brow",
    "eye": "eye",
    "cheek": "cheek",
    "nose_ala": "nose",
    "nose_tip": "nose",
    "mouth_corner": "mouth",
    "lip_upper": "mouth",
    "lip_lower": "mouth",
    "chin": "chin",
}

# Skin tones from light to dark (RGB); an identity interpolates between two.
_SKIN_TONES = np.array(
    [[236, 204, 178], [222, 184, 150], [198, 152, 118], [160, 114, 84], [112, 78, 56]],
    np.float32,
)


@dataclasses.dataclass(frozen=True)
class Source:
    """One sub-corpus (e.g. the CASME II part of MEGC 2019) and its camera."""

    name: str
    num_subjects: int
    class_counts: tuple[int, ...]  # Clips per class, in the corpus' class order.
    max_clips_per_subject: int
    num_frames: tuple[int, int]  # Inclusive range of clip lengths.
    grey: bool = False  # Grey-scale camera, stored as three identical channels.
    render_scale: float = 1.0  # < 1: render small and upsample (a blurrier camera).
    noise_std: float = 1.5  # Sensor noise, grey levels.
    gamma: float = 1.0
    contrast: float = 1.0  # Around mid-grey.
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclasses.dataclass(kw_only=True, eq=False)
class CorpusSpec:
    """Every knob of the generator. `SyntheticMEConfig` extends this."""

    class_names: tuple[str, ...] = ("negative", "positive", "surprise")
    sources: tuple[Source, ...] = ()
    image_size: int = 112
    amplitude_px: float = 4.0  # Peak displacement, pixels at 112x112.
    subject_gain: tuple[float, float] = (0.7, 1.3)
    clip_gain: tuple[float, float] = (0.8, 1.2)
    head_motion_px: float = 1.0  # Max head translation, pixels at 112x112.
    seed: int = 0


@dataclasses.dataclass(frozen=True, eq=False)
class Identity:
    """What a subject's neutral face looks like. Positions are image fractions."""

    centre: np.ndarray  # (2,) face ellipse centre.
    axes: np.ndarray  # (2,) face ellipse half-axes.
    landmarks: dict[str, np.ndarray]  # name -> (2,) image fractions.
    skin: np.ndarray  # (3,) RGB.
    hair: np.ndarray
    lips: np.ndarray
    iris: np.ndarray
    background: np.ndarray  # (2, 3) two colours of a gradient.
    background_angle: float
    hairline: float  # v of the hairline.
    brow_thickness: float  # Fraction of ay.
    brow_darkness: float
    eye_size: np.ndarray  # (2,) half-width (fraction of ax), half-height (of ay).
    gaze: np.ndarray  # (2,) iris offset, fraction of the eye half-axes.
    feature_darkness: float  # Scales creases, nostrils and shadows.
    texture: tuple[np.ndarray, ...]  # Noise grids, coarse to fine.
    light_angle: float
    light_strength: float


@dataclasses.dataclass(frozen=True, eq=False)
class Subject:
    index: int  # Global over sources; seeds this subject's streams.
    id: str  # 'casme2/s03'
    source: Source
    gain: float  # Expression intensity multiplier.
    identity: Identity


@dataclasses.dataclass(frozen=True, eq=False)
class Clip:
    index: int  # Global, in generation order; the example key.
    number: int  # 1-based within the subject.
    id: str  # 'casme2/s03/ep04'
    subject: Subject
    label: int
    emotion: str
    action_units: str  # 'AU1+AU2+AU26'
    num_frames: int
    onset: int
    apex: int
    offset: int
    gain: float  # Per-clip intensity multiplier.


class Plan(NamedTuple):
    subjects: list[Subject]
    clips: list[Clip]


# ----------------------------------------------------------------------------
# Corpus plan.


def plan_corpus(spec: CorpusSpec) -> Plan:
    """Subjects and clips of the corpus, in generation order (source, subject, clip)."""
    for name in spec.class_names:
        if name not in CLASS_ACTION_UNITS:
            raise KeyError(f"No action units for class {name!r}; add it to CLASS_ACTION_UNITS.")
    subjects, clips = [], []
    for source_index, source in enumerate(spec.sources):
        if len(source.class_counts) != len(spec.class_names):
            raise ValueError(f"{source.name}: class_counts does not match class_names.")
        rng = np.random.default_rng([spec.seed, _PLAN, source_index])
        per_subject = _clips_per_subject(rng, source)
        labels = rng.permutation(np.repeat(np.arange(len(spec.class_names)), source.class_counts))
        start = 0
        for s, count in enumerate(per_subject):
            subject = _make_subject(spec, source, len(subjects), s + 1)
            subjects.append(subject)
            for j, label in enumerate(labels[start : start + count]):
                clips.append(_make_clip(spec, subject, len(clips), j + 1, int(label)))
            start += count
    return Plan(subjects, clips)


def _clips_per_subject(rng: np.random.Generator, source: Source) -> np.ndarray:
    """Uneven clip counts: at least one each, at most the cap, summing to the total."""
    n, total, cap = source.num_subjects, sum(source.class_counts), source.max_clips_per_subject
    if not n <= total <= n * cap:
        raise ValueError(f"{source.name}: cannot split {total} clips over {n} subjects.")
    weights = rng.lognormal(0.0, 0.8, n)
    counts = np.ones(n, np.int64)
    for _ in range(total - n):
        p = np.where(counts < cap, weights, 0.0)
        counts[rng.choice(n, p=p / p.sum())] += 1
    return counts


def _make_subject(spec: CorpusSpec, source: Source, index: int, number: int) -> Subject:
    rng = np.random.default_rng([spec.seed, _IDENTITY, index])
    return Subject(
        index=index,
        id=f"{source.name}/s{number:02d}",
        source=source,
        gain=float(rng.uniform(*spec.subject_gain)),
        identity=_make_identity(rng),
    )


def _make_clip(spec: CorpusSpec, subject: Subject, index: int, number: int, label: int) -> Clip:
    rng = np.random.default_rng([spec.seed, _CLIP, subject.index, number])
    lo, hi = subject.source.num_frames
    t = int(rng.integers(lo, hi + 1))
    onset = int(rng.integers(1, max(1, t // 4) + 1))
    offset = t - 1 - int(rng.integers(0, max(1, t // 5)))
    apex = int(round(onset + rng.uniform(0.35, 0.6) * (offset - onset)))
    apex = min(max(apex, onset + 1), offset - 1)
    emotion = spec.class_names[label]
    return Clip(
        index=index,
        number=number,
        id=f"{subject.id}/ep{number:02d}",
        subject=subject,
        label=label,
        emotion=emotion,
        action_units=CLASS_ACTION_UNITS[emotion],
        num_frames=t,
        onset=onset,
        apex=apex,
        offset=offset,
        gain=float(rng.uniform(*spec.clip_gain)),
    )


def _make_identity(rng: np.random.Generator) -> Identity:
    centre = np.array([0.5, 0.53]) + rng.normal(0.0, 0.015, 2)
    ax = rng.uniform(0.34, 0.40)
    axes = np.array([ax, ax * rng.uniform(1.18, 1.32)])
    group = {k: (rng.normal(0, dv), rng.normal(0, du)) for k, (dv, du) in _GROUP_JITTER.items()}

    def place(name, u, v):
        dv, du = group[_LANDMARK_GROUP[name]]
        u, v = u + np.sign(u) * du + rng.normal(0, 0.012), v + dv + rng.normal(0, 0.012)
        return centre + np.array([u, v]) * axes

    landmarks = {}
    for name, (u, v) in _PAIRED_LANDMARKS.items():
        landmarks[f"{name}_l"] = place(name, u, v)
        landmarks[f"{name}_r"] = place(name, -u, v)
    for name, (u, v) in _SINGLE_LANDMARKS.items():
        landmarks[name] = place(name, u, v)

    tone = rng.uniform(0, len(_SKIN_TONES) - 1)
    i = min(int(tone), len(_SKIN_TONES) - 2)
    skin = _SKIN_TONES[i] + (tone - i) * (_SKIN_TONES[i + 1] - _SKIN_TONES[i])
    skin = skin * rng.uniform(0.95, 1.05, 3)
    hair = rng.uniform(15, 70) * np.array([1.0, 0.85, 0.7]) * rng.uniform(0.8, 1.2, 3)
    lips = skin * np.array([0.78, 0.5, 0.52]) * rng.uniform(0.85, 1.0)
    return Identity(
        centre=centre,
        axes=axes,
        landmarks=landmarks,
        skin=skin.astype(np.float32),
        hair=hair.astype(np.float32),
        lips=lips.astype(np.float32),
        iris=(rng.uniform(30, 110) * np.array([0.8, 0.65, 0.5])).astype(np.float32),
        background=rng.uniform(40, 200, (2, 3)).astype(np.float32),
        background_angle=float(rng.uniform(0, 2 * np.pi)),
        hairline=float(rng.uniform(-0.86, -0.76)),
        brow_thickness=float(rng.uniform(0.035, 0.055)),
        brow_darkness=float(rng.uniform(0.6, 0.9)),
        eye_size=np.array([rng.uniform(0.13, 0.17), rng.uniform(0.045, 0.06)]),
        gaze=rng.uniform(-0.25, 0.25, 2),
        feature_darkness=float(rng.uniform(0.7, 1.3)),
        texture=tuple(rng.standard_normal((g, g, 3)).astype(np.float32) for g in (5, 12, 28)),
        light_angle=float(rng.uniform(0, 2 * np.pi)),
        light_strength=float(rng.uniform(0.1, 0.35)),
    )


# ----------------------------------------------------------------------------
# Expression: intensity over time and the displacement field.


def intensity_envelope(num_frames: int, onset: int, apex: int, offset: int) -> np.ndarray:
    """Raised cosine: 0 up to onset, 1 at apex, 0 again from offset. Shape (T,)."""
    t = np.arange(num_frames, dtype=np.float64)
    rise = 0.5 * (1 - np.cos(np.pi * (t - onset) / (apex - onset)))
    fall = 0.5 * (1 + np.cos(np.pi * (t - apex) / (offset - apex)))
    out = np.where(t <= apex, rise, fall)
    return np.where((t <= onset) | (t >= offset), 0.0, out).astype(np.float32)


def action_unit_gaussians(
    subject: Subject, action_units: str, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchors (K, 2) px, unit-scale displacements (K, 2) and sigmas (K,) px.

    `action_units` is a '+'-joined combination such as 'AU1+AU2+AU26'. Anchors
    are in pixel coordinates of a size x size image (pixel i has centre i).
    """
    centres, vectors, sigmas = [], [], []
    for au in action_units.split("+"):
        for anchor, dx, dy, sigma in ACTION_UNITS[au]:
            if anchor in _PAIRED_LANDMARKS:
                sides = ((f"{anchor}_l", -dx), (f"{anchor}_r", dx))
            else:
                sides = ((anchor, dx),)
            for name, sx in sides:
                centres.append(subject.identity.landmarks[name] * size - 0.5)
                vectors.append((sx, dy))
                sigmas.append(sigma * size / REFERENCE_SIZE)
    return np.array(centres), np.array(vectors), np.array(sigmas)


def _gaussian_sum(x, y, centres, vectors, sigmas):
    dx = np.zeros_like(x)
    dy = np.zeros_like(x)
    for (cx, cy), (vx, vy), s in zip(centres, vectors, sigmas):
        w = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
        dx += vx * w
        dy += vy * w
    return dx, dy


@functools.lru_cache(maxsize=256)
def _field_peak(subject: Subject, action_units: str) -> float:
    """Peak |sum of Gaussians| on the 112x112 grid, so the field peaks at 1."""
    y, x = painting.grid(REFERENCE_SIZE)
    dx, dy = _gaussian_sum(x, y, *action_unit_gaussians(subject, action_units, REFERENCE_SIZE))
    return float(np.sqrt(dx * dx + dy * dy).max())


def _field_at(subject, action_units, size, scale_px, x, y):
    centres, vectors, sigmas = action_unit_gaussians(subject, action_units, size)
    dx, dy = _gaussian_sum(x, y, centres, vectors, sigmas)
    k = scale_px / _field_peak(subject, action_units)
    return dx * k, dy * k


def displacement_field(
    subject: Subject, action_units: str, size: int, amplitude_px: float
) -> np.ndarray:
    """Displacement (size, size, 2) in px, (dx, dy); peak = amplitude_px * size / 112.

    Content at x moves to about x + d(x): the frame is `neutral(x - d(x))`.
    Subject and clip gains and the intensity envelope multiply this in clips.
    """
    y, x = painting.grid(size)
    dx, dy = _field_at(subject, action_units, size, amplitude_px * size / REFERENCE_SIZE, x, y)
    return np.stack([dx, dy], -1).astype(np.float32)


def head_trajectory(spec: CorpusSpec, clip: Clip) -> np.ndarray:
    """Smooth head motion (T, 3): translation x, y in output px and rotation (rad).

    The translation peaks at 0.5-1 x `head_motion_px` (scaled to the image
    size); the rotation moves the face edge by at most a third of that.
    """
    rng = np.random.default_rng([spec.seed, _HEAD, clip.subject.index, clip.number])
    t = np.linspace(0.0, 1.0, clip.num_frames)
    curves = []
    for _ in range(3):
        freq = rng.uniform(0.2, 1.0, 2)
        phase = rng.uniform(0, 2 * np.pi, 2)
        c = (
            rng.uniform(0.5, 1.0, 2)[:, None]
            * np.cos(2 * np.pi * freq[:, None] * t + phase[:, None])
        ).sum(0)
        curves.append(c / max(np.abs(c).max(), 1e-6))
    max_px = spec.head_motion_px * spec.image_size / REFERENCE_SIZE
    shift = np.stack(curves[:2], -1)
    shift *= rng.uniform(0.5, 1.0) * max_px / max(np.linalg.norm(shift, axis=-1).max(), 1e-6)
    angle = curves[2] * rng.uniform(0.0, 1.0) * (max_px / 3) / (0.45 * spec.image_size)
    return np.concatenate([shift, angle[:, None]], -1).astype(np.float32)


# ----------------------------------------------------------------------------
# Rendering.


@functools.lru_cache(maxsize=64)
def neutral_face(subject: Subject, size: int) -> np.ndarray:
    """The subject's neutral face, float32 RGB (size, size, 3) in [0, 255]
    (`painting.neutral_face` of its identity).

    Cached: returned arrays are read-only.
    """
    img = painting.neutral_face(subject.identity, size)
    img.setflags(write=False)
    return img


def _render_size(spec: CorpusSpec, source: Source) -> int:
    return max(8, int(round(spec.image_size * source.render_scale)))


def _camera(spec: CorpusSpec, source: Source, img: np.ndarray, rng) -> np.ndarray:
    """Render resolution -> output: resize, colour or grey, gamma, contrast, noise."""
    size = spec.image_size
    if img.shape[0] != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    img = img * np.asarray(source.white_balance, np.float32)
    if source.grey:
        img = img @ np.array([0.299, 0.587, 0.114], np.float32)
    img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** source.gamma
    img = (img - 128.0) * source.contrast + 128.0
    if rng is not None:
        img = img + rng.normal(0.0, source.noise_std, img.shape).astype(np.float32)
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if source.grey:
        img = np.repeat(img[..., None], 3, -1)
    return img


def render_neutral(spec: CorpusSpec, subject: Subject) -> np.ndarray:
    """The neutral face through the subject's camera, without noise: uint8 (S, S, 3)."""
    source = subject.source
    return _camera(spec, source, neutral_face(subject, _render_size(spec, source)), None)


def render_clip(
    spec: CorpusSpec,
    clip: Clip,
    *,
    noise: bool = True,
    head_motion: bool = True,
    frames: Sequence[int] | None = None,
) -> np.ndarray:
    """The clip's frames, uint8 (T, S, S, 3); `frames` selects a subset.

    Frame t is the neutral face warped by `intensity(t) * subject.gain *
    clip.gain * displacement_field(...)`, then moved by the head motion, then
    through the camera. `noise=False` and `head_motion=False` give the
    clean expression for tests; a subset has the same pixels as the full clip.
    """
    subject, source = clip.subject, clip.subject.source
    size = _render_size(spec, source)
    scale = size / spec.image_size
    neutral = neutral_face(subject, size)
    envelope = intensity_envelope(clip.num_frames, clip.onset, clip.apex, clip.offset)
    peak_px = spec.amplitude_px * size / REFERENCE_SIZE * subject.gain * clip.gain
    motion = (
        head_trajectory(spec, clip) if head_motion else np.zeros((clip.num_frames, 3), np.float32)
    )
    y0, x0 = painting.grid(size)
    c = (size - 1) / 2
    out = []
    for t in range(clip.num_frames) if frames is None else frames:
        # Output x shows the face point H^-1(x); that point shows neutral(p - d(p)).
        tx, ty, angle = motion[t, 0] * scale, motion[t, 1] * scale, motion[t, 2]
        cos, sin = np.cos(angle), np.sin(angle)
        xs, ys = x0 - c - tx, y0 - c - ty
        px, py = cos * xs + sin * ys + c, -sin * xs + cos * ys + c
        if envelope[t] > 0:
            dx, dy = _field_at(subject, clip.action_units, size, envelope[t] * peak_px, px, py)
            px, py = px - dx, py - dy
        warped = cv2.remap(
            neutral,
            px.astype(np.float32),
            py.astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        rng = (
            np.random.default_rng([spec.seed, _NOISE, subject.index, clip.number, t])
            if noise
            else None
        )
        out.append(_camera(spec, source, warped, rng))
    return np.stack(out)
