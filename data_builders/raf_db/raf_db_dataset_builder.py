"""raf_db: Real-world Affective Faces, basic part (Li et al. 2017), from the user's copy.

15,339 in-the-wild faces (12,271 train, 3,068 test) with one of 7 basic
emotions each, from `basic/EmoLabel/list_patition_label.txt` (lines
`train_00001.jpg 5`; the split is the name's prefix). Release 'aligned'
reads `basic/Image/aligned/train_00001_aligned.jpg` (100x100 aligned faces),
'original' `basic/Image/original/train_00001.jpg`. `emotion` is the code's
name in the RAF-DB README: 1 surprise, 2 fear, 3 disgust, 4 happiness,
5 sadness, 6 anger, 7 neutral. RAF-DB records no subject: `subject` is ''.
"""

from __future__ import annotations

import re
from pathlib import Path

from etils import epath

from data_builders import macro_common, sheets
from data_builders.macro_common import AnnotationError

EMOTIONS = {
    "1": "surprise",
    "2": "fear",
    "3": "disgust",
    "4": "happiness",
    "5": "sadness",
    "6": "anger",
    "7": "neutral",
}
LABEL_FILE = "list_patition_label.txt"
RELEASES = ("aligned", "original")
SIZES = (112, 224)
_NAME = re.compile(r"^(?P<split>train|test)_\d+\.jpg$")


def image_name(name: str, release: str) -> str:
    """The image file of a label-file name: 'train_00001.jpg' -> 'train_00001_aligned.jpg'."""
    return name if release == "original" else f"{Path(name).stem}_aligned.jpg"


class Builder(macro_common.MacroBuilder):
    """RAF-DB basic emotions, `train` and `test` splits as the label file defines them."""

    pkg_dir_path = epath.Path(__file__).parent
    RELEASES = RELEASES
    BUILDER_CONFIGS = [
        macro_common.MacroConfig(
            name=f"{release}_{size}",
            description=f"{release} images, {size}x{size}.",
            release=release,
            image_size=size,
        )
        for release in RELEASES
        for size in SIZES
    ]
    HOMEPAGE = "http://www.whdeng.cn/raf/model1.html"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    RAF-DB is released for non-commercial research by its authors (Shan Li,
    Weihong Deng, Beijing University of Posts and Telecommunications): request
    it at http://www.whdeng.cn/raf/model1.html and unpack the basic part into
    manual_dir:

      manual_dir/
        basic/EmoLabel/list_patition_label.txt      lines `train_00001.jpg 5` (codes 1-7)
        basic/Image/aligned/train_00001_aligned.jpg  config release 'aligned'
        basic/Image/original/train_00001.jpg         config release 'original'

    basic/ may also sit one level down (manual_dir/RAF-DB/basic/...).
    """

    def _items(self, root: Path) -> dict[str, list[macro_common.Item]]:
        instructions = self.MANUAL_DOWNLOAD_INSTRUCTIONS
        release = self.builder_config.release
        basic = sheets.find_dir(root, ("basic",), "RAF-DB basic folder", instructions)
        labels = basic / "EmoLabel" / LABEL_FILE
        images = basic / "Image" / release
        for path, what in ((labels, "label file"), (images, f"{release} image folder")):
            if not path.exists():
                raise FileNotFoundError(f"RAF-DB {what} {path} not found.\n{instructions}")
        splits = {"train": [], "test": []}
        text = labels.read_text(encoding="utf-8", errors="replace")
        for line, raw in enumerate(text.splitlines(), start=1):
            fields = raw.split()
            if not fields:
                continue
            where = f"{LABEL_FILE} line {line}"
            if len(fields) != 2:
                raise AnnotationError(
                    f"{where}: expected 'NAME.jpg CODE', found {len(fields)} fields in {raw!r}"
                )
            name, code = fields
            match = _NAME.match(name)
            if not match:
                raise AnnotationError(
                    f"{where}: image name {name!r} is not train_NNNNN.jpg or test_NNNN.jpg"
                )
            if code not in EMOTIONS:
                raise AnnotationError(
                    f"{where}: emotion code {code!r} of {name} is not one of 1-7 "
                    f"({', '.join(f'{k} {v}' for k, v in EMOTIONS.items())})"
                )
            path = images / image_name(name, release)
            splits[match.group("split")].append(
                macro_common.Item(
                    dataset="raf_db",
                    subject="",
                    clip="",
                    frame=-1,
                    emotion=EMOTIONS[code],
                    source_file=macro_common.relative(path, root),
                    where=f"{where} ({name})",
                    path=path,
                )
            )
        return splits
