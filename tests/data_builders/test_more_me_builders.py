"""CAS(ME)^3 Part A and 4DME built from tiny fixture trees in their official layouts; the
action-unit parser against a hand-written table; the label schemes and LOSO over them."""

import json

import numpy as np
import openpyxl
import pytest

from data_builders import sheets
from data_builders.casme3 import casme3_dataset_builder as casme3
from data_builders.fourd_me import fourd_me_dataset_builder as fourd_me
from mer_jax import cli, label_schemes, protocols
from mer_jax.data import loader
from tests.data_builders import fixtures_more
from tests.data_builders.test_me_builders import _build, _build_error, _config, _reference, _text

# Hand-written: a sheet's AU cell -> the FACS numbers it codes (None: not coded).
AU_TABLE = [
    ("4+L10", (4, 10)),
    ("R12+25", (12, 25)),
    ("AU4, AU7", (4, 7)),
    ("1+2+5B", (1, 2, 5)),
    ("12(?)", (12,)),
    ("AU 12 (k) + AU 4", (4, 12)),
    ("R12 or R15", (12, 15)),
    ("4,7", (4, 7)),
    ("R12A+L14", (12, 14)),
    ("14L", (14,)),
    ("M57+AD38+4", (4,)),
    ("61+4", (4, 61)),
    (15.0, (15,)),
    ("/", None),
    ("", None),
    (None, None),
]


def _hot(*numbers):
    """The multi-hot vector by hand: AU n sits at its position in 1..46 without 3 and 40."""
    out = np.zeros(44, np.uint8)
    for n in numbers:
        if n <= 46:
            out[n - 1 - (n > 3) - (n > 40)] = 1
    return out


def test_action_unit_parser_against_a_hand_table():
    assert len(sheets.ACTION_UNITS) == 44 and sheets.ACTION_UNITS[:3] == (1, 2, 4)
    for cell, codes in AU_TABLE:
        assert sheets.action_unit_codes(cell, "s.xlsx row 2") == codes, cell
        np.testing.assert_array_equal(sheets.action_unit_vector(codes), _hot(*(codes or ())))
    for bad in ("4+X", "AU", "12-", "L12R", "3+4", "0", "4+130"):
        with pytest.raises(sheets.AnnotationError, match=r"^s\.xlsx row 2: action unit"):
            sheets.action_unit_codes(bad, "s.xlsx row 2")


# ----------------------------------------------------------------------------
# CAS(ME)^3: several micro-expressions per recording, dropped frames (rule G').


def _casme3_expected(row):
    """(stored frame numbers, missing numbers, onset, apex, offset as stored) by rule G'."""
    first, last, dropped = fixtures_more.CASME3_RECORDINGS[(row.subject, row.filename)]
    span = [n for n in range(row.onset, row.offset + 1) if n not in dropped]
    missing = [n for n in range(row.onset, row.offset + 1) if n in dropped]
    nearest = lambda n: min(span, key=lambda m: (abs(m - n), m))
    return span, missing, nearest(row.onset), nearest(row.apex), nearest(row.offset)


