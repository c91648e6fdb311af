"""`mer-jax` end to end: a tiny LOSO sweep through the CLI, its outputs, determinism and errors."""

import json
import pathlib

import numpy as np
import pytest
from sklearn import metrics as sk

from mer_jax import cli
from mer_jax.errors import UserError

TINY = f"{pathlib.Path(__file__).parents[1] / 'experiments' / 'quickstart.py'}:tiny"


def _sweep(workdir, tfds_dir, *extra):
    argv = ["sweep", TINY, "--workdir", str(workdir), "--no-progress", "--no-compile-cache"]
    argv += ["--set", f"data_dir={tfds_dir}", *extra]
    assert cli.main(argv) == 0
    return json.loads((workdir / "results.json").read_text())


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, tfds_dir):
    """The tiny sweep twice with the same seed (determinism) in separate work dirs."""
    root = tmp_path_factory.mktemp("sweeps")
    return root, [_sweep(root / f"run{i}", tfds_dir) for i in range(2)]


def test_sweep_writes_results_summary_and_plot(tiny_runs):
    root, (results, _) = tiny_runs
    for key in (
        "model",
        "dataset",
        "protocol",
        "num_folds",
        "metrics",
        "folds",
        "timing",
        "device",
    ):
        assert key in results, key
    assert results["model"] == "micro_attention"
    assert results["dataset"] == "synthetic_me/tiny"
    assert results["protocol"] == "loso"
    # tiny: 2 SMIC-like + 2 SAMM-like subjects -> 4 folds, 24 clips.
    assert results["num_folds"] == 4 == len(results["folds"])
    assert {f["subject"] for f in results["folds"]} == set(results["predictions"]["subject"])
    assert set(results["timing"]) >= {"compile_s", "train_s", "images_per_s"}
    assert results["timing"]["images_per_s"] > 0
    assert results["device"]["platform"] == "cpu"
    for name in ("summary.md", "confusion_matrix.png"):
        assert (root / "run0" / name).stat().st_size > 0, name
    summary = (root / "run0" / "summary.md").read_text()
    assert "UAR" in summary and "micro_attention" in summary


def test_every_clip_predicted_once_and_metrics_match_sklearn(tiny_runs):
    _, (results, _) = tiny_runs
    preds = results["predictions"]
    assert len(preds["clip"]) == len(set(preds["clip"])) == 24
    # Each fold predicts exactly its held-out subject's clips.
    for fold in results["folds"]:
        assert fold["num_test"] == preds["subject"].count(fold["subject"])
        assert fold["num_train"] == 24 - fold["num_test"]
    y, p = np.array(preds["label"]), np.array(preds["pred"])
    m = results["metrics"]
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(y, p))
    assert m["war"] == pytest.approx(sk.accuracy_score(y, p))
    assert m["uar"] == pytest.approx(sk.recall_score(y, p, average="macro", labels=[0, 1, 2]))
    assert m["uf1"] == pytest.approx(
        sk.f1_score(y, p, average="macro", labels=[0, 1, 2], zero_division=0)
    )
    # Composite corpus: per-source breakdown, each on its own clips.
    assert set(results["metrics_by_source"]) == {"smic", "samm"}
    subjects = np.array(preds["subject"])
    for source, sm in results["metrics_by_source"].items():
        mine = np.char.startswith(subjects.astype(str), f"{source}/")
        assert sm["accuracy"] == pytest.approx(sk.accuracy_score(y[mine], p[mine]))


def test_same_config_and_seed_give_the_same_results(tiny_runs):
    _, (first, second) = tiny_runs
    assert first["predictions"] == second["predictions"]
    assert first["metrics"] == second["metrics"]
    assert [f["final_train_loss"] for f in first["folds"]] == [
        f["final_train_loss"] for f in second["folds"]
    ]


def test_set_overrides_reach_the_results(tmp_path, tfds_dir):
    results = _sweep(tmp_path, tfds_dir, "--set", "train.epochs=1", "--set", "seed=3")
    assert results["config"]["train.epochs"] == 1 and results["seed"] == 3
    assert len(results["history"]["heldout_uar"]) == 1


@pytest.mark.parametrize(
    "setting, named",
    [
        ("train.epoch=3", "train.epoch"),
        ("model_kwargs.widht=8", "model_kwargs.widht"),
        ("input.representation=nope", "input.representation"),
        ("train.epochs", "expected key=value"),
    ],
)
def test_bad_config_keys_fail_naming_the_key(tmp_path, tfds_dir, capsys, setting, named):
    argv = ["sweep", TINY, "--workdir", str(tmp_path), "--no-progress", "--no-compile-cache"]
    assert cli.main([*argv, "--set", f"data_dir={tfds_dir}", "--set", setting]) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_missing_config_file_is_a_clear_error(capsys):
    assert cli.main(["sweep", "experiments/no_such_file.py"]) == 2
    assert "experiments/no_such_file.py" in capsys.readouterr().err


@pytest.fixture
def no_data_no_compile(monkeypatch):
    """A sweep that reaches data loading, the work dir or training fails the test."""

    def called(what):
        def fail(*args, **kwargs):
            raise AssertionError(f"{what} called before the config was checked")

        return fail

    monkeypatch.setattr("mer_jax.data.load", called("data.load"))
    monkeypatch.setattr("mer_jax.engine.train_folds", called("engine.train_folds"))
    monkeypatch.setattr("mer_jax.models.build", called("models.build"))


