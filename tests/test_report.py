"""Tests for mer_jax.report: JSON round trip, Markdown content, PNG plots."""

import json
import math
import sys
import warnings

import numpy as np
import pytest
from matplotlib import image as mpimg

from mer_jax import metrics, report

CLASS_NAMES = ["negative", "positive", "surprise"]


def _results(*, drop_surprise_everywhere=False):
    """A realistic sweep result: 3 classes, 2 sources, 4 LOSO folds."""
    rng = np.random.default_rng(0)
    subjects = ["casme2/s01", "casme2/s02", "samm/006", "samm/007"]
    sizes = [9, 7, 6, 8]
    y_true, y_pred, sources = [], [], []
    for subject, size in zip(subjects, sizes):
        source = subject.split("/")[0]
        # SAMM gets no 'surprise' samples, so its breakdown has an absent class.
        num_true_classes = 2 if (source == "samm" or drop_surprise_everywhere) else 3
        true = rng.integers(0, num_true_classes, size)
        pred = np.where(rng.random(size) < 0.6, true, rng.integers(0, 3, size))
        y_true.append(true)
        y_pred.append(pred)
        sources += [source] * size
    y_true, y_pred = np.concatenate(y_true), np.concatenate(y_pred)
    pooled = metrics.pooled_metrics(y_true, y_pred, CLASS_NAMES, groups=sources)
    folds, start = [], 0
    for fold, (subject, size) in enumerate(zip(subjects, sizes)):
        stop = start + size
        folds.append(
            {
                "fold": fold,
                "subject": subject,
                "num_train": np.int64(sum(sizes) - size),  # NumPy scalars must convert.
                "num_test": size,
                "accuracy": np.float32(np.mean(y_true[start:stop] == y_pred[start:stop])),
                "final_train_loss": np.float32(0.4 - 0.05 * fold),
            }
        )
        start = stop
    return {
        "model": "micro_attention",
        "dataset": "synthetic_me/composite",
        "protocol": "loso",
        "num_folds": 4,
        "class_names": CLASS_NAMES,
        "seed": 0,
        "metrics": pooled["overall"],
        "metrics_by_source": pooled["by_group"],
        "folds": folds,
        "timing": {
            "compile_s": np.float64(12.3),
            "train_s": 100.0,
            "images_per_s": 600.0,
            "total_s": 130.0,
        },
        "device": {"platform": "cpu", "device_kind": "cpu", "num_devices": 1},
        "history": {
            "epoch": np.arange(1, 4),
            "train_loss": np.array([1.1, 0.7, 0.4], dtype=np.float32),
            "heldout_uar": [0.3, 0.4, 0.5],
        },
        "config": {
            "lr": 1e-3,
            "batch_size": 10,
            "model_name": "micro_attention",
            "crop": (224, 224),
        },
        "versions": {"mer_jax": "0.1.0", "jax": "0.6.0", "flax": "0.10.0"},
    }


def test_to_plain_json_converts_numpy():
    value = {
        "a": np.float32(0.5),
        "b": np.arange(3),
        "c": (np.int64(1), 2.0),
        "d": float("nan"),
        "e": np.bool_(True),
        1: np.array([[1.5]]),
    }
    converted = report.to_plain_json(value)
    assert converted == {
        "a": 0.5,
        "b": [0, 1, 2],
        "c": [1, 2.0],
        "d": None,
        "e": True,
        "1": [[1.5]],
    }
    assert type(converted["a"]) is float and type(converted["b"][0]) is int
    assert type(converted["e"]) is bool


