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


# ---------------------------------------------------------------------------
# Several seeds in one job.
# ---------------------------------------------------------------------------
HEADLINE = ("accuracy", "uf1", "uar", "war")
SUBJECTS = ["casme2/s01", "casme2/s02", "samm/006", "samm/007"]
SIZES = [9, 7, 6, 8]


def _mean_sd(values):
    return float(np.mean(values)), float(np.std(values, ddof=1))


def _multi_seed_results(seeds=(0, 1, 2)):
    """What a sweep of several `seeds` writes: per-seed metrics of different predictions of
    the same clips, the headline numbers their mean and sample sd; a hold-out validation
    split, a pretrained start; seed 2 has a diverged fold."""
    rng = np.random.default_rng(7)
    sources = np.repeat([s.split("/")[0] for s in SUBJECTS], SIZES)
    y_true = rng.integers(0, 3, sum(SIZES))
    per_seed, folds, preds = [], [], []
    for seed in seeds:
        pred = np.where(rng.random(y_true.size) < 0.5 + 0.1 * seed, y_true, rng.integers(0, 3))
        preds.append(pred)
        pooled = metrics.pooled_metrics(y_true, pred, CLASS_NAMES, groups=sources)
        diverged = [{"fold": 1, "subject": SUBJECTS[1], "epoch": 2, "seed": seed}] * (seed == 2)
        history = {
            "epoch": [1, 2],
            "train_loss": [1.0 - 0.1 * seed, 0.5],
            "heldout_uar": [0.3, 0.5],
        }
        per_seed.append(
            {
                "seed": seed,
                "metrics": dict(pooled["overall"], complete=not diverged),
                "metrics_by_source": pooled["by_group"],
                "diverged_folds": diverged,
                "history": history,
            }
        )
        for fold, subject in enumerate(SUBJECTS):
            mine = np.repeat(np.arange(4), SIZES) == fold
            folds.append(
                {
                    "fold": fold,
                    "subject": subject,
                    "seed": seed,
                    "num_train": sum(SIZES) - SIZES[fold],
                    "num_test": SIZES[fold],
                    "accuracy": float(np.mean(pred[mine] == y_true[mine])),
                    "final_train_loss": 0.3 + 0.01 * seed,
                    "validation_subjects": [subject],
                    "best_epoch": 1 + (fold + seed) % 2,
                    "stopped_epoch": 2 if fold == 3 else None,
                }
            )
    everything = metrics.pooled_metrics(
        np.tile(y_true, len(seeds)),
        np.concatenate(preds),
        CLASS_NAMES,
        groups=np.tile(sources, len(seeds)),
    )
    overall, by_source = everything["overall"], everything["by_group"]
    overall_sd, by_source_sd = {}, {source: {} for source in by_source}
    for key in HEADLINE:
        overall[key], overall_sd[key] = _mean_sd([e["metrics"][key] for e in per_seed])
        for source in by_source:
            values = [e["metrics_by_source"][source][key] for e in per_seed]
            by_source[source][key], by_source_sd[source][key] = _mean_sd(values)
    results = _results()
    results.update(
        seed=seeds[0],
        seeds=list(seeds),
        metrics=dict(overall, aggregation="mean over seeds"),
        metrics_sd=overall_sd,
        metrics_by_source=by_source,
        metrics_by_source_sd=by_source_sd,
        per_seed=per_seed,
        folds=folds,
        diverged_folds=[d for e in per_seed for d in e["diverged_folds"]],
        predictions={"label": np.tile(y_true, len(seeds)), "pred": np.concatenate(preds),
                     "seed": np.repeat(seeds, y_true.size)},
        validation={"kind": "holdout", "subjects_per_fold": 1, "fraction": None,
                    "early_stopping": 5, "plateau": True, "monitor": "validation loss"},
        init={"pretrained": "weights/imagenet.msgpack", "source": "runs/a (seed 0)", "loaded_leaves": 40,
              "fresh_leaves": ["head/kernel", "head/bias"], "frozen": ["stem/conv"]},
    )  # fmt: skip
    results["history"] = dict(results["history"], val_loss=[0.9, 0.8, 0.85])
    results["history"]["val_accuracy"] = [0.5, 0.6, np.float32(0.55)]
    return results


