"""The results dict of a finished sweep (results.json; `report.py` renders it).

`seed_results` scores one seed's folds: predictions pooled over folds ->
metrics, per fold, per source, learning curves. `combine` joins the seeds of a
sweep: every metric as the mean over seeds with its sample sd (ddof 1), each
seed's own numbers in `per_seed`, and folds, predictions and diverged folds of
every seed with a `seed` key (seed 002 Sec. 4.2 reports the mean of at least
ten runs; one run's figure is noise on datasets this small).
"""

import numpy as np

from mer_jax import export, metrics, protocols
from mer_jax.metrics import HEADLINE


def scored(out, f: int) -> np.ndarray:
    """Fold f's test positions that are scored: valid ones, none if the fold diverged."""
    return out.test_valid[f] & (out.diverged_epoch[f] < 0)


def pooled_probabilities(out) -> np.ndarray:
    """(M, K) float32 class probabilities (`export.softmax`) of the predictions of
    `pooled_predictions`, in the same order."""
    probs = [export.softmax(out.logits[f][scored(out, f)]) for f in range(out.logits.shape[0])]
    return np.concatenate(probs)


def pooled_predictions(out):
    """(sample index, fold, predicted class) of every held-out prediction, fold by fold.

    Diverged folds (`out.diverged_epoch` >= 0) predict nothing: their weights are
    those of an interrupted training, so the pooled metrics leave them out.
    """
    index, fold, pred = [], [], []
    for f in range(out.logits.shape[0]):
        valid = scored(out, f)
        index.append(out.test_idx[f][valid])
        fold.append(np.full(valid.sum(), f))
        pred.append(out.logits[f][valid].argmax(-1))
    return np.concatenate(index), np.concatenate(fold), np.concatenate(pred)


def _fold_entries(dataset, table: protocols.FoldTable, out, y_true, fold, pred) -> list[dict]:
    """One dict per fold: its subject, sizes, accuracy, validation split and epochs."""
    entries, validation = [], table.validation()
    for f, name in enumerate(table.names):
        mine, diverged = fold == f, int(out.diverged_epoch[f])
        entry = {
            "fold": f,
            "subject": name,
            "num_train": int(table.train_mask[f].sum()),
            "num_test": int(np.sum(out.test_valid[f])),
            "accuracy": float(np.mean(pred[mine] == y_true[mine])) if mine.any() else None,
            "final_train_loss": float(out.train_loss[-1, f]),
        }
        if diverged >= 0:  # counted from 1, like the history's epochs
            entry["diverged_epoch"] = diverged + 1
        if validation[f].any():
            entry["validation_subjects"] = sorted(set(dataset.subjects[validation[f]].tolist()))
            entry["best_epoch"] = int(out.best_epoch[f]) + 1 if out.best_epoch[f] >= 0 else None
            stopped = int(out.stopped_epoch[f])
            entry["stopped_epoch"] = stopped + 1 if stopped >= 0 else None
        if table.per_fold_metrics and diverged < 0:
            entry["metrics"] = metrics.classification_metrics(
                y_true[mine], pred[mine], dataset.class_names
            )
        entries.append(entry)
    return entries


def _history(out, y_true, dataset, per_call: int) -> dict:
    """Learning curves after each call: training loss (healthy folds' mean), held-out UAR
    (curves only, never used to pick a model) and, with validation splits, their loss and
    accuracy."""
    heldout_uar = []
    for preds in out.heldout_pred_history:
        p = np.concatenate([preds[f][scored(out, f)] for f in range(len(preds))])
        heldout_uar.append(metrics.classification_metrics(y_true, p, dataset.class_names)["uar"])
    healthy = out.diverged_epoch < 0
    rows = healthy if healthy.any() else np.eye(len(healthy), dtype=bool)[0]
    at_calls = lambda x: x[:, rows].mean(axis=1)[per_call - 1 :: per_call].tolist()
    history = {
        "epoch": [per_call * (i + 1) for i in range(len(heldout_uar))],
        "train_loss": at_calls(out.train_loss),
        "heldout_uar": heldout_uar,
    }
    if out.val_loss is not None:
        history["val_loss"] = at_calls(out.val_loss)
        history["val_accuracy"] = at_calls(out.val_accuracy)
    return history


