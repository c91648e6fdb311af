"""Turning a clip into a model input: the views the five seeds feed their networks.

`REPRESENTATIONS` is the one table of model inputs: per name, the `spec` keys
it reads, its output shape and dtype as functions of `spec`, and the function
`(clip: Clip, spec) -> np.ndarray` that computes it (with a batched form where
there is one). `spec` is the sweep config's `input` section (keys below,
defaults in `mer_jax.config.base`); the builders' stored views
(`data_builders/views.py`) and `mer_jax.data` read the same table. uint8
outputs are pixels (the engine scales them to [0, 1]); float32 outputs
(optical flow) reach the model as they are.

| name            | seed | output                          | spec keys read                         |
|-----------------|------|---------------------------------|----------------------------------------|
| `apex`          | 000  | (S, S, C) uint8 apex frame      | image_size, channels, apex             |
| `evm_apex`      | 001  | (S, S, 3) uint8 EVM-magnified   | image_size, apex, evm.*                |
| `flow`          | 002  | (S, S, 2|3) float32 onset->apex | image_size, channels, apex, flow_method|
| `aman_stack`    | 003  | (n, k, S, S, 3) uint8           | image_size, num_frames, factors,       |
|                 |      |                                 | magnifier_checkpoint, tim_length,      |
|                 |      |                                 | frame_interval (optional)              |
| `flow_sequence` | 004  | (T, S, S, 2) float32            | image_size, num_frames, flow_method    |

`apex` chooses the apex frame: 'ground_truth' (the annotation; a clip without
one, e.g. SMIC, is an error that says which other choice to make),
'ground_truth_else_mid_clip' (the annotation where there is one: composites),
'mid_clip' (seed 000 on SMIC) or 'interframe_diff' (seed 002 on SMIC:
argmax_t mean |I_t - I_onset|).
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import cv2
import numpy as np

from mer_jax.magnifier import model as magnifier
from mer_jax.preprocess import apex as apex_lib
from mer_jax.preprocess import evm, flow, tim

APEX_RULES = ("ground_truth", "ground_truth_else_mid_clip", "mid_clip", "interframe_diff")


class Clip(NamedTuple):
    """One stored clip: frames (T, H, W, 3) uint8 and its onset/apex/offset (apex -1: none)."""

    frames: np.ndarray
    onset: int
    apex: int
    offset: int
    id: str = "?"


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
    raise ValueError(f"config key 'input.channels': cannot turn {have} channels into {channels}")


def apex_index(clip: Clip, rule: str) -> int:
    """The apex frame index of `clip` under `rule` (config key 'input.apex')."""
    t = len(clip.frames)
    if rule == "ground_truth_else_mid_clip":  # composites of annotated and SMIC clips
        rule = "ground_truth" if clip.apex >= 0 else "mid_clip"
    if rule == "ground_truth":
        if clip.apex < 0:
            raise ValueError(
                f"clip {clip.id}: no annotated apex (e.g. SMIC); set input.apex to "
                f"'mid_clip' or 'interframe_diff'"
            )
        if clip.apex >= t:
            raise ValueError(f"clip {clip.id}: apex frame {clip.apex} outside its {t} frames")
        return int(clip.apex)
    if rule == "mid_clip":
        return int(apex_lib.mid_clip(clip.onset, clip.offset))
    if rule == "interframe_diff":
        lengths = np.array([clip.offset + 1])
        onset = np.array([clip.onset])
        return int(apex_lib.interframe_diff(clip.frames[None], lengths, onset)[0])
    raise ValueError(f"config key 'input.apex': {rule!r} not in {APEX_RULES}")


def apex_input(clip: Clip, spec: Mapping) -> np.ndarray:
    """Seed 000: the apex frame, resized, in `channels` channels (uint8)."""
    frame = clip.frames[apex_index(clip, spec["apex"])]
    return to_channels(resize(frame, spec["image_size"]), spec["channels"])


def flow_input(clip: Clip, spec: Mapping) -> np.ndarray:
    """Seed 002: onset -> apex optical flow (dx, dy[, strain]) resized to S x S (float32).

    Flow is computed at the stored resolution, then resized; the vectors are
    scaled by S / stored size so they stay in pixels of the output grid.
    """
    apex = apex_index(clip, spec["apex"])
    f = flow.flow_between(clip.frames, clip.onset, apex, method=spec["flow_method"], clip=clip.id)
    if spec["channels"] == 3:
        f = np.concatenate([f, flow.optical_strain(f)[..., None]], axis=-1)
    elif spec["channels"] != 2:
        raise ValueError(
            f"config key 'input.channels': flow has 2 (or 3 with strain), got {spec['channels']}"
        )
    size = spec["image_size"]
    scale = size / clip.frames.shape[1]
    out = cv2.resize(
        f, (size, size), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    out = out.reshape(size, size, -1)
    out[..., :2] *= scale
    return out.astype(np.float32)


def _onset_offset(clip: Clip) -> np.ndarray:
    return clip.frames[clip.onset : clip.offset + 1].astype(np.float32)


def flow_sequence_batch(clips: Sequence[Clip], spec: Mapping) -> np.ndarray:
    """Seed 004 for N clips: each one's onset..offset linearly interpolated to T + 1 frames,
    then T adjacent flows, (N, T, S, S, 2) float32; with the JAX TV-L1 all N T pairs are one
    batched program (the interpolation makes every clip the same length)."""
    t, size = spec["num_frames"], spec["image_size"]
    batch = []
    for clip in clips:
        frames = np.asarray(tim.linear(_onset_offset(clip)[None], t + 1))[0]
        frames = np.clip(np.rint(frames), 0, 255).astype(np.uint8)
        batch.append(np.stack([resize(f, size) for f in frames]))
    out = flow.flow_sequences(
        np.stack(batch), method=spec["flow_method"], clips=[clip.id for clip in clips]
    )
    return out.astype(np.float32)


def flow_sequence_input(clip: Clip, spec: Mapping) -> np.ndarray:
    """Seed 004: onset..offset linearly interpolated to T + 1 frames, T adjacent flows (float32)."""
    return flow_sequence_batch([clip], spec)[0]


EVM_PAD_FRAMES = 32  # clips of one batch are padded to a multiple of this many frames


def evm_apex_batch(clips: Sequence[Clip], spec: Mapping) -> np.ndarray:
    """Seed 001 for N clips, (N, S, S, 3) uint8: each clip Eulerian-magnified (Wu et al. 2012)
    at its own length, then its apex frame.

    The band is read as fractions of Nyquist (`mer_jax.preprocess.evm`: seed 001's 0.1-0.4 Hz
    selects no FFT bin of a 30-70 frame clip). One `evm.magnify_frame` call: clips
    padded to a multiple of `EVM_PAD_FRAMES` frames, each filtered at its own length,
    so a corpus compiles once per padded length rather than once per clip length.
    """
    e = spec["evm"]
    size = spec["image_size"]
    lengths = [len(clip.frames) for clip in clips]
    padded = -(-max(lengths) // EVM_PAD_FRAMES) * EVM_PAD_FRAMES
    frames = np.zeros((len(clips), padded, size, size, 3), np.uint8)
    for i, clip in enumerate(clips):
        frames[i, : lengths[i]] = [to_channels(resize(f, size), 3) for f in clip.frames]
    out = evm.magnify_frame(
        frames,
        [apex_index(clip, spec["apex"]) for clip in clips],
        e["alpha"],
        e["low"],
        e["high"],
        fps=e["fps"],
        lengths=lengths,
        filter=e["filter"],
        lambda_c=e["lambda_c"],
        band_units="nyquist",
    )
    return np.clip(np.rint(np.asarray(out) * 255.0), 0, 255).astype(np.uint8)


def evm_apex_input(clip: Clip, spec: Mapping) -> np.ndarray:
    """Seed 001: the clip Eulerian-magnified, then its apex frame, S x S x 3 (`evm_apex_batch`)."""
    return evm_apex_batch([clip], spec)[0]


def aman_frame_sampling(spec: Mapping) -> tuple[int, int]:
    """(TIM length L, interval) of seed 003's frame sampling: `spec` keys `tim_length`
    (default tim.AMAN_TIM_LENGTH = 20; L = num_frames is TIM straight to n frames) and
    `frame_interval` (default 0: the largest that fits, `tim.sample_indices`)."""
    length = int(spec.get("tim_length", tim.AMAN_TIM_LENGTH))
    interval = int(spec.get("frame_interval", 0))
    tim.sample_indices(spec["num_frames"], length, interval)  # ValueError if they do not fit
    return length, interval


def aman_stack_batch(clips: Sequence[Clip], spec: Mapping) -> np.ndarray:
    """Seed 003 for N clips, (N, n, k, S, S, 3) uint8: TIM and sampling make every clip n
    frames, so one magnification call covers all N (see `aman_stack_input`)."""
    size = spec["image_size"]
    length, interval = aman_frame_sampling(spec)
    batch = []
    for clip in clips:
        frames = np.stack([resize(f, size) for f in clip.frames[clip.onset : clip.offset + 1]])
        frames = frames[None].astype(np.float32) / 255.0
        sampled = tim.tim_then_sample(frames, spec["num_frames"], length=length, interval=interval)
        batch.append(sampled[0])
    frames = np.clip(np.stack([np.asarray(f) for f in batch]), 0.0, 1.0)
    checkpoint = spec.get("magnifier_checkpoint", "")
    if checkpoint:  # Oh et al. 2018, the magnifier AMAN uses (mer_jax/magnifier/model.py)
        params = magnifier.load_cached(checkpoint)
        out = magnifier.magnify_against_onset(params, frames, spec["factors"], onset=0)
    else:
        out = evm.magnify_against_onset(frames, spec["factors"], onset=0)
    out = np.moveaxis(np.asarray(out), 1, 2)  # (N, k, n, ...) -> (N, n, k, ...)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def aman_stack_input(clip: Clip, spec: Mapping) -> np.ndarray:
    """Seed 003 (Sec. 2.1): onset..offset TIM-normalised to L = 20 frames, n of them taken
    from the first at a fixed interval (`aman_frame_sampling`), each magnified against the onset
    at every factor by the learned magnifier (`magnifier_checkpoint`) or, without one, by
    Eulerian magnification: (n, k, S, S, 3) uint8."""
    return aman_stack_batch([clip], spec)[0]


@dataclasses.dataclass(frozen=True)
class Representation:
    """One row of the table: a model input, what it reads of `spec`, the array it gives.

    Calling it computes one clip's input (`compute`); `batch`, where set, computes
    several clips in one accelerator call, (N, ...): fixed length after TIM or
    interpolation, or padded with each clip's EVM filter built at its own length. The
    others run in OpenCV, a clip at a time.
    """

    name: str
    seed: str
    reads: tuple[str, ...]  # the `spec` keys it reads (mer_jax.data compares a stored view's)
    dtype: type  # np.uint8 pixels or np.float32 flow
    shape: Callable[[Mapping], tuple[int, ...]]  # the output shape for `spec`
    compute: Callable[[Clip, Mapping], np.ndarray]
    batch: Callable[[Sequence[Clip], Mapping], np.ndarray] | None = None
    channels: tuple[int, ...] = ()  # the `spec['channels']` values it accepts, where it reads it

    def __call__(self, clip: Clip, spec: Mapping) -> np.ndarray:
        return self.compute(clip, spec)

    @property
    def reads_apex(self) -> bool:
        return "apex" in self.reads


def _square(spec: Mapping, channels: int) -> tuple[int, int, int]:
    return (spec["image_size"], spec["image_size"], channels)


REPRESENTATIONS: dict[str, Representation] = {
    r.name: r
    for r in (
        Representation(
            "apex",
            "000",
            ("image_size", "channels", "apex"),
            np.uint8,
            lambda spec: _square(spec, spec["channels"]),
            apex_input,
            channels=(1, 3),
        ),
        Representation(
            "evm_apex",
            "001",
            ("image_size", "apex", "evm"),
            np.uint8,
            lambda spec: _square(spec, 3),
            evm_apex_input,
            evm_apex_batch,
        ),
        Representation(
            "flow",
            "002",
            ("image_size", "channels", "apex", "flow_method"),
            np.float32,
            lambda spec: _square(spec, spec["channels"]),
            flow_input,
            channels=(2, 3),  # dx, dy (+ optical strain)
        ),
        Representation(
            "aman_stack",
            "003",
            (
                "image_size",
                "num_frames",
                "factors",
                "magnifier_checkpoint",
                "tim_length",
                "frame_interval",
            ),
            np.uint8,
            lambda spec: (spec["num_frames"], len(spec["factors"]), *_square(spec, 3)),
            aman_stack_input,
            aman_stack_batch,
        ),
        Representation(
            "flow_sequence",
            "004",
            ("image_size", "num_frames", "flow_method"),
            np.float32,
            lambda spec: (spec["num_frames"], *_square(spec, 2)),
            flow_sequence_input,
            flow_sequence_batch,
        ),
    )
}


# What a still image (one image, no clip: the macro-expression pre-training sets) can be
# turned into: the image is its own apex frame, and a clip that does not move has nothing for
# EVM to magnify. Every other representation needs motion.
STILL_REPRESENTATIONS = ("apex", "evm_apex")


def still_input(image: np.ndarray, spec: Mapping) -> np.ndarray:
    """A still image (H, W, 3) uint8 as the `apex` / `evm_apex` input: resized to S x S and
    converted to the representation's channels as those treat the apex frame (`apex_input`;
    `evm_apex_batch` before magnifying)."""
    channels = REPRESENTATIONS[spec["representation"]].shape(spec)[-1]
    return to_channels(resize(image, spec["image_size"]), channels)


def compute_batch(representation: str, clips: Sequence[Clip], spec: Mapping) -> np.ndarray:
    """`REPRESENTATIONS[representation]` of every clip, (N, ...): batched where it has a form."""
    rep = REPRESENTATIONS[representation]
    if rep.batch is not None:
        return rep.batch(clips, spec)
    return np.stack([rep(clip, spec) for clip in clips])