def _row(*cells) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def test_multi_seed_report_gives_mean_sd_per_seed_rows_and_the_spread_figure(tmp_path):
    results = _multi_seed_results()
    paths = report.write_report(results, tmp_path)
    assert paths["seeds"] == tmp_path / "seeds.png"
    summary = paths["summary"].read_text()

    # Headline: mean ± sd (ddof=1) over the seeds, computed here from the per-seed values.
    per_seed = [entry["metrics"] for entry in results["per_seed"]]
    cells = ["{:.4f} ± {:.4f}".format(*_mean_sd([m[key] for m in per_seed])) for key in HEADLINE]
    assert "## Metrics (mean ± sd over 3 seeds)" in summary
    assert _row(*cells, results["metrics"]["num_samples"]) in summary
    assert results["metrics"]["num_samples"] == 3 * sum(SIZES)
    assert "seeds: 0, 1, 2" in summary
    # Per-seed table, and per seed and source.
    for entry in results["per_seed"]:
        m = entry["metrics"]
        status = "incomplete (diverged: casme2/s02)" if entry["seed"] == 2 else "complete"
        numbers = [f"{m[key]:.4f}" for key in HEADLINE]
        assert _row(entry["seed"], *numbers, m["num_samples"], status) in summary
        for source, sm in entry["metrics_by_source"].items():
            numbers = [f"{sm[key]:.4f}" for key in HEADLINE]
            assert _row(entry["seed"], source, *numbers, sm["num_samples"]) in summary
    assert "**Incomplete**: diverged folds casme2/s02 (seed 2, epoch 2) are not pooled." in summary
    # Per source: mean ± sd over seeds.
    for source in ("casme2", "samm"):
        values = [e["metrics_by_source"][source] for e in results["per_seed"]]
        cells = ["{:.4f} ± {:.4f}".format(*_mean_sd([v[k] for v in values])) for k in HEADLINE]
        assert f"| {source} | {' | '.join(cells)} |" in summary
    # Folds: a seed column and the validation columns; history: the validation series.
    assert "| Seed | Fold | Subject |" in summary and "| Best epoch | Stopped |" in summary
    fold = results["folds"][4 + 3]  # seed 1, fold 3: stopped early
    accuracy = f"{fold['accuracy']:.4f}"
    assert _row(1, 3, "samm/007", 22, 8, accuracy, "0.3100", 1, 2, "samm/007") in summary
    assert "| 0 | 0 | casme2/s01 | 21 | 9 |" in summary and "| 1 | - | casme2/s01 |" in summary
    assert "| Epoch | train_loss | heldout_uar | val_loss | val_accuracy |" in summary
    assert "| 3 | 0.4000 | 0.5000 | 0.8500 | 0.5500 |" in summary
    # Validation and initialisation.
    assert FINAL_NOTE not in summary and "the epoch with the best validation loss" in summary
    assert "**Validation:** hold-out split, 1 subject per fold" in summary
    assert "those of the validation split that also picked the weights" in summary
    assert (
        "early stopping: patience 5 · learning rate lowered on validation loss plateaus" in summary
    )
    assert "- Pretrained weights: `weights/imagenet.msgpack` (from `runs/a (seed 0)`)" in summary
    assert "- Leaves loaded: 40" in summary
    assert "- Leaves initialised fresh (2): `head/kernel`, `head/bias`" in summary
    assert "- Frozen parameters (1): `stem/conv`" in summary
    # The spread figure, linked from the summary.
    assert "![spread over seeds](seeds.png)" in summary
    pixels = mpimg.imread(paths["seeds"])
    assert pixels.ndim == 3 and min(pixels.shape[:2]) >= 300 and pixels.std() > 0.01


def test_multi_seed_results_round_trip_through_json(tmp_path):
    results = _multi_seed_results()
    path = tmp_path / "results.json"
    report.write_results_json(results, path)
    loaded = json.loads(path.read_text())
    assert loaded == report.to_plain_json(results)
    assert loaded["seeds"] == [0, 1, 2] and loaded["seed"] == 0
    assert [e["seed"] for e in loaded["per_seed"]] == [0, 1, 2]
    assert loaded["per_seed"][2]["diverged_folds"][0]["seed"] == 2
    assert loaded["metrics_sd"]["uar"] == pytest.approx(
        np.std([e["metrics"]["uar"] for e in results["per_seed"]], ddof=1)
    )
    assert set(loaded["metrics_by_source_sd"]) == {"casme2", "samm"}
    assert loaded["predictions"]["seed"] == [s for s in (0, 1, 2) for _ in range(sum(SIZES))]
    assert loaded["folds"][5]["seed"] == 1 and loaded["folds"][0]["stopped_epoch"] is None
    assert loaded["validation"]["fraction"] is None and loaded["init"]["loaded_leaves"] == 40
    assert loaded["history"]["val_accuracy"][2] == pytest.approx(0.55)
    # write_report adds only the figure's record.
    written = json.loads(report.write_report(results, tmp_path / "wd")["results"].read_text())
    assert written == {**loaded, "seed_spread": {"figure": "seeds.png"}}