def seed_results(config, dataset, table: protocols.FoldTable, out, seed: int) -> dict:
    """One seed's scores: metrics, metrics_by_source, folds, diverged_folds, predictions,
    history (`out`: that seed's protocol folds, `engine.FoldsOutput.select`)."""
    index, fold, pred = pooled_predictions(out)
    y_true = dataset.labels[index]
    sources = dataset.sources[index]
    pooled = metrics.pooled_metrics(y_true, pred, dataset.class_names, groups=sources)
    folds = _fold_entries(dataset, table, out, y_true, fold, pred)
    summary = pooled["overall"]
    if table.per_fold_metrics:
        # Cross-dataset tasks (HDE, CDMER) are scored one task at a time; the headline is
        # their mean (a sample may be tested by several tasks, so pooling would double count).
        scored_folds = [f for f in folds if "metrics" in f]
        summary = {k: float(np.mean([f["metrics"][k] for f in scored_folds])) for k in HEADLINE}
        summary["aggregation"] = "mean over folds"
        summary["absent_classes"] = sorted(
            {c for f in scored_folds for c in f["metrics"]["absent_classes"]}
        )
    if table.tasks:  # seed 002 CDMER five-fold: a task's folds pooled, then the mean over tasks
        tasks = np.asarray(table.tasks)[fold]
        by_task = metrics.pooled_metrics(y_true, pred, dataset.class_names, groups=tasks)
        by_task = by_task["by_group"]
        summary = {k: float(np.mean([m[k] for m in by_task.values()])) for k in HEADLINE}
        summary["aggregation"] = "mean over tasks"
        summary["absent_classes"] = sorted(
            {c for m in by_task.values() for c in m["absent_classes"]}
        )
        summary["by_task"] = by_task
    summary["complete"] = not np.any(out.diverged_epoch >= 0)
    return {
        "seed": seed,
        "metrics": summary,
        "metrics_by_source": pooled["by_group"] if len(set(sources.tolist())) > 1 else {},
        "folds": folds,
        "diverged_folds": [
            {"seed": seed, "fold": f["fold"], "subject": f["subject"], "epoch": f["diverged_epoch"]}
            for f in folds
            if "diverged_epoch" in f
        ],
        "predictions": {
            "clip": dataset.clips[index].tolist(),
            "subject": dataset.subjects[index].tolist(),
            "label": y_true.tolist(),
            "pred": pred.tolist(),
            "prob": pooled_probabilities(out).tolist(),
        },
        "history": _history(out, y_true, dataset, config.train.epochs_per_call),
    }


def _mean_sd(values: list[dict]) -> tuple[dict, dict]:
    """(mean, sample sd) over seeds of each headline metric of `values` (metrics dicts)."""
    table = {k: np.array([v[k] for v in values], float) for k in HEADLINE}
    mean = {k: float(x.mean()) for k, x in table.items()}
    sd = {k: float(x.std(ddof=1)) for k, x in table.items()} if len(values) > 1 else {}
    return mean, sd


def _pooled_over_seeds(per_seed: list[dict], dataset) -> tuple[dict, dict]:
    """(metrics, metrics_by_source) of every seed's predictions pooled: per-class numbers and
    confusion matrices summed over seeds, the headline numbers the mean over seeds."""
    y = np.concatenate([r["predictions"]["label"] for r in per_seed]).astype(int)
    p = np.concatenate([r["predictions"]["pred"] for r in per_seed]).astype(int)
    source_of = dict(zip(dataset.clips.tolist(), dataset.sources.tolist()))
    sources = np.array([source_of[c] for r in per_seed for c in r["predictions"]["clip"]])
    pooled = metrics.pooled_metrics(y, p, dataset.class_names, groups=sources)
    summary = {**pooled["overall"], **_mean_sd([r["metrics"] for r in per_seed])[0]}
    first = per_seed[0]["metrics"].get("aggregation")  # 'mean over folds' or '... tasks'
    summary["aggregation"] = f"{first}, then over seeds" if first else "mean over seeds"
    summary["absent_classes"] = sorted(
        {c for r in per_seed for c in r["metrics"]["absent_classes"]}
    )
    summary["complete"] = all(r["metrics"]["complete"] for r in per_seed)
    by_source = {}
    for source, m in pooled["by_group"].items() if per_seed[0]["metrics_by_source"] else ():
        means = _mean_sd([r["metrics_by_source"][source] for r in per_seed])[0]
        by_source[source] = {**m, **means}
    return summary, by_source


def combine(per_seed: list[dict], dataset) -> dict:
    """The results keys that pool the seeds (module docstring); one seed: its own numbers."""
    seeds = [r["seed"] for r in per_seed]
    out = {
        "seeds": seeds,
        "seed": seeds[0],
        "per_seed": [
            {k: r[k] for k in ("seed", "metrics", "metrics_by_source", "diverged_folds", "history")}
            for r in per_seed
        ],
        "folds": [{"seed": r["seed"], **f} for r in per_seed for f in r["folds"]],
        "diverged_folds": [d for r in per_seed for d in r["diverged_folds"]],
        "predictions": {
            key: [v for r in per_seed for v in r["predictions"][key]]
            for key in per_seed[0]["predictions"]
        },
    }
    out["predictions"]["seed"] = [r["seed"] for r in per_seed for _ in r["predictions"]["label"]]
    if len(per_seed) == 1:
        only = per_seed[0]
        return {**out, "metrics": only["metrics"], "metrics_by_source": only["metrics_by_source"],
                "history": only["history"]}  # fmt: skip
    out["metrics"], out["metrics_by_source"] = _pooled_over_seeds(per_seed, dataset)
    out["metrics_sd"] = _mean_sd([r["metrics"] for r in per_seed])[1]
    out["metrics_by_source_sd"] = {
        source: _mean_sd([r["metrics_by_source"][source] for r in per_seed])[1]
        for source in out["metrics_by_source"]
    }
    histories = [r["history"] for r in per_seed]
    out["history"] = {
        key: (
            histories[0][key]
            if key == "epoch"
            else np.mean([h[key] for h in histories], 0).tolist()
        )
        for key in histories[0]
    }
    return out
