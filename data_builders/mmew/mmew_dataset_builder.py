"""mmew: MMEW (Ben et al. 2021), the micro-expression part, read from the user's licensed copy.

One example per row of MMEW_Micro_Exp.xlsx (Subject, Filename, OnsetFrame,
ApexFrame, OffsetFrame, Action Units, Estimated Emotion, remarks); the frames
of a clip are Micro_Expression/{emotion}/{Filename}/{n}.jpg. `emotion` keeps
the sheet's text; label_schemes maps it. Reading rules, stored fields and
sheet repairs: data_builders/me_common.py and README.md.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from etils import epath

from data_builders import clips, me_common, sheets

SHEETS = ("MMEW_Micro_Exp.xlsx", "MMEW_Micro_Exp_v2.xlsx")
RELEASE_DIRS = {"raw": ("Micro_Expression",)}
HEADERS = {
    "subject": "Subject",
    "filename": "Filename",
    "onset_frame": "OnsetFrame",
    "apex_frame": "ApexFrame",
    "offset_frame": "OffsetFrame",
    "action_units": "Action Units",
    "emotion": "Estimated Emotion",
}
SIZES = (112, 224)
# Emotion folder names accepted for a sheet emotion besides the emotion itself (matched
# ignoring case): public loaders of MMEW name the 'others' clips 'repression' (MEB).
FOLDER_ALIASES = {"others": ("other", "repression"), "other": ("others", "repression")}


def _emotion_folders(frames_root: Path) -> dict[str, Path]:
    """Emotion folders of Micro_Expression by lower-cased name."""
    return {p.name.lower(): p for p in sorted(frames_root.iterdir()) if p.is_dir()}


def clip_folder(frames_root: Path, folders: dict[str, Path], record: clips.Record) -> Path:
    """Micro_Expression/{emotion}/{Filename} (emotion folder matched ignoring case, or an
    alias); else Micro_Expression/{Filename} when the copy has no emotion level. The first
    existing one; if none exists, the first candidate (the build then names the row)."""
    filename = record.clip.rsplit("/", 1)[1]
    emotion = record.emotion.lower()
    names = (emotion, *FOLDER_ALIASES.get(emotion, ()))
    candidates = [folders[n] / filename for n in names if n in folders]
    candidates += [frames_root / record.emotion / filename, frames_root / filename]
    return next((c for c in candidates if c.is_dir()), candidates[0])


class Builder(me_common.MEBuilder):
    """MMEW micro-expression clips, one `train` split (LOSO makes the folds)."""

    pkg_dir_path = epath.Path(__file__).parent
    RELEASES = tuple(RELEASE_DIRS)
    # MMEW ships whole 1920x1080 frames: 'raw_face_*' crop them to the face first, as the
    # seeds do; 'raw_aligned_*' also level the eyes; 'raw_*' keep the whole frame.
    BUILDER_CONFIGS = me_common.whole_frame_configs(SIZES)
    HOMEPAGE = "http://www.dpailab.com/database.html"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    MMEW is licensed by its authors (Shandong University). Request it at
    http://www.dpailab.com/database.html and unpack it into manual_dir as shipped:

      manual_dir/
        MMEW_Micro_Exp.xlsx                          coding sheet (header on row 1)
        Micro_Expression/happiness/S01-01-001/1.jpg  frames: {emotion}/{Filename}/{n}.jpg
        corrections.csv                              optional: your cell corrections

    A folder may also sit one level down (manual_dir/MMEW_Final/Micro_Expression/...).
    """

    def _records(self, root: Path) -> list[clips.Record]:
        instructions = self.MANUAL_DOWNLOAD_INSTRUCTIONS
        sheet = sheets.find_sheet(
            root, SHEETS, ("OnsetFrame", "Estimated Emotion"), "MMEW coding sheet", instructions
        )
        frames_root = sheets.find_dir(root, RELEASE_DIRS["raw"], "MMEW frames", instructions)
        records = clips.records_from_sheet(
            sheets.read_sheet(sheet, HEADERS),
            dataset="mmew",
            headers=HEADERS,
            subject_folder=lambda row: sheets.numbered_id(row, "subject", "Subject", "S", 2),
            frames_root=frames_root,
            corrections=sheets.Corrections(root),
        )
        folders = _emotion_folders(frames_root)
        return [
            dataclasses.replace(r, folder=clip_folder(frames_root, folders, r)) for r in records
        ]