def test_a_failing_spread_figure_is_noted_not_fatal(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no canvas")

    monkeypatch.setattr(report, "plot_seed_spread", broken)
    paths = report.write_report(_multi_seed_results(), tmp_path)
    assert "seeds" not in paths and not (tmp_path / "seeds.png").exists()
    record = json.loads(paths["results"].read_text())["seed_spread"]
    assert record == {"figure": None, "figure_error": "RuntimeError: no canvas"}
    assert "could not be drawn: RuntimeError: no canvas" in paths["summary"].read_text()


def test_one_seed_in_the_new_keys_renders_as_a_single_seed_run(tmp_path):
    results = _results()
    entry = {"seed": 0, "metrics": results["metrics"], "metrics_by_source": {}}
    with_keys = {**results, "seeds": [0], "per_seed": [entry]}
    assert report.summary_markdown(with_keys) == report.summary_markdown(results)
    summary = report.summary_markdown(results)
    assert "±" not in summary and "## Seeds" not in summary and "Seed |" not in summary
    assert "seed: 0" in summary and FINAL_NOTE in summary
    paths = report.write_report(with_keys, tmp_path)
    assert "seeds" not in paths and not (tmp_path / "seeds.png").exists()
    assert "seed_spread" not in json.loads(paths["results"].read_text())


FINAL_NOTE = "no model selection on held-out subjects"


def test_inner_validation_missing_values_and_no_pretrained_weights():
    results = _multi_seed_results(seeds=(3, 4))
    results["validation"] = {"kind": "inner", "subjects_per_fold": None, "fraction": 0.25,
                             "early_stopping": 0, "monitor": "validation loss"}  # fmt: skip
    results["init"] = {"pretrained": "", "loaded_leaves": 0, "fresh_leaves": [], "frozen": []}
    results["per_seed"][1]["metrics"]["uf1"] = None
    results["metrics_sd"]["uar"] = float("nan")
    summary = report.summary_markdown(results)
    assert "**Validation:** inner split" in summary and "fraction 0.25" in summary
    assert "early stopping: off" in summary and "never pick the weights" in summary
    assert "plateaus" not in summary and "(best epoch)" not in summary
    assert "also picked the weights" not in summary
    assert "- Pretrained weights: none" in summary and "fresh (0): none" in summary
    assert f"{results['metrics']['uar']:.4f} ± n/a" in summary
    assert "## Metrics (mean ± sd over 2 seeds)" in summary
    m = results["per_seed"][1]["metrics"]
    assert _row(4, f"{m['accuracy']:.4f}", "n/a", f"{m['uar']:.4f}") in summary


def test_plot_seed_spread_with_missing_values_and_default_mean_sd(tmp_path):
    per_seed = [{"metrics": {"uf1": 0.5, "uar": 0.6, "accuracy": 0.55}}, {"metrics": {"uf1": 0.7}}]
    path = tmp_path / "seeds.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report.plot_seed_spread(per_seed, path)
    assert mpimg.imread(path).std() > 0.01


def test_gradcam_column_beside_the_attention_maps_each_row_scaled_to_its_max(tmp_path):
    """Grad-CAM's scale follows the logits: a row scaled by 1024 draws the same picture,
    where a map sharing one range over the rows (the attention maps) does not."""
    rng = np.random.default_rng(0)
    cam = rng.random((2, 8, 8, 1))
    mask = rng.random((2, 4, 4, 1))
    inputs, labels = rng.random((2, 8, 8)), np.array([0, 1])
    pictures = {}
    for name, maps in {
        "same": {"mask": mask, "gradcam": cam},
        "scaled": {"mask": mask, "gradcam": cam * np.array([1.0, 1024.0])[:, None, None, None]},
        "mask_scaled": {
            "mask": mask * np.array([1.0, 1000.0])[:, None, None, None],
            "gradcam": cam,
        },
    }.items():
        path = tmp_path / f"{name}.png"
        skipped = report.plot_attention_maps(maps, path, inputs=inputs, labels=labels, per_class=1)
        assert skipped == []
        pictures[name] = mpimg.imread(path)
    assert pictures["same"].shape[:2] == (2 * 220, 3 * 220)  # input, mask, Grad-CAM
    np.testing.assert_array_equal(pictures["scaled"], pictures["same"])
    assert np.abs(pictures["mask_scaled"] - pictures["same"]).max() > 0.1


def test_summary_describes_the_gradcam_maps():
    record = {
        "figure": "attention_maps.png", "per_class": 2, "num_examples": 2,
        "maps": {"attention_1": {"shape": [4, 4, 1]}, "gradcam": {"shape": [16, 16, 1]}},
        "gradcam": {"layer": "head_bn", "class": "predicted", "reduction": "per image"},
    }  # fmt: skip
    summary = report.summary_markdown({"model": "m", "attention_maps": record})
    assert "| gradcam | 16 x 16 x 1 | overlay on the input (each row / its max) |" in summary
    assert "| attention_1 | 4 x 4 x 1 | overlay on the input (channel mean) |" in summary
    assert (
        "Grad-CAM (Selvaraju et al., ICCV 2017, Eq. 1-2) of the predicted class at layer "
        "`head_bn`, by the same fold as the maps beside it" in summary
    )
    del record["gradcam"], record["maps"]["gradcam"]
    assert "Grad-CAM" not in report.summary_markdown({"model": "m", "attention_maps": record})
