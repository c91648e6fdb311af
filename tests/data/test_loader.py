"""Real-data path: a CASME II fixture tree in the official layout -> `mer-jax data build` ->
the same sweep path as the synthetic corpus, labels from a label scheme."""

import json
import pathlib
import shutil

import numpy as np
import openpyxl
import pytest

from mer_jax import cli, data, label_schemes
from mer_jax.data import loader
from tests.conftest import input_spec
from tests.data_builders import fixtures

TINY = f"{pathlib.Path(__file__).parents[2] / 'experiments' / 'quickstart.py'}:tiny"


@pytest.fixture(scope="module")
def casme2_built(tmp_path_factory):
    root = tmp_path_factory.mktemp("casme2")
    fixtures.write_casme2(root / "manual")
    argv = ["data", "build", "casme2/cropped_112", "--manual-dir", str(root / "manual")]
    assert cli.main([*argv, "--data-dir", str(root / "tfds")]) == 0
    return root / "tfds"


def test_load_applies_the_label_scheme_and_reports_exclusions(casme2_built):
    lines = []
    spec = input_spec(image_size=32, label_scheme="casme2_5class")
    ds = data.load("casme2/cropped_112", spec, data_dir=str(casme2_built), log=lines.append)
    rows = fixtures.casme2_rows()
    emotions = [r.emotion for r in rows]
    expected, keep = label_schemes.apply("casme2_5class", "casme2", emotions)
    kept = [r for r, k in zip(rows, keep) if k]
    assert ds.clips.tolist() == [f"casme2/sub{int(r.subject):02d}/{r.filename}" for r in kept]
    np.testing.assert_array_equal(ds.labels, expected[keep])
    assert ds.class_names == label_schemes.get("casme2_5class").classes
    assert ds.images.shape == (len(kept), 32, 32, 1)
    # fear and sadness are not among CASME II's 5 classes: said, not silently dropped.
    assert any(f"excludes {len(rows) - len(kept)} of {len(rows)}" in line for line in lines)


def test_real_dataset_needs_a_label_scheme(casme2_built):
    with pytest.raises(ValueError, match="input.label_scheme"):
        data.load("casme2/cropped_112", input_spec(image_size=32), data_dir=str(casme2_built))


def test_unbuilt_real_dataset_says_how_to_build_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="mer-jax data build samm/raw_112 --manual-dir"):
        data.load("samm/raw_112", input_spec(label_scheme="samm_5class"), data_dir=str(tmp_path))


