"""Micro-expression builders (CASME II, SAMM, SMIC, CASME I) built from tiny fixture trees in
the official layouts and read back without TensorFlow; one test per sheet defect class."""

import shutil

import cv2
import numpy as np
import openpyxl
import pytest
import tensorflow_datasets as tfds

from data_builders import clips, me_common, sheets, views
from data_builders.casme import casme_dataset_builder as casme
from data_builders.casme2 import casme2_dataset_builder as casme2
from data_builders.samm import samm_dataset_builder as samm
from data_builders.smic import smic_dataset_builder as smic
from mer_jax.label_schemes import text
from tests.data_builders import fixtures

SIZE = 4  # Fixture frames are 16x16: INTER_AREA at exactly 1/4 is a 4x4 box mean.
CASME2_SHEET = "CASME2-coding-20140508.xlsx"


def _config(name="tiny", cls=me_common.MEConfig, **kwargs):
    return cls(name=name, **{"image_size": SIZE, "release": "cropped", **kwargs})


def _build(builder_cls, manual_dir, data_dir, config=None):
    """download_and_prepare into data_dir, then every example via tfds.data_source, in order."""
    config = config or _config()
    builder = builder_cls(config=config, data_dir=str(data_dir))
    builder.download_and_prepare(
        file_format="array_record",
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)),
    )
    name = f"{builder_cls.name}/{config.name}"
    source = tfds.data_source(name, data_dir=str(data_dir), split="train")
    return [source[i] for i in range(len(source))]


def _text(ex, key):
    return text(ex[key])


def _shrink(image):
    """Reference resize, independent of cv2.resize: the mean of each 4x4 block, rounded to
    nearest (ties to even). Unlike INTER_LINEAR, which averages only the central 2x2."""
    k = fixtures.FRAME_SIZE // SIZE
    blocks = image.reshape(SIZE, k, SIZE, k, 3).astype(np.float64).mean(axis=(1, 3))
    return np.round(blocks).astype(np.uint8)


def _reference(paths, grey=False):
    """The fixture images as decoded by cv2 (RGB; grey replicated), shrunk to SIZE."""
    out = []
    for path in paths:
        if grey:
            image = np.repeat(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)[..., None], 3, axis=-1)
        else:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]
        out.append(_shrink(image))
    return np.stack(out)


def _sheet_span(row):
    """(onset, apex, offset) sheet frame numbers after rules R1-R3, for the test's own check."""
    number = lambda v: v if isinstance(v, int) and v >= 0 else None
    onset = number(row.onset) if number(row.onset) is not None else row.first
    offset = number(row.offset) if number(row.offset) is not None else row.last
    apex = number(row.apex)
    if apex is None or not onset <= apex <= offset:
        apex = (onset + offset) // 2
    return onset, apex, offset


def _build_error(builder_cls, manual_dir, tmp_path, error=sheets.AnnotationError, config=None):
    with pytest.raises(error) as info:
        _build(builder_cls, manual_dir, tmp_path / "data", config)
    return str(info.value)


# ----------------------------------------------------------------------------
# Registration and configs.


def test_registered_names_configs_and_features(tmp_path):
    builders = {"casme2": casme2, "samm": samm, "smic": smic, "casme": casme}
    for name, module in builders.items():
        assert module.Builder.name == name
        assert module.Builder.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()
        for config in module.Builder.BUILDER_CONFIGS:
            assert config.frames in clips.FRAME_MODES
            # Frames configs store 112 or 224; view configs read at their view's size.
            assert config.image_size in (112, 224) or config.view is not None
    assert [c.name for c in casme2.Builder.BUILDER_CONFIGS][:2] == [
        "cropped_112",
        "cropped_112_all",
    ]
    assert {c.camera for c in smic.Builder.BUILDER_CONFIGS} == {"hs", "vis", "nir"}
    assert all(c.frames == "all" for c in smic.Builder.BUILDER_CONFIGS)
    info = tfds.builder("casme2/raw_224", data_dir=str(tmp_path)).info
    assert "label" not in info.features
    assert info.features["frames"].shape == (None, 224, 224, 3)
    assert set(info.features) == {
        "frames",
        "dataset",
        "source",
        "subject",
        "clip",
        "emotion",
        "action_units",
        "action_unit_vector",
        "action_units_coded",
        "objective_class",
        "onset",
        "apex",
        "offset",
        "onset_frame",
        "apex_frame",
        "offset_frame",
        "repairs",
        "missing_frames",
    }
    assert "Yan" in info.citation and "licensed" in info.description


