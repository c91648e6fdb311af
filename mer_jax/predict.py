"""`mer-jax predict`: class probabilities for the clips of a built dataset from a sweep's
exported weights (`mer_jax.export`), through the view the models were trained on.

`predict(workdir, dataset)` loads the export, checks that every part of
`dataset` gives the view the sweep's models read (a stored view with other
settings is an error naming them), loads the clips with the sweep's `input`
keys (frames configs are computed through that same view), checks the input
shape and dtype and the classes against the export, then evaluates as the
engine's held-out evaluation does: `engine.augment_batch(..., train=False)`
(the centre crop the sweep evaluated with, `engine.to_float`) and
`model.apply(variables, x, train=False)`, in jitted batches, then a softmax
(`export.softmax`, the one results.json's probabilities use).

`fold=NAME` uses the model of the fold that held out NAME (for LOSO, a
subject): on that subject's clips it gives the probabilities the sweep itself
predicted for them. Without `fold`, the final model trained on every subject
predicts when the sweep trained one (`train.final_model`); else the probabilities are the mean over every
fold's model (folds whose training diverged left out); each of those models
trained on all but its fold's subjects, so for clips of the sweep's own
dataset the mean is not a held-out prediction.
"""

import argparse
import csv
import dataclasses
import pathlib
import sys
from collections.abc import Callable
from functools import partial

import jax
import numpy as np

from mer_jax import cli, engine, errors, export, files


@dataclasses.dataclass(frozen=True)
class Predictions:
    """Class probabilities of every clip of a dataset."""

    clips: np.ndarray  # (N,) str
    subjects: np.ndarray  # (N,) str
    labels: np.ndarray | None  # (N,) int into class_names, None where the dataset has none
    probabilities: np.ndarray  # (N, K) float32
    class_names: tuple[str, ...]
    folds: tuple[str, ...]  # the folds whose models predicted
    combined: str  # how: "fold model NAME", "the final model (...)", "mean of F fold models"

    @property
    def predicted(self) -> np.ndarray:
        """(N,) the most probable class of each clip."""
        return self.probabilities.argmax(axis=-1)


def select_folds(exported: export.Exported, fold: str | None) -> tuple[list[int], str]:
    """(fold indices, description) of the model(s) that predict."""
    names = list(exported.fold_names)
    diverged = exported.meta.get("diverged") or {}
    if fold is not None:
        if fold not in names:
            raise errors.UserError(f"--fold {fold!r}: the export has folds {names}")
        if fold in diverged:
            raise errors.UserError(
                f"--fold {fold!r}: that fold diverged at epoch {diverged[fold]}; "
                "its weights are not a trained model"
            )
        return [names.index(fold)], f"fold model {fold}"
    finals = [i for i, n in enumerate(names) if export.is_final_model(n) and n not in diverged]
    if len(finals) == 1:
        return finals, f"the final model ({names[finals[0]]})"
    if finals:  # one per seed
        return finals, f"mean of {len(finals)} final models (one per seed)"
    chosen = [i for i, name in enumerate(names) if name not in diverged]
    if not chosen:
        raise errors.UserError("every fold of the export diverged: no model to predict with")
    left = f", diverged folds {sorted(diverged)} left out" if diverged else ""
    return chosen, f"mean of {len(chosen)} fold models{left}"


def load_spec(meta: dict) -> dict:
    """The `input` keys that load a dataset through the exported view: the sweep's keys,
    with the settings of the view its first dataset part gave."""
    spec = dict(meta["input"]["config"])
    views = meta["input"].get("views") or []
    if views:
        spec.update(views[0]["settings"])
    return spec


def check_views(name: str, spec: dict, meta: dict, data_dir) -> None:
    """Every part of dataset `name` must give a view the exported models read."""
    trained = [v["settings"] for v in meta["input"].get("views") or []]
    for view in export.dataset_views(name, spec, data_dir):
        if trained and view["settings"] not in trained:
            differ = sorted(
                key
                for key in set(view["settings"]) | set(trained[0])
                if view["settings"].get(key) != trained[0].get(key)
            )
            shown = ", ".join(
                f"{k}={view['settings'].get(k)!r} (trained {trained[0].get(k)!r})" for k in differ
            )
            kind = "stored view" if view["stored"] else "view computed from frames"
            raise errors.UserError(
                f"dataset {view['part']}: its {kind} differs from the one the exported models "
                f"read ({meta['input']['dataset']}): {shown}"
            )


def check_inputs(images: np.ndarray, meta: dict, name: str) -> None:
    want = meta["input"]
    shape, dtype = list(images.shape[1:]), str(images.dtype)
    if shape != list(want["shape"]) or dtype != want["dtype"]:
        raise errors.UserError(
            f"dataset {name}: inputs {tuple(shape)} {dtype}, the exported models read "
            f"{tuple(want['shape'])} {want['dtype']} (from {want['dataset']})"
        )


