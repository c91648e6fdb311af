"""Synthetic training data for the learned magnifier (Oh et al. 2018, Sec. 3.2-3.3), NumPy.

The authors paste segmented objects (PASCAL VOC) over backgrounds (MS COCO), move each layer
by a small known sub-pixel translation, and render the same scene with every motion times the
amplification factor as the target; frames are quantised to 8 bits, and noise is added to the
network's inputs. Neither image set is available here, so every layer is procedural:

- a texture is a periodic, band-limited random field (white noise shaped to a 1/f^beta
  spectrum, Nyquist bins removed) mixed into colour by a random 3x3 matrix; it is translated
  by a Fourier phase ramp, which for such a field is the exact sub-pixel translation;
- an object is a star-shaped outline (radius r(theta) = r0 (1 + sum_j a_j cos(j theta +
  phi_j))) with a 1-pixel anti-aliased edge, evaluated at continuous coordinates, so its mask
  moves exactly with its centre; its texture moves with it;
- layers are composited back to front (I <- I (1 - m) + T m); every other step is per pixel
  (contrast, clipping, colour perturbation), so translation commutes with all of it.

One sample (`render_sample`) holds, as uint8:
  frame_a            X_a: every layer at its start position
  frame_b            X_b: layer k moved by d_k
  target             Y:   layer k moved by amp * d_k (the motion magnified; same texture)
  frame_b_perturbed  X_b': X_b with a random per-channel colour change (gain, offset)
  target_perturbed   Y':  Y with the same colour change
The colour-perturbed pair serves the paper's regularisers (Sec. 3.2): texture(X_a) =
texture(X_b) (same colours, different motion), texture(X_b') = texture(Y') (likewise),
shape(X_b) = shape(X_b') (same motion, different colours); the network maps (X_a, X_b', amp)
to Y'.

Motion sampling: amp ~ U[1, max_amplification]; each layer's magnified displacement has a
uniform direction and a length ~ U[0, max_magnified_motion], its input displacement is that
over amp (sub-pixel when amp is large); the background is static with probability
`p_static_background`. The paper's values (1 <= amp <= 100, magnified motion <= 30 px at 384 x
384) are the defaults; `max_magnified_motion=None` scales 30 px by size / 384.

`make_batch` turns samples into the training batch: float32 in [-1, 1] (the authors'
x / 127.5 - 1) and noise on the three input frames only (the targets stay clean), the
authors' `preprocessor.py` second-order Poisson approximation: x + s n sqrt(x + 1) /
sqrt(127.5), n ~ N(0, 1), s ~ U[0, noise] per frame. Sample i of `make_batch(seed, ...)` comes
from `np.random.default_rng([*seed, i])`: reproducible, independent of the batch size.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

FRAMES = ("frame_a", "frame_b", "target", "frame_b_perturbed", "target_perturbed")
PAPER_SIZE = 384
PAPER_MAX_MAGNIFIED_MOTION = 30.0


def _frequencies(size: int):
    """(fy, fx) of the rfft2 bins of a size x size image, in cycles per pixel."""
    fy, fx = np.meshgrid(np.fft.fftfreq(size), np.fft.rfftfreq(size), indexing="ij")
    return fy, fx


class Texture(NamedTuple):
    """A colour texture: rfft2 spectrum (3, S, S//2+1), then mean + scale * field, clipped."""

    spectrum: np.ndarray
    mean: np.ndarray
    scale: float


def random_texture(
    rng: np.random.Generator, size: int, contrast: float, mean, beta: float | None = None
) -> Texture:
    """1/f^beta noise per channel mixed by a random 3x3 matrix; DC and Nyquist bins zero (a
    real, band-limited, periodic field: its Fourier translation is exact). `contrast` is the
    standard deviation of the field before clipping."""
    beta = rng.uniform(1.0, 2.2) if beta is None else beta
    fy, fx = _frequencies(size)
    radius = np.hypot(fy, fx)
    gain = np.zeros_like(radius)
    gain[radius > 0] = radius[radius > 0] ** -beta
    if size % 2 == 0:
        gain[size // 2, :] = 0.0
        gain[:, -1] = 0.0
    noise = rng.standard_normal((3, size, size)).astype(np.float32)
    mix = rng.uniform(-1.0, 1.0, (3, 3)) + np.eye(3) * rng.uniform(0.5, 2.0)
    spectrum = np.einsum("ij,jhw->ihw", mix, np.fft.rfft2(noise) * gain).astype(np.complex64)
    # Parseval on the half spectrum (DC is zero, so this is the field's variance).
    weight = np.full(spectrum.shape[-1], 2.0)
    weight[0] = 1.0
    if size % 2 == 0:
        weight[-1] = 1.0
    std = float(np.sqrt(np.sum(weight * np.abs(spectrum) ** 2) / (3 * size**4))) + 1e-12
    return Texture(spectrum, np.asarray(mean, np.float32), contrast / std)


def render_texture(texture: Texture, shift: Sequence[float]) -> np.ndarray:
    """The texture translated by shift = (dx, dy) px, T(x - dx, y - dy): (S, S, 3) in [0, 1]."""
    size = texture.spectrum.shape[1]
    fy, fx = _frequencies(size)
    ramp = np.exp(-2j * np.pi * (fx * shift[0] + fy * shift[1])).astype(np.complex64)
    field = np.fft.irfft2(texture.spectrum * ramp, s=(size, size))
    return np.clip(texture.mean + texture.scale * np.moveaxis(field, 0, -1), 0.0, 1.0)


def render_mask(size: int, centre: Sequence[float], radius: float, harmonics) -> np.ndarray:
    """Anti-aliased star-shaped mask (size, size) in [0, 1]; `centre` (x, y) in px (pixel
    centres at integers); `harmonics` rows (amplitude, phase), row j for cos((j+1) theta).
    Evaluated in the outline's bounding box only (exactly zero outside it)."""
    harmonics = np.asarray(harmonics, np.float64).reshape(-1, 2)
    reach = radius * (1.0 + harmonics[:, 0].sum()) + 1.0
    x0, x1 = (
        max(int(np.floor(centre[0] - reach)), 0),
        min(int(np.ceil(centre[0] + reach)) + 1, size),
    )
    y0, y1 = (
        max(int(np.floor(centre[1] - reach)), 0),
        min(int(np.ceil(centre[1] + reach)) + 1, size),
    )
    mask = np.zeros((size, size), np.float32)
    if x0 >= x1 or y0 >= y1:
        return mask
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    dx, dy = xx - centre[0], yy - centre[1]
    theta = np.arctan2(dy, dx)
    r = np.ones_like(theta)
    for j, (a, p) in enumerate(harmonics):
        r = r + a * np.cos((j + 1) * theta + p)
    mask[y0:y1, x0:x1] = np.clip(0.5 - (np.hypot(dx, dy) - radius * r), 0.0, 1.0)
    return mask


def _quantise(x):
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def render_sample(
    rng: np.random.Generator,
    size: int = 64,
    *,
    amplification: float | None = None,
    max_amplification: float = 100.0,
    max_magnified_motion: float | None = None,
    num_objects: int | None = None,
    max_objects: int = 5,
    p_static_background: float = 0.3,
    background_motion: Sequence[float] | None = None,
    object_motion: Sequence[Sequence[float]] | None = None,
    flat_background: bool = False,
) -> dict:
    """One synthetic scene (module docstring). Returns the five uint8 (size, size, 3) frames
    of `FRAMES`, `amplification`, the displacements X_a -> X_b (`background_motion` (2,),
    `object_motion` (K, 2), (dx, dy) px) and each object's own outline (before occlusion by
    later objects) `masks_a`, `masks_b`, `masks_target` (K, size, size) float32. `amplification`,
    `num_objects`, `background_motion`, `object_motion` fix what is otherwise sampled.
    """
    if size < 8:
        raise ValueError(f"render_sample: size={size} must be >= 8")
    if max_amplification < 1.0:
        raise ValueError(f"render_sample: max_amplification={max_amplification} must be >= 1")
    amp = float(rng.uniform(1.0, max_amplification) if amplification is None else amplification)
    if amp < 0:
        raise ValueError(f"render_sample: amplification={amp} must be >= 0")
    reach = (
        PAPER_MAX_MAGNIFIED_MOTION * size / PAPER_SIZE
        if max_magnified_motion is None
        else float(max_magnified_motion)
    )
    k = int(rng.integers(1, max_objects + 1) if num_objects is None else num_objects)
    if k < 0:
        raise ValueError(f"render_sample: num_objects={k} must be >= 0")

    def sample_motion():
        length = rng.uniform(0.0, reach) / max(amp, 1.0)
        angle = rng.uniform(0.0, 2.0 * np.pi)
        return np.array([np.cos(angle), np.sin(angle)]) * length

    if background_motion is None:
        static = rng.uniform() < p_static_background
        background_motion = np.zeros(2) if static else sample_motion()
    background_motion = np.asarray(background_motion, np.float64).reshape(2)
    if object_motion is None:
        object_motion = np.stack([sample_motion() for _ in range(k)]) if k else np.zeros((0, 2))
    object_motion = np.asarray(object_motion, np.float64).reshape(-1, 2)
    if len(object_motion) != k:
        raise ValueError(f"render_sample: object_motion has {len(object_motion)} rows, not {k}")

    # Scene: background texture, then objects (texture, outline, start position).
    background = random_texture(
        rng, size, 0.0 if flat_background else rng.uniform(0.03, 0.25), rng.uniform(0.2, 0.8, 3)
    )
    objects = []
    for _ in range(k):
        radius = rng.uniform(0.08, 0.25) * size
        margin = radius * 1.6 + reach
        centre = (
            rng.uniform(margin, size - margin, 2) if size > 2 * margin else np.full(2, size / 2)
        )
        n_harm = int(rng.integers(0, 4))
        harmonics = np.stack(
            [rng.uniform(0.0, 0.25 / np.arange(1, n_harm + 1)), rng.uniform(0, 2 * np.pi, n_harm)],
            -1,
        ).reshape(-1, 2)
        texture = random_texture(rng, size, rng.uniform(0.03, 0.3), rng.uniform(0.1, 0.9, 3))
        objects.append((texture, radius, centre, harmonics))
    gain = rng.uniform(0.6, 1.4, 3).astype(np.float32)
    offset = rng.uniform(-0.2, 0.2, 3).astype(np.float32)

    def render(scale: float):
        image = render_texture(background, scale * background_motion)
        masks = np.zeros((k, size, size), np.float32)
        for i, ((texture, radius, centre, harm), d) in enumerate(zip(objects, object_motion)):
            masks[i] = render_mask(size, centre + scale * d, radius, harm)
            m = masks[i][..., None]
            image = image * (1.0 - m) + render_texture(texture, scale * d) * m
        return image, masks

    (xa, masks_a), (xb, masks_b), (y, masks_y) = render(0.0), render(1.0), render(amp)
    perturb = lambda x: np.clip(x * gain + offset, 0.0, 1.0)
    return {
        "frame_a": _quantise(xa),
        "frame_b": _quantise(xb),
        "target": _quantise(y),
        "frame_b_perturbed": _quantise(perturb(xb)),
        "target_perturbed": _quantise(perturb(y)),
        "amplification": amp,
        "background_motion": background_motion,
        "object_motion": object_motion,
        "masks_a": masks_a,
        "masks_b": masks_b,
        "masks_target": masks_y,
    }


def poisson_noise(rng: np.random.Generator, x, strength: float):
    """The authors' noise on x in [-1, 1]: x + s n sqrt(x + 1) / sqrt(127.5), n ~ N(0, 1),
    s ~ U[0, strength] (`preprocessor.get_possion_noise`)."""
    s = rng.uniform(0.0, strength) if strength > 0 else 0.0
    n = rng.standard_normal(x.shape, dtype=np.float32)
    return x + s * n * np.sqrt(np.maximum(x + 1.0, 0.0)) / np.sqrt(127.5)


def make_batch(
    seed: int | Sequence[int],
    batch_size: int,
    size: int = 64,
    *,
    noise: float = 0.1,
    **scene,
) -> dict[str, np.ndarray]:
    """A training batch: frame_a, frame_b, frame_b_perturbed, target_perturbed (B, size, size,
    3) float32 in [-1, 1] (noise on the three inputs only; frame_b feeds the shape loss), and
    amplification (B,). `scene` keywords go to `render_sample`."""
    if batch_size < 1:
        raise ValueError(f"make_batch: batch_size={batch_size} must be >= 1")
    if noise < 0:
        raise ValueError(f"make_batch: noise={noise} must be >= 0")
    seed = [int(seed)] if np.ndim(seed) == 0 else [int(s) for s in seed]
    keys = ("frame_a", "frame_b", "frame_b_perturbed", "target_perturbed")
    out = {k: [] for k in keys}
    amps = []
    for i in range(batch_size):
        rng = np.random.default_rng([*seed, i])
        sample = render_sample(rng, size, **scene)
        for k in keys:
            x = sample[k].astype(np.float32) / 127.5 - 1.0
            out[k].append(x if k == "target_perturbed" else poisson_noise(rng, x, noise))
        amps.append(sample["amplification"])
    batch = {k: np.stack(v).astype(np.float32) for k, v in out.items()}
    batch["amplification"] = np.asarray(amps, np.float32)
    return batch