@pytest.mark.parametrize(
    "field, value",
    [("frames", "middle"), ("release", "aligned"), ("image_size", 0)],
)
def test_bad_config_names_the_field(tmp_path, field, value):
    config = _config(**{field: value})
    with pytest.raises(ValueError, match=f"{field} {value!r}"):
        casme2.Builder(config=config, data_dir=str(tmp_path))


def test_bad_smic_camera(tmp_path):
    with pytest.raises(ValueError, match="camera 'uv'"):
        smic.Builder(config=_config(cls=smic.SMICConfig, camera="uv"), data_dir=str(tmp_path))


# ----------------------------------------------------------------------------
# Built datasets.


@pytest.fixture(scope="module")
def casme2_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("casme2")
    return root, fixtures.write_casme2(root)


def test_casme2_raw_onset_to_offset(casme2_tree, tmp_path):
    root, files = casme2_tree
    examples = _build(casme2.Builder, root, tmp_path, _config(release="raw"))
    rows = fixtures.casme2_rows()
    assert len(examples) == len(rows) == 7
    assert {_text(e, "subject") for e in examples} == {f"casme2/sub0{i}" for i in (1, 2, 5)}
    for ex, row in zip(examples, rows):  # Sheet order is kept.
        clip = f"casme2/sub{row.subject:02d}/{row.filename}"
        onset, apex, offset = _sheet_span(row)
        assert _text(ex, "clip") == clip and _text(ex, "subject") == clip.rsplit("/", 1)[0]
        assert _text(ex, "dataset") == _text(ex, "source") == "casme2"
        assert _text(ex, "emotion") == row.emotion
        assert _text(ex, "objective_class") == str(row.objective)
        assert ex["frames"].shape == (offset - onset + 1, SIZE, SIZE, 3)
        assert (ex["onset"], ex["apex"], ex["offset"]) == (0, apex - onset, offset - onset)
        sheet = [v if isinstance(v, int) else -1 for v in (row.onset, row.apex, row.offset)]
        assert [ex["onset_frame"], ex["apex_frame"], ex["offset_frame"]] == sheet
        wanted = [files["raw"][clip][n] for n in range(onset, offset + 1)]
        np.testing.assert_array_equal(ex["frames"], _reference(wanted))
    aus = [_text(e, "action_units") for e in examples]
    assert aus == ["12", "L10", "4+9", "1+2", "4+20", "14", "15"]  # 15.0 cell -> '15'
    # The multi-hot over sheets.ACTION_UNITS (1..46 without 3, 40), placed by hand.
    codes = [(12,), (10,), (4, 9), (1, 2), (4, 20), (14,), (15,)]
    for ex, numbers in zip(examples, codes, strict=True):
        assert ex["action_units_coded"] and list(ex["missing_frames"]) == []
        hot = [n for n, bit in zip(sheets.ACTION_UNITS, ex["action_unit_vector"]) if bit]
        assert tuple(hot) == numbers and ex["action_unit_vector"].shape == (44,)
    repairs = {_text(e, "clip"): _text(e, "repairs") for e in examples if e["repairs"]}
    assert repairs == {
        "casme2/sub01/EP03_02": "apex missing in the sheet: middle frame 12",
        "casme2/sub05/EP19_06": "offset missing in the sheet: last frame of the folder, 65",
    }


