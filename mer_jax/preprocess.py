"""Turning a clip into a model input (the representations the seeds feed their nets).

Seed 000 (Micro-Attention) reads the apex frame, face-cropped, grey-scale,
resized; the other representations (magnified stacks, optical flow, TIM) join
here as the preprocessing issue lands.
"""

import cv2
import numpy as np


def apex_frame(frames: np.ndarray, apex: int, *, clip: str = "?") -> np.ndarray:
    """frames[apex] of a (T, H, W, C) clip; a clear error if the apex is outside the clip."""
    if not 0 <= apex < len(frames):
        raise ValueError(f"clip {clip}: apex frame {apex} outside its {len(frames)} frames")
    return frames[apex]


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) -> (size, size, C); area interpolation when shrinking, bilinear when growing."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    shrink = size < min(image.shape[:2])
    out = cv2.resize(
        image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
    return out.reshape(size, size, image.shape[-1])


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """RGB (H, W, 3) -> grey (H, W, 1) with ITU-R 601 luma, or keep 3; grey -> 3 by repetition."""
    have = image.shape[-1]
    if channels == have:
        return image
    if channels == 1 and have == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
    if channels == 3 and have == 1:
        return np.repeat(image, 3, axis=-1)
    raise ValueError(f"cannot turn {have} channels into {channels}")


def apex_input(
    frames: np.ndarray, apex: int, size: int, channels: int, *, clip: str = "?"
) -> np.ndarray:
    """The 'apex' representation: the apex frame, resized, in `channels` channels (uint8)."""
    return to_channels(resize(apex_frame(frames, apex, clip=clip), size), channels)


REPRESENTATIONS = {"apex": apex_input}
