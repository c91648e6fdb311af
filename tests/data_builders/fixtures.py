"""Writers of tiny copies of the official micro-expression layouts (each builder's README gives the layout).

Each writer puts real files under `root` the way the authors ship them: 16x16
frames written with cv2 (.jpg; SMIC .bmp; SAMM grey) and the coding sheet as a
real .xlsx written with openpyxl in the official header layout. A writer takes
the rows to write (defaults below; tests mutate copies to inject defects) and
returns {clip id: {frame number: path}} so tests can read the fixture images
back on their own.
"""

from __future__ import annotations

import dataclasses
import zlib
from pathlib import Path

import cv2
import numpy as np
import openpyxl

FRAME_SIZE = 16


def frame_image(key: str, *, grey: bool = False) -> np.ndarray:
    """Deterministic noise for one frame: a frame mix-up cannot go unnoticed."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    shape = (FRAME_SIZE, FRAME_SIZE) if grey else (FRAME_SIZE, FRAME_SIZE, 3)
    return rng.integers(0, 256, shape, dtype=np.uint8)


@dataclasses.dataclass
class Row:
    """One sheet row; `first`..`last` are the frame numbers present in the clip folder."""

    subject: object  # as the sheet writes it (1, '006', ...)
    filename: str
    onset: object
    apex: object
    offset: object
    emotion: str
    first: int
    last: int
    action_units: object = "4"
    objective: object = None
    digits: int = 0  # zero-padding of frame numbers in file names (SAMM 5, some 4)


def _write_frames(folder: Path, numbers, name, key: str, *, grey=False, ext=".jpg"):
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for n in numbers:
        path = folder / f"{name(n)}{ext}"
        cv2.imwrite(str(path), frame_image(f"{key}/{n}", grey=grey))
        out[n] = path
    return out


def _save(path: Path, rows: list[list]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)


# ----------------------------------------------------------------------------
# CASME II: 3 subjects, 7 clips, every emotion of the 2014 sheet; one '/' apex
# (rule R1) and one '/' offset (rule R3).

CASME2_HEADER = [
    "Subject",
    "Filename",
    None,
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    None,
    "Action Units",
    "Estimated Emotion",
]


def casme2_rows() -> list[Row]:
    return [
        Row(1, "EP02_01f", 46, 49, 51, "happiness", 44, 53, "12", 1),
        Row(1, "EP03_02", 10, "/", 14, "others", 10, 15, "L10", 7),
        Row(2, "EP01_11f", 5, 7, 10, "disgust", 3, 11, "4+9", 4),
        Row(2, "EP09_01", 20, 22, 24, "surprise", 20, 24, "1+2", 2),
        Row(2, "EP13_04", 30, 31, 34, "fear", 29, 36, "4+20", 6),
        Row(5, "EP02_07", 100, 103, 106, "repression", 98, 106, "14", 7),
        Row(5, "EP19_06", 60, 62, "/", "sadness", 58, 65, 15.0, 5),
    ]


def write_casme2(root: Path, rows: list[Row] | None = None, *, objective: bool = True):
    """manual_dir with the coding sheet, both releases and (optionally) the objective classes.

    Returns {'raw' | 'cropped': {clip id: {frame number: path}}}.
    """
    rows = casme2_rows() if rows is None else rows
    sheet = [CASME2_HEADER]
    for i, r in enumerate(rows):
        sheet.append(
            [
                r.subject,
                r.filename,
                i + 1,
                r.onset,
                r.apex,
                r.offset,
                "x",
                r.action_units,
                r.emotion,
            ]
        )
    _save(root / "CASME2-coding-20140508.xlsx", sheet)
    if objective:
        _save(
            root / "CASME2-ObjectiveClasses.xlsx",
            [["Subject", "Filename", "Objective Class"]]
            + [[r.subject, r.filename, r.objective] for r in rows],
        )
    files = {"raw": {}, "cropped": {}}
    for r in rows:
        sub = f"sub{int(r.subject):02d}"
        clip = f"casme2/{sub}/{r.filename}"
        span = range(r.first, r.last + 1)
        files["raw"][clip] = _write_frames(
            root / "CASME2_RAW_selected" / sub / r.filename, span, lambda n: f"img{n}", clip
        )
        files["cropped"][clip] = _write_frames(
            root / "Cropped" / sub / r.filename, span, lambda n: f"reg_img{n}", f"{clip}/crop"
        )
    return files


# ----------------------------------------------------------------------------
# SAMM: 3 subjects, 5 clips, grey frames named subject_frame (5 digits; one clip
# 4), 13 preamble rows above the header on row 14; one apex -1 (rule R1) and
# one apex outside onset..offset (rule R2).

SAMM_HEADER = [
    "Subject",
    "Filename",
    "Inducement Code",
    "Onset Frame",
    "Apex Frame",
    "Offset Frame",
    "Duration",
    "Micro",
    "Action Units",
    "Estimated Emotion",
    "Objective Classes",
    "Notes",
]
SAMM_PREAMBLE = [
    ["SAMM - Spontaneous Actions and Micro-Movements"],
    ["Micro-movement FACS coding, version 2"],
    [],
    ["Key:"],
    ["R = right, L = left, A-E = intensity"],
    ["Objective classes as in Davison et al. 2018"],
    [],
    ["Inducement code: stimulus video number"],
    [],
    [None, "Coded by two certified FACS coders"],
    [],
    ["Please cite the SAMM paper"],
    [],
]


def samm_rows() -> list[Row]:
    return [
        Row("006", "006_1_2", 5562, 5565, 5568, "Happiness", 5560, 5570, "R12A", 1, digits=5),
        Row("006", "006_1_3", 1200, -1, 1205, "Anger", 1200, 1205, "4+7", 3, digits=5),
        Row(7, "007_3_1", 870, 871, 875, "Other", 868, 875, "R14", 7, digits=4),
        Row(11, "011_2_4", 3000, 3050, 3004, "Contempt", 2999, 3006, "L14", 3, digits=5),
        Row(11, "011_5_1", 410, 412, 416, "Surprise", 410, 416, "1+2", 2, digits=5),
    ]


def write_samm(root: Path, rows: list[Row] | None = None):
    """manual_dir with SAMM_Micro_FACS_Codes_v2.xlsx and SAMM/; returns {clip: {n: path}}."""
    rows = samm_rows() if rows is None else rows
    sheet = [list(r) for r in SAMM_PREAMBLE] + [SAMM_HEADER]
    for i, r in enumerate(rows):
        sheet.append(
            [
                r.subject,
                r.filename,
                i + 1,
                r.onset,
                r.apex,
                r.offset,
                r.offset - r.onset + 1
                if isinstance(r.offset, int) and isinstance(r.onset, int)
                else "",
                "Micro",
                r.action_units,
                r.emotion,
                r.objective,
                "",
            ]
        )
    _save(root / "SAMM_Micro_FACS_Codes_v2.xlsx", sheet)
    files = {}
    for r in rows:
        sub = f"{int(r.subject):03d}"
        clip = f"samm/{sub}/{r.filename}"
        files[clip] = _write_frames(
            root / "SAMM" / sub / r.filename,
            range(r.first, r.last + 1),
            lambda n, sub=sub, d=r.digits: f"{sub}_{n:0{d}d}",
            clip,
            grey=True,
        )
    return files


# ----------------------------------------------------------------------------
# SMIC: HS with subjects s1, s2 (micro clips) and s3 (non_micro only, skipped);
# VIS with s1. Colour .bmp frames image<6 digits>.bmp.

# (camera, subject, emotion folder, clip, first frame, last frame)
SMIC_CLIPS = [
    ("HS", "s1", "negative", "s1_ne_01", 101, 106),
    ("HS", "s1", "positive", "s1_po_01", 40, 44),
    ("HS", "s1", "surprise", "s1_sur_01", 7, 13),
    ("HS", "s2", "negative", "s2_ne_01", 1, 5),
    ("HS", "s2", "negative", "s2_ne_02", 300, 307),
    ("VIS", "s1", "positive", "s1_po_01", 10, 14),
    ("VIS", "s1", "surprise", "s1_sur_01", 3, 7),
]


def write_smic(root: Path, clips=SMIC_CLIPS):
    """manual_dir with SMIC_all_raw/; returns {camera: {clip id: {n: path}}}."""
    files = {}
    for camera, subject, emotion, clip, first, last in clips:
        folder = root / "SMIC_all_raw" / camera / subject / "micro" / emotion / clip
        source = {"HS": "smic", "VIS": "smic_vis", "NIR": "smic_nir"}[camera]
        clip_id = f"{source}/{subject}/{clip}"
        files.setdefault(camera, {})[clip_id] = _write_frames(
            folder, range(first, last + 1), lambda n: f"image{n:06d}", clip_id, ext=".bmp"
        )
    # A subject with only non-micro sequences, as some SMIC subjects have.
    _write_frames(
        root / "SMIC_all_raw" / "HS" / "s3" / "non_micro" / "n_01",
        range(1, 3),
        lambda n: f"image{n:06d}",
        "s3",
        ext=".bmp",
    )
    return files


# ----------------------------------------------------------------------------
# CASME I: 2 subjects, 4 clips, frames <clip>-<n>.jpg (zero-padded in sub02),
# the sheet under a non-standard name (found by its header).

CASME_HEADER = [
    "Subject",
    "Filename",
    None,
    "OnsetF",
    "ApexF1",
    "ApexF2",
    "OffsetF",
    None,
    "AU",
    "Emotion",
]


def casme_rows() -> list[Row]:
    return [
        Row(1, "EP01_5", 3, 5, 8, "tense", 1, 9, "4"),
        Row(1, "EP03_2", 20, "/", 25, "disgust", 20, 25, "9"),
        Row(2, "EP08_1", 50, 52, 54, "repression", 48, 56, "14", digits=3),
        Row(2, "EP12_4", 7, 8, 11, "surprise", 7, 11, "1+2", digits=3),
    ]


def write_casme(root: Path, rows: list[Row] | None = None):
    """manual_dir with the coding sheet and CASME_raw_selected/; returns {clip: {n: path}}."""
    rows = casme_rows() if rows is None else rows
    sheet = [CASME_HEADER]
    for i, r in enumerate(rows):
        sheet.append(
            [
                r.subject,
                r.filename,
                i + 1,
                r.onset,
                r.apex,
                "/",
                r.offset,
                "",
                r.action_units,
                r.emotion,
            ]
        )
    _save(root / "CASME_coding_sheet.xlsx", sheet)
    files = {}
    for r in rows:
        sub = f"sub{int(r.subject):02d}"
        clip = f"casme/{sub}/{r.filename}"
        files[clip] = _write_frames(
            root / "CASME_raw_selected" / sub / r.filename,
            range(r.first, r.last + 1),
            lambda n, f=r.filename, d=r.digits: f"{f}-{n:0{d}d}",
            clip,
        )
    return files
