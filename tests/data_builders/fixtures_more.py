"""Writers of tiny CAS(ME)^3 Part A and 4DME trees in their official layouts (each builder's
README gives the layout), as `fixtures` does for CASME II / SAMM / SMIC / CASME I.

16x16 frames written with cv2 (CAS(ME)^3 colour .jpg with dropped frames; 4DME grey .jpg)
and the sheets as real .xlsx written with openpyxl. Each writer returns
{clip id: {frame number: path}} of the frames on disk so tests read them back on their own.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl

from tests.data_builders.fixtures import Row, _write_frames

# ----------------------------------------------------------------------------
# CAS(ME)^3 Part A: 3 subjects, 7 micro-expressions in 6 recordings (two in spNO.1/a),
# frames part_A/data/part_A/{Subject}/{Filename}/color/{n}.jpg with dropped frames, the
# sheet (worksheet 'label') in part_A/annotation/.

CASME3_SHEET = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
CASME3_HEADER = [
    "Subject",
    "Filename",
    "Onset",
    "Apex",
    "Offset",
    "AU",
    "Objective class",
    "emotion",
]
# (Subject, Filename) -> (first, last, dropped frame numbers) of the recording's colour stream.
CASME3_RECORDINGS = {
    ("spNO.1", "a"): (1, 30, {13, 14, 27}),
    ("spNO.1", "b"): (1, 12, {5}),
    ("spNO.2", "a"): (2, 9, set()),
    ("spNO.2", "c"): (5, 14, {9}),
    ("spNO.3", "a"): (1, 8, set()),
    ("spNO.3", "b"): (3, 10, {10}),
}


def casme3_rows() -> list[Row]:
    """Row.first / last are unused here: the recording's frames come from CASME3_RECORDINGS."""
    return [
        Row("spNO.1", "a", 10, 12, 15, "disgust", 0, 0, "4,7", "4"),
        Row("spNO.1", "a", 20, 22, 24, "happy", 0, 0, "6,12", "1"),
        Row("spNO.1", "b", 5, 7, 9, "surprise", 0, 0, "1,2,5", "2"),
        Row("spNO.2", "a", 3, 4, 6, "fear", 0, 0, "4", "6"),
        Row("spNO.2", "c", 8, 9, 11, "others", 0, 0, None, "7"),
        Row("spNO.3", "a", 2, 3, 5, "anger", 0, 0, "L10", "3"),
        Row("spNO.3", "b", 4, 6, 10, "sad", 0, 0, "15+17", "5"),
    ]


def write_casme3(root: Path, rows: list[Row] | None = None, *, kinds: list[str] | None = None):
    """manual_dir with the ME sheet and the colour frames; `kinds` adds an 'Expression type'
    column with these values. Returns {recording 'casme3/<Subject>/<Filename>': {n: path}}."""
    rows = casme3_rows() if rows is None else rows
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "label"
    sheet.append(CASME3_HEADER + (["Expression type"] if kinds else []))
    for i, r in enumerate(rows):
        cells = [r.subject, r.filename, r.onset, r.apex, r.offset, r.action_units, r.objective]
        sheet.append(cells + [r.emotion] + ([kinds[i]] if kinds else []))
    book.create_sheet("notes").append(["JpgIndex: frame numbers of the colour stream"])
    path = root / "part_A" / "annotation" / CASME3_SHEET
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    files = {}
    for (subject, filename), (first, last, dropped) in CASME3_RECORDINGS.items():
        key = f"casme3/{subject}/{filename}"
        numbers = [n for n in range(first, last + 1) if n not in dropped]
        folder = root / "part_A" / "data" / "part_A" / subject / filename / "color"
        files[key] = _write_frames(folder, numbers, str, key)
    return files


# ----------------------------------------------------------------------------
# 4DME: 3 subjects (folders S01..S03; the sheet writes sub_ID 1, 'S02', 3), 5 clips, grey
# frames gray_micro/S01/<fold_name>/img<n>.jpg; one apex '/' (rule R1).

FOURD_SHEET = "4DME_Labelling_Micro_release v1.xlsx"
FOURD_HEADER = ["sub_ID", "fold_name", "Emotion", "Onset", "Apex", "Offset", "AUs"]


def fourd_me_rows() -> list[Row]:
    return [
        Row(1, "S01_01", 10, 12, 14, "Positive", 9, 15, "AU6+AU12(k)"),
        Row(1, "S01_02", 3, 5, 8, "Negative", 3, 8, "AU4+AU7"),
        Row("S02", "S02_01", 20, 21, 23, "Surprise", 20, 23, "AU1+AU2+AU5"),
        Row("S02", "S02_03", 5, "/", 9, "Repression", 4, 9, "AU14"),
        Row(3, "S03_01", 1, 2, 4, "Others", 1, 4, "AU45"),
    ]


def write_fourd_me(root: Path, rows: list[Row] | None = None):
    """manual_dir with the 4DME sheet and gray_micro/; returns {clip id: {n: path}}."""
    rows = fourd_me_rows() if rows is None else rows
    book = openpyxl.Workbook()
    book.active.append(FOURD_HEADER)
    for r in rows:
        book.active.append(
            [r.subject, r.filename, r.emotion, r.onset, r.apex, r.offset, r.action_units]
        )
    root.mkdir(parents=True, exist_ok=True)
    book.save(root / FOURD_SHEET)
    files = {}
    for r in rows:
        subject = f"S{int(str(r.subject).lstrip('S')):02d}"
        clip = f"fourd_me/{subject}/{r.filename}"
        files[clip] = _write_frames(
            root / "gray_micro" / subject / r.filename,
            range(r.first, r.last + 1),
            lambda n: f"img{n}",
            clip,
            grey=True,
        )
    return files