def map_labels(labels, class_names, exported_names, name: str) -> np.ndarray:
    """`labels` into `class_names` -> into the export's class order; other classes: an error."""
    if tuple(class_names) == tuple(exported_names):
        return np.asarray(labels)
    if sorted(class_names) != sorted(exported_names):
        raise errors.UserError(
            f"dataset {name} has classes {list(class_names)}, the exported models predict "
            f"{list(exported_names)}; choose the label scheme the sweep used "
            "(config key 'input.label_scheme')"
        )
    order = np.array([list(exported_names).index(c) for c in class_names])
    return order[np.asarray(labels)]


@partial(jax.jit, static_argnums=(0, 1))
def _logits(model, crop_size, variables, images):
    """The engine's evaluation of one batch (FoldFns.evaluate): centre crop, to_float, apply."""
    aug = engine.Augment(crop_size=crop_size)
    x = engine.augment_batch(jax.random.key(0), images, aug, train=False)
    return model.apply(variables, x, train=False)[0]


def probabilities(exported: export.Exported, images, folds, batch_size: int = 64) -> np.ndarray:
    """(N, K) float32: the mean over `folds` of each fold model's softmax probabilities."""
    if batch_size < 1:
        raise errors.UserError(f"--batch-size {batch_size} is not >= 1")
    n = images.shape[0]
    batch = min(batch_size, max(n, 1))
    crop = exported.input.get("crop_size")
    total = np.zeros((n, len(exported.class_names)), np.float64)
    for f in folds:
        variables = jax.device_put(exported.fold_variables(f))
        for start in range(0, n, batch):
            part = images[start : start + batch]
            pad = batch - part.shape[0]  # every batch full: one compiled program
            if pad:
                part = np.concatenate([part, np.zeros((pad, *part.shape[1:]), part.dtype)])
            logits = np.asarray(_logits(exported.model, crop, variables, part))
            total[start : start + batch - pad] += export.softmax(logits[: batch - pad])
    return (total / len(folds)).astype(np.float32)


def predict(
    workdir,
    dataset: str,
    *,
    data_dir: str | None = None,
    fold: str | None = None,
    batch_size: int = 64,
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> Predictions:
    """Class probabilities for every clip of built dataset `dataset` (see the module
    docstring). `data_dir`: where it is built (default: the sweep's `data_dir`, else
    TFDS_DATA_DIR); `fold`: the one fold model to use (default: the final model, else the mean of all)."""
    from mer_jax import data

    exported = export.load(workdir)
    meta = exported.meta
    chosen, combined = select_folds(exported, fold)
    data_dir = data_dir or meta["input"].get("data_dir") or None
    spec = load_spec(meta)
    check_views(dataset, spec, meta, data_dir)
    ds = data.load(
        dataset,
        spec,
        data_dir=data_dir,
        log=log,
        progress=progress,
        default_label_scheme=meta["input"].get("default_label_scheme") or "",
    )
    check_inputs(ds.images, meta, dataset)
    labels = map_labels(ds.labels, ds.class_names, exported.class_names, dataset)
    log(f"predicting {len(ds.clips)} clips of {dataset}: {combined}")
    probs = probabilities(exported, ds.images, chosen, batch_size)
    return Predictions(
        clips=np.asarray(ds.clips),
        subjects=np.asarray(ds.subjects),
        labels=labels,
        probabilities=probs,
        class_names=exported.class_names,
        folds=tuple(exported.fold_names[i] for i in chosen),
        combined=combined,
    )


def write_csv(predictions: Predictions, stream) -> None:
    """clip, subject, label (class name; empty if unknown), predicted, then one `prob_<class>`
    column per class (float32 values written to 9 significant digits: exact)."""
    names = predictions.class_names
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["clip", "subject", "label", "predicted", *(f"prob_{c}" for c in names)])
    for i, clip in enumerate(predictions.clips):
        label = "" if predictions.labels is None else names[int(predictions.labels[i])]
        row = [clip, predictions.subjects[i], label, names[int(predictions.predicted[i])]]
        writer.writerow(row + [f"{float(p):.9g}" for p in predictions.probabilities[i]])


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `mer-jax predict` to `subparsers`."""
    p = subparsers.add_parser("predict", help=cli.help_of("predict"))
    p.add_argument("workdir", help="a sweep's work dir (its weights/ export)")
    p.add_argument("--dataset", required=True, help="a built dataset NAME/CONFIG ('+' pools)")
    p.add_argument("--data-dir", help="where it is built (default: the sweep's data_dir)")
    p.add_argument("--fold", help="use this fold's model (its held-out subject); default: mean")
    p.add_argument("--out", help="CSV file to write (default: stdout)")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(fn=cmd_predict)
    return p


def cmd_predict(args) -> int:
    """`mer-jax predict WORKDIR --dataset NAME/CONFIG [--out FILE]`: a CSV of probabilities;
    messages go to stderr, so the CSV alone goes to stdout without --out."""

    def log(message):
        print(message, file=sys.stderr)

    result = predict(
        args.workdir,
        args.dataset,
        data_dir=args.data_dir,
        fold=args.fold,
        batch_size=args.batch_size,
        log=log,
    )
    if args.out:
        out = pathlib.Path(args.out)
        with files.atomic(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            write_csv(result, f)
        log(f"wrote {len(result.clips)} predictions ({result.combined}) to {out}")
    else:
        write_csv(result, sys.stdout)
        log(f"{len(result.clips)} predictions ({result.combined})")
    return 0
