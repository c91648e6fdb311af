"""`mer-jax data build`: checks --manual-dir, rebuilds when the manual dir's files or the
builder changed and says what it reuses otherwise, `--force`, one build at a time."""

import fcntl
import json
import os
import threading
import time

import numpy as np
import openpyxl
import pytest
import tensorflow_datasets as tfds

from data_builders import fingerprint, sheets
from mer_jax import cli
from mer_jax.data import build
from tests.data_builders import fixtures
from tests.data_builders.test_me_builders import _sheet_span

NAME = "casme2/cropped_112"
SHEET = "CASME2-coding-20140508.xlsx"


def _argv(manual, data, *more):
    return ["data", "build", NAME, "--manual-dir", str(manual), "--data-dir", str(data), *more]


def _apexes(data):
    source = tfds.data_source(NAME, data_dir=str(data), split="train")
    return [int(source[i]["apex"]) for i in range(len(source))]


def _set_apex(manual, row, value):
    """Edits the coding sheet as a user fixing an apex would (a new file, new mtime)."""
    path = manual / SHEET
    book = openpyxl.load_workbook(path)
    book.active.cell(row=row, column=5).value = value  # column E: ApexFrame
    book.save(path)


@pytest.fixture
def built(tmp_path, capsys):
    manual, data = tmp_path / "manual", tmp_path / "tfds"
    fixtures.write_casme2(manual)
    assert cli.main(_argv(manual, data)) == 0
    out = capsys.readouterr().out
    target = data / "casme2" / "cropped_112" / "1.0.0"
    assert f"building {NAME} into {target}: not built yet" in out
    assert f"built {NAME} in {target}: {{'train': 7}}" in out
    return manual, data, target


def test_same_files_are_reused_changed_ones_rebuilt(built, capsys):
    manual, data, target = built
    spans = [_sheet_span(row) for row in fixtures.casme2_rows()]
    expected = [apex - onset for onset, apex, _ in spans]  # stored apex: index into onset..
    assert _apexes(data) == expected
    info = (target / "dataset_info.json").stat().st_mtime_ns
    assert cli.main(_argv(manual, data)) == 0
    out = capsys.readouterr().out
    assert out == (
        f"{NAME} already built from the same files; reusing {target} (--force to rebuild)\n"
    )
    assert (target / "dataset_info.json").stat().st_mtime_ns == info  # untouched
    # A fixed sheet: row 2 (EP02_01f, onset 46) apex 49 -> 47. Rebuilt, and says why.
    _set_apex(manual, 2, 47)
    assert cli.main(_argv(manual, data)) == 0
    out = capsys.readouterr().out
    assert f"the files in --manual-dir changed since it was built ({SHEET} changed)" in out
    assert _apexes(data) == [47 - 46, *expected[1:]]
    # One frame swapped in the clip folder: rebuilt too.
    folder = manual / "Cropped" / "sub02" / "EP09_01"  # onset 20, row 4 of 7
    (folder / "reg_img22.jpg").write_bytes((folder / "reg_img21.jpg").read_bytes())
    assert cli.main(_argv(manual, data)) == 0
    assert "(Cropped changed)" in capsys.readouterr().out
    frames = tfds.data_source(NAME, data_dir=str(data), split="train")[3]["frames"]
    np.testing.assert_array_equal(frames[2], frames[1])
    assert cli.main(_argv(manual, data, "--force")) == 0
    assert f"building {NAME} into {target}: --force" in capsys.readouterr().out


