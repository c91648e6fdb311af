"""casme2: CASME II (Yan et al. 2014), read from the user's licensed copy.

One example per row of the coding sheet (all 255/256 clips, every emotion as
written there); label_schemes derives the 247-clip 5-class, the 256-clip
7-class and the other protocols from `emotion`. Reading rules, stored fields and
sheet repairs: data_builders/me_common.py and README.md.
"""

from __future__ import annotations

from pathlib import Path

from etils import epath

from data_builders import clips, me_common, sheets, views

SHEETS = ("CASME2-coding-20140508.xlsx", "CASME2-coding-updated.xlsx")
OBJECTIVE_SHEET = "CASME2-ObjectiveClasses.xlsx"
RELEASE_DIRS = {
    "cropped": ("Cropped", "CASME2_Cropped"),
    "raw": ("CASME2_RAW_selected", "CASME2_RAW"),
}
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


def read_objective_classes(root: Path) -> dict[str, str] | None:
    """clip id -> MEGC 2018 objective class ('1'..'7') from CASME2-ObjectiveClasses.xlsx, if
    the user has it (header row: Subject, Filename, Objective Class)."""
    path = sheets.find_file(root, (OBJECTIVE_SHEET,))
    if path is None:
        return None
    columns = {
        "subject": "Subject",
        "filename": "Filename",
        "objective_class": ("Objective Class", "Objective Classes"),
    }
    out, rows = {}, {}
    for row in sheets.read_sheet(path, columns):
        subject = sheets.numbered_id(row, "subject", "Subject", "sub", 2)
        clip = f"casme2/{subject}/{sheets.required_text(row, 'filename', 'Filename')}"
        if clip in out:
            raise sheets.AnnotationError(
                f"{row.where} ({clip}): duplicate clip, also on {rows[clip]}"
            )
        out[clip] = sheets.required_text(row, "objective_class", "Objective Class")
        rows[clip] = row.where
    return out


class Builder(me_common.MEBuilder):
    """CASME II clips, one `train` split (LOSO makes the folds)."""

    pkg_dir_path = epath.Path(__file__).parent
    RELEASES = tuple(RELEASE_DIRS)
    BUILDER_CONFIGS = me_common.release_configs(RELEASE_DIRS, SIZES) + me_common.view_configs(
        me_common.MEConfig(name="cropped", release="cropped", description="cropped release, "),
        "cropped",
        views.SEED_VIEWS,
    )
    HOMEPAGE = "http://casme.psych.ac.cn/casme/e2"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    CASME II is licensed by its authors (Institute of Psychology, Chinese
    Academy of Sciences). Request it at http://casme.psych.ac.cn/casme/e2 and
    unpack it into manual_dir as shipped:

      manual_dir/
        CASME2-coding-20140508.xlsx                    coding sheet (header on row 1)
        CASME2_RAW_selected/sub01/EP02_01f/img46.jpg   config release 'raw'
        Cropped/sub01/EP02_01f/reg_img46.jpg           config release 'cropped'
        CASME2-ObjectiveClasses.xlsx                   optional: MEGC 2018 objective classes
        corrections.csv                                optional: your cell corrections

    A folder may also sit one level down (manual_dir/CASME2/Cropped/...).
    """

    def _records(self, root: Path) -> list[clips.Record]:
        instructions = self.MANUAL_DOWNLOAD_INSTRUCTIONS
        sheet = sheets.find_sheet(
            root, SHEETS, ("OnsetFrame", "ApexFrame"), "CASME II coding sheet", instructions
        )
        release = self.builder_config.release
        frames_root = sheets.find_dir(
            root, RELEASE_DIRS[release], f"CASME II {release} frames", instructions
        )
        return clips.records_from_sheet(
            sheets.read_sheet(sheet, HEADERS),
            dataset="casme2",
            headers=HEADERS,
            subject_folder=lambda row: sheets.numbered_id(row, "subject", "Subject", "sub", 2),
            frames_root=frames_root,
            corrections=sheets.Corrections(root),
            objective=read_objective_classes(root),
        )
