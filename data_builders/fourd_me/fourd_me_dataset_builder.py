"""fourd_me: 4DME (Li et al. 2022), the grey 2D micro-expression clips, read from the user's
licensed copy.

One example per row of '4DME_Labelling_Micro_release v1.xlsx' (header: sub_ID,
fold_name, Emotion, Onset, Apex, Offset, AUs); frames gray_micro/{subject}/{fold}/
(grey, stored replicated to RGB), numbered by the trailing digits of their names.
Reading rules, stored fields and sheet repairs: data_builders/me_common.py and
README.md (which says what is assumed where no public source pins the layout).
"""

from __future__ import annotations

import re
from pathlib import Path

from etils import epath

from data_builders import clips, me_common, sheets

SHEETS = ("4DME_Labelling_Micro_release v1.xlsx", "4DME_Labelling_Micro_release_v1.xlsx")
SIGNATURE = ("sub_ID", "fold_name", "Onset", "Offset")
FRAME_DIRS = ("gray_micro", "Gray_micro", "gray")
HEADERS = {
    "subject": "sub_ID",
    "filename": "fold_name",
    "onset_frame": "Onset",
    "apex_frame": "Apex",
    "offset_frame": "Offset",
    "action_units": ("AUs", "AU", "Action Units"),
    "emotion": ("Emotion", "Estimated Emotion"),
}
SIZES = (112, 224)
_NUMBER = re.compile(r"(\d+)$")


class SubjectFolders:
    """A sheet's sub_ID as its folder under gray_micro: the folder of that exact name, else
    the one folder whose trailing number is the cell's (1 -> 'S01', 'sub1', '01')."""

    def __init__(self, frames_root: Path):
        self.root = frames_root
        self.by_number: dict[int, list[str]] = {}
        for folder in sorted(p.name for p in frames_root.iterdir() if p.is_dir()):
            match = _NUMBER.search(folder)
            if match:
                self.by_number.setdefault(int(match.group(1)), []).append(folder)

    def __call__(self, row: sheets.SheetRow) -> str:
        text = sheets.required_text(row, "subject", "sub_ID")
        if (self.root / text).is_dir():
            return text
        match = _NUMBER.search(text)
        found = self.by_number.get(int(match.group(1)), []) if match else []
        if len(found) == 1:
            return found[0]
        raise sheets.AnnotationError(
            f"{row.where}: sub_ID {text!r} names no subject folder of {self.root}"
            + (f" (several match: {found})" if found else "")
        )


class Builder(me_common.MEBuilder):
    """4DME grey micro-expression clips, one `train` split (LOSO makes the folds)."""

    pkg_dir_path = epath.Path(__file__).parent
    RELEASES = ("raw",)
    BUILDER_CONFIGS = me_common.whole_frame_configs(SIZES, note=" (grey replicated to RGB)")
    HOMEPAGE = ""  # No public page: request the data from its authors.
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    4DME is licensed by the University of Oulu (Center for Machine Vision and
    Signal Analysis); request it from its authors. Unpack it into manual_dir:

      manual_dir/
        4DME_Labelling_Micro_release v1.xlsx   coding sheet, header on row 1: sub_ID,
                                               fold_name, Emotion, Onset, Apex, Offset, AUs
        gray_micro/S01/<fold_name>/<...><n>.jpg  grey frames, n = the frame number
        corrections.csv                        optional: your cell corrections

    The sheet may have another name (found by its sub_ID/fold_name header); a
    folder may also sit one level down.
    """

    def _records(self, root: Path) -> list[clips.Record]:
        instructions = self.MANUAL_DOWNLOAD_INSTRUCTIONS
        sheet = sheets.find_sheet(root, SHEETS, SIGNATURE, "4DME coding sheet", instructions)
        frames_root = sheets.find_dir(root, FRAME_DIRS, "4DME grey frames", instructions)
        return clips.records_from_sheet(
            sheets.read_sheet(sheet, HEADERS, anchors=("sub_ID", "fold_name")),
            dataset="fourd_me",
            headers={k: v if isinstance(v, str) else v[0] for k, v in HEADERS.items()},
            subject_folder=SubjectFolders(frames_root),
            frames_root=frames_root,
            corrections=sheets.Corrections(root),
        )
