"""What a protocol's folds hold: `mer-jax data describe NAME... --protocol P`.

`describe` counts, from a fold table and the sample arrays alone, the folds,
the subjects each fold tests, train / test sizes, class counts per fold and
pooled, and per-dataset counts; `render` writes that as text. `read_samples`
reads the sample arrays of built datasets (every feature but the frames,
which it leaves undecoded) and pools them; labels come from a label scheme
(mer_jax.label_schemes) or, for builders that store one, the `label` feature.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from mer_jax import label_schemes, protocols


class Samples(NamedTuple):
    """The pooled sample list of one or more built datasets (no pixels)."""

    datasets: np.ndarray  # (N,) str, the builders' `source` ('smic' = SMIC-HS, 'smic_vis')
    subjects: np.ndarray  # (N,) str
    clips: np.ndarray  # (N,) str
    labels: np.ndarray  # (N,) int32 into class_names
    class_names: tuple[str, ...]


def _text_array(values) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=str)


def _class_counts(labels: np.ndarray, class_names: Sequence[str], weights=None) -> dict[str, int]:
    counts = np.bincount(labels, weights=weights, minlength=len(class_names))
    return {name: int(round(counts[k])) for k, name in enumerate(class_names)}


def _tally(values: np.ndarray) -> dict[str, int]:
    return dict(sorted(collections.Counter(values.tolist()).items()))


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

    Keys: num_samples, num_folds, class_names, per_fold_metrics, notes,
    pooled (samples in some fold, their subjects and classes; test
    predictions and their classes), by_dataset (samples, used, subjects,
    class_counts, tested), folds (per fold: name, train/test sizes, subjects,
    class and dataset counts, classes tested but never trained on), warnings.
    """
    subjects, datasets = _text_array(subjects), _text_array(datasets)
    labels = np.asarray(labels)
    class_names = tuple(class_names)
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
    train, test = table.train_mask, table.test_mask
    used = (train | test).any(axis=0)
    times_tested = test.sum(axis=0)

    folds, notes = [], []
    for f, name in enumerate(table.names):
        tr, te = train[f], test[f]
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
    by_dataset = {}
    for ds in sorted(set(datasets.tolist())):
        mine = datasets == ds
        by_dataset[ds] = {
            "samples": int(mine.sum()),
            "used": int((mine & used).sum()),
            "subjects": len(set(subjects[mine & used].tolist())),
            "class_counts": _class_counts(labels[mine & used], class_names),
            "tested": int(times_tested[mine].sum()),
        }
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
        "notes": list(table.notes),
        "pooled": pooled,
        "by_dataset": by_dataset,
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
# Reading built datasets.


def _read_builder(name: str, data_dir: str | None, split: str, log: Callable[[str], None]):
    """Columns of every non-pixel feature of built dataset `name`, and its features."""
    from mer_jax import data

    builder = data.prepare_builder(name, data_dir, log=log)
    features = builder.info.features
    for key in ("subject", "clip"):
        if key not in features:
            raise ValueError(f"{name}: no {key!r} feature; describe needs subject and clip ids")
    return data.read_columns(builder, split), features


def read_samples(
    names: Sequence[str],
    *,
    data_dir: str | None = None,
    label_scheme: str | None = None,
    fallback_scheme: str | None = None,
    split: str = "train",
    log: Callable[[str], None] = print,
) -> Samples:
    """The pooled sample list of built datasets `names` ('casme2/raw_112', 'smic/hs_112').

    Labels: `label_scheme` if given (clips it excludes are dropped); else each
    builder's `label` ClassLabel if every builder has one; else
    `fallback_scheme` (e.g. the protocol's); else ValueError. A dataset that
    is not built and needs your copy of the data raises FileNotFoundError
    (mer_jax.data.prepare_builder); synthetic ones are built on first use.
    """
    if not names:
        raise ValueError("read_samples: no dataset names")
    read = [(name, *_read_builder(name, data_dir, split, log)) for name in names]
    has_label = all(
        "label" in features and type(features["label"]).__name__ == "ClassLabel"
        for _, _, features in read
    )
    scheme = label_scheme or (None if has_label else fallback_scheme)
    if scheme is None and not has_label:
        lacking = [name for name, _, features in read if "label" not in features]
        raise ValueError(
            f"{lacking} store no 'label': choose a label scheme (--labels), one of "
            f"{sorted(label_schemes.SCHEMES)}"
        )
    datasets, subjects, clips, labels, class_names = [], [], [], [], None
    for name, columns, features in read:
        clip = _text_array(columns["clip"])
        base = name.split("/")[0]
        source = _text_array(columns.get("source", columns.get("dataset", [base] * len(clip))))
        if scheme is not None:
            spec = label_schemes.get(scheme)
            if spec.field not in columns:
                raise ValueError(
                    f"{name}: label scheme {scheme!r} reads feature {spec.field!r}, which this "
                    f"dataset does not store"
                )
            dataset = columns.get("dataset", source)
            y, keep = label_schemes.apply(spec, dataset, columns[spec.field], where=clip)
            names_here = spec.classes
        else:
            y = np.asarray(columns["label"], np.int32)
            keep = np.ones(len(clip), bool)
            names_here = tuple(features["label"].names)
        if class_names is not None and names_here != class_names:
            raise ValueError(
                f"{name}: classes {names_here} differ from {class_names} of {names[0]}; "
                "pool datasets with one label scheme (--labels)"
            )
        class_names = names_here
        datasets.append(source[keep])
        subjects.append(_text_array(columns["subject"])[keep])
        clips.append(clip[keep])
        labels.append(np.asarray(y, np.int32)[keep])
    clips_all = np.concatenate(clips)
    ids, counts = np.unique(clips_all, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{names}: clip {ids[counts > 1][0]!r} comes from more than one dataset")
    return Samples(
        np.concatenate(datasets),
        np.concatenate(subjects),
        clips_all,
        np.concatenate(labels),
        class_names,
    )


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
        help="label scheme (default: the builders' 'label', else the protocol's scheme); one of "
        + ", ".join(sorted(label_schemes.SCHEMES)),
    )
    p.add_argument("--data-dir", default=None, help="TFDS data dir (default TFDS_DATA_DIR)")
    p.add_argument("--split", default="train")
    p.add_argument("--json", action="store_true", help="the counts as JSON")
    p.set_defaults(fn=cmd_describe)
    return p


def cmd_describe(args) -> int:
    if args.protocol not in protocols.PROTOCOLS:
        raise KeyError(
            f"--protocol {args.protocol!r} unknown; known: {sorted(protocols.PROTOCOLS)}"
        )
    protocol = protocols.PROTOCOLS[args.protocol]
    # TFDS prints while it builds a synthetic set: keep stdout for the answer.
    with contextlib.redirect_stdout(sys.stderr):
        samples = read_samples(
            args.names,
            data_dir=args.data_dir,
            label_scheme=args.labels,
            fallback_scheme=protocol.label_scheme,
            split=args.split,
        )
    table = protocols.make_folds(
        args.protocol,
        samples.subjects,
        datasets=samples.datasets,
        clips=samples.clips,
        labels=samples.labels,
        class_names=samples.class_names,
        label_mismatch="note",
    )
    summary = describe(
        table,
        samples.subjects,
        samples.labels,
        samples.class_names,
        samples.datasets,
        protocol=args.protocol,
    )
    summary["datasets"] = list(args.names)
    print(json.dumps(summary, indent=2) if args.json else render(summary))
    return 0
