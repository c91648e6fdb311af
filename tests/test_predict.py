"""Exported weights (`mer_jax.export`) and `mer-jax predict` (`mer_jax.predict`).

One tiny sweep for the whole file (quickstart :tiny, one epoch, 4 LOSO folds);
every prediction reuses its export and the same compiled evaluation program.
"""

import csv
import json
import shutil
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax import cli, engine, export, models, predict, sweep
from mer_jax import config as config_lib

ROOT = Path(__file__).resolve().parents[1]
DATASET = "synthetic_me/tiny"


def _quiet(message):
    del message


@pytest.fixture(scope="module")
def swept(tfds_dir, tmp_path_factory):
    """(work dir, results) of one finished tiny sweep."""
    config = config_lib.load(f"{ROOT / 'experiments' / 'quickstart.py'}:tiny")
    config.unlock()
    config.data_dir, config.train.epochs = tfds_dir, 1
    config.report.attention_maps = 0
    workdir = tmp_path_factory.mktemp("sweep")
    results = sweep.run(config, workdir, progress=False, log=_quiet)
    return workdir, results


def _sweep_probs(results, subject) -> dict:
    """{clip: probabilities the sweep predicted} of the clips `subject`'s fold held out."""
    preds = results["predictions"]
    return {
        clip: np.asarray(prob, np.float32)
        for clip, s, prob in zip(preds["clip"], preds["subject"], preds["prob"])
        if s == subject
    }


def _copy_export(swept, tmp_path, edit=None) -> Path:
    """A work dir holding a copy of the sweep's export, export.json changed by `edit`."""
    workdir, _ = swept
    shutil.copytree(workdir / export.WEIGHTS, tmp_path / export.WEIGHTS)
    if edit is not None:
        path = tmp_path / export.WEIGHTS / export.META
        meta = json.loads(path.read_text())
        edit(meta)
        path.write_text(json.dumps(meta))
    return tmp_path


