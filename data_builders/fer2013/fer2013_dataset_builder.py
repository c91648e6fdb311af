"""fer2013: FER-2013 (Goodfellow et al. 2013), read from the user's copy of fer2013.csv.

35,887 grey 48x48 faces, one per CSV row: `emotion` (0 angry, 1 disgust,
2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral), `pixels` (2304 space-separated
ints 0-255, row-major) and `Usage`, which makes the splits: Training ->
`train` (28,709), PublicTest -> `public_test` (3,589), PrivateTest ->
`private_test` (3,589). `source_file` is 'fer2013.csv:LINE' (the header is
line 1). FER-2013 records no subject: `subject` is ''.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from etils import epath

from data_builders import macro_common, sheets
from data_builders.macro_common import AnnotationError

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SPLITS = {"Training": "train", "PublicTest": "public_test", "PrivateTest": "private_test"}
FILES = ("fer2013.csv", "icml_face_data.csv")  # Kaggle's two names for the same table.
SIDE = 48
SIZES = (48, 112, 224)


def parse_pixels(text: str, where: str) -> np.ndarray:
    """(48, 48) uint8 from the `pixels` cell."""
    tokens = text.split()
    if len(tokens) != SIDE * SIDE:
        raise AnnotationError(
            f"{where}: {len(tokens)} pixel values, expected {SIDE * SIDE} ({SIDE}x{SIDE})"
        )
    try:
        values = np.array(tokens, dtype=np.int64)
    except ValueError:
        bad = next(t for t in tokens if not t.lstrip("-").isdigit())
        raise AnnotationError(f"{where}: pixel value {bad!r} is not an integer") from None
    if values.min() < 0 or values.max() > 255:
        bad = values[(values < 0) | (values > 255)][0]
        raise AnnotationError(f"{where}: pixel value {bad} is outside 0-255")
    return values.astype(np.uint8).reshape(SIDE, SIDE)


class Builder(macro_common.MacroBuilder):
    """FER-2013 faces, `train`, `public_test` and `private_test` splits from `Usage`."""

    pkg_dir_path = epath.Path(__file__).parent
    BUILDER_CONFIGS = [
        macro_common.MacroConfig(
            name=str(size),
            description=f"Every row, {size}x{size}"
            + (" (as stored)." if size == SIDE else " (cv2.INTER_AREA from 48x48)."),
            image_size=size,
        )
        for size in SIZES
    ]
    HOMEPAGE = "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    FER-2013 was released for the ICML 2013 representation-learning challenge:
    download fer2013.tar.gz (or icml_face_data.csv) from
    https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge/data
    (a Kaggle account and accepting the competition rules are required) and
    unpack it into manual_dir:

      manual_dir/
        fer2013.csv    columns emotion (0-6), pixels (2304 ints), Usage
                       (Training / PublicTest / PrivateTest)

    The file may also sit one level down (manual_dir/fer2013/fer2013.csv) or be
    named icml_face_data.csv. Kaggle's train.csv / test.csv (no Usage column)
    are not read.
    """

    def _items(self, root: Path) -> dict[str, list[macro_common.Item]]:
        path = sheets.find_file(root, FILES)
        if path is None:
            raise FileNotFoundError(
                f"FER-2013 table not found in {root}: looked for {' or '.join(FILES)} there and "
                f"one level down.\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        shown = macro_common.relative(path, root)
        splits = {split: [] for split in SPLITS.values()}
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip().lower() for h in next(reader, [])]
            missing = [c for c in ("emotion", "pixels", "usage") if c not in header]
            if missing:
                raise AnnotationError(
                    f"{shown} line 1: header has no column {missing[0]!r} (it has {header})"
                )
            column = {name: header.index(name) for name in ("emotion", "pixels", "usage")}
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                where = f"{shown} line {line}"
                if len(row) != len(header):
                    raise AnnotationError(
                        f"{where}: {len(row)} fields, the header has {len(header)}"
                    )
                code = row[column["emotion"]].strip()
                if code not in {str(i) for i in range(len(EMOTIONS))}:
                    raise AnnotationError(
                        f"{where}: emotion {code!r} is not one of 0-6 "
                        f"({', '.join(f'{i} {e}' for i, e in enumerate(EMOTIONS))})"
                    )
                usage = row[column["usage"]].strip()
                if usage not in SPLITS:
                    raise AnnotationError(f"{where}: Usage {usage!r} is not one of {tuple(SPLITS)}")
                splits[SPLITS[usage]].append(
                    macro_common.Item(
                        dataset="fer2013",
                        subject="",
                        clip="",
                        frame=-1,
                        emotion=EMOTIONS[int(code)],
                        source_file=f"{shown}:{line}",
                        where=where,
                        pixels=parse_pixels(row[column["pixels"]], where),
                    )
                )
        return splits
