"""Writes a sweep's results into its work directory: JSON, Markdown summary, plots.

The ``results`` dict is filled by the engine / CLI; its keys are ``model``,
``dataset``, ``protocol``, ``num_folds``, ``class_names``, ``seed``,
``metrics`` (pooled over all folds, see ``mer_jax.metrics``),
``metrics_by_source``, ``folds``, ``timing``, ``device``, ``history``
(optional), ``attention_maps`` (optional: which held-out attention maps
attention_maps.npz holds), ``config`` and ``versions``. Every writer
tolerates missing keys and NaN values ('n/a' in the Markdown, ``null`` in
the JSON).
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

from mer_jax import files

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
    text = json.dumps(to_plain_json(results), indent=2, allow_nan=False)
    files.write_text(path, text + "\n")


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
    lines = _headline_markdown(results, metrics, class_names)
    lines += _sources_markdown(results.get("metrics_by_source") or {})
    lines += _per_class_markdown(metrics, class_names)
    lines += _attention_markdown(results.get("attention_maps") or {})
    lines += _folds_markdown(_as_list(results.get("folds")))
    lines += _history_markdown(results.get("history") or {})
    timing, device = results.get("timing") or {}, results.get("device") or {}
    items = [*timing.items(), *device.items()]
    lines += _items_markdown("Timing and device", ["Item", "Value"], items)
    lines += _items_markdown("Config", ["Key", "Value"], (results.get("config") or {}).items())
    versions = (results.get("versions") or {}).items()
    lines += _items_markdown("Versions", ["Package", "Version"], versions)
    return "\n".join(lines) + "\n"


def _headline_markdown(results: Mapping, metrics: Mapping, class_names: list) -> list[str]:
    """Title, sweep facts and the pooled metrics (with the classes absent from the truth)."""
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
    diverged = [f"{d['subject']} (epoch {d['epoch']})" for d in results.get("diverged_folds", [])]
    if diverged:
        lines += ["", f"**Incomplete**: diverged folds {', '.join(diverged)} are not pooled."]
    return lines


def _sources_markdown(by_source: Mapping) -> list[str]:
    if not by_source:
        return []
    rows = [
        [
            _format_cell(source),
            *_metric_cells(by_source[source]),
            ", ".join(map(str, _as_list(by_source[source].get("absent_classes")))) or "-",
        ]
        for source in sorted(by_source)
    ]
    lines = [
        "",
        "## Per source",
        "",
        *_table(["Source", "Acc", "UF1", "UAR", "WAR", "N", "Absent classes"], rows),
    ]
    for source in sorted(by_source):
        absent = _as_list(by_source[source].get("absent_classes"))
        if absent:
            lines += ["", _absent_note(absent, f" of {source}")]
    return lines


def _per_class_markdown(metrics: Mapping, class_names: list) -> list[str]:
    per_class = metrics.get("per_class") or {}
    if not per_class:
        return []
    pooled_absent = _as_list(metrics.get("absent_classes"))
    rows = []
    for name in class_names or list(per_class):
        stats = per_class.get(name, {})
        rows.append(
            [
                _format_cell(name) + (" (absent)" if name in pooled_absent else ""),
                _format_cell(stats.get("support")),
                format_number(stats.get("precision")),
                format_number(stats.get("recall")),
                format_number(stats.get("f1")),
            ]
        )
    header = ["Class", "Support", "Precision", "Recall", "F1"]
    return ["", "## Per class (pooled)", "", *_table(header, rows)]


def _folds_markdown(folds: list) -> list[str]:
    if not folds:
        return []
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
    header = ["Fold", "Subject", "n_train", "n_test", "Accuracy", "Final train loss"]
    return ["", "## Per fold", "", *_table(header, rows)]


def _history_markdown(history: Mapping) -> list[str]:
    epochs = _as_list(history.get("epoch"))
    if not epochs:
        return []
    columns = [key for key in history if key != "epoch"]
    rows = []
    for i, epoch in enumerate(epochs):
        cells = [_format_cell(epoch)]
        for key in columns:
            series = _as_list(history.get(key))
            cells.append(format_number(series[i] if i < len(series) else None))
        rows.append(cells)
    title = "## History (monitoring only, not used to pick an epoch)"
    return ["", title, "", *_table(["Epoch", *columns], rows)]


def _items_markdown(title: str, header: list[str], items) -> list[str]:
    """A two-column section of (key, value) `items`; nothing when there are none."""
    rows = [[_format_cell(key), _format_cell(value)] for key, value in items]
    if not rows:
        return []
    return ["", f"## {title}", "", *_table(header, rows)]


def _attention_markdown(record: Mapping) -> list[str]:
    """The summary's attention-map section: the figure, and how each saved map is drawn."""
    maps = record.get("maps") or {}
    if not record:
        return []
    lines = ["", "## Attention maps (held-out examples, final weights)", ""]
    if record.get("figure"):
        lines += [f"![attention maps]({record['figure']})", ""]
    if record.get("figure_error"):
        lines += [f"The figure could not be drawn: {record['figure_error']}", ""]
    lines.append(
        f"{_format_cell(record.get('num_examples'))} held-out examples (up to "
        f"{_format_cell(record.get('per_class'))} per class, each from the fold that holds "
        f"it out) in `{record.get('file', MISSING)}`."
    )
    rows, skipped = [], []
    for name, info in maps.items():
        shape = tuple(_as_list((info or {}).get("shape")))
        kind = map_kind(shape)
        rows.append([_format_cell(name), " x ".join(map(str, shape)) or "scalar", DRAWN_AS[kind]])
        if kind == "skip":
            skipped.append(name)
    if rows:
        lines += ["", *_table(["Map", "Shape per example", "Drawn as"], rows)]
    if skipped:
        lines += [
            "",
            f"**Not drawn:** {', '.join(skipped)} (rank 0 or above 4 per example: no picture "
            "for it here; the values are in the .npz).",
        ]
    return lines


