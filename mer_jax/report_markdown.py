"""summary.md: a sweep's results dict (see ``mer_jax.report``) as Markdown text.

Single-seed results render as they always have. Results of several seeds trained in one
job (``seeds``, ``per_seed``, ``metrics_sd``) give every headline number as mean ± sample
sd over the seeds, a "Seeds" section (one row per seed, and per seed and source) and a
seed column in the folds table. ``validation`` and ``init`` add how the kept weights were
chosen and where the initial weights came from. Every section tolerates missing keys and
NaN values ('n/a').
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mer_jax import experiments, files
from mer_jax.metrics import HEADLINE

MISSING = "n/a"
FINAL_EPOCH_NOTE = (
    "Reported metrics are from the final epoch of a fixed training schedule "
    "(no model selection on held-out subjects)."
)
HEADLINE_KEYS = HEADLINE


def is_missing(value) -> bool:
    """None, NaN or NaN-like."""
    if value is None:
        return True
    try:
        return bool(np.isnan(value))
    except (TypeError, ValueError):
        return False


def format_number(value, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals; 'n/a' for None, NaN or a non-number."""
    if is_missing(value):
        return MISSING
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return MISSING


def format_mean_sd(mean, sd, digits: int = 4) -> str:
    """``'0.6312 ± 0.0451'``: ``format_number`` of both."""
    return f"{format_number(mean, digits)} ± {format_number(sd, digits)}"


def _format_cell(value) -> str:
    """A config / timing / device value as a Markdown table cell."""
    if is_missing(value):
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