def test_casme3_stores_present_frames_and_lists_dropped_ones(tmp_path):
    files = fixtures_more.write_casme3(tmp_path / "in")
    examples = _build(casme3.Builder, tmp_path / "in", tmp_path / "data", _config(release="raw"))
    rows = fixtures_more.casme3_rows()
    assert [_text(e, "clip") for e in examples] == [
        f"casme3/{r.subject}/{r.filename}_{r.onset}" for r in rows
    ]
    for ex, row in zip(examples, rows, strict=True):
        span, missing, onset, apex, offset = _casme3_expected(row)
        recording = files[f"casme3/{row.subject}/{row.filename}"]
        np.testing.assert_array_equal(ex["frames"], _reference([recording[n] for n in span]))
        assert list(ex["missing_frames"]) == missing
        assert (ex["onset"], ex["apex"], ex["offset"]) == tuple(
            span.index(n) for n in (onset, apex, offset)
        )
        assert [ex["onset_frame"], ex["apex_frame"], ex["offset_frame"]] == [
            row.onset,
            row.apex,
            row.offset,
        ]
        assert _text(ex, "subject") == f"casme3/{row.subject}"
        assert _text(ex, "emotion") == row.emotion
        assert _text(ex, "objective_class") == row.objective
        codes = {"4,7": (4, 7), "6,12": (6, 12), "1,2,5": (1, 2, 5), "4": (4,), None: ()}
        codes |= {"L10": (10,), "15+17": (15, 17)}
        np.testing.assert_array_equal(ex["action_unit_vector"], _hot(*codes[row.action_units]))
        assert bool(ex["action_units_coded"]) == (row.action_units is not None)
    repairs = [_text(e, "repairs") for e in examples]
    assert repairs[0] == "2 dropped frame(s) of 10..15 not stored (missing_frames)"
    assert repairs[1] == ""
    assert repairs[2] == (
        "1 dropped frame(s) of 5..9 not stored (missing_frames); "
        "onset frame 5 dropped (no file): nearest frame 6"
    )
    assert repairs[4].endswith("apex frame 9 dropped (no file): nearest frame 8")  # tie: earlier
    # LOSO over the built dataset: one fold per subject, each testing that subject's clips.
    builder = casme3.Builder(config=_config(release="raw"), data_dir=str(tmp_path / "data"))
    columns = loader.read_columns(builder)
    subjects = [label_schemes.text(s) for s in columns["subject"]]
    table = protocols.loso(subjects)
    assert table.names == ("casme3/spNO.1", "casme3/spNO.2", "casme3/spNO.3")
    for test, train, name in zip(table.test_mask, table.train_mask, table.names):
        assert test.tolist() == [s == name for s in subjects] and (train == ~test).all()


def test_casme3_keeps_micro_rows_of_an_expression_type_column(tmp_path):
    rows = fixtures_more.casme3_rows()[:3]
    fixtures_more.write_casme3(tmp_path / "in", rows, kinds=["micro", "macro", "ME"])
    examples = _build(casme3.Builder, tmp_path / "in", tmp_path / "data", _config(release="raw"))
    assert [_text(e, "clip") for e in examples] == ["casme3/spNO.1/a_10", "casme3/spNO.1/b_5"]
    fixtures_more.write_casme3(tmp_path / "bad", rows, kinds=["micro", "blink", "ME"])
    message = _build_error(
        casme3.Builder, tmp_path / "bad", tmp_path / "again", config=_config(release="raw")
    )
    assert f"{fixtures_more.CASME3_SHEET} row 3: column 'Expression type' holds 'blink'" in message


@pytest.mark.parametrize(
    "column, value, wanted",
    [
        ("Onset", "2x", "row 4 (casme3/spNO.1/b): column 'Onset' holds '2x', not a frame number"),
        ("AU", "4+Q", "row 4 (casme3/spNO.1/b_5): action unit 'Q' of '4+Q' is not a FACS code"),
    ],
)
def test_casme3_malformed_row_names_file_and_row(tmp_path, column, value, wanted):
    fixtures_more.write_casme3(tmp_path / "in")
    path = tmp_path / "in" / "part_A" / "annotation" / fixtures_more.CASME3_SHEET
    book = openpyxl.load_workbook(path)
    cell = fixtures_more.CASME3_HEADER.index(column)
    book["label"].cell(row=4, column=cell + 1, value=value)
    book.save(path)
    message = _build_error(casme3.Builder, tmp_path / "in", tmp_path, config=_config(release="raw"))
    assert f"{fixtures_more.CASME3_SHEET} {wanted}" in message


# ----------------------------------------------------------------------------
# 4DME.