def test_the_report_holds_the_probabilities_the_sweep_predicted(swept):
    workdir, results = swept
    saved = json.loads((workdir / "results.json").read_text())
    preds = saved["predictions"]
    probs = np.asarray(preds["prob"])
    assert saved["predictions"]["prob"] == results["predictions"]["prob"]  # floats, not rounded
    assert probs.shape == (len(preds["clip"]), len(saved["class_names"]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert probs.argmax(axis=1).tolist() == preds["pred"]
    # Full float precision: not a 6-decimal rounding.
    assert any(round(p, 6) != p for row in preds["prob"] for p in row)


def test_export_holds_every_fold_with_config_classes_and_input_spec(swept):
    workdir, results = swept
    meta = export.read_meta(workdir)
    assert meta["fold_names"] == [f["subject"] for f in results["folds"]]
    assert meta["class_names"] == results["class_names"]
    assert meta["model"]["name"] == "micro_attention" and meta["model"]["kwargs"]["width"] == 4
    assert meta["config"] == results["config"]
    assert meta["input"]["dataset"] == DATASET and meta["input"]["config"]["image_size"] == 32
    assert meta["input"]["shape"] == [32, 32, 1] and meta["input"]["dtype"] == "uint8"
    assert meta["input"]["model_input_shape"] == [28, 28, 1]  # the centre crop of the evaluation
    exported = export.load(workdir)
    leaves = jax.tree_util.tree_leaves(exported.variables)
    assert {leaf.shape[0] for leaf in leaves} == {4}
    assert set(exported.variables) == {"params", "batch_stats"}  # no optimizer state
    assert not list(workdir.glob(".weights.tmp-*"))


def test_one_fold_model_on_its_heldout_clips_gives_the_sweeps_probabilities(swept):
    workdir, results = swept
    names = [f["subject"] for f in results["folds"]]
    by_fold = {}
    for name in names:
        got = predict.predict(workdir, DATASET, fold=name, log=_quiet)
        assert got.folds == (name,) and got.combined == f"fold model {name}"
        assert got.probabilities.dtype == np.float32
        row = {clip: i for i, clip in enumerate(got.clips)}
        expected = _sweep_probs(results, name)
        assert expected and set(got.subjects[[row[c] for c in expected]]) == {name}
        for clip, prob in expected.items():
            np.testing.assert_allclose(got.probabilities[row[clip]], prob, rtol=1e-5, atol=1e-7)
        by_fold[name] = got.probabilities
    # The folds' models differ: predicting with the wrong fold would not pass the check above.
    assert not np.allclose(by_fold[names[0]], by_fold[names[1]], rtol=1e-3, atol=1e-4)
    # Default: the mean of every fold model's probabilities, and it says so.
    mean = predict.predict(workdir, DATASET, log=_quiet)
    assert mean.combined == "mean of 4 fold models" and mean.folds == tuple(names)
    np.testing.assert_allclose(mean.probabilities, np.mean(list(by_fold.values()), axis=0), 1e-6)
    truth = dict(zip(results["predictions"]["clip"], results["predictions"]["label"]))
    assert mean.labels.tolist() == [truth[clip] for clip in mean.clips]


def test_cli_writes_the_csv_with_the_sweeps_numbers(swept, tmp_path, capsys):
    workdir, results = swept
    subject = results["folds"][1]["subject"]
    out = tmp_path / "probs.csv"
    argv = ["predict", str(workdir), "--dataset", DATASET, "--fold", subject, "--out", str(out)]
    assert cli.main(argv) == 0
    assert f"fold model {subject}" in capsys.readouterr().err
    rows = list(csv.DictReader(out.open()))
    names = results["class_names"]
    assert list(rows[0]) == ["clip", "subject", "label", "predicted", *(f"prob_{c}" for c in names)]
    assert len(rows) == 24
    expected = _sweep_probs(results, subject)
    preds = results["predictions"]
    truth = dict(zip(preds["clip"], preds["label"]))
    checked = 0
    for row in rows:
        probs = np.array([float(row[f"prob_{c}"]) for c in names], np.float32)
        assert row["predicted"] == names[int(probs.argmax())]
        assert row["label"] == names[truth[row["clip"]]]
        if row["clip"] in expected:
            assert row["subject"] == subject
            np.testing.assert_allclose(probs, expected[row["clip"]], rtol=1e-5, atol=1e-7)
            checked += 1
    assert checked == len(expected) > 0
    # Without --out the CSV alone goes to stdout, the same rows.
    assert cli.main(argv[:-2]) == 0
    captured = capsys.readouterr()
    assert captured.out == out.read_text()
    assert "predictions (fold model" in captured.err


def _error(argv, capsys) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err  # the log lines (stderr), then the error on one line
    assert "Traceback" not in err and err.endswith("\n")
    last = err.splitlines()[-1]
    assert last.startswith("mer-jax: error: ")
    return last


def test_a_missing_or_incomplete_export_is_a_clear_error(tmp_path, capsys):
    err = _error(["predict", str(tmp_path / "nowhere"), "--dataset", DATASET], capsys)
    assert str(tmp_path / "nowhere" / "weights") in err and "no exported weights" in err
    (tmp_path / "weights").mkdir()
    err = _error(["predict", str(tmp_path), "--dataset", DATASET], capsys)
    assert str(tmp_path / "weights" / "export.json") in err and "incomplete" in err


def test_a_stored_view_other_than_the_trained_one_is_a_clear_error(swept, tfds_dir, capsys):
    workdir, _ = swept
    other = "synthetic_me/casme2_apex_56"  # apex frames stored at 56x56; trained on 32x32
    err = _error(["predict", str(workdir), "--dataset", other, "--data-dir", tfds_dir], capsys)
    assert f"dataset {other}: its stored view differs" in err
    assert "image_size=56 (trained 32)" in err


def test_shape_class_and_fold_mismatches_are_clear_errors(swept, tmp_path, capsys):
    workdir = str(
        _copy_export(swept, tmp_path / "shape", lambda m: m["input"].update(shape=[30, 30, 1]))
    )
    err = _error(["predict", workdir, "--dataset", DATASET], capsys)
    assert "inputs (32, 32, 1) uint8, the exported models read (30, 30, 1) uint8" in err

    def rename(meta):
        meta["class_names"] = ["negative", "positive", "happiness"]

    workdir = str(_copy_export(swept, tmp_path / "classes", rename))
    err = _error(["predict", workdir, "--dataset", DATASET], capsys)
    assert "['negative', 'positive', 'surprise']" in err
    assert "['negative', 'positive', 'happiness']" in err

    err = _error(["predict", str(swept[0]), "--dataset", DATASET, "--fold", "casme2/s99"], capsys)
    assert "'casme2/s99'" in err and "samm/s01" in err


def test_classes_in_another_order_are_mapped_by_name(swept, tmp_path):
    workdir, results = swept
    reordered = _copy_export(
        swept, tmp_path, lambda m: m.update(class_names=m["class_names"][::-1])
    )
    plain = predict.predict(workdir, DATASET, fold="smic/s01", log=_quiet)
    other = predict.predict(reordered, DATASET, fold="smic/s01", log=_quiet)
    assert other.class_names == tuple(results["class_names"][::-1])
    # Same probabilities (the model's outputs, now named in reverse), labels renumbered.
    np.testing.assert_array_equal(other.probabilities, plain.probabilities)
    assert [other.class_names[i] for i in other.labels] == [
        plain.class_names[i] for i in plain.labels
    ]


def test_a_rewrite_round_trips_and_an_interrupted_one_keeps_the_old_export(
    swept, tmp_path, monkeypatch
):
    workdir, _ = swept
    _copy_export(swept, tmp_path)
    before = export.load(tmp_path)
    meta = before.meta
    variables = dict(before.variables)
    params = variables.pop("params")
    state = types.SimpleNamespace(params=params, model_state=variables)  # no optimizer state
    config = config_lib.load(f"{ROOT / 'experiments' / 'quickstart.py'}:tiny")
    config.unlock()
    config.data_dir, config.train.epochs = meta["input"]["data_dir"], 1
    config.report.attention_maps = 0
    images = np.zeros((2, *meta["input"]["shape"]), np.uint8)
    dataset = type("Dataset", (), {"images": images})()
    aug = engine.Augment(crop_size=28)
    args = (tmp_path, state, meta["fold_names"], config, meta["class_names"], dataset)
    export.write(*args, aug=aug)
    after = export.load(tmp_path)
    assert after.meta == meta
    jax.tree_util.tree_map(np.testing.assert_array_equal, after.variables, before.variables)

    def interrupted(path, tree):
        (path / "partial").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "_save_state", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.write(*args, aug=aug)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"]  # no temporary left
    jax.tree_util.tree_map(
        np.testing.assert_array_equal, export.load(tmp_path).variables, before.variables
    )


def test_a_cached_frozen_trunk_exports_the_whole_model(tfds_dir, tmp_path):
    """AMAN with `train.cache_frozen_trunk`: the trunk saved once, each fold's head; `load`
    joins them into the full model's variables (as the model's own `join_variables`)."""
    from mer_jax.models import aman

    config = config_lib.base()
    config.dataset, config.data_dir = DATASET, tfds_dir
    config.input.representation, config.input.image_size = "aman_stack", 16
    config.input.num_frames, config.input.factors = 2, (1, 3)
    config.model = "aman"
    config.model_kwargs.width = 4
    config.model_kwargs.frozen_through = "layer2"
    shape = (2, 2, 16, 16, 3)
    model = models.build("aman", 3, width=4, frozen_through="layer2")
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *shape))))
    rng = np.random.default_rng(0)
    variables = jax.tree_util.tree_map(
        lambda s: rng.standard_normal(s.shape).astype(np.float32), variables
    )
    trunk, head = aman.split_variables(variables)
    heads = [jax.tree_util.tree_map(lambda v, k=k: v + k, head) for k in range(3)]
    stacked = jax.tree_util.tree_map(lambda *v: np.stack(v), *heads)
    params = stacked.pop("params")
    state = types.SimpleNamespace(params=params, model_state=stacked)
    dataset = type("Dataset", (), {"images": np.zeros((1, *shape), np.uint8)})()
    names = ["a", "b", "c"]
    export.write(tmp_path, state, names, config, ["x", "y", "z"], dataset, trunk_variables=trunk)
    exported = export.load(tmp_path)
    assert exported.meta["model"]["layout"] == "trunk_head"
    assert exported.meta["input"]["model_input_shape"] == list(shape)
    for f in range(3):
        expected = aman.join_variables(trunk, heads[f])
        jax.tree_util.tree_map(np.testing.assert_array_equal, exported.fold_variables(f), expected)


