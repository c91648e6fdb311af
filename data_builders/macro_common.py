"""Reading code shared by the macro-expression builders used for pre-training.

Seed 000 (Sec. 4.1) pre-trains on CK+, Oulu-CASIA (VIS, normal light), JAFFE
and MUG; seed 001 (Sec. 4.1.1, Table 2) on CK+, RAF-DB and FER-2013. Every
builder stores one example per image: still images as they are, sequences
(CK+, Oulu-CASIA, MUG) as their selected frames, one example each, with the
frame number in `frame` and the sequence in `clip`. Images are resized to
S x S with cv2.INTER_AREA as RGB uint8, grey images replicated to 3 channels
(the rule of `clips.load_frames`, which reads every image file here). No
`label`: `mer_jax.label_schemes` maps the stored `emotion` (the
dataset's own name for it) to the classes of a protocol.

Everything a build needs is checked before anything is written; a defect
(missing file, label outside the dataset's codes, malformed line, unreadable
image) stops the build with an `AnnotationError` naming the file and line.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import tensorflow_datasets as tfds

from data_builders import clips, sheets
from data_builders.sheets import AnnotationError

__all__ = ["AnnotationError", "Item", "MacroBuilder", "MacroConfig", "features"]

_TRAILING_NUMBER = re.compile(r"(\d+)$")

log = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False, kw_only=True)
class MacroConfig(tfds.core.BuilderConfig):
    """The stored size S, which release to read, and how many frames of a sequence to keep
    (the last `frames` for CK+ and Oulu-CASIA, a window of `frames` around the apex for
    MUG; 0 for still-image datasets)."""

    image_size: int = 224
    release: str = ""
    frames: int = 0


def features(image_size: int) -> tfds.features.FeaturesDict:
    """The features every macro-expression builder writes (one image per example)."""
    text = tfds.features.Text
    return tfds.features.FeaturesDict(
        {
            "image": tfds.features.Tensor(
                shape=(image_size, image_size, 3), dtype=np.uint8, encoding="zlib"
            ),
            "dataset": text(),
            "subject": text(),  # 'ck_plus/S005'; '' where the dataset does not say
            "clip": text(),  # 'ck_plus/S005/001'; '' for still images
            "frame": tfds.features.Scalar(dtype=np.int32),  # frame number; -1 for stills
            "emotion": text(),
            "source_file": text(),  # relative to manual_dir; FER-2013 'fer2013.csv:LINE'
        }
    )


@dataclasses.dataclass
class Item:
    """One image to store: a file (`path`) or decoded grey pixels (`pixels`, FER-2013)."""

    dataset: str
    subject: str
    clip: str
    frame: int
    emotion: str
    source_file: str  # also the example key
    where: str  # 'list_patition_label.txt line 3', for error messages
    path: Path | None = None
    pixels: np.ndarray | None = None


def relative(path: Path, root: Path) -> str:
    """`path` relative to manual_dir, with '/' separators."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def frame_number(name: str) -> int | None:
    """Trailing digits of a file stem ('S005_001_00000011' -> 11), None without any."""
    match = _TRAILING_NUMBER.search(name)
    return int(match.group(1)) if match else None


def subfolders(folder: Path) -> list[Path]:
    """Visible sub-folders, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def known_name(name: str, names: Sequence[str], what: str, at: str) -> str:
    """`name` if it is one of `names` ignoring case, else an AnnotationError naming `at`."""
    if name.lower() not in {n.lower() for n in names}:
        raise AnnotationError(f"{at}: {what} {name!r} is not one of {tuple(names)}")
    return name


def sequence_items(
    frames: Mapping[int, Path],
    numbers: Sequence[int],
    *,
    root: Path,
    dataset: str,
    subject: str,
    clip: str,
    emotion: str,
    where: str,
) -> list[Item]:
    """One Item per selected frame number of a sequence folder."""
    return [
        Item(
            dataset=dataset,
            subject=subject,
            clip=clip,
            frame=n,
            emotion=emotion,
            source_file=relative(frames[n], root),
            where=where,
            path=frames[n],
        )
        for n in numbers
    ]


def grey_to_rgb(pixels: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) uint8 from a grey image: cv2.INTER_AREA, replicated to 3 channels."""
    image = cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA)
    return np.repeat(image[..., None], 3, axis=-1)


def example(item: Item, size: int) -> dict:
    if item.pixels is not None:
        image = grey_to_rgb(item.pixels, size)
    else:
        image = clips.load_frames([item.path], size, item.where)[0]
    return {
        "image": image,
        "dataset": item.dataset,
        "subject": item.subject,
        "clip": item.clip,
        "frame": item.frame,
        "emotion": item.emotion,
        "source_file": item.source_file,
    }


def check_items(splits: Mapping[str, Sequence[Item]], name: str, root: Path) -> None:
    """Every split non-empty, example keys unique, every image file present."""
    seen: dict[str, str] = {}
    for split, items in splits.items():
        if not items:
            raise AnnotationError(f"{name}: no images for split {split!r} found in {root}")
        for item in items:
            if item.source_file in seen:
                raise AnnotationError(
                    f"{item.where}: image {item.source_file} is listed twice (also "
                    f"{seen[item.source_file]})"
                )
            seen[item.source_file] = item.where
            if item.pixels is None and not item.path.is_file():
                raise AnnotationError(f"{item.where}: image {item.path} not found")


def check_config(config: MacroConfig, builder: str, releases: Sequence[str], sequences: bool):
    if config.release not in releases:
        raise ValueError(
            f"{builder} config {config.name!r}: release {config.release!r} not one of {releases}"
        )
    if not isinstance(config.image_size, int) or config.image_size < 1:
        raise ValueError(
            f"{builder} config {config.name!r}: image_size {config.image_size!r} is not a "
            "positive int"
        )
    if sequences and (not isinstance(config.frames, int) or config.frames < 1):
        raise ValueError(
            f"{builder} config {config.name!r}: frames {config.frames!r} is not a positive int "
            "(frames kept per sequence)"
        )


class MacroBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Reads manual_dir with `_items`, checks every item, writes the dataset's splits.

    Subclasses set pkg_dir_path, BUILDER_CONFIGS, MANUAL_DOWNLOAD_INSTRUCTIONS,
    HOMEPAGE, RELEASES, SEQUENCES and implement `_items(manual_dir)`.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    RELEASES: tuple[str, ...] = ("",)
    SEQUENCES = False  # True: config.frames selects frames of each sequence.
    HOMEPAGE: str = ""

    def _info(self) -> tfds.core.DatasetInfo:
        config = self.builder_config
        check_config(config, self.name, self.RELEASES, self.SEQUENCES)
        return self.dataset_info_from_configs(
            features=features(config.image_size),
            homepage=self.HOMEPAGE or None,
            disable_shuffling=True,  # Keep the dataset's order (subject, sequence, frame).
        )

    @abc.abstractmethod
    def _items(self, root: Path) -> dict[str, list[Item]]:
        """Split name -> the images to store, in order."""

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = sheets.manual_dir(dl_manager)
        splits = self._items(root)
        check_items(splits, self.name, root)
        sizes = {split: len(items) for split, items in splits.items()}
        log.info("%s: %s images per split", self.name, sizes)
        return {split: self._generate_examples(items) for split, items in splits.items()}

    def _generate_examples(self, items: Sequence[Item]):
        size = self.builder_config.image_size
        for item in items:
            yield item.source_file, example(item, size)
