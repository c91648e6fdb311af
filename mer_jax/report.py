"""Writes a sweep's results into its work directory: JSON, Markdown summary, confusion matrices.

The ``results`` dict is filled by the engine / CLI; its keys are ``model``,
``dataset``, ``protocol``, ``num_folds``, ``class_names``, ``seed``,
``metrics`` (pooled over all folds, see ``mer_jax.metrics``),
``metrics_by_source``, ``folds``, ``timing``, ``device``, ``history``
(optional), ``config`` and ``versions``. Every writer tolerates missing keys
and NaN values ('n/a' in the Markdown, ``null`` in the JSON).
"""

from __future__ import annotations

import json
import math
import pathlib
import re
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MISSING = "n/a"
FINAL_EPOCH_NOTE = (
    "Reported metrics are from the final epoch of a fixed training schedule "
    "(no model selection on held-out subjects)."
)


def to_plain_json(value):
    """Converts NumPy scalars/arrays, tuples and paths to plain JSON values, recursively.

    Non-finite floats (NaN, +-inf) become ``None`` so the file is strict JSON.
    """
    if isinstance(value, Mapping):
        return {str(key): to_plain_json(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return to_plain_json(value.tolist())
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [to_plain_json(item) for item in items]
    if isinstance(value, np.generic):
        return to_plain_json(value.item())
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if hasattr(value, "__array__"):  # JAX arrays and other array-likes.
        return to_plain_json(np.asarray(value))
    raise TypeError(f"cannot convert {type(value).__name__} to JSON: {value!r}")


def write_results_json(results: dict, path) -> None:
    """Writes ``results`` as indented strict JSON (see ``to_plain_json``)."""
    path = pathlib.Path(path)
    text = json.dumps(to_plain_json(results), indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------
# Markdown summary.
# ---------------------------------------------------------------------------


def _is_missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(np.isnan(value))
    except (TypeError, ValueError):
        return False


def format_number(value, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals; 'n/a' for None, NaN or a non-number."""
    if _is_missing(value):
        return MISSING
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return MISSING


def _format_cell(value) -> str:
    """A config / timing / device value as a Markdown table cell."""
    if _is_missing(value):
        return MISSING
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, list | tuple | np.ndarray):
        text = ", ".join(_format_cell(item) for item in value)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _as_list(value) -> list:
    """``list(value)``, with None as []; safe for NumPy arrays (no truth-value test)."""
    return [] if value is None else list(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _metric_cells(metrics: Mapping) -> list[str]:
    return [
        format_number(metrics.get("accuracy")),
        format_number(metrics.get("uf1")),
        format_number(metrics.get("uar")),
        format_number(metrics.get("war")),
        _format_cell(metrics.get("num_samples")),
    ]


def _absent_note(absent: Sequence[str], where: str) -> str:
    return (
        f"**Absent from the ground truth{where}:** {', '.join(map(str, absent))}. These classes are "
        "excluded from the UAR/UF1 averages (MEGC convention); predictions of them still "
        "count as errors."
    )


def summary_markdown(results: Mapping) -> str:
    """The human-readable summary of a sweep, as Markdown text."""
    metrics = results.get("metrics") or {}
    class_names = _as_list(results.get("class_names")) or _as_list(metrics.get("class_names"))
    title = (
        f"# {results.get('model', MISSING)} on {results.get('dataset', MISSING)} "
        f"({results.get('protocol', MISSING)})"
    )
    lines = [
        title,
        "",
        f"Folds: {_format_cell(results.get('num_folds'))} · "
        f"samples: {_format_cell(metrics.get('num_samples'))} · "
        f"seed: {_format_cell(results.get('seed'))} · "
        f"classes: {', '.join(class_names) or MISSING}",
        "",
        f"_{FINAL_EPOCH_NOTE}_",
        "",
        "## Metrics (predictions pooled over all folds)",
        "",
        *_table(["Acc", "UF1", "UAR", "WAR", "N"], [_metric_cells(metrics)]),
    ]
    pooled_absent = _as_list(metrics.get("absent_classes"))
    if pooled_absent:
        lines += ["", _absent_note(pooled_absent, "")]

    by_source = results.get("metrics_by_source") or {}
    if by_source:
        rows = [
            [
                _format_cell(source),
                *_metric_cells(by_source[source]),
                ", ".join(map(str, _as_list(by_source[source].get("absent_classes")))) or "-",
            ]
            for source in sorted(by_source)
        ]
        lines += [
            "",
            "## Per source",
            "",
            *_table(["Source", "Acc", "UF1", "UAR", "WAR", "N", "Absent classes"], rows),
        ]
        for source in sorted(by_source):
            absent = _as_list(by_source[source].get("absent_classes"))
            if absent:
                lines += ["", _absent_note(absent, f" of {source}")]

    per_class = metrics.get("per_class") or {}
    if per_class:
        rows = []
        for name in class_names or list(per_class):
            stats = per_class.get(name, {})
            absent = name in pooled_absent
            rows.append(
                [
                    _format_cell(name) + (" (absent)" if absent else ""),
                    _format_cell(stats.get("support")),
                    format_number(stats.get("precision")),
                    format_number(stats.get("recall")),
                    format_number(stats.get("f1")),
                ]
            )
        lines += [
            "",
            "## Per class (pooled)",
            "",
            *_table(["Class", "Support", "Precision", "Recall", "F1"], rows),
        ]

    folds = _as_list(results.get("folds"))
    if folds:
        rows = [
            [
                _format_cell(fold.get("fold")),
                _format_cell(fold.get("subject")),
                _format_cell(fold.get("num_train")),
                _format_cell(fold.get("num_test")),
                format_number(fold.get("accuracy")),
                format_number(fold.get("final_train_loss")),
            ]
            for fold in folds
        ]
        lines += [
            "",
            "## Per fold",
            "",
            *_table(["Fold", "Subject", "n_train", "n_test", "Accuracy", "Final train loss"], rows),
        ]

    history = results.get("history") or {}
    epochs = _as_list(history.get("epoch"))
    if epochs:
        columns = [key for key in history if key != "epoch"]
        rows = []
        for i, epoch in enumerate(epochs):
            cells = [_format_cell(epoch)]
            for key in columns:
                series = _as_list(history.get(key))
                cells.append(format_number(series[i] if i < len(series) else None))
            rows.append(cells)
        lines += [
            "",
            "## History (monitoring only, not used to pick an epoch)",
            "",
            *_table(["Epoch", *columns], rows),
        ]

    timing = results.get("timing") or {}
    device = results.get("device") or {}
    if timing or device:
        rows = [[_format_cell(key), _format_cell(value)] for key, value in timing.items()]
        rows += [[_format_cell(key), _format_cell(value)] for key, value in device.items()]
        lines += ["", "## Timing and device", "", *_table(["Item", "Value"], rows)]

    config = results.get("config") or {}
    if config:
        rows = [[_format_cell(key), _format_cell(value)] for key, value in config.items()]
        lines += ["", "## Config", "", *_table(["Key", "Value"], rows)]

    versions = results.get("versions") or {}
    if versions:
        rows = [[_format_cell(key), _format_cell(value)] for key, value in versions.items()]
        lines += ["", "## Versions", "", *_table(["Package", "Version"], rows)]
    return "\n".join(lines) + "\n"


def write_summary_markdown(results: dict, path) -> None:
    """Writes ``summary_markdown(results)`` to ``path``."""
    pathlib.Path(path).write_text(summary_markdown(results), encoding="utf-8")


# ---------------------------------------------------------------------------
# Confusion matrix plot.
# ---------------------------------------------------------------------------


def row_normalise(cm) -> np.ndarray:
    """C[i, j] / sum_j C[i, j]; a row with zero support stays all zeros (no warning)."""
    counts = np.asarray(cm, dtype=np.float64)
    row_sums = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)


def plot_confusion_matrix(cm, class_names: Sequence[str], path, *, title: str = "") -> None:
    """Saves a 150 dpi PNG: colours row-normalised (recall per true class), raw counts in cells."""
    counts = np.asarray(cm)
    num_classes = len(class_names)
    if counts.shape != (num_classes, num_classes):
        raise ValueError(
            f"confusion matrix shape {counts.shape} does not match {num_classes} class names"
        )
    fractions = row_normalise(counts)
    size = 2.0 + 0.8 * num_classes
    figure = Figure(figsize=(size + 1.0, size))
    FigureCanvasAgg(figure)  # Attaches the Agg canvas; no pyplot state is touched.
    axes = figure.add_subplot()
    image = axes.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    for i in range(num_classes):
        for j in range(num_classes):
            axes.text(
                j,
                i,
                str(int(counts[i, j])),
                ha="center",
                va="center",
                color="white" if fractions[i, j] > 0.5 else "black",
            )
    axes.set_xticks(range(num_classes), labels=list(class_names), rotation=45, ha="right")
    axes.set_yticks(range(num_classes), labels=list(class_names))
    axes.set_xlabel("Predicted class")
    axes.set_ylabel("True class")
    if title:
        axes.set_title(title)
    figure.colorbar(image, ax=axes, label="Fraction of true class")
    figure.tight_layout()
    figure.savefig(pathlib.Path(path), dpi=150, format="png")


# ---------------------------------------------------------------------------
# Everything at once.
# ---------------------------------------------------------------------------


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or "source"


def write_report(results: dict, workdir) -> dict[str, pathlib.Path]:
    """Writes results.json, summary.md and confusion_matrix.png into ``workdir``.

    Also confusion_matrix_<source>.png per source when ``metrics_by_source``
    has more than one source. Returns the paths keyed by file stem.
    """
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {"results": workdir / "results.json", "summary": workdir / "summary.md"}
    write_results_json(results, paths["results"])
    write_summary_markdown(results, paths["summary"])

    metrics = results.get("metrics") or {}
    class_names = _as_list(metrics.get("class_names")) or _as_list(results.get("class_names"))
    heading = f"{results.get('model', '')} on {results.get('dataset', '')}".strip()
    if metrics.get("confusion_matrix") is not None:
        paths["confusion_matrix"] = workdir / "confusion_matrix.png"
        plot_confusion_matrix(
            metrics["confusion_matrix"],
            class_names,
            paths["confusion_matrix"],
            title=f"{heading} (pooled)",
        )
    by_source = results.get("metrics_by_source") or {}
    if len(by_source) > 1:
        for source in sorted(by_source):
            source_metrics = by_source[source]
            if source_metrics.get("confusion_matrix") is None:
                continue
            stem = f"confusion_matrix_{_file_safe(source)}"
            paths[stem] = workdir / f"{stem}.png"
            plot_confusion_matrix(
                source_metrics["confusion_matrix"],
                _as_list(source_metrics.get("class_names")) or class_names,
                paths[stem],
                title=f"{heading}: {source}",
            )
    return paths