def test_fourd_me_grey_clips(tmp_path):
    files = fixtures_more.write_fourd_me(tmp_path / "in")
    examples = _build(fourd_me.Builder, tmp_path / "in", tmp_path / "data", _config(release="raw"))
    rows = fixtures_more.fourd_me_rows()
    folders = ["S01", "S01", "S02", "S02", "S03"]  # sub_ID 1 / 'S02' / 3 -> the folders
    assert [_text(e, "clip") for e in examples] == [
        f"fourd_me/{s}/{r.filename}" for s, r in zip(folders, rows)
    ]
    aus = [(6, 12), (4, 7), (1, 2, 5), (14,), (45,)]
    for ex, row, codes in zip(examples, rows, aus, strict=True):
        apex = row.apex if isinstance(row.apex, int) else (row.onset + row.offset) // 2
        assert (ex["onset"], ex["apex"], ex["offset"]) == (
            0,
            apex - row.onset,
            row.offset - row.onset,
        )
        wanted = [files[_text(ex, "clip")][n] for n in range(row.onset, row.offset + 1)]
        np.testing.assert_array_equal(ex["frames"], _reference(wanted, grey=True))
        np.testing.assert_array_equal(ex["action_unit_vector"], _hot(*codes))
        assert _text(ex, "action_units") == row.action_units and ex["action_units_coded"]
        assert _text(ex, "emotion") == row.emotion and list(ex["missing_frames"]) == []
    assert _text(examples[3], "repairs") == "apex missing in the sheet: middle frame 7"


def test_fourd_me_malformed_rows_name_file_and_row(tmp_path):
    rows = fixtures_more.fourd_me_rows()
    rows[1].action_units = "AU4+AUx"
    fixtures_more.write_fourd_me(tmp_path / "in", rows)
    message = _build_error(
        fourd_me.Builder, tmp_path / "in", tmp_path, config=_config(release="raw")
    )
    assert f"{fixtures_more.FOURD_SHEET} row 3 (fourd_me/S01/S01_02): action unit 'AUx'" in message
    rows = fixtures_more.fourd_me_rows()
    rows[4].subject = 7
    fixtures_more.write_fourd_me(tmp_path / "in7", rows[4:])
    (tmp_path / "in7" / "gray_micro" / "S07").rename(tmp_path / "in7" / "gray_micro" / "S08")
    message = _build_error(
        fourd_me.Builder, tmp_path / "in7", tmp_path, config=_config(release="raw")
    )
    assert f"{fixtures_more.FOURD_SHEET} row 2: sub_ID '7' names no subject folder" in message


# ----------------------------------------------------------------------------
# Listing, configs and label schemes.


def test_data_list_json_shows_both_with_the_whole_frame_configs(capsys):
    assert cli.main(["data", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for name in ("casme3", "fourd_me"):
        assert rows[name]["needs_manual_dir"]
        configs = set(rows[name]["configs"])
        assert {"raw_112", "raw_224_all", "raw_face_112", "raw_aligned_224"} <= configs
        assert {"raw_flow_28", "raw_face_apex_224", "raw_aligned_flowseq_20x192"} <= configs
        assert configs == set(rows["samm"]["configs"])  # SAMM's set: whole frames, one release


def test_label_schemes_map_every_fixture_emotion():
    casme3_emotions = [r.emotion for r in fixtures_more.casme3_rows()]
    assert casme3_emotions == ["disgust", "happy", "surprise", "fear", "others", "anger", "sad"]
    wanted = {
        "casme3_7class": ["disgust", "happy", "surprise", "fear", "others", "anger", "sad"],
        "casme3_4class": [
            "negative",
            "positive",
            "surprise",
            "negative",
            "others",
            "negative",
            "negative",
        ],
        "casme3_3class": [
            "negative",
            "positive",
            "surprise",
            "negative",
            None,
            "negative",
            "negative",
        ],
    }
    fourd_emotions = [r.emotion for r in fixtures_more.fourd_me_rows()]
    wanted_fourd = {
        "fourd_me_5class": ["positive", "negative", "surprise", "repression", "others"],
        "fourd_me_3class": ["positive", "negative", "surprise", "negative", None],
    }
    for dataset, emotions, table in (
        ("casme3", casme3_emotions, wanted),
        ("fourd_me", fourd_emotions, wanted_fourd),
    ):
        for name, classes in table.items():
            scheme = label_schemes.get(name)
            labels, keep = label_schemes.apply(scheme, dataset, emotions)
            got = [scheme.classes[i] if k else None for i, k in zip(labels, keep)]
            assert got == classes, name
    with pytest.raises(ValueError, match="emotion 'Negative\\+Surprise' of dataset 'fourd_me'"):
        label_schemes.apply("fourd_me_5class", "fourd_me", ["Negative+Surprise"])
