"""On-device augmentation of training batches (per example, vmapped over the batch) and the
centre crop every evaluation takes.

The geometric operations are plain functions of given parameters (`rotate`, `rescale`,
`flip`, `smooth`), each matching OpenCV (tests/engine/test_augment.py); `augment_image`
draws the parameters. Pixel coordinates follow OpenCV: integer coordinates are pixel
centres, the image centre is ((W - 1) / 2, (H - 1) / 2).

Inputs become floats of the default width: float32, or float64 under
`jax.enable_x64` (the engine's exact equivalence tests train in float64).
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
from jax import lax


@dataclasses.dataclass(frozen=True)
class Augment:
    """On-device augmentation of a training batch (the seeds' augmentations).

    In order: smoothing, rotation, rescaling, crop, flip, colour shift. `crop_size` None
    keeps the stored size; 'random' crops anywhere, 'corners' takes one of the four corners
    or the centre (seed 000's CDE, seed 004). `rescale`: factors, one drawn uniformly per
    example, resizing the image (bilinear) before the crop, which cuts `crop_size` out of
    the resized image (seed 004: 0.9 / 1.0 / 1.1); every resized side must hold the crop.
    Smoothing, rotation and colour shift fire with probability `prob` each (seed 000);
    colour shift is in 0..255 pixel units. Evaluation always takes the centre crop of the
    stored image.
    """

    crop_size: int | None = None
    crop_mode: str = "random"
    flip: bool = False
    # Per-channel factor applied on a horizontal flip: (-1.0, 1.0) for (u, v) optical flow,
    # whose horizontal component changes sign when the image is mirrored.
    flip_sign: tuple[float, ...] | None = None
    color_shift: float = 0.0
    rotate_deg: float = 0.0
    prob: float = 0.5
    rescale: tuple[float, ...] | None = None
    # Seed 000: "smoothing with maximum window size of 6". A k x k box filter (cv2.blur),
    # k drawn uniformly from 2..smooth_max (k = 1 would be no smoothing); 0 = off.
    smooth_max: int = 0

    def __post_init__(self):
        # Hashable (the compiled programs key on it) whatever sequence a config gave.
        for name in ("flip_sign", "rescale"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))


def default_float():
    """float32, or float64 when `jax_enable_x64` is on."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def to_float(image):
    """uint8 pixels -> floats in [0, 1]; float inputs (optical flow, features) keep their values.

    The result is the default float (`default_float`): float32 unless x64 is enabled.
    """
    if image.dtype == jnp.uint8:
        return image.astype(default_float()) / 255.0
    return image.astype(default_float())


def scaled_size(size: int, scale: float) -> int:
    """The side of a `size` side resized by `scale`: round half up, at least 1."""
    return max(1, math.floor(size * scale + 0.5))


def _bilinear(image, src_y, src_x):
    """(..., H, W, C) sampled at (h, w) float coordinates, bilinear, edges repeated."""
    h, w = image.shape[-3:-1]
    y0, x0 = jnp.floor(src_y), jnp.floor(src_x)
    dy, dx = (src_y - y0)[..., None], (src_x - x0)[..., None]
    y0, x0 = y0.astype(jnp.int32), x0.astype(jnp.int32)

    def at(y, x):
        return image[..., jnp.clip(y, 0, h - 1), jnp.clip(x, 0, w - 1), :]

    top = at(y0, x0) * (1 - dx) + at(y0, x0 + 1) * dx
    bottom = at(y0 + 1, x0) * (1 - dx) + at(y0 + 1, x0 + 1) * dx
    return top * (1 - dy) + bottom * dy


def rotate(image, angle_deg):
    """Rotate (..., H, W, C) by `angle_deg` about the image centre, counter-clockwise as
    displayed for a positive angle: cv2.warpAffine with cv2.getRotationMatrix2D(((W-1)/2,
    (H-1)/2), angle_deg, 1), INTER_LINEAR, BORDER_REPLICATE."""
    h, w = image.shape[-3:-1]
    yy, xx = jnp.meshgrid(
        jnp.arange(h, dtype=image.dtype), jnp.arange(w, dtype=image.dtype), indexing="ij"
    )
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    angle = jnp.deg2rad(jnp.asarray(angle_deg, image.dtype))
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    # The inverse map: each output pixel reads the source point rotated back.
    src_x = cos * (xx - cx) - sin * (yy - cy) + cx
    src_y = sin * (xx - cx) + cos * (yy - cy) + cy
    return _bilinear(image, src_y, src_x)


def rescale(image, scale: float):
    """Resize (..., H, W, C) by `scale` to (..., scaled_size(H), scaled_size(W), C): bilinear
    with half-pixel centres and edges repeated, no anti-aliasing (cv2.resize INTER_LINEAR)."""
    h, w = image.shape[-3:-1]
    shape = (*image.shape[:-3], scaled_size(h, scale), scaled_size(w, scale), image.shape[-1])
    return jax.image.resize(image, shape, method="bilinear", antialias=False)


def flip(image, flip_sign: tuple[float, ...] | None = None):
    """Mirror (..., H, W, C) horizontally (cv2.flip(image, 1)); channel c times flip_sign[c]."""
    flipped = jnp.flip(image, axis=-2)
    if flip_sign is None:
        return flipped
    if len(flip_sign) != image.shape[-1]:
        raise ValueError(
            f"config key 'augment.flip_sign' has {len(flip_sign)} entries for "
            f"{image.shape[-1]} input channels"
        )
    return flipped * jnp.asarray(flip_sign, image.dtype)


def smooth(image, window: int):
    """k x k box filter of (..., H, W, C), k = `window`: cv2.blur(image, (k, k)) (anchor at
    k // 2, borders reflected without repeating the edge, BORDER_REFLECT_101)."""
    lo, hi = window // 2, window - 1 - window // 2
    for axis in (-3, -2):
        pad = [(0, 0)] * image.ndim
        pad[axis] = (lo, hi)
        padded = jnp.pad(image, pad, mode="reflect")
        n = image.shape[axis]
        image = sum(
            lax.slice_in_dim(padded, i, i + n, axis=axis % image.ndim) for i in range(window)
        )
        image = image / window
    return image


def _crop_origin(key, aug: Augment, h: int, w: int, size: int):
    """(oy, ox) of a training crop of side `size` ('random' or 'corners')."""
    if aug.crop_mode == "random":
        oy = jax.random.randint(key, (), 0, h - size + 1)
        ox = jax.random.randint(jax.random.fold_in(key, 1), (), 0, w - size + 1)
        return oy, ox
    if aug.crop_mode == "corners":
        centre = ((h - size) // 2, (w - size) // 2)
        choices = jnp.array([(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), centre])
        return choices[jax.random.randint(key, (), 0, 5)]
    raise ValueError(
        f"config key 'augment.crop_mode': {aug.crop_mode!r} is not 'random' or 'corners'"
    )


def _crop(key, x, aug: Augment, size: int):
    """A training crop (..., size, size, C) of x."""
    h, w = x.shape[-3:-1]
    oy, ox = _crop_origin(key, aug, h, w, size)
    lead = (0,) * (x.ndim - 3)
    return lax.dynamic_slice(x, (*lead, oy, ox, 0), (*x.shape[:-3], size, size, x.shape[-1]))


def _rescale_and_crop(key, x, aug: Augment, size: int):
    """Resize by one of `aug.rescale` (uniform), then crop `size` from the resized image."""
    h, w = x.shape[-3:-1]
    for scale in aug.rescale:
        if min(scaled_size(h, scale), scaled_size(w, scale)) < size:
            raise ValueError(
                f"config key 'augment.rescale': factor {scale} resizes the stored {h}x{w} "
                f"image to {scaled_size(h, scale)}x{scaled_size(w, scale)}, smaller than "
                f"the crop {size} (augment.crop_size)"
            )
    k_scale, k_crop = jax.random.split(key)
    branches = [lambda x, s=s: _crop(k_crop, rescale(x, s), aug, size) for s in aug.rescale]
    return lax.switch(jax.random.randint(k_scale, (), 0, len(branches)), branches, x)


def _smooth_random(key, x, aug: Augment):
    """Box filter of a window drawn from 2..smooth_max, with probability `prob`."""
    k_window, k_fire = jax.random.split(key)
    branches = [lambda x, k=k: smooth(x, k) for k in range(2, aug.smooth_max + 1)]
    smoothed = lax.switch(jax.random.randint(k_window, (), 0, len(branches)), branches, x)
    return jnp.where(jax.random.bernoulli(k_fire, aug.prob), smoothed, x)


def augment_image(key, image, aug: Augment, train: bool):
    """One example (..., H, W, C) -> float (..., h, w, C) (see `to_float`).

    Leading axes (frames of a sequence, magnification factors) get the same
    draws. uint8 pixels are scaled to [0, 1]; float inputs keep their values
    (colour shift and clipping apply to pixels only).
    """
    x = to_float(image)
    pixels = image.dtype == jnp.uint8
    h, w = image.shape[-3:-1]
    size = aug.crop_size or min(h, w)
    if size > min(h, w):
        raise ValueError(f"config key 'augment.crop_size' {size} exceeds the stored image {h}x{w}")
    if not train:
        lead = (0,) * (image.ndim - 3)
        crop = (*image.shape[:-3], size, size, image.shape[-1])
        return lax.dynamic_slice(x, (*lead, (h - size) // 2, (w - size) // 2, 0), crop)
    k_rot, k_rot_p, k_crop, k_flip, k_col, k_col_p = jax.random.split(key, 6)
    if aug.smooth_max >= 2:
        x = _smooth_random(jax.random.fold_in(key, 6), x, aug)
    if aug.rotate_deg > 0:
        angle = jax.random.uniform(k_rot, (), x.dtype, -aug.rotate_deg, aug.rotate_deg)
        x = jnp.where(jax.random.bernoulli(k_rot_p, aug.prob), rotate(x, angle), x)
    if aug.rescale:
        x = _rescale_and_crop(k_crop, x, aug, size)
    else:
        x = _crop(k_crop, x, aug, size)
    if aug.flip:
        x = jnp.where(jax.random.bernoulli(k_flip), flip(x, aug.flip_sign), x)
    if aug.color_shift > 0 and pixels:
        shift = jax.random.uniform(k_col, (x.shape[-1],), x.dtype, minval=-1.0, maxval=1.0)
        shift = shift * aug.color_shift / 255.0
        fire = jax.random.bernoulli(k_col_p, aug.prob)
        x = jnp.clip(x + jnp.where(fire, shift, 0.0), 0.0, 1.0)
    return x


def augment_batch(key, images, aug: Augment, train: bool):
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(lambda k, im: augment_image(k, im, aug, train))(keys, images)