def write_summary_markdown(results: dict, path) -> None:
    """Writes ``summary_markdown(results)`` to ``path``."""
    files.write_text(path, summary_markdown(results))


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
    with files.atomic(path) as tmp:
        figure.savefig(tmp, dpi=150, format="png")


# ---------------------------------------------------------------------------
# Attention maps of held-out examples.
# ---------------------------------------------------------------------------
DRAWN_AS = {
    "bars": "bars (one per entry)",
    "matrix": "heat map",
    "spatial": "overlay on the input (channel mean)",
    "spatial_frames": "overlay on the input (middle frame, channel mean)",
    "skip": "not drawn",
}


def map_kind(shape) -> str:
    """How a map of per-example `shape` is drawn (generic over the models' `out` dicts).

    Rank 1, 'bars': weights over channels, magnification factors or frames (seed 001
    channel attention, seed 003 alpha / beta, seed 004 temporal weights). Rank 2,
    'matrix': a heat map (seed 002's K x D proposal attention, seed 003's frames x
    factors, seed 004's t x t affinity). Rank 3 (h, w, c), 'spatial': the channel
    mean over the input (seed 000 masks, seed 001 spatial attention). Rank 4
    (t, h, w, c), 'spatial_frames': the same for the middle frame (seed 004's
    masks). Anything else (or an empty axis), 'skip'.
    """
    shape = tuple(int(n) for n in shape)
    if not shape or 0 in shape or len(shape) > 4:
        return "skip"
    return {1: "bars", 2: "matrix", 3: "spatial", 4: "spatial_frames"}[len(shape)]