def test_casme2_cropped_every_frame(casme2_tree, tmp_path):
    root, files = casme2_tree
    config = _config("tiny_all", release="cropped", frames="all")
    examples = _build(casme2.Builder, root, tmp_path, config)
    for ex, row in zip(examples, fixtures.casme2_rows(), strict=True):
        clip = _text(ex, "clip")
        onset, apex, offset = _sheet_span(row)
        assert len(ex["frames"]) == row.last - row.first + 1
        assert (ex["onset"], ex["apex"], ex["offset"]) == (
            onset - row.first,
            apex - row.first,
            offset - row.first,
        )
        wanted = [files["cropped"][clip][n] for n in range(row.first, row.last + 1)]
        np.testing.assert_array_equal(ex["frames"], _reference(wanted))


def test_casme2_without_objective_sheet(tmp_path):
    fixtures.write_casme2(tmp_path / "in", fixtures.casme2_rows()[:2], objective=False)
    examples = _build(casme2.Builder, tmp_path / "in", tmp_path / "data", _config(release="raw"))
    assert [_text(e, "objective_class") for e in examples] == ["", ""]


def test_samm(tmp_path):
    files = fixtures.write_samm(tmp_path / "in")
    examples = _build(samm.Builder, tmp_path / "in", tmp_path / "data", _config(release="raw"))
    rows = fixtures.samm_rows()
    assert [_text(e, "clip") for e in examples] == [
        f"samm/{int(r.subject):03d}/{r.filename}" for r in rows
    ]
    assert {_text(e, "subject") for e in examples} == {"samm/006", "samm/007", "samm/011"}
    for ex, row in zip(examples, rows):
        onset, apex, offset = _sheet_span(row)
        assert _text(ex, "dataset") == _text(ex, "source") == "samm"
        assert _text(ex, "emotion") == row.emotion  # Capitalised, as in the sheet.
        assert _text(ex, "objective_class") == str(row.objective)
        assert (ex["onset"], ex["apex"], ex["offset"]) == (0, apex - onset, offset - onset)
        assert [ex["onset_frame"], ex["apex_frame"], ex["offset_frame"]] == [
            row.onset,
            row.apex,
            row.offset,
        ]
        wanted = [files[_text(ex, "clip")][n] for n in range(onset, offset + 1)]
        np.testing.assert_array_equal(ex["frames"], _reference(wanted, grey=True))
    repairs = [_text(e, "repairs") for e in examples]
    assert repairs == [
        "",
        "apex missing in the sheet: middle frame 1202",  # Sheet apex -1.
        "",
        "apex frame 3050 outside onset..offset 3000..3004: middle frame 3002",
        "",
    ]


def test_smic_hs_and_vis(tmp_path):
    files = fixtures.write_smic(tmp_path / "in")
    for camera, source in (("hs", "smic"), ("vis", "smic_vis")):
        config = _config(f"{camera}_tiny", smic.SMICConfig, camera=camera, release="raw")
        examples = _build(smic.Builder, tmp_path / "in", tmp_path / "data", config)
        clips = [c for c in fixtures.SMIC_CLIPS if c[0] == camera.upper()]
        assert len(examples) == len(clips) == {"hs": 5, "vis": 2}[camera]
        for ex, (_, subject, emotion, name, first, last) in zip(examples, clips):
            assert _text(ex, "clip") == f"{source}/{subject}/{name}"
            assert _text(ex, "subject") == f"{source}/{subject}"  # s3 has no micro clips.
            assert (_text(ex, "dataset"), _text(ex, "source")) == ("smic", source)
            assert _text(ex, "emotion") == emotion
            t = last - first + 1
            assert (ex["onset"], ex["apex"], ex["offset"]) == (0, -1, t - 1)
            assert (ex["onset_frame"], ex["apex_frame"], ex["offset_frame"]) == (first, -1, last)
            assert _text(ex, "repairs") == ""
            # SMIC codes no action units: not coded, an all-zero vector (unknown, not 'none').
            assert not ex["action_units_coded"] and not ex["action_unit_vector"].any()
            # .bmp is lossless: compare with the generated frames themselves (written as BGR).
            key = _text(ex, "clip")
            wanted = [
                _shrink(fixtures.frame_image(f"{key}/{n}")[..., ::-1])
                for n in range(first, last + 1)
            ]
            np.testing.assert_array_equal(ex["frames"], np.stack(wanted))
            assert set(files[camera.upper()][key]) == set(range(first, last + 1))


