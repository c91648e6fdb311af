"""jaffe: the Japanese Female Facial Expression database (Lyons et al. 1998), from the user's copy.

213 grey 256x256 .tiff images of 10 women posing 7 expressions; the
expression code sits in the file name, SUBJECT.CODEtake.ID.tiff
(`KA.AN1.39.tiff`: subject KA, anger, take 1, image 39). Every image is
stored; seed 000 Sec. 4.1 keeps its five emotions (151 images). `emotion` is
the code's name in the JAFFE documentation: AN anger, DI disgust, FE fear,
HA happiness, NE neutral, SA sadness, SU surprise.
"""

from __future__ import annotations

import re
from pathlib import Path

from etils import epath

from data_builders import macro_common, sheets
from data_builders.macro_common import AnnotationError

EMOTIONS = {
    "AN": "anger",
    "DI": "disgust",
    "FE": "fear",
    "HA": "happiness",
    "NE": "neutral",
    "SA": "sadness",
    "SU": "surprise",
}
FOLDERS = ("jaffe", "jaffedbase", "JAFFE")
SUFFIXES = (".tiff", ".tif")
SIZES = (112, 224)
_NAME = re.compile(r"^(?P<subject>[A-Za-z]{2})\.(?P<code>[A-Za-z]{2})(?P<take>\d+)\.(?P<id>\d+)$")


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in SUFFIXES for p in folder.iterdir())


class Builder(macro_common.MacroBuilder):
    """JAFFE images, one `train` split."""

    pkg_dir_path = epath.Path(__file__).parent
    BUILDER_CONFIGS = [
        macro_common.MacroConfig(
            name=str(size), description=f"Every image, {size}x{size}.", image_size=size
        )
        for size in SIZES
    ]
    HOMEPAGE = "https://doi.org/10.5281/zenodo.3451524"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    JAFFE is free for non-commercial research under its authors' terms
    (Michael Lyons, Miyuki Kamachi, Jiro Gyoba): request it at
    https://doi.org/10.5281/zenodo.3451524 (formerly
    http://www.kasrl.org/jaffe.html). Unpack it into manual_dir:

      manual_dir/
        jaffe/KA.AN1.39.tiff     SUBJECT.CODEtake.ID.tiff, CODE one of AN DI FE HA NE SA SU

    The images may also lie in manual_dir itself or in jaffedbase/; other
    files (README, .DS_Store) are ignored.
    """

    def _items(self, root: Path) -> dict[str, list[macro_common.Item]]:
        instructions = self.MANUAL_DOWNLOAD_INSTRUCTIONS
        if root.is_dir() and _has_images(root):
            folder = root
        else:
            folder = sheets.find_dir(root, FOLDERS, "JAFFE images", instructions)
        items = []
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or path.suffix.lower() not in SUFFIXES:
                continue
            shown = macro_common.relative(path, root)
            match = _NAME.match(path.stem)
            if not match:
                raise AnnotationError(
                    f"{shown}: not a JAFFE image name SUBJECT.CODEtake.ID.tiff "
                    "(e.g. KA.AN1.39.tiff)"
                )
            code = match.group("code").upper()
            if code not in EMOTIONS:
                raise AnnotationError(
                    f"{shown}: expression code {match.group('code')!r} is not one of "
                    f"{tuple(EMOTIONS)}"
                )
            items.append(
                macro_common.Item(
                    dataset="jaffe",
                    subject=f"jaffe/{match.group('subject').upper()}",
                    clip="",
                    frame=-1,
                    emotion=EMOTIONS[code],
                    source_file=shown,
                    where=shown,
                    path=path,
                )
            )
        return {"train": items}