# (--set item, the key and value the one-line error names), one per class of bad value.
BAD_SETTINGS = [
    ("train.batch_size=0", "config key 'train.batch_size': 0 is not an integer >= 1"),
    ("train.epochs=0", "config key 'train.epochs': 0 is not an integer >= 1"),
    ("train.epochs_per_call=0", "config key 'train.epochs_per_call': 0 is not an integer >= 1"),
    ("train.epochs_per_call=3", "'train.epochs_per_call': 3 is not a divisor of train.epochs 2"),
    ("train.folds_per_call=-1", "config key 'train.folds_per_call': -1 is not an integer >= 0"),
    ("train.dtype='float16'", "config key 'train.dtype': 'float16' is not one of"),
    ("model_kwargs.width=0", "config key 'model_kwargs.width': 0 is not an integer >= 1"),
    ("seed=4294967296", "config key 'seed': 4294967296 is not an integer in [0, 4294967295]"),
    ("optimizer.lr=-0.01", "config key 'optimizer.lr': -0.01 is not a number > 0"),
    ("augment.crop_size=0", "config key 'augment.crop_size': 0 is not None or an integer >= 1"),
    ("report.attention_maps=-1", "config key 'report.attention_maps': -1 is not an integer >= 0"),
    ("model=resnet", "config key 'model': 'resnet' is not one of"),
    ("protocol=loocv", "config key 'protocol': 'loocv' is not one of"),
    ("init.pretrained=/no/such.npz", "config key 'init.pretrained': '/no/such.npz' does not exist"),
]


@pytest.mark.parametrize("setting, says", BAD_SETTINGS, ids=[s for s, _ in BAD_SETTINGS])
def test_bad_values_exit_2_naming_the_key_before_any_data_or_compiling(
    tmp_path, capsys, no_data_no_compile, setting, says
):
    workdir = tmp_path / "run"
    argv = ["sweep", TINY, "--workdir", str(workdir), "--no-progress", "--no-compile-cache"]
    # The data dir does not exist: the key's error must come before any data is looked for.
    argv += ["--set", f"data_dir={tmp_path / 'no_data_here'}", "--set", setting]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mer-jax: error: ") and says in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not workdir.exists() and not (tmp_path / "no_data_here").exists()


def test_a_data_dir_that_is_a_file_is_a_one_line_error(tmp_path, capsys, no_data_no_compile):
    a_file = tmp_path / "data"
    a_file.write_text("")
    argv = ["sweep", TINY, "--workdir", str(tmp_path / "run"), "--set", f"data_dir={a_file}"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == (
        f"mer-jax: error: config key 'data_dir': {str(a_file)!r} is a file, not a directory\n"
    )


def test_a_config_file_with_a_syntax_error_is_one_line_naming_file_and_line(tmp_path, capsys):
    path = tmp_path / "x.py"
    path.write_text("def get_config(arg=None):\n    c = (\n    return c\n")
    assert cli.main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mer-jax: error: {path}:2: ") and err.count("\n") == 1, err


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_of_a_user_error(tmp_path, no_data_no_compile, where):
    argv = ["sweep", TINY, "--workdir", str(tmp_path), "--set", "train.batch_size=0"]
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    with pytest.raises(UserError, match="config key 'train.batch_size'"):
        cli.main(argv)


@pytest.mark.parametrize("bug", [KeyError, TypeError, IndexError, AttributeError, RuntimeError])
def test_bugs_keep_their_traceback(monkeypatch, capsys, bug):
    def broken():
        raise bug("a bug")

    monkeypatch.setattr("mer_jax.models.catalogue", broken)
    with pytest.raises(bug):
        cli.main(["models"])
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("expected", [ValueError, UserError, FileNotFoundError, PermissionError,
                                      NotADirectoryError, IsADirectoryError])  # fmt: skip
def test_expected_errors_are_one_line_and_exit_2(monkeypatch, capsys, expected):
    def refuse():
        raise expected("a user's mistake")

    monkeypatch.setattr("mer_jax.models.catalogue", refuse)
    assert cli.main(["models"]) == 2
    assert capsys.readouterr().err == "mer-jax: error: a user's mistake\n"


def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr("mer_jax.models.catalogue", interrupted)
    assert cli.main(["models"]) == 130
    assert capsys.readouterr().err == "mer-jax: interrupted\n"
    with pytest.raises(KeyboardInterrupt):
        cli.main(["--debug", "models"])


def test_models_json_lists_every_ablation_with_its_parameter_count(capsys):
    assert cli.main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    mine = {r["ablation"]: r for r in rows if r["model"] == "micro_attention"}
    assert mine["micro_attention"]["params"] == 5_944_775
    assert mine["resnet10"]["params"] == 4_900_295
    assert mine["resnet10"]["input_shape"] == [224, 224, 1]
    for row in rows:
        assert row["params"] > 0 and row["num_classes"] > 0, row


def test_data_list_json_names_the_synthetic_configs(capsys):
    assert cli.main(["data", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    synthetic = rows["synthetic_me"]
    assert not synthetic["needs_manual_dir"]
    assert {"casme2", "casme2_subtle", "megc2019", "megc2019_subtle", "tiny"} <= set(
        synthetic["configs"]
    )
