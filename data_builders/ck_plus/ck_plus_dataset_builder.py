"""ck_plus: the extended Cohn-Kanade dataset (Lucey et al. 2010), read from the user's copy.

Only sequences with an emotion file (327 of 593) are labelled; each
contributes its last `frames` frames up to and including the labelled (peak)
frame, which is the last frame of every CK+ sequence: seed 000 Sec. 4.1 keeps
the last three frames (852 images for its five emotions). `emotion` is the
name of the file's code in the CK+ README: 0 neutral, 1 anger, 2 contempt,
3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from etils import epath

from data_builders import clips, macro_common, sheets
from data_builders.macro_common import AnnotationError

EMOTIONS = ("neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
IMAGE_DIRS = ("cohn-kanade-images", "extended-cohn-kanade-images")
LABEL_DIRS = ("Emotion", "Emotion_labels")
SIZES = (112, 224)
_LABEL_FILE = re.compile(r"^(?P<stem>.+)_emotion\.txt$")

log = logging.getLogger(__name__)


def read_emotion(path: Path, shown: str) -> str:
    """The emotion name of one CK+ label file (a single float code, e.g. '   3.0000000e+00')."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    values = [(i, line.strip()) for i, line in enumerate(lines, start=1) if line.strip()]
    if len(values) != 1:
        raise AnnotationError(
            f"{shown}: expected one emotion code (0-7), found {len(values)} non-empty lines"
        )
    line, text = values[0]
    try:
        code = float(text)
    except ValueError:
        code = None
    if code is None or not code.is_integer() or not 0 <= code < len(EMOTIONS):
        raise AnnotationError(
            f"{shown} line {line}: {text!r} is not a CK+ emotion code 0-7 "
            f"({', '.join(f'{i} {e}' for i, e in enumerate(EMOTIONS))})"
        )
    return EMOTIONS[int(code)]


class Builder(macro_common.MacroBuilder):
    """CK+ labelled sequences, their last frames, one `train` split."""

    pkg_dir_path = epath.Path(__file__).parent
    SEQUENCES = True
    BUILDER_CONFIGS = [
        macro_common.MacroConfig(
            name=f"last3_{size}",
            description=f"Last 3 frames of each labelled sequence, {size}x{size}.",
            image_size=size,
            frames=3,
        )
        for size in SIZES
    ]
    HOMEPAGE = "https://www.jeffcohn.net/resources/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    CK+ is distributed by its authors (Jeffrey Cohn, University of Pittsburgh /
    Carnegie Mellon University) under a research agreement: request it via
    https://www.jeffcohn.net/resources/ (formerly
    http://www.consortium.ri.cmu.edu/ckagree/). Unpack the image and emotion
    archives into manual_dir:

      manual_dir/
        cohn-kanade-images/S005/001/S005_001_00000011.png   frames of each sequence
        Emotion/S005/001/S005_001_00000011_emotion.txt      code 0-7 of the last frame

    Either folder may also sit one level down (manual_dir/CK+/Emotion/...).
    Sequences without an emotion file are not labelled and are skipped.
    """

    def _items(self, root: Path) -> dict[str, list[macro_common.Item]]:
        instructions = self.MANUAL_DOWNLOAD_INSTRUCTIONS
        images = sheets.find_dir(root, IMAGE_DIRS, "CK+ images", instructions)
        labels = sheets.find_dir(root, LABEL_DIRS, "CK+ emotion labels", instructions)
        keep = self.builder_config.frames
        items, seen = [], {}
        for path in sorted(labels.glob("*/*/*_emotion.txt")):
            shown = macro_common.relative(path, root)
            subject, sequence = path.parent.parent.name, path.parent.name
            clip = f"ck_plus/{subject}/{sequence}"
            if clip in seen:
                raise AnnotationError(
                    f"{shown}: a second emotion file for {clip} (also {seen[clip]})"
                )
            seen[clip] = shown
            emotion = read_emotion(path, shown)
            stem = _LABEL_FILE.match(path.name).group("stem")
            labelled = macro_common.frame_number(stem)
            if labelled is None:
                raise AnnotationError(f"{shown}: no frame number at the end of {stem!r}")
            folder = images / subject / sequence
            frames = clips.list_frames(folder, f"{shown} ({clip})")
            if labelled not in frames:
                raise AnnotationError(
                    f"{shown} ({clip}): the labelled frame {stem} has no image in {folder}"
                )
            numbers = [n for n in frames if n <= labelled][-keep:]
            if len(numbers) < keep:
                log.warning("%s: only %d frames up to the labelled one", clip, len(numbers))
            items += macro_common.sequence_items(
                frames,
                numbers,
                root=root,
                dataset="ck_plus",
                subject=f"ck_plus/{subject}",
                clip=clip,
                emotion=emotion,
                where=f"{shown} ({clip})",
            )
        if not items:
            raise AnnotationError(f"ck_plus: no *_emotion.txt files under {labels}/SUBJECT/SEQ/")
        return {"train": items}
