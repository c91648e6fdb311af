"""Micro-expression recognition metrics on predictions pooled over LOSO folds.

MEGC convention (MEGC 2019 composite evaluation): the predictions of every
leave-one-subject-out fold are pooled first, then scored once.

- accuracy = WAR (weighted average recall) = fraction of samples correct;
- UAR = mean over classes of recall_c = TP_c / N_c;
- UF1 = mean over classes of F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c).

UAR and UF1 average over the classes present in the ground truth, as the
MEGC scoring does. A class absent from the ground truth is never dropped
silently: it is listed in ``absent_classes`` (or raises with ``strict=True``),
and predictions of it still count as errors for the true class.

NumPy only; every function returns plain Python values ready for ``json.dump``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# The metrics every sweep reports (results.json `metrics`, a paper table's `reported`).
HEADLINE = ("accuracy", "uf1", "uar", "war")


def _as_label_array(labels, name: str, num_classes: int) -> np.ndarray:
    """Checks that ``labels`` is a 1-D integer array with values in [0, num_classes)."""
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: metrics need at least one sample")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        position = 0
        if np.issubdtype(array.dtype, np.floating):
            non_integral = np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))
            position = int(non_integral[0]) if non_integral.size else 0
        raise ValueError(
            f"{name} must hold integer class labels, got dtype {array.dtype}: "
            f"position {position} has value {array[position]!r}"
        )
    out_of_range = np.flatnonzero((array < 0) | (array >= num_classes))
    if out_of_range.size:
        position = int(out_of_range[0])
        raise ValueError(
            f"{name}[{position}] = {int(array[position])} is not a class label in "
            f"[0, {num_classes}) ({out_of_range.size} invalid label(s) in total)"
        )
    return array.astype(np.int64)


def _validated_pair(y_true, y_pred, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    true = _as_label_array(y_true, "y_true", num_classes)
    pred = _as_label_array(y_pred, "y_pred", num_classes)
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {true.shape[0]} vs {pred.shape[0]}")
    return true, pred


def _validated_class_names(class_names: Sequence[str]) -> list[str]:
    names = [str(name) for name in class_names]
    if not names:
        raise ValueError("class_names is empty")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"class_names has duplicates: {duplicates}")
    return names


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts C[i, j] = #samples with true class i predicted as j; (K, K) int64."""
    true, pred = _validated_pair(y_true, y_pred, num_classes)
    counts = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def classification_metrics(
    y_true, y_pred, class_names: Sequence[str], *, strict: bool = False
) -> dict:
    """Accuracy/WAR, UAR, UF1, per-class precision/recall/F1 and the confusion matrix.

    UAR and UF1 are means over the classes present in ``y_true``; an absent
    class gets ``recall = f1 = None`` and is listed in ``absent_classes``, or
    raises ``ValueError`` when ``strict``. Precision of a class never
    predicted is 0.0 (scikit-learn's ``zero_division=0``).
    """
    names = _validated_class_names(class_names)
    cm = confusion_matrix(y_true, y_pred, len(names))
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    true_positive = np.diag(cm)
    absent = [name for name, count in zip(names, support) if count == 0]
    if absent and strict:
        raise ValueError(
            f"class(es) absent from the ground truth: {absent}; UAR/UF1 would average "
            f"over {len(names) - len(absent)} of {len(names)} classes"
        )

    per_class = {}
    recalls, f1s = [], []
    for k, name in enumerate(names):
        tp, n_true, n_pred = int(true_positive[k]), int(support[k]), int(predicted[k])
        precision = tp / n_pred if n_pred else 0.0
        if n_true:
            recall = tp / n_true
            # F1_c = 2TP / (2TP + FP + FN) with FP = n_pred - TP and FN = n_true - TP.
            f1 = 2 * tp / (n_true + n_pred)
            recalls.append(recall)
            f1s.append(f1)
        else:
            recall = f1 = None
        per_class[name] = {
            "support": n_true,
            "precision": float(precision),
            "recall": recall,
            "f1": f1,
        }

    num_samples = int(cm.sum())
    accuracy = float(true_positive.sum() / num_samples)
    return {
        "accuracy": accuracy,
        "war": accuracy,
        "uf1": float(np.mean(f1s)),
        "uar": float(np.mean(recalls)),
        "num_samples": num_samples,
        "confusion_matrix": cm.tolist(),
        "class_names": names,
        "per_class": per_class,
        "absent_classes": absent,
    }


def pooled_metrics(
    y_true,
    y_pred,
    class_names: Sequence[str],
    groups: Sequence[str] | None = None,
    *,
    strict: bool = False,
) -> dict:
    """Metrics on all pooled predictions, plus one breakdown per group (e.g. source dataset).

    Returns ``{'overall': ..., 'by_group': {name: ...}}`` with groups sorted by
    name; ``by_group`` only when ``groups`` is given. ``strict`` applies to the
    pooled ground truth; a class missing from one group only (SAMM without a
    class present in CASME II, say) is reported in that group's
    ``absent_classes`` rather than raising.
    """
    result = {"overall": classification_metrics(y_true, y_pred, class_names, strict=strict)}
    if groups is None:
        return result
    true = np.asarray(y_true)
    pred = np.asarray(y_pred)
    group_array = np.asarray([str(group) for group in groups])
    if group_array.shape != true.shape:
        raise ValueError(
            f"groups has {group_array.shape[0]} entries but there are {true.shape[0]} samples"
        )
    result["by_group"] = {
        str(name): classification_metrics(
            true[group_array == name], pred[group_array == name], class_names
        )
        for name in sorted(set(group_array.tolist()))
    }
    return result
