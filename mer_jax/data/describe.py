"""What a protocol's folds hold: `mer-jax data describe NAME... --protocol P`.

`describe` counts, from a fold table and the sample arrays alone, the folds,
the subjects each fold tests, train / test sizes, class counts per fold and
pooled, and per-dataset counts; `render` writes that as text. The command
reads the samples of the built datasets with `mer_jax.data.read_metadata`
(the reader `mer_jax.data.load` uses: the same pooling, label schemes and
checks, no pixels decoded).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import sys
from collections.abc import Sequence

import numpy as np

from mer_jax import label_schemes, protocols
from mer_jax.data import loader


def _strings(values) -> np.ndarray:
    return np.array([label_schemes.text(v) for v in values], dtype=str)


def _class_counts(labels: np.ndarray, class_names: Sequence[str], weights=None) -> dict[str, int]:
    counts = np.bincount(labels, weights=weights, minlength=len(class_names))
    return {name: int(round(counts[k])) for k, name in enumerate(class_names)}


def _tally(values: np.ndarray) -> dict[str, int]:
    return dict(sorted(collections.Counter(values.tolist()).items()))


def _check(table: protocols.FoldTable, subjects, labels, class_names, datasets) -> None:
    n = table.num_samples
    for name, values in (("subjects", subjects), ("labels", labels), ("datasets", datasets)):
        if len(values) != n:
            raise ValueError(f"describe: `{name}` has {len(values)} entries, the table {n} samples")
    if n and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"describe: `labels` must be class indices, got dtype {labels.dtype}")
    bad = np.flatnonzero((labels < 0) | (labels >= len(class_names)))
    if bad.size:
        raise ValueError(
            f"describe: labels[{bad[0]}] = {labels[bad[0]]} is not an index into {class_names}"
        )


def _folds(table, subjects, labels, class_names, datasets) -> tuple[list[dict], list[str]]:
    """Per-fold counts, and a note for each fold that tests a class it never trains on."""
    folds, notes = [], []
    for f, name in enumerate(table.names):
        tr, te = table.train_mask[f], table.test_mask[f]
        train_counts = _class_counts(labels[tr], class_names)
        test_counts = _class_counts(labels[te], class_names)
        untrained = [c for c in class_names if test_counts[c] and not train_counts[c]]
        if untrained:
            notes.append(f"fold {name} tests class(es) {untrained} it never trains on")
        folds.append(
            {
                "name": name,
                "train_size": int(tr.sum()),
                "test_size": int(te.sum()),
                "train_subjects": len(set(subjects[tr].tolist())),
                "test_subjects": sorted(set(subjects[te].tolist())),
                "train_class_counts": train_counts,
                "test_class_counts": test_counts,
                "train_datasets": _tally(datasets[tr]),
                "test_datasets": _tally(datasets[te]),
                "untrained_classes": untrained,
            }
        )
    return folds, notes


def _by_dataset(used, times_tested, subjects, labels, class_names, datasets) -> dict:
    out = {}
    for ds in sorted(set(datasets.tolist())):
        mine = datasets == ds
        out[ds] = {
            "samples": int(mine.sum()),
            "used": int((mine & used).sum()),
            "subjects": len(set(subjects[mine & used].tolist())),
            "class_counts": _class_counts(labels[mine & used], class_names),
            "tested": int(times_tested[mine].sum()),
        }
    return out


def describe(
    table: protocols.FoldTable,
    subjects: Sequence[str],
    labels: Sequence[int],
    class_names: Sequence[str],
    datasets: Sequence[str],
    *,
    protocol: str | None = None,
) -> dict:
    """Counts of `table` over the samples (JSON-ready).

    Keys: num_samples, num_folds, class_names, per_fold_metrics, per_task_metrics, notes,
    pooled (samples in some fold, their subjects and classes; test
    predictions and their classes), by_dataset (samples, used, subjects,
    class_counts, tested), folds (per fold: name, train/test sizes, subjects,
    class and dataset counts, classes tested but never trained on), warnings.
    """
    subjects, datasets = _strings(subjects), _strings(datasets)
    labels = np.asarray(labels)
    class_names = tuple(class_names)
    _check(table, subjects, labels, class_names, datasets)
    n = table.num_samples
    used = (table.train_mask | table.test_mask).any(axis=0)
    times_tested = table.test_mask.sum(axis=0)
    folds, notes = _folds(table, subjects, labels, class_names, datasets)
    pooled = {
        "samples": int(used.sum()),
        "unused": int(n - used.sum()),
        "subjects": len(set(subjects[used].tolist())),
        "class_counts": _class_counts(labels[used], class_names),
        "tested": int(times_tested.sum()),
        "tested_class_counts": _class_counts(labels, class_names, weights=times_tested),
    }
    never = [c for c, k in pooled["tested_class_counts"].items() if k == 0]
    if never:
        notes.append(f"class(es) {never} are never tested: metrics cannot score them")
    repeated = int((times_tested > 1).sum())
    if repeated and not table.per_fold_metrics:
        notes.append(f"{repeated} samples are tested in several folds of a pooled protocol")
    out = {
        "num_samples": n,
        "num_folds": table.num_folds,
        "class_names": list(class_names),
        "per_fold_metrics": table.per_fold_metrics,
        "per_task_metrics": bool(table.tasks),
        "notes": list(table.notes),
        "pooled": pooled,
        "by_dataset": _by_dataset(used, times_tested, subjects, labels, class_names, datasets),
        "folds": folds,
        "warnings": notes,
    }
    if protocol is not None:
        out = {"protocol": protocol, **out}
    return out


def render(summary: dict) -> str:
    """`describe`'s dict as text: a per-dataset table, a per-fold table, notes."""
    classes = summary["class_names"]
    width = max([8, *(len(c) for c in classes)])
    pooled = summary["pooled"]
    scoring = "per fold" if summary["per_fold_metrics"] else "pooled over folds"
    if summary.get("per_task_metrics"):
        scoring = "per task, each task's folds pooled"
    head = f"protocol {summary['protocol']}: " if "protocol" in summary else ""
    lines = [
        f"{head}{summary['num_folds']} folds over {pooled['samples']} of "
        f"{summary['num_samples']} samples, {pooled['subjects']} subjects (metrics {scoring})",
        f"classes: {', '.join(classes)}",
        "",
        f"{'dataset':<12} {'samples':>7} {'used':>6} {'subjects':>8} "
        + " ".join(f"{c:>{width}}" for c in classes)
        + f" {'tested':>7}",
    ]
    rows = [
        (ds, v["samples"], v["used"], v["subjects"], v["class_counts"], v["tested"])
        for ds, v in summary["by_dataset"].items()
    ]
    rows.append(
        (
            "all",
            summary["num_samples"],
            pooled["samples"],
            pooled["subjects"],
            pooled["class_counts"],
            pooled["tested"],
        )
    )
    for name, samples, used, subjects, counts, tested in rows:
        lines.append(
            f"{name:<12} {samples:>7} {used:>6} {subjects:>8} "
            + " ".join(f"{counts[c]:>{width}}" for c in classes)
            + f" {tested:>7}"
        )
    fold_width = max([4, *(len(f["name"]) for f in summary["folds"])])
    lines += [
        "",
        f"{'fold':<{fold_width}} {'train':>6} {'test':>5} {'test subj':>9}  test classes "
        f"({' / '.join(classes)})",
    ]
    for f in summary["folds"]:
        counts = " / ".join(str(f["test_class_counts"][c]) for c in classes)
        lines.append(
            f"{f['name']:<{fold_width}} {f['train_size']:>6} {f['test_size']:>5} "
            f"{len(f['test_subjects']):>9}  {counts}"
        )
    for title, items in (("notes", summary["notes"]), ("warnings", summary["warnings"])):
        if items:
            lines += ["", f"{title}:", *(f"  - {item}" for item in items)]
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# Command line.


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `describe` to the `mer-jax data` subcommands."""
    p = subparsers.add_parser(
        "describe", help="folds, subjects and class counts of a protocol over built datasets"
    )
    p.add_argument("names", nargs="+", metavar="NAME", help="built dataset(s) NAME[/CONFIG]")
    p.add_argument(
        "--protocol", default="loso", help=f"one of {', '.join(sorted(protocols.PROTOCOLS))}"
    )
    p.add_argument(
        "--labels",
        default=None,
        metavar="SCHEME",
        help="label scheme (default: each builder's 'label' where it stores one, else the "
        "protocol's scheme); one of " + ", ".join(sorted(label_schemes.SCHEMES)),
    )
    p.add_argument("--data-dir", default=None, help="TFDS data dir (default TFDS_DATA_DIR)")
    p.add_argument("--split", default="train")
    p.add_argument("--json", action="store_true", help="the counts as JSON")
    p.set_defaults(fn=cmd_describe)
    return p


def cmd_describe(args) -> int:
    if args.protocol not in protocols.PROTOCOLS:
        raise ValueError(
            f"--protocol {args.protocol!r} unknown; known: {sorted(protocols.PROTOCOLS)}"
        )
    protocol = protocols.PROTOCOLS[args.protocol]
    # TFDS prints while it builds a synthetic set, and the reader logs with print: keep stdout
    # for the answer.
    with contextlib.redirect_stdout(sys.stderr):
        samples = loader.read_metadata(
            "+".join(args.names),
            label_scheme=args.labels or "",
            default_label_scheme=protocol.label_scheme or "",
            data_dir=args.data_dir,
            split=args.split,
        )
    table = protocols.folds_of(args.protocol, samples, label_mismatch="note")
    summary = describe(
        table,
        samples.subjects,
        samples.labels,
        samples.class_names,
        samples.sources,
        protocol=args.protocol,
    )
    summary["datasets"] = list(args.names)
    print(json.dumps(summary, indent=2) if args.json else render(summary))
    return 0