def test_a_changed_builder_is_rebuilt_naming_its_files(built, capsys):
    manual, data, target = built
    record = json.loads((target / build.RECORD).read_text())
    code = fingerprint.sources("data_builders.casme2.casme2_dataset_builder")
    assert record["builder"]["source_files"] == code["files"]
    assert "data_builders/clips.py" in code["files"]  # what the builder imports counts too
    assert record["builder"]["version"] == "1.0.0"
    assert record["manual_dir"]["digest"] == fingerprint.tree(manual)["digest"]
    # As if clips.py had changed since the build.
    record["builder"]["source_files"]["data_builders/clips.py"] = "0" * 64
    record["builder"]["sources"] = "old"
    (target / build.RECORD).write_text(json.dumps(record))
    assert cli.main(_argv(manual, data)) == 0
    assert "the builder's source files changed (data_builders/clips.py)" in capsys.readouterr().out
    # A dataset built without a record (an earlier mer_jax, plain TFDS) is rebuilt once.
    (target / build.RECORD).unlink()
    assert cli.main(_argv(manual, data)) == 0
    assert "built without a record of the files it came from" in capsys.readouterr().out
    assert cli.main(_argv(manual, data)) == 0
    assert "reusing" in capsys.readouterr().out


def test_a_failed_rebuild_keeps_the_earlier_build(built, capsys):
    manual, data, target = built
    before = _apexes(data)
    _set_apex(manual, 2, "x")  # not a frame number
    with pytest.raises(sheets.AnnotationError, match=f"{SHEET} row 2"):
        build.build(tfds.builder(NAME, data_dir=str(data)), manual_dir=manual, log=print)
    assert "the earlier build in" in capsys.readouterr().out
    assert _apexes(data) == before
    assert sorted(p.name for p in target.parent.iterdir()) == [".1.0.0.mer_jax.lock", "1.0.0"]
    # A rebuild killed midway leaves the earlier build aside: the next build puts it back.
    _set_apex(manual, 2, 49)
    target.rename(build._previous(target))
    os.utime(manual / SHEET)
    assert cli.main(_argv(manual, data)) == 0
    out = capsys.readouterr().out
    assert "put back the earlier build" in out and "changed since it was built" in out
    assert _apexes(data) == before


@pytest.mark.parametrize("kind", ["absent", "file"])
def test_manual_dir_must_be_a_folder(tmp_path, capsys, kind):
    manual = tmp_path / "manual"
    if kind == "file":
        manual.write_text("not a folder")
    assert cli.main(_argv(manual, tmp_path / "tfds")) == 2
    err = capsys.readouterr().err
    what = "does not exist" if kind == "absent" else "is a file, not a folder"
    assert (
        err
        == f"mer-jax: error: --manual-dir {manual} {what}"
        + ("" if kind == "absent" else ": pass the folder the dataset is unpacked in")
        + "\n"
    )
    assert not (tmp_path / "tfds" / "casme2" / "cropped_112" / "1.0.0").exists()


def test_a_second_build_waits_or_fails_saying_so(built, capsys):
    manual, data, target = built
    lock = target.parent / ".1.0.0.mer_jax.lock"
    with open(lock, "a+") as held:  # another build holds the dataset's lock
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        held.write("pid 4242 on elsewhere since 2024-01-01T00:00:00\n")
        held.flush()
        assert cli.main(_argv(manual, data, "--no-wait")) == 2
        err = capsys.readouterr().err
        assert f"mer-jax: error: {NAME} in {target.parent} is being built by another process" in err
        assert "pid 4242 on elsewhere" in err
        lines, done = [], []
        builder = tfds.builder(NAME, data_dir=str(data))
        worker = threading.Thread(
            target=lambda: done.append(build.build(builder, manual_dir=manual, log=lines.append))
        )
        worker.start()
        for _ in range(200):
            if lines:
                break
            time.sleep(0.05)
        assert lines and lines[0].startswith(f"waiting: {NAME} in {target.parent} is being built")
        assert not done  # still waiting
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    worker.join(60)
    assert done and done[0][1] is True  # then found it built from the same files
    assert lines[-1].startswith(f"{NAME} already built from the same files; reusing")


def test_an_unknown_dataset_is_one_line_not_a_traceback(tmp_path, capsys):
    assert cli.main(["data", "build", "nosuch/x", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mer-jax: error: unknown dataset 'nosuch'; known: [")
    assert err.count("\n") == 1