def test_fixture_sweep_runs_through_the_synthetic_path(casme2_built, tmp_path):
    settings = [
        "dataset=casme2/cropped_112",
        f"data_dir={casme2_built}",
        "input.label_scheme=casme2_5class",
        "train.balance=False",
        "train.batch_size=4",
    ]
    argv = ["sweep", TINY, "--workdir", str(tmp_path), "--no-progress", "--no-compile-cache"]
    assert cli.main([*argv, *(a for s in settings for a in ("--set", s))]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["dataset"] == "casme2/cropped_112"
    # Three fixture subjects -> three LOSO folds; the five kept clips each predicted once.
    assert results["num_folds"] == 3
    assert sorted(results["predictions"]["clip"]) == sorted(
        f"casme2/sub{int(r.subject):02d}/{r.filename}"
        for r in fixtures.casme2_rows()
        if r.emotion not in ("fear", "sadness")
    )
    assert results["class_names"] == list(label_schemes.get("casme2_5class").classes)


def test_load_and_describe_read_the_same_metadata(casme2_built):
    """`read_metadata` is the one reader: `load` keeps its clips, labels and ids, in order."""
    spec = input_spec(image_size=32, label_scheme="casme2_5class")
    ds = data.load("casme2/cropped_112", spec, data_dir=str(casme2_built), log=lambda _: None)
    lines = []
    meta = data.read_metadata(
        "casme2/cropped_112",
        label_scheme="casme2_5class",
        data_dir=str(casme2_built),
        log=lines.append,
    )
    for key in ("labels", "subjects", "sources", "clips", "class_names"):
        np.testing.assert_array_equal(getattr(meta, key), getattr(ds, key), err_msg=key)
    (part,) = meta.parts
    assert part.name == "casme2/cropped_112" and part.keep.sum() == len(ds.labels) < len(part.keep)
    assert any("excludes" in line for line in lines)
    # No scheme: the protocol's fills in for a dataset that stores only emotions, and says so.
    lines.clear()
    default = data.read_metadata(
        "casme2/cropped_112",
        default_label_scheme="casme2_5class",
        data_dir=str(casme2_built),
        log=lines.append,
    )
    np.testing.assert_array_equal(default.labels, meta.labels)
    assert any("labels by the protocol's label scheme casme2_5class" in line for line in lines)


def test_read_metadata_errors_name_the_dataset(casme2_built, tfds_dir):
    read = lambda name, **kw: data.read_metadata(name, log=lambda _: None, **kw)
    with pytest.raises(ValueError, match="casme2/cropped_112 stores no 'label'.*--labels"):
        read("casme2/cropped_112", data_dir=str(casme2_built))
    with pytest.raises(ValueError, match="has no table for dataset 'casme2'"):
        read("casme2/cropped_112", label_scheme="samm_5class", data_dir=str(casme2_built))
    with pytest.raises(ValueError, match="appears twice"):
        read(
            "casme2/cropped_112+casme2/cropped_112",
            label_scheme="casme2_5class",
            data_dir=str(casme2_built),
        )
    # The synthetic corpus stores a `label` and no objective class.
    with pytest.raises(ValueError, match="reads feature 'objective_class', which this"):
        read("synthetic_me/tiny", label_scheme="objective_5class", data_dir=tfds_dir)
    with pytest.raises(ValueError, match="names no built dataset"):
        read("+", data_dir=tfds_dir)


def test_input_cache_is_keyed_on_the_stored_dataset(tmp_path, monkeypatch):
    """A rebuilt dataset is never served the inputs of the earlier build; a copy of the same
    dataset is; a broken cache file is recomputed; every use and rebuild is logged."""
    manual, data_dir = tmp_path / "manual", tmp_path / "tfds"
    fixtures.write_casme2(manual)
    argv = ["data", "build", "casme2/cropped_112", "--manual-dir", str(manual)]
    assert cli.main([*argv, "--data-dir", str(data_dir)]) == 0
    spec = input_spec(image_size=32, label_scheme="casme2_5class")

    def load(root):
        lines = []
        ds = data.load("casme2/cropped_112", spec, data_dir=str(root), log=lines.append)
        return ds.images, "\n".join(lines)

    first, log = load(data_dir)
    assert "computing model inputs (not cached yet)" in log
    (cached,) = (data_dir / "mer_jax_inputs").glob("*.npy")
    again, log = load(data_dir)
    assert f"model inputs from the cache {cached}" in log
    np.testing.assert_array_equal(again, first)
    # The whole data dir copied (new paths and mtimes, same bytes): the same content.
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy, copy_function=shutil.copy)
    assert "model inputs from the cache" in load(copy)[1]
    # The sheet fixed (row 2: EP02_01f, the first clip, apex 49 -> 47) and the dataset rebuilt.
    book = openpyxl.load_workbook(manual / "CASME2-coding-20140508.xlsx")
    book.active["E2"] = 47
    book.save(manual / "CASME2-coding-20140508.xlsx")
    assert cli.main([*argv, "--data-dir", str(data_dir)]) == 0
    rebuilt, log = load(data_dir)
    assert "cached inputs are stale: the dataset's stored files changed (it was rebuilt)" in log
    assert "removed 1 stale cache file(s)" in log and not cached.exists()
    # Reference: the same dataset built afresh into a data dir that never had a cache.
    assert cli.main([*argv, "--data-dir", str(tmp_path / "fresh")]) == 0
    reference, log = load(tmp_path / "fresh")
    assert "not cached yet" in log
    np.testing.assert_array_equal(rebuilt, reference)
    assert not np.array_equal(rebuilt[0], first[0])  # the new apex frame, not the old one
    np.testing.assert_array_equal(rebuilt[1:], first[1:])
    # A cache file that cannot be read is recomputed, not trusted.
    (cached,) = (data_dir / "mer_jax_inputs").glob("*.npy")
    cached.write_bytes(b"\x93NUMPY half a file")
    again, log = load(data_dir)
    assert f"cache file {cached} unreadable" in log
    np.testing.assert_array_equal(again, reference)
    assert "from the cache" in load(data_dir)[1]
    # Changed preprocessing code (as if its sources hashed differently) is a new key too.
    monkeypatch.setattr(loader, "PREPROCESS_MODULE", "mer_jax.preprocess.apex")
    log = load(data_dir)[1]
    assert "stale: the preprocessing code (mer_jax.preprocess.apex and its imports)" in log
