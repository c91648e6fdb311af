"""Rule G: a missing frame inside what a config stores stops the build, in every config of
every micro-expression builder (onset..offset, `_all`, SMIC, a view), naming the sheet row
(SMIC: the clip folder), the clip folder and the missing frame's file."""

import dataclasses

import numpy as np
import pytest

from data_builders import sheets
from data_builders.casme import casme_dataset_builder as casme
from data_builders.casme2 import casme2_dataset_builder as casme2
from data_builders.samm import samm_dataset_builder as samm
from data_builders.smic import smic_dataset_builder as smic
from tests.data_builders import fixtures
from tests.data_builders.test_me_builders import _build, _config, _text

CASME2_SHEET = "CASME2-coding-20140508.xlsx"


def _smic_view():
    view = next(c for c in smic.Builder.BUILDER_CONFIGS if c.name == "hs_cropped_flow_28")
    return dataclasses.replace(view, name="hs_raw_flow_28", release="raw")


# (builder, writer, files of the release, config, clip, frame to remove, where, folder)
CASES = {
    # Outside onset 46..offset 51 but inside the folder's 44..53: `_all` stores it.
    "casme2_all": (
        casme2.Builder,
        fixtures.write_casme2,
        lambda files: files["cropped"],
        lambda: _config("tiny_all", frames="all"),
        "casme2/sub01/EP02_01f",
        52,
        f"{CASME2_SHEET} row 2 (casme2/sub01/EP02_01f)",
        "Cropped/sub01/EP02_01f",
    ),
    "casme2_onset_offset": (
        casme2.Builder,
        fixtures.write_casme2,
        lambda files: files["cropped"],
        lambda: _config(),
        "casme2/sub01/EP02_01f",
        48,
        f"{CASME2_SHEET} row 2 (casme2/sub01/EP02_01f)",
        "Cropped/sub01/EP02_01f",
    ),
    "samm_all": (  # onset..offset 5562..5568 of 5560..5570; 5-digit frame numbers
        samm.Builder,
        fixtures.write_samm,
        lambda files: files,
        lambda: _config("tiny_all", release="raw", frames="all"),
        "samm/006/006_1_2",
        5569,
        "SAMM_Micro_FACS_Codes_v2.xlsx row 15 (samm/006/006_1_2)",
        "SAMM/006/006_1_2",
    ),
    "casme_all": (  # onset..offset 50..54 of 48..56; 3-digit frame numbers
        casme.Builder,
        fixtures.write_casme,
        lambda files: files,
        lambda: _config("tiny_all", release="raw", frames="all"),
        "casme/sub02/EP08_1",
        55,
        "CASME_coding_sheet.xlsx row 4 (casme/sub02/EP08_1)",
        "CASME_raw_selected/sub02/EP08_1",
    ),
    "smic_hs": (  # no sheet: the clip folder is its where
        smic.Builder,
        fixtures.write_smic,
        lambda files: files["HS"],
        lambda: _config("hs_tiny", smic.SMICConfig, camera="hs", release="raw"),
        "smic/s1/s1_ne_01",
        103,
        "SMIC_all_raw/HS/s1/micro/negative/s1_ne_01 (smic/s1/s1_ne_01)",
        "SMIC_all_raw/HS/s1/micro/negative/s1_ne_01",
    ),
    "smic_view": (
        smic.Builder,
        fixtures.write_smic,
        lambda files: files["HS"],
        _smic_view,
        "smic/s1/s1_ne_01",
        102,
        "SMIC_all_raw/HS/s1/micro/negative/s1_ne_01 (smic/s1/s1_ne_01)",
        "SMIC_all_raw/HS/s1/micro/negative/s1_ne_01",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_gap_stops_every_config_naming_row_folder_and_file(tmp_path, case):
    builder_cls, write, release, config, clip, frame, where, folder = CASES[case]
    frames = release(write(tmp_path / "in"))[clip]
    assert frame in frames and min(frames) < frame < max(frames)  # inside the clip's folder
    missing = frames[frame]
    missing.unlink()
    with pytest.raises(sheets.AnnotationError) as info:
        _build(builder_cls, tmp_path / "in", tmp_path / "data", config())
    message = str(info.value)
    assert message.startswith(str(tmp_path / "in" / where) if case.startswith("smic") else where)
    assert f"missing in {tmp_path / 'in' / folder}, first frame {frame} ({missing.name};" in message
    assert "stored whole or not at all" in message
    assert not list((tmp_path / "data").rglob("*.array_record*"))  # nothing written


def test_a_gap_outside_onset_offset_stops_only_the_configs_that_store_it(tmp_path):
    """The rule is about what a config stores: onset..offset configs never read frame 52."""
    files = fixtures.write_casme2(tmp_path / "in")["cropped"]
    files["casme2/sub01/EP02_01f"].pop(52).unlink()
    examples = _build(casme2.Builder, tmp_path / "in", tmp_path / "data", _config())
    (ex,) = [e for e in examples if _text(e, "clip") == "casme2/sub01/EP02_01f"]
    assert len(ex["frames"]) == 51 - 46 + 1
    assert np.ptp(ex["frames"][0].astype(int)) > 0  # real frames, not padding
    with pytest.raises(sheets.AnnotationError, match="first frame 52 \\(reg_img52.jpg;"):
        _build(casme2.Builder, tmp_path / "in", tmp_path / "all", _config("t_all", frames="all"))