def as_list(value) -> list:
    """``list(value)``, with None as []; safe for NumPy arrays (no truth-value test)."""
    return [] if value is None else list(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _metric_cells(metrics: Mapping, sd: Mapping | None = None) -> list[str]:
    """Acc, UF1, UAR, WAR (as mean ± sd when ``sd`` is given) and N."""
    if sd is None:
        cells = [format_number(metrics.get(key)) for key in HEADLINE_KEYS]
    else:
        cells = [format_mean_sd(metrics.get(key), sd.get(key)) for key in HEADLINE_KEYS]
    return [*cells, _format_cell(metrics.get("num_samples"))]


def _absent_note(absent: Sequence[str], where: str) -> str:
    return (
        f"**Absent from the ground truth{where}:** {', '.join(map(str, absent))}. These classes are "
        "excluded from the UAR/UF1 averages (MEGC convention); predictions of them still "
        "count as errors."
    )


def seed_list(results: Mapping) -> list:
    """The seeds the results hold: ``seeds``, else the ``per_seed`` entries' seeds, else
    ``[seed]`` (``[]`` when none is known)."""
    seeds = as_list(results.get("seeds"))
    if not seeds:
        seeds = [entry.get("seed") for entry in as_list(results.get("per_seed"))]
    if not seeds and results.get("seed") is not None:
        seeds = [results.get("seed")]
    return seeds


def summary_markdown(results: Mapping) -> str:
    """The human-readable summary of a sweep, as Markdown text."""
    metrics = results.get("metrics") or {}
    class_names = as_list(results.get("class_names")) or as_list(metrics.get("class_names"))
    num_seeds = len(seed_list(results))
    lines = _headline_markdown(results, metrics, class_names)
    lines += _paper_markdown(results)
    lines += _seeds_markdown(results)
    lines += _sources_markdown(
        results.get("metrics_by_source") or {}, results.get("metrics_by_source_sd"), num_seeds
    )
    lines += _tasks_markdown(results)
    lines += _per_class_markdown(metrics, class_names, num_seeds)
    lines += _init_markdown(results.get("init") or {})
    lines += _attention_markdown(results.get("attention_maps") or {})
    lines += _folds_markdown(as_list(results.get("folds")), num_seeds)
    lines += _history_markdown(results.get("history") or {}, num_seeds)
    timing, device = results.get("timing") or {}, results.get("device") or {}
    items = [*timing.items(), *device.items()]
    lines += _items_markdown("Timing and device", ["Item", "Value"], items)
    lines += _items_markdown("Config", ["Key", "Value"], (results.get("config") or {}).items())
    versions = (results.get("versions") or {}).items()
    lines += _items_markdown("Versions", ["Package", "Version"], versions)
    return "\n".join(lines) + "\n"


def _paper_markdown(results: Mapping) -> list[str]:
    """The paper's figures beside ours (mean ± sd over seeds), when the config is a paper
    table (`experiments.comparison`)."""
    rows = experiments.comparison(results)
    if not rows:
        return []
    config = results.get("config") or {}
    title = f"Seed {config.get('paper.seed')}, {config.get('paper.table')}"
    variant = config.get("paper.variant")
    lines = ["## Paper vs ours", "", f"{title}{f', row {variant}' if variant else ''}: "
             f"{config.get('paper.title', '')}.", ""]  # fmt: skip
    lines += experiments.comparison_markdown(rows)
    note = config.get("paper.note")
    return lines + (["", f"Note: {note}"] if note else []) + [""]


def _headline_markdown(results: Mapping, metrics: Mapping, class_names: list) -> list[str]:
    """Title, sweep facts and the pooled metrics (with the classes absent from the truth)."""
    title = (
        f"# {results.get('model', MISSING)} on {results.get('dataset', MISSING)} "
        f"({results.get('protocol', MISSING)})"
    )
    seeds, sd = seed_list(results), results.get("metrics_sd")
    samples = _format_cell(metrics.get("num_samples"))
    if len(seeds) > 1:
        seed_fact = f"samples: {samples} (all seeds) · seeds: {_format_cell(seeds)}"
    else:
        seed_fact = f"samples: {samples} · seed: {_format_cell(results.get('seed'))}"
    lines = [
        title,
        "",
        f"Folds: {_format_cell(results.get('num_folds'))} · {seed_fact} · "
        f"classes: {', '.join(class_names) or MISSING}",
        "",
        *_selection_markdown(results.get("validation") or {}),
        "",
    ]
    if sd is None:
        lines += ["## Metrics (predictions pooled over all folds)", ""]
        lines += _table(["Acc", "UF1", "UAR", "WAR", "N"], [_metric_cells(metrics)])
    else:
        lines += [
            f"## Metrics (mean ± sd over {len(seeds)} seeds)",
            "",
            "Each seed is scored on its own predictions (pooled over its folds); Acc, UF1, "
            "UAR and WAR are the mean ± sample standard deviation (ddof=1) of those scores "
            "over the seeds. N, the per-class metrics and the confusion matrix pool the "
            "predictions of all seeds.",
            "",
            *_table(["Acc", "UF1", "UAR", "WAR", "N (all seeds)"], [_metric_cells(metrics, sd)]),
        ]
    pooled_absent = as_list(metrics.get("absent_classes"))
    if pooled_absent:
        lines += ["", _absent_note(pooled_absent, "")]
    diverged = [_diverged_name(d) for d in as_list(results.get("diverged_folds"))]
    if diverged:
        lines += ["", f"**Incomplete**: diverged folds {', '.join(diverged)} are not pooled."]
    return lines


def _diverged_name(entry: Mapping) -> str:
    if "seed" in entry:
        return f"{entry.get('subject')} (seed {entry['seed']}, epoch {entry.get('epoch')})"
    return f"{entry.get('subject')} (epoch {entry.get('epoch')})"


def _selection_markdown(validation: Mapping) -> list[str]:
    """How the reported weights were chosen: the final epoch, or a validation split."""
    if not validation:
        return [f"_{FINAL_EPOCH_NOTE}_"]
    monitor = validation.get("monitor") or "validation loss"
    kind = validation.get("kind")
    if kind == "holdout":
        split = "hold-out split"
    elif kind == "inner":
        split = "inner split (subjects taken from each fold's training subjects)"
    else:
        split = _format_cell(kind)
    size = []
    count = validation.get("subjects_per_fold")
    if not is_missing(count):
        size.append(f"{_format_cell(count)} subject{'' if count == 1 else 's'} per fold")
    if not is_missing(validation.get("fraction")):
        size.append(f"fraction {_format_cell(validation['fraction'])} of the training subjects")
    patience = validation.get("early_stopping")
    stopping = f"patience {_format_cell(patience)}" if patience else "off"
    lines = [
        f"_Reported metrics are from each fold's kept weights: the epoch with the best "
        f"{monitor} (Best epoch in the folds table), not the final epoch._",
        "",
        f"**Validation:** {', '.join([split, *size])} · monitor: {monitor} · "
        f"early stopping: {stopping}"
        + (f" · learning rate lowered on {monitor} plateaus" if validation.get("plateau") else ""),
    ]
    if kind == "holdout":
        lines += [
            "",
            "**The reported metrics are those of the validation split that also picked the "
            f"weights** (best epoch{' and early stopping' if patience else ''}): an "
            "optimistic estimate, not an independent test.",
        ]
    elif kind == "inner":
        lines += ["", "The held-out test subjects never pick the weights."]
    return lines


def _seeds_markdown(results: Mapping) -> list[str]:
    """One row per seed, the spread figure, and one row per seed and source."""
    per_seed = [entry or {} for entry in as_list(results.get("per_seed"))]
    if len(per_seed) < 2:
        return []
    rows = [
        [_format_cell(entry.get("seed")), *_metric_cells(entry.get("metrics") or {})]
        + [_seed_status(entry)]
        for entry in per_seed
    ]
    header = ["Seed", "Acc", "UF1", "UAR", "WAR", "N", "Status"]
    lines = [
        "",
        "## Seeds",
        "",
        f"{len(per_seed)} seeds trained in one job. Each row scores one seed's predictions "
        "pooled over its folds; the headline is the mean ± sd of these rows.",
        "",
        *_table(header, rows),
    ]
    record = results.get("seed_spread") or {}
    if record.get("figure"):
        lines += ["", f"![spread over seeds]({record['figure']})"]
    if record.get("figure_error"):
        lines += ["", f"The spread figure could not be drawn: {record['figure_error']}"]
    if any(len(entry.get("metrics_by_source") or {}) > 1 for entry in per_seed):
        rows = []
        for entry in per_seed:
            by_source = entry.get("metrics_by_source") or {}
            seed = _format_cell(entry.get("seed"))
            rows += [
                [seed, _format_cell(s), *_metric_cells(by_source[s])] for s in sorted(by_source)
            ]
        header = ["Seed", "Source", "Acc", "UF1", "UAR", "WAR", "N"]
        lines += ["", "### Per source and seed", "", *_table(header, rows)]
    return lines


def _seed_status(entry: Mapping) -> str:
    diverged = as_list(entry.get("diverged_folds"))
    if diverged:
        names = ", ".join(str(d.get("subject")) for d in diverged)
        return f"incomplete (diverged: {names})".replace("|", "\\|")
    if (entry.get("metrics") or {}).get("complete") is False:
        return "incomplete"
    return "complete"


def _tasks_markdown(results: Mapping) -> list[str]:
    """Per task of a protocol scored task by task (`metrics.by_task`, seed 002's five-fold
    CDMER): each task's pooled metrics, mean ± sd over seeds."""
    per_seed = as_list(results.get("per_seed")) or [{"metrics": results.get("metrics") or {}}]
    tasks: dict[str, list] = {}
    for entry in per_seed:
        for task, m in ((entry.get("metrics") or {}).get("by_task") or {}).items():
            tasks.setdefault(task, []).append(m)
    if not tasks:
        return []
    mean, sd = {}, {}
    for task, ms in tasks.items():
        mean[task] = {k: float(np.mean([m[k] for m in ms])) for k in HEADLINE}
        mean[task]["num_samples"] = ms[0].get("num_samples")
        mean[task]["absent_classes"] = sorted({c for m in ms for c in m.get("absent_classes", ())})
        if len(ms) > 1:
            sd[task] = {k: float(np.std([m[k] for m in ms], ddof=1)) for k in HEADLINE}
    return _sources_markdown(mean, sd, len(per_seed), title="## Per task", label="Task")


def _sources_markdown(
    by_source: Mapping, sd: Mapping | None = None, num_seeds=1, *, title="## Per source",
    label="Source",
) -> list[str]:  # fmt: skip
    if not by_source:
        return []
    sd = sd or {}
    rows = [
        [
            _format_cell(source),
            *_metric_cells(by_source[source], sd.get(source) if source in sd else None),
            ", ".join(map(str, as_list(by_source[source].get("absent_classes")))) or "-",
        ]
        for source in sorted(by_source)
    ]
    n = "N"
    if num_seeds > 1:
        title += f" (mean ± sd over {num_seeds} seeds)" if sd else f" ({num_seeds} seeds)"
        n = "N (all seeds)"
    lines = [
        "",
        title,
        "",
        *_table([label, "Acc", "UF1", "UAR", "WAR", n, "Absent classes"], rows),
    ]
    for source in sorted(by_source):
        absent = as_list(by_source[source].get("absent_classes"))
        if absent:
            lines += ["", _absent_note(absent, f" of {source}")]
    return lines


def _per_class_markdown(metrics: Mapping, class_names: list, num_seeds: int = 1) -> list[str]:
    per_class = metrics.get("per_class") or {}
    if not per_class:
        return []
    pooled_absent = as_list(metrics.get("absent_classes"))
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
    title = "## Per class (pooled)"
    if num_seeds > 1:
        title = f"## Per class (pooled over all folds and {num_seeds} seeds)"
    return ["", title, "", *_table(header, rows)]


def _init_markdown(init: Mapping) -> list[str]:
    """Where the initial weights came from: loaded, fresh and frozen parameters."""
    if not init:
        return []
    pretrained, source = init.get("pretrained"), init.get("source")
    if pretrained:
        where = f"`{pretrained}`" + (
            f" (from `{source}`)" if source and source != pretrained else ""
        )
    else:
        where = "none (initialised from the seed)"
    fresh, frozen = as_list(init.get("fresh_leaves")), as_list(init.get("frozen"))

    def paths(items):
        return ", ".join(f"`{item}`" for item in items) or "none"

    return [
        "",
        "## Initialisation",
        "",
        f"- Pretrained weights: {where}",
        f"- Leaves loaded: {_format_cell(init.get('loaded_leaves'))}",
        f"- Leaves initialised fresh ({len(fresh)}): {paths(fresh)}",
        f"- Frozen parameters ({len(frozen)}): {paths(frozen)}",
    ]


def _folds_markdown(folds: list, num_seeds: int = 1) -> list[str]:
    if not folds:
        return []
    with_seed = num_seeds > 1 or len({fold.get("seed") for fold in folds}) > 1
    with_epochs = any("best_epoch" in fold or "stopped_epoch" in fold for fold in folds)
    with_subjects = any("validation_subjects" in fold for fold in folds)
    header = ["Fold", "Subject", "n_train", "n_test", "Accuracy", "Final train loss"]
    header = (["Seed"] if with_seed else []) + header
    header += ["Best epoch", "Stopped"] if with_epochs else []
    header += ["Validation subjects"] if with_subjects else []
    rows = []
    for fold in folds:
        cells = [_format_cell(fold.get("seed"))] if with_seed else []
        cells += [
            _format_cell(fold.get("fold")),
            _format_cell(fold.get("subject")),
            _format_cell(fold.get("num_train")),
            _format_cell(fold.get("num_test")),
            format_number(fold.get("accuracy")),
            format_number(fold.get("final_train_loss")),
        ]
        if with_epochs:
            stopped = fold.get("stopped_epoch", MISSING)
            cells += [_format_cell(fold.get("best_epoch")), _format_cell(stopped or "-")]
        if with_subjects:
            cells.append(_format_cell(as_list(fold.get("validation_subjects"))) or "-")
        rows.append(cells)
    lines = ["", "## Per fold", ""]
    if with_epochs:
        lines += ["Stopped: the epoch early stopping ended the fold ('-': ran to the end).", ""]
    return [*lines, *_table(header, rows)]


def _history_markdown(history: Mapping, num_seeds: int = 1) -> list[str]:
    epochs = as_list(history.get("epoch"))
    if not epochs:
        return []
    columns = [key for key in history if key != "epoch"]
    rows = []
    for i, epoch in enumerate(epochs):
        cells = [_format_cell(epoch)]
        for key in columns:
            series = as_list(history.get(key))
            cells.append(format_number(series[i] if i < len(series) else None))
        rows.append(cells)
    title = "## History (monitoring only, not used to pick an epoch)"
    if "val_loss" in history:
        title = "## History (held-out UAR: monitoring only; the validation loss picks the epoch)"
    lines = ["", title, ""]
    if num_seeds > 1:
        lines += [f"Means over the folds and {num_seeds} seeds.", ""]
    return [*lines, *_table(["Epoch", *columns], rows)]


def _items_markdown(title: str, header: list[str], items) -> list[str]:
    """A two-column section of (key, value) `items`; nothing when there are none."""
    rows = [[_format_cell(key), _format_cell(value)] for key, value in items]
    if not rows:
        return []
    return ["", f"## {title}", "", *_table(header, rows)]


# The Grad-CAM map's name among the attention maps (mer_jax.gradcam).
GRADCAM = "gradcam"
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


def _attention_markdown(record: Mapping) -> list[str]:
    """The summary's attention-map section: the figure, and how each saved map is drawn."""
    maps = record.get("maps") or {}
    if not record:
        return []
    lines = ["", "## Attention maps (held-out examples, the weights each fold predicts with)", ""]
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
        shape = tuple(as_list((info or {}).get("shape")))
        kind = map_kind(shape)
        drawn = DRAWN_AS[kind] if name != GRADCAM else "overlay on the input (each row / its max)"
        rows.append([_format_cell(name), " x ".join(map(str, shape)) or "scalar", drawn])
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
    return lines + _gradcam_markdown(record.get("gradcam") or {})


def _gradcam_markdown(record: Mapping) -> list[str]:
    """The Grad-CAM paragraph of the attention-map section (mer_jax.gradcam)."""
    if not record:
        return []
    return [
        "",
        f"`gradcam`: Grad-CAM (Selvaraju et al., ICCV 2017, Eq. 1-2) of the "
        f"{record.get('class', 'predicted')} class at layer `{record.get('layer', MISSING)}`, "
        "by the same fold as the maps beside it, upsampled (bilinear) to the input; "
        f"reduction: {record.get('reduction', MISSING)}. The figure scales each row to its "
        "maximum.",
    ]


def write_summary_markdown(results: dict, path) -> None:
    """Writes ``summary_markdown(results)`` to ``path``."""
    files.write_text(path, summary_markdown(results))