def test_write_report_outputs(tmp_path):
    results = _results()
    workdir = tmp_path / "runs" / "sweep"  # Does not exist yet.
    paths = report.write_report(results, workdir)

    expected = {
        "results": workdir / "results.json",
        "summary": workdir / "summary.md",
        "confusion_matrix": workdir / "confusion_matrix.png",
        "confusion_matrix_casme2": workdir / "confusion_matrix_casme2.png",
        "confusion_matrix_samm": workdir / "confusion_matrix_samm.png",
    }
    assert paths == expected
    assert all(path.is_file() for path in paths.values())

    # results.json round-trips.
    loaded = json.loads(paths["results"].read_text())
    assert loaded == report.to_plain_json(results)
    assert loaded["folds"][0]["num_train"] == 21
    assert loaded["history"]["epoch"] == [1, 2, 3]
    assert loaded["metrics"]["uf1"] == pytest.approx(results["metrics"]["uf1"])
    assert loaded["timing"]["compile_s"] == 12.3

    # summary.md holds the formatted numbers, subjects and the absent-class call-out.
    summary = paths["summary"].read_text()
    assert "micro_attention" in summary and "synthetic_me/composite" in summary
    assert "loso" in summary
    pooled = results["metrics"]
    for key in ("accuracy", "uf1", "uar", "war"):
        assert f"{pooled[key]:.4f}" in summary
    for source_metrics in results["metrics_by_source"].values():
        assert f"{source_metrics['uf1']:.4f}" in summary
    for fold in results["folds"]:
        assert fold["subject"] in summary
        assert f"{float(fold['accuracy']):.4f}" in summary
    assert results["metrics_by_source"]["samm"]["absent_classes"] == ["surprise"]
    assert "Absent from the ground truth of samm:** surprise" in summary
    assert "final epoch" in summary and "no model selection on held-out subjects" in summary
    assert "| lr | 0.001 |" in summary
    assert "| crop | 224, 224 |" in summary
    assert "| compile_s | 12.3 |" in summary
    assert "| platform | cpu |" in summary

    for key in ("confusion_matrix", "confusion_matrix_casme2", "confusion_matrix_samm"):
        pixels = mpimg.imread(paths[key])
        assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 300
        assert pixels.std() > 0.01  # Not a blank canvas.


def test_pooled_absent_class_called_out_and_single_source_has_one_plot(tmp_path):
    results = _results(drop_surprise_everywhere=True)
    results["metrics_by_source"] = {"casme2": results["metrics_by_source"]["casme2"]}
    assert results["metrics"]["absent_classes"] == ["surprise"]
    paths = report.write_report(results, tmp_path)
    assert set(paths) == {"results", "summary", "confusion_matrix"}
    summary = paths["summary"].read_text()
    assert "**Absent from the ground truth:** surprise" in summary
    assert "| surprise (absent) | 0 |" in summary


def test_no_absent_note_when_all_classes_present():
    results = _results()
    results["metrics_by_source"] = {}
    assert results["metrics"]["absent_classes"] == []
    summary = report.summary_markdown(results)
    assert "Absent from the ground truth" not in summary
    assert "## Per source" not in summary


def test_summary_handles_nan_and_missing_values(tmp_path):
    results = _results()
    results["metrics"] = dict(results["metrics"], uf1=float("nan"))
    results["metrics"].pop("uar")
    results["folds"][1]["accuracy"] = None
    del results["folds"][2]["final_train_loss"]
    results["config"]["note"] = "a|b"
    for key in ("timing", "history", "versions"):
        del results[key]
    paths = report.write_report(results, tmp_path)
    summary = paths["summary"].read_text()
    acc = f"{results['metrics']['accuracy']:.4f}"
    war = f"{results['metrics']['war']:.4f}"
    assert f"| {acc} | n/a | n/a | {war} |" in summary
    assert "| 1 | casme2/s02 | 23 | 7 | n/a |" in summary
    assert "a\\|b" in summary  # A pipe in a value cannot break the table.
    # NaN becomes null: the file is strict JSON.
    text = paths["results"].read_text()
    assert "NaN" not in text
    assert json.loads(text)["metrics"]["uf1"] is None


def test_summary_of_nearly_empty_results():
    summary = report.summary_markdown({})
    assert summary.startswith("# n/a on n/a (n/a)")
    assert "| n/a | n/a | n/a | n/a |" in summary


def test_row_normalise_zero_support_row():
    cm = np.array([[3, 1, 0], [0, 0, 0], [2, 0, 2]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fractions = report.row_normalise(cm)
    np.testing.assert_allclose(fractions, [[0.75, 0.25, 0], [0, 0, 0], [0.5, 0, 0.5]])
    assert not np.isnan(fractions).any()


def test_plot_confusion_matrix_zero_row_without_warnings(tmp_path):
    cm = [[5, 1, 0], [0, 0, 0], [1, 2, 3]]
    path = tmp_path / "cm.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report.plot_confusion_matrix(cm, CLASS_NAMES, path, title="zero row")
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
    assert min(pixels.shape[:2]) >= 300
    # No pyplot figure left open (the plot uses Figure directly).
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_plot_confusion_matrix_rejects_mismatched_names(tmp_path):
    with pytest.raises(ValueError, match="class names"):
        report.plot_confusion_matrix(np.eye(3), ["a", "b"], tmp_path / "cm.png")


def test_format_number():
    assert report.format_number(0.123456) == "0.1235"
    assert report.format_number(np.float32(1)) == "1.0000"
    assert report.format_number(None) == "n/a"
    assert report.format_number(math.nan) == "n/a"
    assert report.format_number("x") == "n/a"
