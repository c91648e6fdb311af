"""On-device augmentation of training batches (per example, vmapped over the batch) and the
centre crop every evaluation takes.

Inputs become floats of the default width: float32, or float64 under
`jax.enable_x64` (the engine's exact equivalence tests train in float64).
"""

import dataclasses

import jax
import jax.numpy as jnp
from jax import lax


@dataclasses.dataclass(frozen=True)
class Augment:
    """On-device augmentation of a training batch (the seeds' augmentations).

    `crop_size` None keeps the stored size; 'random' crops anywhere, 'corners'
    takes one of the four corners or the centre (seed 000's CDE). Evaluation
    always takes the centre crop. Colour shift and rotation fire with
    probability `prob` each; colour shift is in 0..255 pixel units.
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


def _rotate(image, angle_rad):
    """Rotate (H, W, C) about its centre, bilinear, edges repeated."""
    h, w = image.shape[:2]
    yy, xx = jnp.meshgrid(
        jnp.arange(h, dtype=image.dtype), jnp.arange(w, dtype=image.dtype), indexing="ij"
    )
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    cos, sin = jnp.cos(angle_rad), jnp.sin(angle_rad)
    src_y = cos * (yy - cy) - sin * (xx - cx) + cy
    src_x = sin * (yy - cy) + cos * (xx - cx) + cx
    channels = [
        jax.scipy.ndimage.map_coordinates(image[..., c], [src_y, src_x], order=1, mode="nearest")
        for c in range(image.shape[-1])
    ]
    return jnp.stack(channels, axis=-1)


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


def _flip(key, x, aug: Augment):
    flipped = jnp.flip(x, axis=-2)
    if aug.flip_sign is not None:
        if len(aug.flip_sign) != x.shape[-1]:
            raise ValueError(
                f"config key 'augment.flip_sign' has {len(aug.flip_sign)} entries for "
                f"{x.shape[-1]} input channels"
            )
        flipped = flipped * jnp.asarray(aug.flip_sign, x.dtype)
    return jnp.where(jax.random.bernoulli(key), flipped, x)


def augment_image(key, image, aug: Augment, train: bool):
    """One example (..., H, W, C) -> float (..., h, w, C) (see `to_float`).

    Leading axes (frames of a sequence, magnification factors) get the same
    crop, flip, rotation and colour shift. uint8 pixels are scaled to [0, 1];
    float inputs keep their values (colour shift and clipping apply to pixels only).
    """
    x = to_float(image)
    pixels = image.dtype == jnp.uint8
    h, w = image.shape[-3:-1]
    lead = (0,) * (image.ndim - 3)
    size = aug.crop_size or min(h, w)
    if size > min(h, w):
        raise ValueError(f"config key 'augment.crop_size' {size} exceeds the stored image {h}x{w}")
    crop = (*image.shape[:-3], size, size, image.shape[-1])
    if not train:
        return lax.dynamic_slice(x, (*lead, (h - size) // 2, (w - size) // 2, 0), crop)
    k_rot, k_rot_p, k_crop, k_flip, k_col, k_col_p = jax.random.split(key, 6)
    if aug.rotate_deg > 0:
        angle = jnp.deg2rad(
            jax.random.uniform(k_rot, minval=-aug.rotate_deg, maxval=aug.rotate_deg)
        )
        frames = x.reshape(-1, h, w, x.shape[-1])
        rotated = jax.vmap(lambda f: _rotate(f, angle))(frames).reshape(x.shape)
        x = jnp.where(jax.random.bernoulli(k_rot_p, aug.prob), rotated, x)
    oy, ox = _crop_origin(k_crop, aug, h, w, size)
    x = lax.dynamic_slice(x, (*lead, oy, ox, 0), crop)
    if aug.flip:
        x = _flip(k_flip, x, aug)
    if aug.color_shift > 0 and pixels:
        shift = jax.random.uniform(k_col, (x.shape[-1],), x.dtype, minval=-1.0, maxval=1.0)
        shift = shift * aug.color_shift / 255.0
        fire = jax.random.bernoulli(k_col_p, aug.prob)
        x = jnp.clip(x + jnp.where(fire, shift, 0.0), 0.0, 1.0)
    return x


def augment_batch(key, images, aug: Augment, train: bool):
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(lambda k, im: augment_image(k, im, aug, train))(keys, images)