def spatial_map(value) -> np.ndarray:
    """(h, w) of a rank-3 (h, w, c) map (channel mean) or rank-4 (t, h, w, c) (middle frame)."""
    value = np.asarray(value, np.float32)
    if value.ndim == 4:
        value = value[value.shape[0] // 2]
    return value.mean(axis=-1)


def display_input(x, *, flow: bool = False) -> np.ndarray:
    """One model input (..., H, W, C) as a picture: (H, W) grey or (H, W, 3) RGB in [0, 1].

    Leading axes (frames, magnification factors) give their middle entry; optical
    flow (u, v[, strain]) its magnitude; one channel grey; three channels RGB
    (rescaled to [0, 1] if outside); other channel counts their mean.
    """
    x = np.asarray(x, np.float32)
    while x.ndim > 3:
        x = x[x.shape[0] // 2]
    if x.ndim == 2:
        x = x[..., None]
    if flow and x.shape[-1] >= 2:
        return np.hypot(x[..., 0], x[..., 1])
    if x.shape[-1] == 3:
        low, high = float(x.min()), float(x.max())
        if low < 0.0 or high > 1.0:
            return (x - low) / (high - low) if high > low else np.zeros_like(x)
        return x
    return x.mean(axis=-1)


def _example_rows(labels, per_class: int) -> list[int]:
    """Up to `per_class` examples of each class, in class order then saved order."""
    labels = np.asarray(labels)
    return [int(i) for c in np.unique(labels) for i in np.flatnonzero(labels == c)[:per_class]]


def plot_attention_maps(
    maps: Mapping[str, np.ndarray],
    path,
    *,
    inputs=None,
    labels=None,
    predictions=None,
    class_names: Sequence[str] = (),
    captions: Sequence[str] | None = None,
    per_class: int = 2,
) -> list[str]:
    """Saves a PNG: one row per held-out example (up to `per_class` per true class), its
    input, then each map (`map_kind`): spatial maps resized over the input, matrices as
    heat maps, 1-D weights as bars, one colour / value range per map over the rows drawn
    (in its column title). `maps[name]` is (M, ...). Returns the names not drawn.
    """
    count = len(next(iter(maps.values()))) if maps else len(_as_list(inputs))
    labels = np.zeros(count, int) if labels is None else np.asarray(labels)
    rows = _example_rows(labels, per_class) if count else []
    drawn = [name for name in maps if map_kind(np.shape(maps[name])[1:]) != "skip"]
    skipped = [name for name in maps if name not in drawn]
    columns = (["input"] if inputs is not None else []) + drawn
    if not rows or not columns:
        return skipped
    figure = Figure(figsize=(2.2 * len(columns), 2.2 * len(rows)))
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(rows), len(columns), squeeze=False)
    ranges = {}
    for name in drawn:
        values = np.nan_to_num(np.asarray(maps[name])[rows].astype(np.float32))
        ranges[name] = (float(values.min()), float(values.max()))

    def name_of(c):
        c = int(c)
        return str(class_names[c]) if 0 <= c < len(class_names) else str(c)

    for r, m in enumerate(rows):
        picture = None if inputs is None else np.nan_to_num(np.asarray(inputs[m], np.float32))
        height, width = (1, 1) if picture is None else picture.shape[:2]
        extent = (-0.5, width - 0.5, height - 0.5, -0.5)
        for c, name in enumerate(columns):
            axes_rc = axes[r, c]
            if r == 0:
                title = name
                if name in ranges:
                    if map_kind(np.shape(maps[name])[1:]) == "spatial_frames":
                        title += f" (frame {np.shape(maps[name])[1] // 2})"
                    title += "\n[{:.3g}, {:.3g}]".format(*ranges[name])
                axes_rc.set_title(title, fontsize=8)
            if name == "input" and c == 0:
                axes_rc.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
                caption = captions[m] if captions is not None else f"#{m}"
                predicted = "?" if predictions is None else name_of(predictions[m])
                axes_rc.set_ylabel(
                    f"{caption}\ntrue {name_of(labels[m])}, pred {predicted}", fontsize=7
                )
                axes_rc.set_xticks([])
                axes_rc.set_yticks([])
                continue
            value = np.nan_to_num(np.asarray(maps[name][m], np.float32))
            kind = map_kind(value.shape)
            low, high = ranges[name]
            if kind == "bars":
                width = 0.8 if value.size <= 64 else 1.0
                axes_rc.bar(np.arange(value.size), value, width=width, linewidth=0)
                axes_rc.set_xlim(-0.5, value.size - 0.5)
                axes_rc.set_ylim(min(low, 0.0), max(high, 0.0) or 1.0)
                axes_rc.tick_params(labelsize=6)
                continue
            scale = {"vmin": low, "vmax": high, "cmap": "viridis" if kind == "matrix" else "jet"}
            if kind == "matrix":
                axes_rc.imshow(value, aspect="auto", interpolation="nearest", **scale)
            elif picture is not None:
                spatial = spatial_map(value)
                axes_rc.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
                axes_rc.imshow(spatial, alpha=0.5, extent=extent, interpolation="bilinear", **scale)
            else:
                axes_rc.imshow(spatial_map(value), interpolation="bilinear", **scale)
            axes_rc.set_xticks([])
            axes_rc.set_yticks([])
    figure.tight_layout()
    with files.atomic(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    return skipped


# ---------------------------------------------------------------------------
# Everything at once.
# ---------------------------------------------------------------------------
ATTENTION_META = ("index", "fold", "clip", "subject", "label", "prediction", "input")


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or "source"


def write_attention_maps(results: dict, arrays: Mapping[str, np.ndarray], workdir) -> dict:
    """Saves ``arrays`` (maps by name plus ``ATTENTION_META``) as attention_maps.npz and draws
    attention_maps.png; returns ``results['attention_maps']`` updated (figure error noted)."""
    record = dict(results.get("attention_maps") or {})
    record.setdefault("file", "attention_maps.npz")
    record.setdefault("figure", "attention_maps.png")
    with files.atomic(pathlib.Path(workdir) / record["file"]) as tmp:
        np.savez(tmp, **arrays)
    maps = {k: v for k, v in arrays.items() if k not in ATTENTION_META}
    clips, subjects = arrays.get("clip"), arrays.get("subject")
    captions = None
    if clips is not None:
        subjects = [""] * len(clips) if subjects is None else subjects
        captions = [c if str(s) in str(c) else f"{s}: {c}" for c, s in zip(clips, subjects)]
        captions = [str(c) for c in captions]
        captions = [c if len(c) <= 32 else "..." + c[-29:] for c in captions]
    try:
        plot_attention_maps(
            maps,
            pathlib.Path(workdir) / record["figure"],
            inputs=arrays.get("input"),
            labels=arrays.get("label"),
            predictions=arrays.get("prediction"),
            class_names=_as_list(results.get("class_names")),
            captions=captions,
            per_class=int(record.get("per_class") or 2),
        )
    except OSError:  # the figure could not be written: the command fails
        raise
    except Exception as err:  # a figure that cannot be drawn must not lose the results
        record["figure"] = None
        record["figure_error"] = f"{type(err).__name__}: {err}"
    return record


def write_report(
    results: dict, workdir, attention_maps: Mapping[str, np.ndarray] | None = None
) -> dict[str, pathlib.Path]:
    """Writes results.json, summary.md and confusion_matrix.png into ``workdir``.

    Also confusion_matrix_<source>.png per source when ``metrics_by_source``
    has more than one source, and attention_maps.npz / .png when
    ``attention_maps`` holds the held-out maps (``write_attention_maps``).
    Returns the paths keyed by file stem.
    """
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {"results": workdir / "results.json", "summary": workdir / "summary.md"}
    if attention_maps is not None:
        record = write_attention_maps(results, attention_maps, workdir)
        results = {**results, "attention_maps": record}
        paths["attention_maps"] = workdir / record["file"]
        if record["figure"]:
            paths["attention_maps_figure"] = workdir / record["figure"]
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
