"""Writes a sweep's results into its work directory: JSON, Markdown summary, plots.

The ``results`` dict is filled by the engine / CLI (``sweep.summarize``); its keys are
``model``, ``dataset``, ``protocol``, ``num_folds``, ``class_names``, ``seed``,
``metrics`` (pooled over all folds, see ``mer_jax.metrics``), ``metrics_by_source``,
``folds``, ``timing``, ``device``, ``history`` (optional), ``attention_maps``
(optional: which held-out attention maps and Grad-CAM attention_maps.npz holds), ``config``
and ``versions``.

Several seeds trained in one job add (all optional): ``seeds`` (``seed`` = seeds[0]);
``per_seed`` (one dict per seed: ``seed``, ``metrics``, ``metrics_by_source``,
``diverged_folds``, ``history``); ``metrics_sd`` and ``metrics_by_source_sd`` (sample sd
over seeds of accuracy, uf1, uar, war, whose means ``metrics`` / ``metrics_by_source``
then hold, ``aggregation`` = "mean over seeds"); a ``seed`` in every ``folds``,
``diverged_folds`` and ``predictions`` entry. A validation split adds ``validation``
(kind "holdout" | "inner", subjects_per_fold, fraction, early_stopping, monitor), per fold
``validation_subjects``, ``best_epoch``, ``stopped_epoch``, and ``val_loss`` /
``val_accuracy`` in ``history``; ``init`` (pretrained, loaded_leaves, fresh_leaves,
frozen) says where the initial weights came from. ``write_report`` adds
``seed_spread`` (the seeds.png figure, or why it could not be drawn).

Every writer tolerates missing keys and NaN values ('n/a' in the Markdown, ``null`` in
the JSON). The Markdown lives in ``mer_jax.report_markdown``; its public names are
importable from here too.
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
from mer_jax.report_markdown import DRAWN_AS as DRAWN_AS
from mer_jax.report_markdown import FINAL_EPOCH_NOTE as FINAL_EPOCH_NOTE
from mer_jax.report_markdown import GRADCAM as GRADCAM
from mer_jax.report_markdown import (
    HEADLINE_KEYS,
    as_list,
    is_missing,
    map_kind,
    seed_list,
    write_summary_markdown,
)
from mer_jax.report_markdown import MISSING as MISSING
from mer_jax.report_markdown import format_mean_sd as format_mean_sd
from mer_jax.report_markdown import format_number as format_number
from mer_jax.report_markdown import summary_markdown as summary_markdown


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


# The Grad-CAM map's column title (`GRADCAM`: its name, mer_jax.gradcam).
GRADCAM_TITLE = "Grad-CAM (predicted class)\neach row / its max"


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
    (in its column title); `GRADCAM` (mer_jax.gradcam) each row divided by its maximum.
    `maps[name]` is (M, ...). Returns the names not drawn.
    """
    count = len(next(iter(maps.values()))) if maps else len(as_list(inputs))
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
        ranges[name] = (0.0, 1.0) if name == GRADCAM else ranges[name]

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
                    title = GRADCAM_TITLE if name == GRADCAM else title
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
            if name == GRADCAM:  # Grad-CAM's scale follows the logits: per row, to [0, 1]
                value = value / max(float(value.max()), 1e-30)
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
# Spread over seeds.
# ---------------------------------------------------------------------------
SPREAD_METRICS = (("uf1", "UF1"), ("uar", "UAR"), ("accuracy", "Acc"), ("war", "WAR"))


def _float_or_nan(value) -> float:
    return math.nan if is_missing(value) else float(value)


