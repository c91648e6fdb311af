"""Tiny copies of the MMEW and DFME layouts (data_builders/mmew, dfme READMEs), as fixtures.py
writes the others: 16x16 frames written with cv2, sheets as real .xlsx in the official headers.
Writers return {clip id: {frame number: path}} so tests read the images back on their own."""

from __future__ import annotations

from pathlib import Path

from tests.data_builders.fixtures import Row, _save, _write_frames

# ----------------------------------------------------------------------------
# MMEW: 3 subjects (written 1, 'S02', 's3'), 7 clips, every emotion of the sheet; one '/'
# apex (rule R1) and one empty offset (rule R3). Frames {emotion}/{Filename}/{n}.jpg.

MMEW_HEADER = [
    "Subject",
    "Filename",
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    "Action Units",
    "Estimated Emotion",
    "remarks",
]


def mmew_rows() -> list[Row]:
    return [
        Row(1, "S01-01-001", 2, 3, 5, "happiness", 1, 6, "6+12"),
        Row(1, "S01-03-002", 1, "/", 4, "anger", 1, 4, "4+7"),
        Row("S02", "S02-02-001", 3, 4, 6, "surprise", 1, 7, "1+2"),
        Row("S02", "S02-04-001", 1, 2, 3, "disgust", 1, 3, "9"),
        Row("S02", "S02-07-003", 2, 2, 4, "others", 1, 5, "L14"),
        Row("s3", "S03-05-001", 1, 3, None, "fear", 1, 5, "1+4+20"),
        Row("s3", "S03-06-002", 4, 5, 6, "sadness", 2, 7, "15"),
    ]


def mmew_clip(row: Row) -> str:
    """The clip id the builder gives a row (a malformed subject kept as written)."""
    digits = str(row.subject).lstrip("Ss")
    subject = f"S{int(digits):02d}" if digits.isdigit() else row.subject
    return f"mmew/{subject}/{row.filename}"


def write_mmew(root: Path, rows: list[Row] | None = None):
    """manual_dir with MMEW_Micro_Exp.xlsx and Micro_Expression/; {clip: {n: path}}."""
    rows = mmew_rows() if rows is None else rows
    sheet = [MMEW_HEADER] + [
        [r.subject, r.filename, r.onset, r.apex, r.offset, r.action_units, r.emotion, ""]
        for r in rows
    ]
    _save(root / "MMEW_Micro_Exp.xlsx", sheet)
    return {
        mmew_clip(r): _write_frames(
            root / "Micro_Expression" / r.emotion / r.filename,
            range(r.first, r.last + 1),
            str,
            mmew_clip(r),
        )
        for r in rows
    }


# ----------------------------------------------------------------------------
# DFME: three sheets, one per subset, the seven emotions; no subject column unless asked.
# Frames {Filename}/{frame:05d}.png: train and test B in manual_dir, test A under testA/.
# The test A sheet writes its emotion column 'Emotion' (an accepted variant).

DFME_SHEETS = {
    "train": "training_full_with_AU.xlsx",
    "test_a": "testA_full_with_AU.xlsx",
    "test_b": "testB_full_with_AU.xlsx",
}
DFME_FRAMES = {"train": "", "test_a": "testA", "test_b": ""}


def dfme_rows() -> dict[str, list[Row]]:
    return {
        "train": [
            Row("p001", "d_00012", 3, 5, 7, "happiness", 1, 8, "6+12"),
            Row("p001", "d_00013", 1, "", 3, "anger", 1, 4, "4+7"),
            Row("p002", "d_00020", 10, 11, 13, "contempt", 10, 14, "R14"),
            Row("p002", "d_00021", 2, 3, 4, "disgust", 1, 4, "9+10"),
        ],
        "test_a": [
            Row("p101", "d_01001", 1, 2, 4, "fear", 1, 4, "1+2+4+20"),
            Row("p101", "d_01002", 2, 4, 5, "sadness", 1, 6, "1+4+15"),
        ],
        "test_b": [
            Row("p201", "d_02001", 1, 2, 3, "surprise", 1, 3, "1+2+5"),
            Row("p202", "d_02002", 5, 6, 8, "happiness", 4, 9, "12"),
        ],
    }


def dfme_clip(split: str, row: Row, *, subject: bool = False) -> str:
    return f"dfme/{row.subject if subject else split}/{row.filename}"


def write_dfme(root: Path, rows: dict[str, list[Row]] | None = None, *, subject: bool = False):
    """manual_dir with the three sheets and the clip folders; {split: {clip: {n: path}}}."""
    rows = dfme_rows() if rows is None else rows
    files = {}
    for split, split_rows in rows.items():
        emotion = "Emotion" if split == "test_a" else "Estimated Emotion"
        header = ["Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "AU", emotion]
        sheet = [(["Subject"] if subject else []) + header]
        for r in split_rows:
            cells = [r.filename, r.onset, r.apex, r.offset, r.action_units, r.emotion]
            sheet.append(([r.subject] if subject else []) + cells)
        _save(root / DFME_SHEETS[split], sheet)
        files[split] = {
            dfme_clip(split, r, subject=subject): _write_frames(
                root / DFME_FRAMES[split] / r.filename,
                range(r.first, r.last + 1),
                lambda n: f"{n:05d}",
                dfme_clip(split, r, subject=subject),
                ext=".png",
            )
            for r in split_rows
        }
    return files