def test_casme_sheet_found_by_header(tmp_path):
    files = fixtures.write_casme(tmp_path / "in")
    examples = _build(casme.Builder, tmp_path / "in", tmp_path / "data", _config(release="raw"))
    rows = fixtures.casme_rows()
    assert [_text(e, "clip") for e in examples] == [
        f"casme/sub{r.subject:02d}/{r.filename}" for r in rows
    ]
    for ex, row in zip(examples, rows):
        onset, apex, offset = _sheet_span(row)
        assert _text(ex, "emotion") == row.emotion and _text(ex, "action_units") == row.action_units
        assert (ex["onset"], ex["apex"], ex["offset"]) == (0, apex - onset, offset - onset)
        wanted = [files[_text(ex, "clip")][n] for n in range(onset, offset + 1)]
        np.testing.assert_array_equal(ex["frames"], _reference(wanted))
    assert _text(examples[1], "repairs") == "apex missing in the sheet: middle frame 22"


# ----------------------------------------------------------------------------
# Defects: each stops the build naming the file and row, or is repaired and recorded.


def test_missing_or_empty_manual_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    for manual in (tmp_path / "absent", tmp_path / "empty"):
        message = _build_error(casme2.Builder, manual, tmp_path, FileNotFoundError)
        assert str(manual) in message and CASME2_SHEET in message and "casme.psych.ac.cn" in message


def test_missing_release_folder(tmp_path):
    fixtures.write_casme2(tmp_path / "in", fixtures.casme2_rows()[:1])
    shutil.rmtree(tmp_path / "in" / "Cropped")
    message = _build_error(casme2.Builder, tmp_path / "in", tmp_path, FileNotFoundError)
    assert "CASME II cropped frames not found" in message and "Cropped" in message


def test_missing_column(tmp_path):
    fixtures.write_casme2(tmp_path / "in")
    path = tmp_path / "in" / CASME2_SHEET
    book = openpyxl.load_workbook(path)
    book.active["F1"] = "Offset"  # Was 'OffsetFrame'.
    book.save(path)
    message = _build_error(casme2.Builder, tmp_path / "in", tmp_path)
    assert f"{CASME2_SHEET}: header row 1 has no column 'OffsetFrame'" in message


def test_duplicate_clip(tmp_path):
    rows = fixtures.casme2_rows()
    fixtures.write_casme2(tmp_path / "in", rows + [rows[2]], objective=False)
    message = _build_error(casme2.Builder, tmp_path / "in", tmp_path)
    assert f"{CASME2_SHEET} row 9 (casme2/sub02/EP01_11f): duplicate clip" in message
    assert f"also on {CASME2_SHEET} row 4" in message


def test_onset_after_offset(tmp_path):
    rows = fixtures.casme2_rows()
    rows[3].onset = 25
    fixtures.write_casme2(tmp_path / "in", rows)
    message = _build_error(casme2.Builder, tmp_path / "in", tmp_path)
    assert (
        f"{CASME2_SHEET} row 5 (casme2/sub02/EP09_01): onset frame 25 > offset frame 24" in message
    )


def test_not_a_frame_number(tmp_path):
    rows = fixtures.samm_rows()
    rows[1].onset = "1200a"
    fixtures.write_samm(tmp_path / "in", rows)
    message = _build_error(samm.Builder, tmp_path / "in", tmp_path, config=_config(release="raw"))
    # 13 preamble rows, header on row 14: the second clip is on row 16.
    assert "SAMM_Micro_FACS_Codes_v2.xlsx row 16 (samm/006/006_1_3)" in message
    assert "column 'Onset Frame' holds '1200a'" in message


