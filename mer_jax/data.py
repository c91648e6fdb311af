"""Builder -> tfds.data_source -> model inputs -> the whole dataset as host arrays.

The sweep then puts the arrays on the accelerator once (engine.Data); every
fold indexes into them.
"""

import os
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow_datasets as tfds

import data_builders
from mer_jax import preprocess


class Dataset(NamedTuple):
    images: np.ndarray  # (N, H, W, C) uint8 model inputs
    labels: np.ndarray  # (N,) int32
    subjects: np.ndarray  # (N,) str, unique across source datasets
    sources: np.ndarray  # (N,) str, e.g. 'casme2', 'samm', 'smic'
    clips: np.ndarray  # (N,) str
    class_names: tuple[str, ...]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def prepare_builder(name: str, data_dir: str | None = None, *, log: Callable[[str], None] = print):
    """The TFDS builder of `name`, built first if it needs no input files (synthetic corpora)."""
    data_builders.import_builder(name)
    builder = tfds.builder(name, data_dir=data_dir or None)
    if builder.is_prepared():
        return builder
    if getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
        raise FileNotFoundError(
            f"dataset {name} is not built in {builder.data_dir}. It needs your copy of the data: "
            f"run `mer-jax data build {name} --manual-dir DIR"
            + (f" --data-dir {data_dir}" if data_dir else "")
            + "` first."
        )
    log(f"building {name} into {builder.data_dir} (no input files needed) ...")
    builder.download_and_prepare(file_format="array_record")
    return builder


def load(
    name: str,
    *,
    data_dir: str | None = None,
    split: str = "train",
    representation: str = "apex",
    image_size: int = 64,
    channels: int = 1,
    log: Callable[[str], None] = print,
) -> Dataset:
    """Read every example of `name` and turn each clip into the model input `representation`."""
    if representation not in preprocess.REPRESENTATIONS:
        raise KeyError(
            f"config key 'input.representation': unknown {representation!r}; "
            f"known: {sorted(preprocess.REPRESENTATIONS)}"
        )
    to_input = preprocess.REPRESENTATIONS[representation]
    builder = prepare_builder(name, data_dir, log=log)
    class_names = tuple(builder.info.features["label"].names)
    source = tfds.data_source(name, data_dir=data_dir or None, split=split)
    n = len(source)
    images = np.zeros((n, image_size, image_size, channels), np.uint8)
    labels = np.zeros(n, np.int32)
    subjects, sources, clips = [], [], []
    for i in range(n):
        ex = source[i]
        clip = _text(ex["clip"])
        images[i] = to_input(ex["frames"], int(ex["apex"]), image_size, channels, clip=clip)
        labels[i] = int(ex["label"])
        subjects.append(_text(ex["subject"]))
        sources.append(_text(ex["source"]))
        clips.append(clip)
    log(f"{name}: {n} clips, {len(set(subjects))} subjects, classes {list(class_names)}")
    return Dataset(
        images, labels, np.array(subjects), np.array(sources), np.array(clips), class_names
    )


def default_data_dir() -> str:
    """TFDS_DATA_DIR if set, else TFDS's default (~/tensorflow_datasets)."""
    return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))
