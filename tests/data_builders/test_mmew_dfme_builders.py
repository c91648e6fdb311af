"""MMEW and DFME builders built from tiny fixture trees in their layouts, read back without
TensorFlow; DFME's subsets as splits and through the loader's '@split'; LOSO; label schemes."""

import json

import numpy as np
import openpyxl
import pytest
import tensorflow_datasets as tfds

from data_builders import sheets
from data_builders.dfme import dfme_dataset_builder as dfme
from data_builders.mmew import mmew_dataset_builder as mmew
from mer_jax import cli, label_schemes, protocols
from mer_jax.data import loader
from mer_jax.errors import UserError
from mer_jax.label_schemes import text
from tests.data_builders import fixtures
from tests.data_builders import fixtures_mmew_dfme as fx
from tests.data_builders.test_me_builders import _config, _reference, _sheet_span, _shrink

SIZE = 4


def _build(builder_cls, manual_dir, data_dir, config=None) -> dict[str, list[dict]]:
    """download_and_prepare, then every example of every split via tfds.data_source."""
    config = config or _config(release="raw")
    builder = builder_cls(config=config, data_dir=str(data_dir))
    builder.download_and_prepare(
        file_format="array_record",
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)),
    )
    out = {}
    for split in builder.info.splits:
        source = tfds.data_source(
            f"{builder_cls.name}/{config.name}", data_dir=str(data_dir), split=split
        )
        out[split] = [source[i] for i in range(len(source))]
    return out


def _error(builder_cls, manual_dir, data_dir) -> str:
    with pytest.raises(sheets.AnnotationError) as info:
        _build(builder_cls, manual_dir, data_dir)
    return str(info.value)