def test_missing_frame_file(tmp_path):
    files = fixtures.write_casme2(tmp_path / "in")
    files["raw"]["casme2/sub01/EP02_01f"][48].unlink()
    message = _build_error(casme2.Builder, tmp_path / "in", tmp_path, config=_config(release="raw"))
    assert f"{CASME2_SHEET} row 2 (casme2/sub01/EP02_01f)" in message
    assert "first frame 48" in message and "CASME2_RAW_selected/sub01/EP02_01f" in message


def test_missing_clip_folder(tmp_path):
    fixtures.write_casme2(tmp_path / "in")
    shutil.rmtree(tmp_path / "in" / "Cropped" / "sub05" / "EP02_07")
    message = _build_error(casme2.Builder, tmp_path / "in", tmp_path)
    assert f"{CASME2_SHEET} row 7 (casme2/sub05/EP02_07): clip folder" in message
    assert "Cropped/sub05/EP02_07 not found" in message


def test_unreadable_image(tmp_path):
    files = fixtures.write_casme2(tmp_path / "in")
    bad = files["cropped"]["casme2/sub02/EP09_01"][22]
    bad.write_bytes(b"not a jpeg")
    message = _build_error(casme2.Builder, tmp_path / "in", tmp_path)
    assert f"{CASME2_SHEET} row 5 (casme2/sub02/EP09_01): unreadable image {bad}" in message


def test_corrections_file_repairs_and_records(tmp_path):
    rows = fixtures.casme2_rows()
    rows[3].onset = 25  # onset > offset: a defect no built-in rule repairs.
    fixtures.write_casme2(tmp_path / "in", rows)
    corrections = tmp_path / "in" / sheets.CORRECTIONS_FILE
    corrections.write_text(
        "clip,column,value,note\ncasme2/sub02/EP09_01,onset_frame,20,typo in the sheet\n"
    )
    examples = _build(casme2.Builder, tmp_path / "in", tmp_path / "data")
    fixed = examples[3]
    assert (fixed["onset"], fixed["apex"], fixed["offset"], fixed["onset_frame"]) == (0, 2, 4, 20)
    assert _text(fixed, "repairs") == (
        "onset_frame '25' -> '20' (corrections.csv line 2: typo in the sheet)"
    )
    # A correction for a clip the sheet lacks is an error naming its line.
    with open(corrections, "a") as f:
        f.write("casme2/sub09/EP01_01,apex_frame,3,\n")
    message = _build_error(casme2.Builder, tmp_path / "in", tmp_path / "again")
    assert (
        "corrections.csv line 3: clip 'casme2/sub09/EP01_01' is not in the coding sheet" in message
    )


# ----------------------------------------------------------------------------
# Face-cropped releases (SAMM ships whole frames).


def test_samm_face_crop_uses_one_onset_box_for_every_frame(tmp_path, grace_hopper):
    from mer_jax.preprocess import face

    row = fixtures.samm_rows()[4]  # 011_5_1: onset 410, frames 410..416
    files = fixtures.write_samm(tmp_path / "in", [row])
    portrait = cv2.cvtColor(grace_hopper, cv2.COLOR_RGB2GRAY)  # SAMM is grey
    # The face drifts 3 px right per frame: one box from the onset frame must not follow it.
    shifted = {n: np.roll(portrait, 3 * (n - row.first), axis=1) for n in files["samm/011/011_5_1"]}
    for n, path in files["samm/011/011_5_1"].items():
        cv2.imwrite(str(path), shifted[n])
    size = 32
    config = _config(release="raw", image_size=size, face_crop=True)
    (ex,) = _build(samm.Builder, tmp_path / "in", tmp_path / "data", config)
    # Independently: the frames decoded by cv2, the onset frame's box, applied to all frames.
    decoded = np.stack([cv2.imread(str(files["samm/011/011_5_1"][n])) for n in sorted(shifted)])
    decoded = decoded[..., ::-1]
    box = face.crop_box(decoded[0])
    assert 150 <= box.size <= 400  # a face-sized box, not the whole 512x600 portrait
    want = face.crop_clip(decoded, box, size)
    np.testing.assert_array_equal(ex["frames"], want)
    # Same box: the face moves inside the crop (frame 6 is frame 0 moved 18 px = 18*32/side).
    moved = np.abs(ex["frames"][-1].astype(int) - ex["frames"][0].astype(int)).mean()
    assert moved > 5
    assert tuple(ex["frames"].shape) == (7, size, size, 3)


