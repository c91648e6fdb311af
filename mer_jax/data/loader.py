"""Builder -> tfds.data_source -> model inputs -> the whole dataset as host arrays.

The sweep then puts the arrays on the accelerator once (engine.Data); every
fold indexes into them. `name` may join several built datasets with '+'
(e.g. 'casme2/cropped_112+samm/raw_112' for seed 000's composite): their
examples are pooled in that order. Labels come from the builder's `label`
feature (synthetic corpora) or from a label scheme (`mer_jax.label_schemes`)
applied to the stored emotions of the real datasets; clips a scheme excludes
are counted in the log, never dropped silently.

Model inputs: a view config (`data_builders/views.py`, e.g.
`casme2/cropped_flow_28`) stores each clip's input in its `input` feature; it
is loaded as stored, nothing recomputed. The stored view is what the model
reads: the `input` keys of the sweep config that describe a view
(representation, image_size, channels, apex, flow_method, num_frames,
factors, magnifier_checkpoint, evm) are not used for it, and each one whose
value differs from the stored setting is named in a log line
(`input.label_scheme` still applies). A frames config (e.g.
`casme2/cropped_112`) is turned into inputs by `mer_jax.preprocess` as the
`input` keys say, once per (dataset, settings), cached as .npy files under
`<data_dir>/mer_jax_inputs/`. Both kinds pool with '+'.
"""

import hashlib
import json
import os
import pathlib
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np
import tensorflow_datasets as tfds
from tqdm.auto import tqdm

import data_builders
from mer_jax import label_schemes
from mer_jax.preprocess import representations


class Dataset(NamedTuple):
    images: np.ndarray  # (N, ...) model inputs: uint8 pixels or float32 (flow)
    labels: np.ndarray  # (N,) int32
    subjects: np.ndarray  # (N,) str, unique across source datasets
    sources: np.ndarray  # (N,) str, e.g. 'casme2', 'samm', 'smic'
    clips: np.ndarray  # (N,) str
    class_names: tuple[str, ...]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def default_data_dir() -> str:
    """TFDS_DATA_DIR if set, else TFDS's default (~/tensorflow_datasets)."""
    return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


def prepare_builder(name: str, data_dir: str | None = None, *, log: Callable[[str], None] = print):
    """The TFDS builder of `name`, built first if it needs no input files (synthetic corpora)."""
    data_builders.import_builder(name)
    builder = tfds.builder(name, data_dir=data_dir or None)
    if builder.is_prepared():
        return builder
    if getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
        raise FileNotFoundError(
            f"dataset {name} is not built in {builder.data_dir}. It needs your copy of the data: "
            f"run `mer-jax data build {name} --manual-dir DIR"
            + (f" --data-dir {data_dir}" if data_dir else "")
            + "` first."
        )
    log(f"building {name} into {builder.data_dir} (no input files needed) ...")
    builder.download_and_prepare(file_format="array_record")
    return builder


# Feature kinds read as metadata; frames and images are skipped (not decoded).
METADATA_FEATURES = ("Text", "Scalar", "ClassLabel")


def read_columns(builder, split: str = "train") -> dict[str, list]:
    """Every metadata feature of a built dataset as columns, without decoding any pixels."""
    import tensorflow_datasets as tfds

    features = builder.info.features
    skip = {
        key: tfds.decode.SkipDecoding()
        for key, feature in features.items()
        if type(feature).__name__ not in METADATA_FEATURES
    }
    source = builder.as_data_source(split=split, decoders=skip or None)
    keys = [k for k in features if k not in skip]
    columns = {k: [] for k in keys}
    for i in range(len(source)):
        example = source[i]
        for k in keys:
            columns[k].append(example[k])
    return columns


def _spec_dict(spec) -> dict:
    """A (possibly nested) ConfigDict or dict as plain JSON-able dicts and lists."""
    out = {}
    for key, value in spec.items():
        if hasattr(value, "items"):
            value = _spec_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def _cache_path(builder, split: str, spec: Mapping) -> pathlib.Path:
    keys = {k: v for k, v in _spec_dict(spec).items() if k != "label_scheme"}
    blob = json.dumps(
        {"dataset": builder.info.full_name, "split": split, "input": keys}, sort_keys=True
    )
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    name = builder.info.full_name.replace("/", "_")
    return pathlib.Path(builder.data_dir_root) / "mer_jax_inputs" / f"{name}-{split}-{digest}.npy"


def _inputs(builder, source, split: str, spec: Mapping, log, progress: bool) -> np.ndarray:
    """The representation of every clip, from the cache when the same settings ran before."""
    path = _cache_path(builder, split, spec)
    if path.exists():
        log(f"{builder.info.full_name}: model inputs from {path}")
        return np.load(path)
    to_input = representations.REPRESENTATIONS[spec["representation"]]
    out = None
    desc = f"{builder.info.full_name} -> {spec['representation']}"
    for i in tqdm(range(len(source)), desc=desc, unit="clip", disable=not progress):
        ex = source[i]
        clip = representations.Clip(
            ex["frames"], int(ex["onset"]), int(ex["apex"]), int(ex["offset"]), _text(ex["clip"])
        )
        x = to_input(clip, spec)
        if out is None:
            out = np.zeros((len(source), *x.shape), x.dtype)
        out[i] = x
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, out)
    tmp.replace(path)
    return out


def stored_view(builder) -> dict | None:
    """The view settings of a view config (`info.metadata['view']`), None for a frames config."""
    if "input" not in builder.info.features:
        return None
    metadata = builder.info.metadata
    view = metadata.get("view") if metadata is not None else None
    if not view or "input" not in view:
        raise ValueError(
            f"dataset {builder.info.full_name} stores an `input` feature but no view settings in "
            f"its dataset info ({builder.data_dir}/metadata.json): rebuild it"
        )
    return view


