"""Work dirs: checked and locked before any data loads, one run per dir, atomic writes."""

import json
import os
from pathlib import Path

import pytest

from mer_jax import cli, files, report
from mer_jax import workdir as workdir_lib

ROOT = Path(__file__).resolve().parents[1]

CONFIG = {"seed": 0, "train.epochs": 3, "train.checkpoint_every": 10, "model": "m"}


def _open(path, config=CONFIG, **kw):
    return workdir_lib.open_workdir(path, config, log=lambda m: None, **kw)


def test_a_new_dir_is_created_locked_and_records_a_running_run(tmp_path):
    path = tmp_path / "a" / "b"
    with _open(path) as wd:
        assert path.is_dir() and not wd.resuming and not wd.finished
        manifest = json.loads((path / "run.json").read_text())
        assert manifest["status"] == "running" and manifest["config"] == CONFIG
        # A second sweep in the same dir (another open file description) is refused.
        with pytest.raises(ValueError, match=r"in use by a running sweep \(pid \d+ on "):
            _open(path)
    with _open(path) as again:  # closed: the lock is free; the run was interrupted
        assert again.resuming


def test_a_work_dir_that_is_a_file_or_holds_foreign_files_is_refused(tmp_path):
    file = tmp_path / "f"
    file.write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        _open(file)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds files but no mer-jax run.*notes.txt"):
        _open(tmp_path / "d", force=True)  # never cleared, even with --force
    assert (tmp_path / "d" / "notes.txt").read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_an_unwritable_work_dir_is_refused(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="not writable"):
            _open(tmp_path / "run")
    finally:
        tmp_path.chmod(0o700)


def test_another_config_is_named_key_by_key_and_force_starts_afresh(tmp_path):
    with _open(tmp_path) as wd:
        (tmp_path / "results.json").write_text("{}")
        (tmp_path / "checkpoints").mkdir()
        wd.finish([tmp_path / "results.json"])
    other = {**CONFIG, "seed": 5, "train.epochs": 4}
    with pytest.raises(ValueError, match=r"seed: 0 -> 5; train.epochs: 3 -> 4.*--force"):
        _open(tmp_path, other)
    # A key that only changes when checkpoints are written is no other run.
    with _open(tmp_path, {**CONFIG, "train.checkpoint_every": 2}) as wd:
        assert wd.finished
    with _open(tmp_path, other, force=True) as wd:
        assert not wd.finished and not wd.resuming
        assert not (tmp_path / "results.json").exists()  # nothing of seed 0 stays beside seed 5
        assert not (tmp_path / "checkpoints").exists()
        assert json.loads((tmp_path / "run.json").read_text())["config"] == other


def test_a_manifest_naming_files_outside_the_dir_is_refused(tmp_path):
    (tmp_path / "outside.txt").write_text("keep")
    run = tmp_path / "run"
    with _open(run) as wd:
        wd.finish([])
    manifest = json.loads((run / "run.json").read_text())
    manifest["outputs"] = ["../outside.txt"]
    (run / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="outside the work dir"):
        _open(run, {**CONFIG, "seed": 1}, force=True)
    assert (tmp_path / "outside.txt").read_text() == "keep"


def test_atomic_writes_leave_the_old_file_whole_when_a_write_fails(tmp_path):
    path = tmp_path / "results.json"
    report.write_results_json({"a": 1}, path)
    with pytest.raises(RuntimeError):
        with files.atomic(path) as tmp:
            tmp.write_text('{"a": 2, "trunc')
            raise RuntimeError("disk full")
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no temporary left
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failed_figure_write_fails_the_report(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", refuse)
    results = {"metrics": {"confusion_matrix": [[1, 0], [0, 1]]}, "class_names": ["a", "b"]}
    with pytest.raises(OSError, match="No space left"):
        report.write_report(results, tmp_path)


def test_the_sweep_checks_its_work_dir_before_loading_data(tmp_path, monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise AssertionError("data loaded before the work dir was checked")

    monkeypatch.setattr("mer_jax.data.load", fail)
    file = tmp_path / "file"
    file.write_text("")
    config = str(ROOT / "experiments" / "quickstart.py") + ":tiny"
    code = cli.main(["sweep", config, "--workdir", str(file), "--no-progress"])
    assert code == 2
    assert f"work dir {file} is a file" in capsys.readouterr().err