def test_samm_aligned_frames_use_one_onset_transform_and_the_named_landmark_model(
    tmp_path, grace_hopper, landmark_model, capsys
):
    """'raw_aligned_*': the onset frame's Haar face, its 68 landmarks (a model the tests
    trained), one eye-levelling transform for every frame; `--landmark-model` names it."""
    from mer_jax import cli
    from mer_jax.preprocess import face

    row = fixtures.samm_rows()[4]  # 011_5_1: onset 410, frames 410..416
    files = fixtures.write_samm(tmp_path / "in", [row])["samm/011/011_5_1"]
    portrait = cv2.cvtColor(grace_hopper, cv2.COLOR_RGB2GRAY)
    for n, path in files.items():
        cv2.imwrite(str(path), np.roll(portrait, 3 * (n - row.first), axis=1))
    size = 32
    names = {c.name for c in samm.Builder.BUILDER_CONFIGS}
    assert {"raw_aligned_112", "raw_aligned_224_all", "raw_aligned_flow_28"} <= names
    config = _config(release="raw", image_size=size, face_align=True)
    config = me_common.with_landmark_model(config, landmark_model)
    assert config.name.endswith("_lm_" + views.file_sha256(landmark_model)[:8])
    (ex,) = _build(samm.Builder, tmp_path / "in", tmp_path / "data", config)
    decoded = np.stack([cv2.imread(str(files[n]))[..., ::-1] for n in sorted(files)])
    want = face.aligned_clip(decoded, 0, size, model=landmark_model)
    np.testing.assert_array_equal(ex["frames"], want)
    assert np.abs(ex["frames"][-1].astype(int) - ex["frames"][0]).mean() > 3  # face moves
    # A view config records the model it aligned with (path and sha256) in its metadata.
    named = views.builder_with(
        "samm/raw_aligned_apex_224",
        [lambda c: me_common.with_landmark_model(c, landmark_model)],
        str(tmp_path / "data"),
    )
    recorded = named.info.metadata["frames"]
    assert recorded["face_align"] and recorded["landmark_model"] == landmark_model
    assert recorded["landmark_model_sha256"] == views.file_sha256(landmark_model)
    # The flag only fits aligned configs; a crop config says so before building anything.
    argv = ["data", "build", "samm/raw_face_112", "--landmark-model", landmark_model]
    argv += ["--data-dir", str(tmp_path / "x"), "--manual-dir", str(tmp_path / "in")]
    assert cli.main(argv) == 2
    assert "--landmark-model applies to aligned configs only" in capsys.readouterr().err


def test_samm_face_crop_names_the_row_of_a_clip_without_a_face(tmp_path):
    fixtures.write_samm(tmp_path / "in", fixtures.samm_rows()[:1])  # noise frames: no face
    config = _config(release="raw", image_size=8, face_crop=True)
    message = _build_error(samm.Builder, tmp_path / "in", tmp_path, config=config)
    assert "SAMM_Micro_FACS_Codes_v2.xlsx row 15 (samm/006/006_1_2)" in message
    assert "no face found on the onset frame" in message and "006_05562.jpg" in message
