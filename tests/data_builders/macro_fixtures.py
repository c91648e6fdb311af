"""Writers of tiny copies of the macro-expression datasets in their official layouts.

Each writer puts real files under `root` the way the datasets ship: 16x16
images written with cv2 (CK+ .png, grey or colour; Oulu-CASIA .jpeg; JAFFE grey
.tiff; MUG and RAF-DB .jpg), real label files (CK+ `*_emotion.txt` holding
'   3.0000000e+00', RAF-DB `list_patition_label.txt`) and a small
`fer2013.csv` with 48x48 rows. Pixels come from `fixtures.frame_image(key)`,
key = the file's path relative to root (a FER-2013 row: a 3x3 grid of them,
`fer_pixels`), so a test can recompute what a lossless file holds. Writers
take the rows to write (defaults below; tests pass edited copies to inject
defects).
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from tests.data_builders.fixtures import frame_image as image


def _write(root: Path, relative: str, *, grey: bool = False) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image(relative, grey=grey)):
        raise OSError(f"cv2 could not write {path}")
    return path


# ----------------------------------------------------------------------------
# CK+: (subject, sequence, first frame, last frame, emotion code or None, grey).
# S005/002 has an (empty) Emotion folder but no label file: unlabelled.
# S022/002 has only two frames up to its labelled one.

CK_PLUS_SEQUENCES = [
    ("S005", "001", 1, 11, 3, True),
    ("S005", "002", 1, 6, None, True),
    ("S010", "004", 1, 5, 7, False),
    ("S022", "001", 2, 9, 5, True),
    ("S022", "002", 1, 2, 1, True),
]


def ck_plus_frame(subject: str, sequence: str, n: int) -> str:
    return f"cohn-kanade-images/{subject}/{sequence}/{subject}_{sequence}_{n:08d}.png"


def write_ck_plus(root: Path, sequences=CK_PLUS_SEQUENCES) -> None:
    for subject, sequence, first, last, code, grey in sequences:
        for n in range(first, last + 1):
            _write(root, ck_plus_frame(subject, sequence, n), grey=grey)
        labels = root / "Emotion" / subject / sequence
        labels.mkdir(parents=True, exist_ok=True)
        if code is not None:
            name = f"{subject}_{sequence}_{last:08d}_emotion.txt"
            (labels / name).write_text(f"   {float(code):.7e}\n")
    (root / "cohn-kanade-images" / ".DS_Store").write_bytes(b"\0")


# ----------------------------------------------------------------------------
# Oulu-CASIA: (camera, lighting, subject, expression, number of frames 000..).
# Only VL/Strong belongs to the default configs.

OULU_SEQUENCES = [
    ("VL", "Strong", "P001", "Anger", 5),
    ("VL", "Strong", "P001", "Happiness", 4),
    ("VL", "Strong", "P002", "Fear", 3),
    ("VL", "Strong", "P002", "Surprise", 7),
    ("VL", "Weak", "P001", "Anger", 3),
    ("NI", "Strong", "P001", "Anger", 3),
]


def write_oulu_casia(root: Path, sequences=OULU_SEQUENCES) -> None:
    for camera, lighting, subject, expression, count in sequences:
        for n in range(count):
            _write(root, f"OriginalImg/{camera}/{lighting}/{subject}/{expression}/{n:03d}.jpeg")


# ----------------------------------------------------------------------------
# JAFFE: flat folder of grey SUBJECT.CODEtake.ID.tiff images beside a README.

JAFFE_NAMES = [
    "KA.AN1.39",
    "KA.HA2.30",
    "KL.NE1.155",
    "KL.SU3.160",
    "YM.DI1.60",
    "YM.FE2.65",
    "YM.SA3.57",
]


def write_jaffe(root: Path, names=JAFFE_NAMES) -> None:
    for name in names:
        _write(root, f"jaffe/{name}.tiff", grey=True)
    (root / "jaffe" / "README").write_text("The JAFFE images.\n")


# ----------------------------------------------------------------------------
# MUG: (subject, emotion, take, first frame, last frame), frames img_NNNN.jpg.

MUG_TAKES = [
    ("001", "anger", "take000", 0, 19),
    ("001", "neutral", "take001", 0, 9),
    ("002", "happiness", "take000", 5, 7),
    ("002", "surprise", "take003", 100, 115),
]


def write_mug(root: Path, takes=MUG_TAKES) -> None:
    for subject, emotion, take, first, last in takes:
        for n in range(first, last + 1):
            _write(root, f"subjects3/{subject}/{emotion}/{take}/img_{n:04d}.jpg")


# ----------------------------------------------------------------------------
# RAF-DB basic: label-file lines (name, code) with both releases' images.

RAF_LINES = [
    ("train_00001.jpg", "5"),
    ("train_00002.jpg", "4"),
    ("test_0001.jpg", "1"),
    ("train_00003.jpg", "7"),
    ("test_0002.jpg", "6"),
]


def write_raf_db(root: Path, lines=RAF_LINES) -> None:
    labels = root / "basic" / "EmoLabel" / "list_patition_label.txt"
    labels.parent.mkdir(parents=True, exist_ok=True)
    labels.write_text("".join(f"{name} {code}\n" for name, code in lines))
    for name, _ in lines:
        stem = Path(name).stem
        _write(root, f"basic/Image/aligned/{stem}_aligned.jpg")
        _write(root, f"basic/Image/original/{name}")


# ----------------------------------------------------------------------------
# FER-2013: (emotion, Usage) rows; pixels `fer_pixels(row index)`.

FER_ROWS = [
    ("0", "Training"),
    ("3", "Training"),
    ("6", "PublicTest"),
    ("5", "PrivateTest"),
    ("4", "Training"),
    ("1", "PublicTest"),
    ("2", "PrivateTest"),
]


def fer_pixels(i: int) -> np.ndarray:
    """48x48 grey: a 3x3 grid of 16x16 noise tiles."""
    tiles = [[image(f"fer2013/{i}/{r}{c}", grey=True) for c in range(3)] for r in range(3)]
    return np.block(tiles)


def write_fer2013(root: Path, rows=FER_ROWS) -> Path:
    """fer2013.csv; a row may carry a third item, its pixels cell (to inject defects)."""
    path = root / "fer2013.csv"
    root.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["emotion", "pixels", "Usage"])
        for i, (emotion, usage, *pixels) in enumerate(rows):
            cell = pixels[0] if pixels else " ".join(map(str, fer_pixels(i).ravel()))
            writer.writerow([emotion, cell, usage])
    return path