def _plain(value):
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def ignored_keys(view: Mapping, spec: Mapping) -> list[str]:
    """'input.KEY=VALUE (stored S)' for each key of `spec` that the stored view's
    representation reads (`representations.READS`) and that differs from the stored setting."""
    stored = view["input"]
    keys = ("representation", *representations.READS[stored["representation"]])
    out = []
    for key in keys:
        if key in spec and _plain(spec[key]) != _plain(stored[key]):
            out.append(f"input.{key}={_plain(spec[key])!r} (stored {stored[key]!r})")
    return out


def _stored_inputs(builder, source, name: str, progress: bool) -> np.ndarray:
    feature = builder.info.features["input"]
    out = np.empty((len(source), *feature.shape), feature.np_dtype)
    desc = f"{name}: stored inputs"
    for i in tqdm(range(len(source)), desc=desc, unit="clip", disable=not progress):
        out[i] = source[i]["input"]
    return out


def _load_one(name, data_dir, split, spec, log, progress, default_scheme=""):
    builder = prepare_builder(name, data_dir, log=log)
    source = tfds.data_source(name, data_dir=data_dir or None, split=split)
    n = len(source)
    features = builder.info.features
    meta = {}
    scheme_name = spec.get("label_scheme") or ""
    if not scheme_name and "label" not in features and default_scheme:
        scheme_name = default_scheme
        log(f"{name}: labels by the protocol's label scheme {scheme_name}")
    scheme = label_schemes.get(scheme_name) if scheme_name else None
    field = scheme.field if scheme else "label"
    if scheme is None and "label" not in features:
        raise ValueError(
            f"dataset {name} stores no labels, only emotions: set config key "
            f"'input.label_scheme' (known: {sorted(label_schemes.SCHEMES)})"
        )
    columns = read_columns(builder, split)
    text = lambda key: [_text(v) for v in columns[key]]
    meta["subject"], meta["source"], meta["clip"] = text("subject"), text("source"), text("clip")
    meta["label"] = text(field) if scheme else [int(v) for v in columns["label"]]
    meta["dataset"] = text("dataset") if "dataset" in columns else meta["source"]
    view = stored_view(builder)
    if view is None:
        images = _inputs(builder, source, split, spec, log, progress)
    else:
        ignored = ignored_keys(view, spec)
        log(
            f"{name}: model inputs stored in the dataset ({view['description']}); "
            + (
                f"the stored view is used, config keys ignored: {', '.join(ignored)}"
                if ignored
                else "the config's input keys agree with it"
            )
        )
        images = _stored_inputs(builder, source, name, progress)
    if scheme is None:
        labels = np.asarray(meta["label"], np.int32)
        class_names = tuple(features["label"].names)
        keep = np.ones(n, bool)
    else:
        where = [f"{name} clip {c}" for c in meta["clip"]]
        labels, keep = label_schemes.apply(scheme, meta["dataset"], meta["label"], where)
        class_names = tuple(scheme.classes)
        if not keep.all():
            log(f"{name}: label scheme {scheme.name} excludes {int((~keep).sum())} of {n} clips")
    pick = lambda xs: np.asarray(xs)[keep]
    return Dataset(
        images[keep],
        labels[keep],
        pick(meta["subject"]),
        pick(meta["source"]),
        pick(meta["clip"]),
        class_names,
    )


def load(
    name: str,
    spec: Mapping,
    *,
    data_dir: str | None = None,
    split: str = "train",
    log: Callable[[str], None] = print,
    progress: bool = True,
    default_label_scheme: str = "",
) -> Dataset:
    """Every example of `name` ('a' or 'a+b+...') as the model input `spec` describes.

    `spec` is the sweep config's `input` section: representation, image_size,
    channels, apex, label_scheme, ... (see `mer_jax.preprocess`).
    `default_label_scheme` (the protocol's) labels datasets that store only
    emotions when `spec.label_scheme` is empty.
    """
    representation = spec["representation"]
    if representation not in representations.REPRESENTATIONS:
        raise KeyError(
            f"config key 'input.representation': unknown {representation!r}; "
            f"known: {sorted(representations.REPRESENTATIONS)}"
        )
    parts = [part for part in name.split("+") if part]
    loaded = [
        _load_one(part, data_dir, split, spec, log, progress, default_label_scheme)
        for part in parts
    ]
    class_names = loaded[0].class_names
    for part, ds in zip(parts, loaded):
        if ds.class_names != class_names:
            raise ValueError(
                f"config key 'dataset': {part} has classes {list(ds.class_names)}, "
                f"{parts[0]} has {list(class_names)}; pool datasets under one 'input.label_scheme'"
            )
    shapes = {ds.images.shape[1:] for ds in loaded}
    if len(shapes) > 1:
        raise ValueError(f"config key 'dataset': the parts give inputs of shapes {sorted(shapes)}")
    out = Dataset(
        *(np.concatenate([getattr(ds, f) for ds in loaded]) for f in Dataset._fields[:-1]),
        class_names,
    )
    clips, counts = np.unique(out.clips, return_counts=True)
    dupes = clips[counts > 1]
    if dupes.size:
        raise ValueError(f"config key 'dataset': clip {dupes[0]} appears twice in {name}")
    log(
        f"{name}: {len(out.labels)} clips, {len(set(out.subjects.tolist()))} subjects, "
        f"classes {list(class_names)}, inputs {out.images.shape[1:]} {out.images.dtype}"
    )
    return out
