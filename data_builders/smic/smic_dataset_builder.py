"""smic: SMIC (Li et al. 2013), HS / VIS / NIR, read from the user's licensed copy.

SMIC ships no coding sheet: one example per clip folder
<camera>/<subject>/micro/<emotion>/<clip>/, `emotion` is the folder name
(negative, positive, surprise). Every frame of the folder is stored, so
onset = 0 and offset = T - 1 (`onset_frame`/`offset_frame`: the first and last
frame numbers); SMIC has no apex annotation, so apex = apex_frame = -1 (choose
an apex downstream: mid-clip, interframe difference, ...). Subjects are
`smic/s1` (HS), `smic_vis/s1`, `smic_nir/s1`: whether VIS/NIR s1 is HS s1 is
not recorded here, so do not pool cameras in one LOSO.

View configs (`data_builders/views.py`), of the cropped release: the five seed
views of HS (`hs_cropped_apex_224`, ..., `hs_cropped_flowseq_20x192`) and the
flow view of VIS and NIR (`vis_cropped_flow_28`, `nir_cropped_flow_28`: seed
002's cross-database tasks); apexes by the seeds' rules for SMIC: mid-clip for
the apex views, interframe difference for the flow view.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from etils import epath

from data_builders import clips, me_common, sheets, views

RELEASE_DIRS = {"raw": ("SMIC_all_raw",), "cropped": ("SMIC_all_cropped",)}
CAMERAS = {"hs": "HS", "vis": "VIS", "nir": "NIR"}
SOURCES = {"hs": "smic", "vis": "smic_vis", "nir": "smic_nir"}
SIZES = (112, 224)


@dataclasses.dataclass(eq=False, kw_only=True)
class SMICConfig(me_common.MEConfig):
    """Adds the camera: 'hs' (100 fps high-speed), 'vis' (25 fps), 'nir' (25 fps near-infrared)."""

    camera: str = "hs"
    frames: str = "all"  # No sheet: onset..offset is the whole folder.


def _configs():
    out = []
    for release in RELEASE_DIRS:
        for camera in CAMERAS:
            for size in SIZES:
                tag = "" if release == "raw" else "_cropped"
                out.append(
                    SMICConfig(
                        name=f"{camera}{tag}_{size}",
                        description=f"SMIC-{CAMERAS[camera]}, {release} release, {size}x{size}.",
                        release=release,
                        camera=camera,
                        image_size=size,
                    )
                )
    for camera in CAMERAS:
        base = SMICConfig(
            name=f"{camera}_cropped",
            description=f"SMIC-{CAMERAS[camera]}, cropped release, ",
            release="cropped",
            camera=camera,
        )
        seed_views = views.SEED_VIEWS if camera == "hs" else (views.flow_view(28),)
        seed_views = [views.without_apex_annotation(v) for v in seed_views]
        out += me_common.view_configs(base, base.name, seed_views)
    return out


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: _natural(p.name))


class Builder(me_common.MEBuilder):
    """SMIC clips of one camera, one `train` split (LOSO makes the folds)."""

    pkg_dir_path = epath.Path(__file__).parent
    RELEASES = tuple(RELEASE_DIRS)
    HAS_APEX = False
    BUILDER_CONFIGS = _configs()
    HOMEPAGE = "http://www.cse.oulu.fi/SMICDatabase"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    SMIC is licensed by the University of Oulu (Center for Machine Vision and
    Signal Analysis); request it from its authors (formerly at
    http://www.cse.oulu.fi/SMICDatabase). Unpack it into manual_dir as shipped:

      manual_dir/
        SMIC_all_raw/HS/s1/micro/negative/s1_ne_01/image*.bmp   config release 'raw'
        SMIC_all_raw/VIS/..., SMIC_all_raw/NIR/...                config camera 'vis', 'nir'
        SMIC_all_cropped/HS/...                                   config release 'cropped'

    Labels come from the emotion folder names; subjects without a `micro`
    folder are skipped.
    """

    def _info(self):
        camera = self.builder_config.camera
        if camera not in CAMERAS:
            raise ValueError(
                f"smic config {self.builder_config.name!r}: camera {camera!r} not one of "
                f"{tuple(CAMERAS)}"
            )
        return super()._info()

    def _records(self, root: Path) -> list[clips.Record]:
        config = self.builder_config
        instructions = self.MANUAL_DOWNLOAD_INSTRUCTIONS
        release_dir = sheets.find_dir(
            root, RELEASE_DIRS[config.release], f"SMIC {config.release} release", instructions
        )
        camera_dir = release_dir / CAMERAS[config.camera]
        if not camera_dir.is_dir():
            raise FileNotFoundError(
                f"SMIC camera folder {camera_dir} not found (it holds "
                f"{[p.name for p in _dirs(release_dir)]}).\n{instructions}"
            )
        source = SOURCES[config.camera]
        records = []
        for subject_dir in _dirs(camera_dir):
            micro = subject_dir / "micro"
            if not micro.is_dir():
                continue
            subject = f"{source}/{subject_dir.name}"
            for emotion_dir in _dirs(micro):
                for clip_dir in _dirs(emotion_dir):
                    at = str(clip_dir)
                    frames = clips.list_frames(clip_dir, at)
                    numbers = list(frames)
                    records.append(
                        clips.Record(
                            dataset="smic",
                            source=source,
                            subject=subject,
                            clip=f"{subject}/{clip_dir.name}",
                            folder=clip_dir,
                            where=at,
                            emotion=emotion_dir.name,
                            onset_frame=numbers[0],
                            offset_frame=numbers[-1],
                            has_apex=False,
                        )
                    )
        return records
