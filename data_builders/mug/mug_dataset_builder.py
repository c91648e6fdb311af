"""mug: the MUG facial expression database (Aifanti et al. 2010), read from the user's copy.

Takes of posed expressions, subjects/<subject>/<emotion>/<take>/img_NNNN.jpg,
each starting and ending neutral with the apex inside (seed 000 Sec. 4.1:
"50 to 160 frames ... apex frames ... within"). MUG ships no apex annotation,
so the apex is the middle frame of the take, position (T - 1) // 2 of its
sorted frames, unless `corrections.csv` in manual_dir names it (rule R4 of
`me_common`: a row `mug/001/anger/take000,apex_frame,57,why`). Each take
contributes a window of `frames` consecutive frames around the apex: positions
apex - (frames - 1) // 2 .. apex + frames // 2, shifted to lie inside the
take, or the whole take when it is shorter. Seed 000 keeps "6 to 10 frames
around the apex" (8228 images); the configs keep 8. `emotion` is the folder
name (anger, disgust, fear, happiness, neutral, sadness, surprise).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from etils import epath

from data_builders import clips, macro_common, sheets
from data_builders.macro_common import AnnotationError

EMOTIONS = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
SUBJECT_DIRS = ("subjects3", "subjects")
SIZES = (112, 224)
WINDOW = 8

log = logging.getLogger(__name__)


def window(numbers: list[int], apex: int, size: int) -> list[int]:
    """`size` consecutive frame numbers around the apex position, inside the take."""
    size = min(size, len(numbers))
    centre = numbers.index(apex)
    start = min(max(centre - (size - 1) // 2, 0), len(numbers) - size)
    return numbers[start : start + size]


def _apex(value, numbers: list[int], clip: str, notes: list[str], folder: Path) -> int:
    text = sheets.cell_text(value)
    if not text:
        return numbers[(len(numbers) - 1) // 2]
    if not re.fullmatch(r"\d+", text) or int(text) not in numbers:
        raise AnnotationError(
            f"{'; '.join(notes)}: apex_frame {text!r} of {clip} is not a frame of {folder} "
            f"(it holds frames {numbers[0]}..{numbers[-1]})"
        )
    return int(text)


class Builder(macro_common.MacroBuilder):
    """MUG takes, a window of frames around the apex, one `train` split."""

    pkg_dir_path = epath.Path(__file__).parent
    SEQUENCES = True
    BUILDER_CONFIGS = [
        macro_common.MacroConfig(
            name=f"apex{WINDOW}_{size}",
            description=f"{WINDOW} frames around the middle (apex) of each take, {size}x{size}.",
            image_size=size,
            frames=WINDOW,
        )
        for size in SIZES
    ]
    HOMEPAGE = "https://mug.ee.auth.gr/fed/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    The MUG facial expression database is licensed by the Multimedia
    Understanding Group, Aristotle University of Thessaloniki: request it at
    https://mug.ee.auth.gr/fed/ and unpack it into manual_dir as shipped:

      manual_dir/
        subjects3/001/anger/take000/img_0000.jpg   subject / emotion / take / frames
        corrections.csv                            optional: clip,column,value,note rows,
                                                   e.g. mug/001/anger/take000,apex_frame,57,

    The subjects folder may also be named `subjects` or sit one level down.
    Emotion folders: anger, disgust, fear, happiness, neutral, sadness, surprise.
    MUG marks no apex: the middle frame of each take is used unless
    corrections.csv names one.
    """

    def _items(self, root: Path) -> dict[str, list[macro_common.Item]]:
        instructions = self.MANUAL_DOWNLOAD_INSTRUCTIONS
        subjects = sheets.find_dir(root, SUBJECT_DIRS, "MUG subject folders", instructions)
        corrections = sheets.Corrections(root)
        size = self.builder_config.frames
        items = []
        for subject_dir in macro_common.subfolders(subjects):
            subject = f"mug/{subject_dir.name}"
            for emotion_dir in macro_common.subfolders(subject_dir):
                for take in macro_common.subfolders(emotion_dir):
                    where = macro_common.relative(take, root)
                    clip = f"{subject}/{emotion_dir.name}/{take.name}"
                    cells, notes = corrections.apply(
                        clip, {"emotion": emotion_dir.name, "apex_frame": None}
                    )
                    emotion = macro_common.known_name(
                        sheets.cell_text(cells["emotion"]), EMOTIONS, "emotion", where
                    )
                    frames = clips.list_frames(take, where)
                    numbers = list(frames)
                    apex = _apex(cells["apex_frame"], numbers, clip, notes, take)
                    if notes:
                        log.info("%s: %s", clip, "; ".join(notes))
                    items += macro_common.sequence_items(
                        frames,
                        window(numbers, apex, size),
                        root=root,
                        dataset="mug",
                        subject=subject,
                        clip=clip,
                        emotion=emotion,
                        where=where,
                    )
        corrections.check_all_used("mug/")
        return {"train": items}
