"""The MEGC 2019 composite's official clip list: reading it and finding its clips.

`read_clip_list` reads a CSV `dataset,subject,clip,label` (default: the
packaged `resources/megc2019_combined_3class_gt.csv`, 441 clips; see
resources/README.md); `match_clip_list` finds each listed clip among a sample
list by `clip_key`; `label_disagreements` compares labels. protocols.py builds
the `cde_megc2019` fold tables on them.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.resources
import pathlib
import re
from collections.abc import Sequence

import numpy as np

MEGC2019_CLASSES = ("negative", "positive", "surprise")
MEGC2019_LIST = "megc2019_combined_3class_gt.csv"


@dataclasses.dataclass(frozen=True)
class ListedClip:
    """One row of a clip list: ids as the list writes them, a MEGC 3-class label."""

    dataset: str
    subject: str
    clip: str
    label: int  # index into MEGC2019_CLASSES
    where: str  # 'megc2019_combined_3class_gt.csv row 7', for messages

    @property
    def key(self) -> tuple[str, str, str]:
        return clip_key(self.dataset, self.subject, self.clip)

    def __str__(self) -> str:
        return f"{self.where} ({self.dataset},{self.subject},{self.clip})"


# Seed 002 Table 9 counts SAMM 133 clips, 92 negative; the official list has 132, 91.
EXTRA_442 = ListedClip(
    "samm", "32", "032_3_1", 0, "the 442nd clip (seed 002 Table 9: SAMM 133 clips, 92 negative)"
)
_SMIC_CLIP = re.compile(r"^s0*(\d+)")
_TRAILING_NUMBER = re.compile(r"(\d+)$")


def clip_key(dataset: str, subject: str, clip: str) -> tuple[str, str, str]:
    """The (dataset, subject, clip) key on which list rows and samples are matched.

    Only the last '/' part of `subject` and `clip` counts (builders prefix ids:
    'samm/006/006_1_2'). A subject is its trailing number without zeros
    ('sub01', '006', 's01' -> '1', '6', '1'; no number: the lower-cased text).
    A clip name is lower-cased and, for SMIC, loses the zeros of the subject
    number it starts with ('s01_ne_01' -> 's1_ne_01', the release's folder
    name). So the list's 'smic,s01,s01_ne_01' is the sample 'smic/s1/s1_ne_01'
    and 'samm,6,006_1_2' is 'samm/006/006_1_2'.
    """
    dataset = dataset.strip().lower()
    subject = subject.strip().rsplit("/", 1)[-1]
    number = _TRAILING_NUMBER.search(subject)
    subject = str(int(number.group(1))) if number else subject.lower()
    name = clip.strip().rsplit("/", 1)[-1].lower()
    if dataset.startswith("smic"):
        name = _SMIC_CLIP.sub(lambda m: f"s{int(m.group(1))}", name)
    return dataset, subject, name


def official_list_path():
    """The packaged MEGC 2019 list (resources/README.md says where it comes from)."""
    return importlib.resources.files("mer_jax") / "resources" / MEGC2019_LIST


def read_clip_list(path=None) -> tuple[ListedClip, ...]:
    """Rows of a clip list CSV `dataset,subject,clip,label` (default: the MEGC 2019 list).

    An optional header row is skipped. Raises ValueError naming the file and
    row for a malformed row, a label outside 0..2 or a clip listed twice.
    """
    path = official_list_path() if path is None else pathlib.Path(path)
    name = getattr(path, "name", str(path))
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    out, seen = [], {}
    for i, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        where = f"{name} row {i}"
        if not any(cells):
            continue
        if len(cells) != 4:
            raise ValueError(f"{where}: expected 4 columns dataset,subject,clip,label, got {row}")
        dataset, subject, clip, label = cells
        if i == 1 and label.lower() == "label":
            continue
        if label not in ("0", "1", "2"):
            raise ValueError(f"{where}: label {label!r} is not 0, 1 or 2 {MEGC2019_CLASSES}")
        if not (dataset and subject and clip):
            raise ValueError(f"{where}: empty dataset, subject or clip in {row}")
        item = ListedClip(dataset.lower(), subject, clip, int(label), where)
        if item.key in seen:
            raise ValueError(f"{where}: clip {clip!r} is listed twice (also {seen[item.key]})")
        seen[item.key] = where
        out.append(item)
    if not out:
        raise ValueError(f"{name}: no rows")
    return tuple(out)


def match_clip_list(
    listed: Sequence[ListedClip],
    datasets: np.ndarray,
    subjects: np.ndarray,
    clips: np.ndarray,
    *,
    what: str = "clip list",
) -> np.ndarray:
    """Index of the sample holding each listed clip (clip_key rule).

    Raises ValueError naming every listed clip the samples lack (up to 10) and
    any listed clip that two samples hold.
    """
    by_key: dict[tuple[str, str, str], list[int]] = {}
    for i, key in enumerate(map(clip_key, datasets, subjects, clips)):
        by_key.setdefault(key, []).append(i)
    missing, index = [], np.zeros(len(listed), np.int64)
    for r, row in enumerate(listed):
        found = by_key.get(row.key, [])
        if not found:
            missing.append(row)
        elif len(found) > 1:
            raise ValueError(
                f"{what}: {row} is held by several samples: {[str(clips[i]) for i in found[:5]]}"
            )
        else:
            index[r] = found[0]
    if missing:
        shown = "; ".join(str(row) for row in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise ValueError(
            f"{what}: {len(missing)} listed clip(s) not in the sample list: {shown}{more}. "
            "Build every dataset the list names with all its clips, and use a label scheme "
            "that keeps them."
        )
    return index


def label_disagreements(
    listed: Sequence[ListedClip],
    index: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    clips: np.ndarray,
) -> list[str]:
    """One message per listed clip whose sample's class differs from the list's."""
    out = []
    for row, i in zip(listed, index):
        label = int(labels[i])
        if not 0 <= label < len(class_names):
            raise ValueError(
                f"labels[{i}] ({clips[i]}) = {label} is not an index into {tuple(class_names)}"
            )
        mine, theirs = class_names[label], MEGC2019_CLASSES[row.label]
        if mine != theirs:
            out.append(f"{clips[i]}: class {mine!r} in the sample list, {theirs!r} in {row.where}")
    return out