def test_a_final_model_trains_beside_the_folds_without_changing_them(swept, tfds_dir, tmp_path):
    """`train.final_model`: one more model on every subject, in the same run; the folds'
    results are exactly the sweep's without it, and predict uses it by default."""
    _, plain = swept
    config = config_lib.load(f"{ROOT / 'experiments' / 'quickstart.py'}:tiny")
    config.unlock()
    config.data_dir, config.train.epochs = tfds_dir, 1
    config.report.attention_maps, config.train.final_model = 0, True
    results = sweep.run(config, tmp_path, progress=False, log=_quiet)
    assert results["final_model"] == {"name": export.FINAL_MODEL, "diverged_epoch": None}
    for key in ("metrics", "folds", "predictions", "history", "num_folds"):
        assert results[key] == plain[key], key
    exported = export.load(tmp_path)
    names = [f["subject"] for f in plain["folds"]]
    assert list(exported.fold_names) == [*names, export.FINAL_MODEL]
    final = predict.predict(tmp_path, DATASET, log=_quiet)
    assert final.combined == f"the final model ({export.FINAL_MODEL})"
    assert final.folds == (export.FINAL_MODEL,)
    # A model of its own: not any fold's, not their mean.
    mean = predict.predict(swept[0], DATASET, log=_quiet)
    assert not np.allclose(final.probabilities, mean.probabilities, rtol=1e-3, atol=1e-4)