def plot_seed_spread(
    per_seed: Sequence[Mapping], path, *, mean=None, sd=None, title: str = ""
) -> None:
    """Saves a 150 dpi PNG: for UF1, UAR, Acc and WAR, each seed's value (``per_seed[i]
    ['metrics']``) as a point, beside the mean with a ± sd bar (``mean`` / ``sd`` dicts,
    by default the mean and sample sd (ddof=1) of the points)."""
    figure = Figure(figsize=(6.4, 4.2))
    FigureCanvasAgg(figure)  # Attaches the Agg canvas; no pyplot state is touched.
    axes = figure.add_subplot()
    offsets = np.linspace(-0.12, 0.12, len(per_seed)) if len(per_seed) > 1 else np.zeros(1)
    for x, (key, _) in enumerate(SPREAD_METRICS):
        values = np.array([_float_or_nan((e.get("metrics") or {}).get(key)) for e in per_seed])
        finite = values[np.isfinite(values)]
        centre = _float_or_nan((mean or {}).get(key, np.mean(finite) if finite.size else None))
        spread = (sd or {}).get(key, np.std(finite, ddof=1) if finite.size > 1 else None)
        spread = _float_or_nan(spread)
        label = "seeds" if x == 0 else None
        axes.scatter(x - 0.15 + offsets, values, s=18, alpha=0.7, color="tab:blue", label=label)
        axes.errorbar(
            x + 0.25, centre, yerr=0.0 if math.isnan(spread) else spread, fmt="_", ms=14,
            capsize=5, color="black", label="mean ± sd" if x == 0 else None,
        )  # fmt: skip
        axes.annotate(
            format_mean_sd(centre, spread, 3), (x + 0.25, centre), xytext=(6, 0),
            textcoords="offset points", fontsize=7, va="center",
        )  # fmt: skip
    axes.set_xticks(range(len(SPREAD_METRICS)), labels=[name for _, name in SPREAD_METRICS])
    axes.set_xlim(-0.6, len(SPREAD_METRICS) + 0.1)
    axes.set_ylabel("score")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    axes.set_title(title or f"{len(per_seed)} seeds")
    figure.tight_layout()
    with files.atomic(path) as tmp:
        figure.savefig(tmp, dpi=150, format="png")


def write_seed_spread(results: Mapping, workdir, heading: str = "") -> dict:
    """Draws seeds.png (``plot_seed_spread``) and returns ``results['seed_spread']``:
    ``{"figure": "seeds.png"}``, or ``{"figure": None, "figure_error": ...}`` when it cannot
    be drawn (a file that cannot be written still fails)."""
    per_seed = [entry or {} for entry in as_list(results.get("per_seed"))]
    record = {"figure": "seeds.png"}
    try:
        plot_seed_spread(
            per_seed,
            pathlib.Path(workdir) / record["figure"],
            mean={k: v for k, v in (results.get("metrics") or {}).items() if k in HEADLINE_KEYS},
            sd=results.get("metrics_sd"),
            title=f"{heading}: {len(per_seed)} seeds" if heading else "",
        )
    except OSError:  # the figure could not be written: the command fails
        raise
    except Exception as err:  # a figure that cannot be drawn must not lose the results
        record = {"figure": None, "figure_error": f"{type(err).__name__}: {err}"}
    return record


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
            class_names=as_list(results.get("class_names")),
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
    has more than one source, seeds.png (the spread over seeds, ``write_seed_spread``)
    when ``per_seed`` holds two seeds or more, and attention_maps.npz / .png when
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
    heading = f"{results.get('model', '')} on {results.get('dataset', '')}".strip()
    if len(as_list(results.get("per_seed"))) > 1:
        record = write_seed_spread(results, workdir, heading)
        results = {**results, "seed_spread": record}
        if record["figure"]:
            paths["seeds"] = workdir / record["figure"]
    write_results_json(results, paths["results"])
    write_summary_markdown(results, paths["summary"])

    metrics = results.get("metrics") or {}
    class_names = as_list(metrics.get("class_names")) or as_list(results.get("class_names"))
    num_seeds = len(seed_list(results))
    if metrics.get("confusion_matrix") is not None:
        paths["confusion_matrix"] = workdir / "confusion_matrix.png"
        plot_confusion_matrix(
            metrics["confusion_matrix"],
            class_names,
            paths["confusion_matrix"],
            title=f"{heading} (pooled" + (f" over {num_seeds} seeds)" if num_seeds > 1 else ")"),
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
                as_list(source_metrics.get("class_names")) or class_names,
                paths[stem],
                title=f"{heading}: {source}",
            )
    return paths
