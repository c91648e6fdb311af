"""casme3: CAS(ME)^3 Part A (Li et al. 2022), read from the user's licensed copy.

One example per micro-expression row of cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx
(header: Subject, Filename, Onset, Apex, Offset, AU, Objective class, emotion).
A row is one micro-expression inside a long recording, so several rows share a
Filename: the clip is '<Filename>_<Onset>' ('casme3/spNO.1/a_150'), as public
loaders name it. Frames are the recording's colour stream
{Subject}/{Filename}/color/{n}.jpg (n = the sheet's JpgIndex), which drops
frames: rule G' of data_builders/me_common.py (store the frames present, list
the missing ones in `missing_frames`). Part C is not read (README.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

from etils import epath

from data_builders import clips, me_common, sheets

SHEETS = tuple(
    f"{folder}cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    for folder in ("", "annotation/", "part_A/annotation/", "part_A/")
)
SIGNATURE = ("Subject", "Filename", "Onset", "Apex", "Offset", "emotion")
HEADERS = {
    "subject": "Subject",
    "filename": "Filename",
    "onset_frame": "Onset",
    "apex_frame": "Apex",
    "offset_frame": "Offset",
    "action_units": ("AU", "Action Units", "AUs"),
    "objective_class": ("Objective class", "Objective classes"),
    "emotion": ("emotion", "Estimated Emotion"),
    "expression_type": ("Expression type", "type", "ME/MaE"),
}
OPTIONAL = ("action_units", "objective_class", "expression_type")
# An expression-type column, where a release has one: which values are micro-expressions.
MICRO = ("micro", "me", "micro-expression", "micro expression", "microexpression")
MACRO = ("macro", "mae", "macro-expression", "macro expression", "macroexpression")
SIZES = (112, 224)
SEARCH_DEPTH = 3  # Folders below manual_dir searched for the frames root.

log = logging.getLogger(__name__)


def micro_rows(rows: list[sheets.SheetRow], header: str) -> list[sheets.SheetRow]:
    """The micro-expression rows: all, or where the sheet has an expression-type column,
    those it marks micro; an unknown type stops the build naming the row."""
    kept = []
    for row in rows:
        kind = sheets.cell_text(row.cells["expression_type"]).lower()
        if kind in MACRO:
            continue
        if kind and kind not in MICRO:
            raise sheets.AnnotationError(
                f"{row.where}: column {header!r} holds {kind!r}, neither {MICRO} nor {MACRO}"
            )
        kept.append(row)
    if len(kept) < len(rows):
        log.info(
            "casme3: %d of %d rows are macro-expressions, not stored",
            len(rows) - len(kept),
            len(rows),
        )
    return kept


def find_frames_root(root: Path, subject: str, filename: str, instructions: str) -> Path:
    """The folder holding {Subject}/{Filename}/ of the sheet's first row: manual_dir or a folder
    up to SEARCH_DEPTH levels below it (part_A/, part_A/data/, ...)."""
    level = [root]
    for _ in range(SEARCH_DEPTH + 1):
        for folder in level:
            if (folder / subject / filename).is_dir():
                return folder
        level = sorted(p for f in level for p in f.iterdir() if p.is_dir())
    raise FileNotFoundError(
        f"CAS(ME)^3 frames not found in {root}: no folder {subject}/{filename} (the sheet's "
        f"first clip) there or up to {SEARCH_DEPTH} levels down.\n{instructions}"
    )


class Builder(me_common.MEBuilder):
    """CAS(ME)^3 Part A micro-expressions, one `train` split (LOSO makes the folds)."""

    pkg_dir_path = epath.Path(__file__).parent
    RELEASES = ("raw",)
    # Whole 1280x720 frames: 'raw_face_*' crop to the face first, 'raw_aligned_*' also level
    # the eyes; 'raw_*' keep the whole frame.
    BUILDER_CONFIGS = me_common.whole_frame_configs(SIZES)
    HOMEPAGE = "http://casme.psych.ac.cn/casme/e4"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    CAS(ME)^3 is licensed by its authors (Institute of Psychology, Chinese
    Academy of Sciences). Request it at http://casme.psych.ac.cn/casme/e4 and
    unpack Part A into manual_dir as shipped:

      manual_dir/
        cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx   ME sheet (also in annotation/ or
                                                    part_A/annotation/), header on row 1:
                                                    Subject, Filename, Onset, Apex, Offset,
                                                    AU, Objective class, emotion
        <frames>/spNO.1/a/color/150.jpg             colour frames by JpgIndex; <frames> is
                                                    manual_dir or a folder up to 3 levels
                                                    down (e.g. part_A/data/part_A)
        corrections.csv                             optional: your cell corrections
    """

    def _records(self, root: Path) -> list[clips.Record]:
        instructions = self.MANUAL_DOWNLOAD_INSTRUCTIONS
        sheet = sheets.find_sheet(root, SHEETS, SIGNATURE, "CAS(ME)^3 ME sheet", instructions)
        rows = sheets.read_sheet(sheet, HEADERS, optional=OPTIONAL, worksheet="label")
        rows = micro_rows(rows, HEADERS["expression_type"][0])
        if not rows:
            return []
        subject = lambda row: sheets.required_text(row, "subject", "Subject")
        first = rows[0]
        frames_root = find_frames_root(
            root, subject(first), sheets.required_text(first, "filename", "Filename"), instructions
        )

        def clip_name(row: sheets.SheetRow, filename: str) -> str:
            recording = f"casme3/{subject(row)}/{filename}"
            onset = sheets.frame_number(row, "onset_frame", "Onset", recording)
            if onset is None:
                raise sheets.AnnotationError(
                    f"{row.where}: column 'Onset' is empty; CAS(ME)^3 needs it to tell the "
                    "micro-expressions of one recording apart"
                )
            return f"{filename}_{onset}"

        def clip_folder(subject_name: str, filename: str) -> Path:
            folder = Path(subject_name, filename)
            colour = folder / "color"  # Frames directly in the folder are read as well.
            return colour if (frames_root / colour).is_dir() else folder

        return clips.records_from_sheet(
            rows,
            dataset="casme3",
            headers={k: v if isinstance(v, str) else v[0] for k, v in HEADERS.items()},
            subject_folder=subject,
            frames_root=frames_root,
            corrections=sheets.Corrections(root),
            clip_name=clip_name,
            clip_folder=clip_folder,
            allow_gaps=True,
        )
