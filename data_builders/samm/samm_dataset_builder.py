"""samm: SAMM (Davison et al. 2018), read from the user's licensed copy.

One example per row of SAMM_Micro_FACS_Codes_v2.xlsx (159 micro-movements,
32 subjects; grey-scale frames stored replicated to RGB). `emotion` keeps the
sheet's capitalised text and `objective_class` its 'Objective Classes' column
(1-7). Reading rules, stored fields and sheet repairs (SAMM marks a missing
apex with -1): data_builders/me_common.py and README.md.
"""

from __future__ import annotations

from pathlib import Path

from etils import epath

from data_builders import clips, me_common, sheets, views

SHEETS = ("SAMM_Micro_FACS_Codes_v2.xlsx",)
RELEASE_DIRS = {"raw": ("SAMM",)}
HEADERS = {
    "subject": "Subject",
    "filename": "Filename",
    "onset_frame": "Onset Frame",
    "apex_frame": "Apex Frame",
    "offset_frame": "Offset Frame",
    "action_units": "Action Units",
    "emotion": "Estimated Emotion",
    "objective_class": "Objective Classes",
}
SIZES = (112, 224)


class Builder(me_common.MEBuilder):
    """SAMM micro-movements, one `train` split (LOSO makes the folds)."""

    pkg_dir_path = epath.Path(__file__).parent
    RELEASES = tuple(RELEASE_DIRS)
    # SAMM ships whole frames only (960x650, the face in the middle): 'raw_face_*' crop
    # them to the face first, as the seeds do; 'raw_aligned_*' also level the eyes by the
    # onset frame's 68 landmarks (the `landmarks` extra); 'raw_*' keep the whole frame.
    BUILDER_CONFIGS = (
        me_common.release_configs(
            ("raw",), SIZES, named_release=False, note=" (grey replicated to RGB)"
        )
        + me_common.release_configs(
            ("raw",), SIZES, named_release=False, note=" (grey replicated to RGB)", face_crop=True
        )
        + me_common.view_configs(
            me_common.MEConfig(name="raw", release="raw"),
            "raw",
            views.SEED_VIEWS,
            note=" (grey replicated to RGB)",
        )
        + me_common.view_configs(
            me_common.MEConfig(
                name="raw_face",
                release="raw",
                face_crop=True,
                description="face cropped (Haar box of the onset frame), ",
            ),
            "raw_face",
            views.SEED_VIEWS,
            note=" (grey replicated to RGB)",
        )
        + me_common.release_configs(
            ("raw",), SIZES, named_release=False, note=" (grey replicated to RGB)", face_align=True
        )
        + me_common.view_configs(
            me_common.MEConfig(
                name="raw_aligned",
                release="raw",
                face_align=True,
                description=me_common.ALIGN_NOTE[2:] + ", ",
            ),
            "raw_aligned",
            views.SEED_VIEWS,
            note=" (grey replicated to RGB)",
        )
    )
    HOMEPAGE = "http://www2.docm.mmu.ac.uk/STAFF/M.Yap/dataset.php"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    SAMM is licensed by Manchester Metropolitan University. Request it at
    http://www2.docm.mmu.ac.uk/STAFF/M.Yap/dataset.php and unpack it into
    manual_dir as shipped:

      manual_dir/
        SAMM_Micro_FACS_Codes_v2.xlsx     coding sheet (13 preamble rows, header on row 14)
        SAMM/006/006_1_2/006_05562.jpg    frames: subject/clip/subject_frame.jpg
        corrections.csv                   optional: your cell corrections

    A folder may also sit one level down (manual_dir/SAMM/SAMM/006/...).
    """

    def _records(self, root: Path) -> list[clips.Record]:
        instructions = self.MANUAL_DOWNLOAD_INSTRUCTIONS
        sheet = sheets.find_sheet(
            root, SHEETS, ("Onset Frame", "Apex Frame"), "SAMM coding sheet", instructions
        )
        frames_root = sheets.find_dir(root, RELEASE_DIRS["raw"], "SAMM frames", instructions)
        return clips.records_from_sheet(
            sheets.read_sheet(sheet, HEADERS),
            dataset="samm",
            headers=HEADERS,
            subject_folder=lambda row: sheets.numbered_id(row, "subject", "Subject", "", 3),
            frames_root=frames_root,
            corrections=sheets.Corrections(root),
        )