def test_registered_and_listed(capsys):
    assert cli.main(["data", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for name, module in (("mmew", mmew), ("dfme", dfme)):
        assert rows[name]["needs_manual_dir"] and module.Builder.name == name
        configs = set(rows[name]["configs"])
        assert {"raw_112", "raw_224_all", "raw_face_112", "raw_aligned_224"} <= configs
        assert {"raw_flow_28", "raw_face_apex_224", "raw_aligned_aman_11x9"} <= configs


# ----------------------------------------------------------------------------
# MMEW


@pytest.fixture(scope="module")
def mmew_built(tmp_path_factory):
    root = tmp_path_factory.mktemp("mmew")
    files = fx.write_mmew(root / "in")
    return root / "data", files, _build(mmew.Builder, root / "in", root / "data")["train"]


def test_mmew_reads_every_row_back(mmew_built):
    _, files, examples = mmew_built
    rows = fx.mmew_rows()
    assert [text(e["clip"]) for e in examples] == [fx.mmew_clip(r) for r in rows]
    for ex, row in zip(examples, rows, strict=True):
        onset, apex, offset = _sheet_span(row)
        clip = fx.mmew_clip(row)
        assert text(ex["subject"]) == clip.rsplit("/", 1)[0]
        assert text(ex["dataset"]) == text(ex["source"]) == "mmew"
        assert text(ex["emotion"]) == row.emotion
        assert text(ex["action_units"]) == row.action_units
        assert (ex["onset"], ex["apex"], ex["offset"]) == (0, apex - onset, offset - onset)
        wanted = [files[clip][n] for n in range(onset, offset + 1)]
        np.testing.assert_array_equal(ex["frames"], _reference(wanted))
    assert {text(e["subject"]) for e in examples} == {"mmew/S01", "mmew/S02", "mmew/S03"}
    repairs = {text(e["clip"]): text(e["repairs"]) for e in examples if e["repairs"]}
    assert repairs == {
        "mmew/S01/S01-03-002": "apex missing in the sheet: middle frame 2",
        "mmew/S03/S03-05-001": "offset missing in the sheet: last frame of the folder, 5",
    }


def test_mmew_loso_is_one_fold_per_subject(mmew_built):
    data_dir, _, examples = mmew_built
    meta = loader.read_metadata(
        "mmew/tiny", label_scheme="mmew_7class", data_dir=str(data_dir), log=lambda m: None
    )
    table = protocols.make_folds("loso", meta.subjects)
    subjects = [text(e["subject"]) for e in examples]
    assert sorted(table.names) == sorted(set(subjects)) and len(table.names) == 3
    for name, test in zip(table.names, table.test_mask):
        np.testing.assert_array_equal(test, np.array(subjects) == name)


def test_mmew_others_folder_alias_and_bad_rows(tmp_path):
    rows = fx.mmew_rows()[3:5]  # disgust, others
    files = fx.write_mmew(tmp_path / "in", rows)
    others = tmp_path / "in" / "Micro_Expression" / "others"
    others.rename(others.with_name("repression"))  # MEB's name for MMEW's 'others'
    (ex_disgust, ex_others) = _build(mmew.Builder, tmp_path / "in", tmp_path / "data")["train"]
    assert text(ex_others["emotion"]) == "others" and len(ex_others["frames"]) == 3
    assert len(files) == 2 and len(ex_disgust["frames"]) == 3
    rows[1].onset = "2a"
    fx.write_mmew(tmp_path / "bad", rows)
    message = _error(mmew.Builder, tmp_path / "bad", tmp_path / "data_bad")
    assert "MMEW_Micro_Exp.xlsx row 3 (mmew/S02/S02-07-003)" in message
    assert "column 'OnsetFrame' holds '2a'" in message
    rows[1].onset, rows[0].subject = 2, "Sx"
    fx.write_mmew(tmp_path / "bad2", rows)
    message = _error(mmew.Builder, tmp_path / "bad2", tmp_path / "data_bad2")
    assert "MMEW_Micro_Exp.xlsx row 2: column 'Subject' holds 'Sx', not a subject number" in (
        message
    )


# ----------------------------------------------------------------------------
# DFME


def _png_reference(clip, numbers):
    """.png is lossless: the generated frames themselves (written as BGR), shrunk."""
    return np.stack([_shrink(fixtures.frame_image(f"{clip}/{n}")[..., ::-1]) for n in numbers])


@pytest.fixture(scope="module")
def dfme_built(tmp_path_factory):
    root = tmp_path_factory.mktemp("dfme")
    fx.write_dfme(root / "in")
    return root / "data", _build(dfme.Builder, root / "in", root / "data")


def test_dfme_subsets_are_splits(dfme_built):
    _, built = dfme_built
    rows = fx.dfme_rows()
    assert set(built) == {"train", "test_a", "test_b"}
    sources = {"train": "dfme", "test_a": "dfme_test_a", "test_b": "dfme_test_b"}
    for split, examples in built.items():
        assert [text(e["clip"]) for e in examples] == [fx.dfme_clip(split, r) for r in rows[split]]
        for ex, row in zip(examples, rows[split], strict=True):
            onset, apex, offset = _sheet_span(row)
            assert text(ex["subject"]) == f"dfme/{split}"  # No subject column.
            assert text(ex["dataset"]) == "dfme" and text(ex["source"]) == sources[split]
            assert text(ex["emotion"]) == row.emotion
            assert text(ex["action_units"]) == row.action_units
            assert (ex["onset"], ex["apex"], ex["offset"]) == (0, apex - onset, offset - onset)
            assert (ex["onset_frame"], ex["offset_frame"]) == (row.onset, row.offset)
            want = _png_reference(text(ex["clip"]), range(onset, offset + 1))
            np.testing.assert_array_equal(ex["frames"], want)
    assert text(built["train"][1]["repairs"]) == "apex missing in the sheet: middle frame 2"


def test_dfme_splits_load_by_name_and_pool(dfme_built):
    data_dir, built = dfme_built
    quiet = dict(label_scheme="dfme_7class", data_dir=str(data_dir), log=lambda m: None)
    test_a = loader.read_metadata("dfme/tiny@test_a", **quiet)
    assert test_a.clips.tolist() == [text(e["clip"]) for e in built["test_a"]]
    assert [test_a.class_names[i] for i in test_a.labels] == ["fear", "sadness"]
    pooled = loader.read_metadata("dfme/tiny+dfme/tiny@test_a+dfme/tiny@test_b", **quiet)
    assert len(pooled.clips) == 8 and set(pooled.sources) == {"dfme", "dfme_test_a", "dfme_test_b"}
    table = protocols.make_folds("loso", pooled.subjects)  # leave one subset out
    assert sorted(table.names) == ["dfme/test_a", "dfme/test_b", "dfme/train"]
    with pytest.raises(UserError, match=r"dfme/tiny@test_c has no split 'test_c'; it has"):
        loader.read_metadata("dfme/tiny@test_c", **quiet)


def test_dfme_subject_column_and_only_a_training_sheet(tmp_path):
    rows = {"train": fx.dfme_rows()["train"]}
    fx.write_dfme(tmp_path / "in", rows, subject=True)
    built = _build(dfme.Builder, tmp_path / "in", tmp_path / "data")
    assert set(built) == {"train"}
    subjects = [text(e["subject"]) for e in built["train"]]
    assert subjects == ["dfme/p001", "dfme/p001", "dfme/p002", "dfme/p002"]
    assert text(built["train"][2]["clip"]) == "dfme/p002/d_00020"


def test_dfme_malformed_row_names_file_and_row(tmp_path):
    fx.write_dfme(tmp_path / "in")
    path = tmp_path / "in" / "testA_full_with_AU.xlsx"
    book = openpyxl.load_workbook(path)
    book.active["D3"] = "five"  # OffsetFrame of the second test A clip
    book.save(path)
    message = _error(dfme.Builder, tmp_path / "in", tmp_path / "data")
    assert "testA_full_with_AU.xlsx row 3 (dfme/test_a/d_01002)" in message
    assert "column 'OffsetFrame' holds 'five', not a frame number" in message


# ----------------------------------------------------------------------------
# Label schemes over the fixture sheets' emotions (counts by hand from the rows above).


@pytest.mark.parametrize(
    "scheme, dataset, emotions, classes",
    [
        ("mmew_7class", "mmew", None, [1, 1, 1, 1, 1, 1, 1]),
        ("mmew_4class", "mmew", None, [1, 1, 1, 1]),  # anger, fear, sadness dropped
        ("megc2019_3class", "mmew", None, [4, 1, 1]),  # others dropped
        ("nps_others_4class", "mmew", None, [4, 1, 1, 1]),
        ("dfme_7class", "dfme", "dfme", [1, 1, 1, 1, 2, 1, 1]),
        ("megc2019_3class", "dfme", "dfme", [5, 2, 1]),
    ],
)
def test_schemes_map_every_fixture_emotion(scheme, dataset, emotions, classes):
    if emotions is None:
        values = [r.emotion for r in fx.mmew_rows()]
    else:
        values = [r.emotion.capitalize() for rs in fx.dfme_rows().values() for r in rs]
    labels, keep = label_schemes.apply(scheme, dataset, values)
    counts = np.bincount(labels[keep], minlength=len(label_schemes.get(scheme).classes))
    assert counts.tolist() == classes
