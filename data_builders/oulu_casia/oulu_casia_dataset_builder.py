"""oulu_casia: Oulu-CASIA NIR&VIS facial expressions (Zhao et al. 2011), from the user's copy.

80 subjects x 6 expressions, one sequence each, per camera (VL visible, NI
near-infrared) and illumination (Strong = normal indoor light, Weak, Dark).
Each sequence contributes its last `frames` frames (the peak): seed 000
Sec. 4.1 keeps the last three frames of the VIS, normal-light sequences (1200
images for its five emotions). `emotion` is the sequence folder's name
(Anger, Disgust, Fear, Happiness, Sadness, Surprise).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from etils import epath

from data_builders import clips, macro_common, sheets

EMOTIONS = ("Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise")
CAMERAS = ("VL", "NI")
LIGHTING = ("Strong", "Weak", "Dark")
SIZES = (112, 224)


@dataclasses.dataclass(eq=False, kw_only=True)
class OuluConfig(macro_common.MacroConfig):
    """Adds the camera ('VL' visible, 'NI' near-infrared) and the illumination."""

    camera: str = "VL"
    lighting: str = "Strong"
    frames: int = 3


class Builder(macro_common.MacroBuilder):
    """Oulu-CASIA sequences of one camera and illumination, their last frames, one `train` split."""

    pkg_dir_path = epath.Path(__file__).parent
    SEQUENCES = True
    BUILDER_CONFIGS = [
        OuluConfig(
            name=f"vis_strong_{size}",
            description=f"VIS camera, normal (strong) light, last 3 frames, {size}x{size}.",
            image_size=size,
        )
        for size in SIZES
    ]
    HOMEPAGE = "http://www.cse.oulu.fi/CMV/Downloads/Oulu-CASIA"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Oulu-CASIA NIR&VIS is licensed by the University of Oulu (Center for
    Machine Vision and Signal Analysis; the page cited by papers is
    http://www.cse.oulu.fi/CMV/Downloads/Oulu-CASIA): request it from its
    authors. Unpack it into manual_dir as shipped:

      manual_dir/
        OriginalImg/VL/Strong/P001/Anger/000.jpeg   config camera 'VL', lighting 'Strong'
        OriginalImg/NI/Dark/...                     other cameras / illuminations

    OriginalImg may also sit one level down (manual_dir/Oulu_CASIA_NIR_VIS/
    OriginalImg/...). Frames are numbered from 000 in each expression folder.
    """

    def _info(self):
        config = self.builder_config
        for field, allowed in (("camera", CAMERAS), ("lighting", LIGHTING)):
            if getattr(config, field) not in allowed:
                raise ValueError(
                    f"oulu_casia config {config.name!r}: {field} {getattr(config, field)!r} not "
                    f"one of {allowed}"
                )
        return super()._info()

    def _items(self, root: Path) -> dict[str, list[macro_common.Item]]:
        config = self.builder_config
        instructions = self.MANUAL_DOWNLOAD_INSTRUCTIONS
        original = sheets.find_dir(root, ("OriginalImg",), "Oulu-CASIA OriginalImg", instructions)
        folder = original / config.camera / config.lighting
        if not folder.is_dir():
            raise FileNotFoundError(
                f"Oulu-CASIA folder {folder} not found (camera {config.camera!r}, lighting "
                f"{config.lighting!r}).\n{instructions}"
            )
        items = []
        for subject_dir in macro_common.subfolders(folder):
            subject = f"oulu_casia/{subject_dir.name}"
            for sequence in macro_common.subfolders(subject_dir):
                where = macro_common.relative(sequence, root)
                emotion = macro_common.known_name(
                    sequence.name, EMOTIONS, "expression folder", where
                )
                frames = clips.list_frames(sequence, where)
                items += macro_common.sequence_items(
                    frames,
                    list(frames)[-config.frames :],
                    root=root,
                    dataset="oulu_casia",
                    subject=subject,
                    clip=f"{subject}/{sequence.name}",
                    emotion=emotion,
                    where=where,
                )
        return {"train": items}
