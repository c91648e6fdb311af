"""casme: CASME I (Yan et al. 2013), read from the user's licensed copy.

One example per row of the coding sheet (19 subjects, every emotion as
written there); STANet's 4 classes (disgust, repression, surprise, tense) come
from label_schemes. The apex is the sheet's ApexF1; ApexF2 (a second apex on
some rows) is not stored. Reading rules, stored fields and sheet
repairs: data_builders/me_common.py and README.md.

Assumed layout (from public loaders; no copy of the data was available): the
sheet's header is on row 1 with columns Subject, Filename, (unnamed), OnsetF,
ApexF1, ApexF2, OffsetF, (unnamed), AU, Emotion; columns are found by name, so
their order does not matter. Frames are <clip>-<n>.jpg (cropped release
reg_<clip>-<n>.jpg), n zero-padded in some subjects.
"""

from __future__ import annotations

from pathlib import Path

from etils import epath

from data_builders import clips, me_common, sheets, views

# The sheet is found by its header when it is not named like this.
SHEETS = ("CASME-coding-20140508.xlsx", "casme.xlsx")
SIGNATURE = ("OnsetF", "ApexF1", "OffsetF")
RELEASE_DIRS = {
    "cropped": ("CASME_cropped_selected", "Cropped"),
    "raw": ("CASME_raw_selected",),
}
HEADERS = {
    "subject": "Subject",
    "filename": "Filename",
    "onset_frame": "OnsetF",
    "apex_frame": "ApexF1",
    "offset_frame": "OffsetF",
    "action_units": ("AU", "Action Units"),
    "emotion": ("Emotion", "Estimated Emotion"),
}
SIZES = (112, 224)


class Builder(me_common.MEBuilder):
    """CASME I clips, one `train` split (LOSO makes the folds)."""

    pkg_dir_path = epath.Path(__file__).parent
    RELEASES = tuple(RELEASE_DIRS)
    BUILDER_CONFIGS = me_common.release_configs(RELEASE_DIRS, SIZES) + me_common.view_configs(
        me_common.MEConfig(name="cropped", release="cropped", description="cropped release, "),
        "cropped",
        views.SEED_VIEWS,
    )
    HOMEPAGE = "http://casme.psych.ac.cn/casme/e1"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    CASME (CASME I) is licensed by its authors (Institute of Psychology,
    Chinese Academy of Sciences). Request it at http://casme.psych.ac.cn/casme/e1
    and unpack it into manual_dir as shipped:

      manual_dir/
        <coding sheet>.xlsx                           header on row 1: Subject, Filename,
                                                      OnsetF, ApexF1, ApexF2, OffsetF, AU, Emotion
        CASME_raw_selected/sub01/EP01_5/EP01_5-1.jpg  config release 'raw'
        CASME_cropped_selected/sub01/EP01_5/...       config release 'cropped'
        corrections.csv                               optional: your cell corrections

    The sheet may have any name: it is recognised by its OnsetF/ApexF1/OffsetF
    header. A folder may also sit one level down.
    """

    def _records(self, root: Path) -> list[clips.Record]:
        instructions = self.MANUAL_DOWNLOAD_INSTRUCTIONS
        sheet = sheets.find_sheet(root, SHEETS, SIGNATURE, "CASME coding sheet", instructions)
        release = self.builder_config.release
        frames_root = sheets.find_dir(
            root, RELEASE_DIRS[release], f"CASME {release} frames", instructions
        )
        return clips.records_from_sheet(
            sheets.read_sheet(sheet, HEADERS),
            dataset="casme",
            headers={k: v if isinstance(v, str) else v[0] for k, v in HEADERS.items()},
            subject_folder=lambda row: sheets.numbered_id(row, "subject", "Subject", "sub", 2),
            frames_root=frames_root,
            corrections=sheets.Corrections(root),
        )
