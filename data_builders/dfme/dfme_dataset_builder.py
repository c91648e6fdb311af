"""dfme: DFME (Zhao et al. 2024), read from the user's licensed copy, its subsets as splits.

One example per row of training_full_with_AU.xlsx (split `train`),
testA_full_with_AU.xlsx (`test_a`) and testB_full_with_AU.xlsx (`test_b`); the
frames of a clip are {Filename}/{frame:05d}.png. The three subsets hold
disjoint subjects. `emotion` keeps the sheet's text (7 classes); label_schemes
maps it. Where the sheets have no subject column, each subset is one subject
group (see README.md). Reading rules and repairs: data_builders/me_common.py.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

from etils import epath

from data_builders import clips, me_common, sheets
from data_builders.sheets import AnnotationError

# split -> (sheet names, `source` of its clips, folder names its frames may sit in).
SUBSETS = {
    "train": (
        ("training_full_with_AU.xlsx", "train_full_with_AU.xlsx"),
        "dfme",
        ("training", "train", "Training", "Train"),
    ),
    "test_a": (
        ("testA_full_with_AU.xlsx", "test_A_full_with_AU.xlsx"),
        "dfme_test_a",
        ("testA", "test_A", "TestA", "test_a"),
    ),
    "test_b": (
        ("testB_full_with_AU.xlsx", "test_B_full_with_AU.xlsx"),
        "dfme_test_b",
        ("testB", "test_B", "TestB", "test_b"),
    ),
}
# Header names (alternatives after the first) as the DFME sheets may write them.
HEADERS = {
    "filename": ("Filename", "File name", "Video name", "Video"),
    "onset_frame": ("OnsetFrame", "Onset Frame", "Onset"),
    "apex_frame": ("ApexFrame", "Apex Frame", "Apex"),
    "offset_frame": ("OffsetFrame", "Offset Frame", "Offset"),
    "action_units": ("Action Units", "AU", "AUs"),
    "emotion": ("Estimated Emotion", "Emotion", "Emotion Label", "Label"),
    "subject": ("Subject", "Subject ID", "Sub", "Participant"),
}
OPTIONAL = ("subject", "action_units")
NAMES = {key: names[0] for key, names in HEADERS.items()}  # for messages

log = logging.getLogger(__name__)


def _dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _bases(root: Path, split_dirs) -> Iterator[Path]:
    """Where a subset's clip folders may sit: a folder named for the subset (top level or
    one down), manual_dir itself, then any folder one or two levels down."""
    for name in split_dirs:
        yield root / name
        yield from (d / name for d in _dirs(root))
    yield root
    for d in _dirs(root):
        yield d
        yield from _dirs(d)


def frames_root(root: Path, rows: list[sheets.SheetRow], split: str) -> Path:
    """The folder holding the clip folders of one subset, found by its first row's Filename."""
    first = next((r for r in rows if sheets.cell_text(r.cells["filename"])), None)
    if first is None:
        return root  # Every row then fails on its empty Filename, naming the row.
    filename = sheets.cell_text(first.cells["filename"])
    found = next((b for b in _bases(root, SUBSETS[split][2]) if (b / filename).is_dir()), None)
    if found is None:
        raise AnnotationError(
            f"{first.where}: clip folder {filename!r} found nowhere in {root} (looked in "
            f"{', '.join(SUBSETS[split][2])}, the folder itself and two levels down)"
        )
    return found


def _subject(row: sheets.SheetRow, split: str, has_subject: bool) -> str:
    if not has_subject:
        return split  # No subject column: the subset is the subject group.
    return sheets.required_text(row, "subject", NAMES["subject"])


class Builder(me_common.MEBuilder):
    """DFME clips, splits `train`, `test_a`, `test_b` (the subsets, disjoint in subjects)."""

    pkg_dir_path = epath.Path(__file__).parent
    RELEASES = ("raw",)
    # DFME ships uncropped frames (CCAC 2024): crop ('raw_face_*') or align ('raw_aligned_*').
    BUILDER_CONFIGS = me_common.whole_frame_configs((112, 224))
    HOMEPAGE = "https://mea-lab-421.github.io"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    DFME is licensed by its authors (University of Science and Technology of
    China): sign the licence at https://mea-lab-421.github.io and unpack the
    data into manual_dir as shipped:

      manual_dir/
        training_full_with_AU.xlsx     split 'train' (required)
        testA_full_with_AU.xlsx        split 'test_a' (optional)
        testB_full_with_AU.xlsx        split 'test_b' (optional)
        <Filename>/00001.png           frames {Filename}/{frame:05d}.png, directly here
                                       or in a folder (e.g. train/, testA/, DFME/)
        corrections.csv                optional: your cell corrections
    """

    def _records(self, root: Path) -> list[clips.Record]:
        instructions = self.MANUAL_DOWNLOAD_INSTRUCTIONS
        rows, split_of, roots, has_subject = [], {}, {}, {}
        for split, (names, _, _) in SUBSETS.items():
            if split == "train":
                sheet = sheets.find_sheet(
                    root, names, ("Filename",), "DFME training sheet", instructions
                )
            else:
                sheet = sheets.find_file(root, names)
                if sheet is None:
                    log.warning("dfme: no %s in %s: split %s not built", names[0], root, split)
                    continue
            read = sheets.read_sheet(sheet, HEADERS, optional=OPTIONAL, anchors=("Filename",))
            split_of[sheet.name] = split
            roots[split] = frames_root(root, read, split)
            has_subject[split] = any(sheets.cell_text(r.cells["subject"]) for r in read)
            rows += read
        records = clips.records_from_sheet(
            rows,
            dataset="dfme",
            headers=NAMES,
            subject_folder=lambda row: _subject(
                row, split_of[row.file], has_subject[split_of[row.file]]
            ),
            frames_root=root,
            corrections=sheets.Corrections(root),
        )
        out = []
        for row, record in zip(rows, records, strict=True):
            split = split_of[row.file]
            filename = record.clip.rsplit("/", 1)[1]
            out.append(
                dataclasses.replace(
                    record, source=SUBSETS[split][1], folder=roots[split] / filename
                )
            )
        return out

    def _split_generators(self, dl_manager):
        records = self._records(sheets.manual_dir(dl_manager))
        plans = clips.plan_all(records, self.builder_config.frames, name=self.name)
        return {
            split: self._generate_examples([p for p in plans if p.record.source == source])
            for split, (_, source, _) in SUBSETS.items()
            if any(p.record.source == source for p in plans)
        }
