"""Builder -> per-clip metadata and model inputs -> the whole dataset as host arrays.

The sweep then puts the arrays on the accelerator once (engine.Data); every
fold indexes into them. `name` may join several built datasets with '+'
(e.g. 'casme2/cropped_112+samm/raw_112' for seed 000's composite): their
examples are pooled in that order.

`read_metadata` is the one reader of a built dataset's per-clip metadata
(subject, clip, source ids and labels; no pixels decoded): `load` and
`mer-jax data describe` both read through it. Labels come from the builder's
`label` feature (synthetic corpora) or from a label scheme
(`mer_jax.label_schemes`) applied to the stored emotions of the real datasets;
clips a scheme excludes are counted in the log, never dropped silently.

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
`<data_dir>/mer_jax_inputs/`. The cache key is the settings, the content of
the prepared dataset's stored files (shards, dataset_info.json, ...: a rebuilt
dataset is a new key) and the preprocessing source files; each use of the
cache is logged, and each recomputation with its reason; files are written
atomically and stale ones of the same settings removed. Both kinds pool with '+'.

Still-image datasets (the macro-expression builders: one `image` per example,
no `source`, no `frames`) load too (`mer_jax.data.stills`): source = the
`dataset` feature, one clip id per example, a subject-less image its own
subject; their `apex` / `evm_apex` input is the image itself, resized and in
the representation's channels (cached like frames configs' inputs); a
representation that needs motion is a `UserError`. They pool with each other
and, where the input shapes agree, with clip datasets.

tensorflow_datasets and the builders are imported where a dataset is read:
importing this module does not need them.
"""

import hashlib
import json
import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from mer_jax import files, label_schemes
from mer_jax.data import stills
from mer_jax.errors import UserError
from mer_jax.label_schemes import text
from mer_jax.preprocess import representations


class Dataset(NamedTuple):
    images: np.ndarray  # (N, ...) model inputs: uint8 pixels or float32 (flow)
    labels: np.ndarray  # (N,) int32
    subjects: np.ndarray  # (N,) str, unique across source datasets
    sources: np.ndarray  # (N,) str, e.g. 'casme2', 'samm', 'smic'
    clips: np.ndarray  # (N,) str
    class_names: tuple[str, ...]


def default_data_dir() -> str:
    """TFDS_DATA_DIR if set, else TFDS's default (~/tensorflow_datasets)."""
    return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


SPLIT_MARK = "@"  # 'dfme/raw_112@test_a': the part's TFDS split (default: the `split` argument)


def split_of(part: str, split: str) -> tuple[str, str]:
    """(builder name, split) of a part: 'dfme/raw_112@test_a' -> ('dfme/raw_112', 'test_a')."""
    name, mark, chosen = part.partition(SPLIT_MARK)
    return name, (chosen if mark else split)


def prepare_builder(name: str, data_dir: str | None = None, *, log: Callable[[str], None] = print):
    """The TFDS builder of `name` (any '@split' ignored), built first if it needs no input
    files (synthetic corpora): by `mer_jax.data.build.build`, under the dataset's lock and
    with its build record."""
    import tensorflow_datasets as tfds

    import data_builders

    name = split_of(name, "")[0]
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
    from mer_jax.data import build  # the locked, recorded build of `mer-jax data build`

    log(f"{name} needs no input files: building it")
    return build.build(builder, log=log)[0]


# Feature kinds read as metadata; frames and images are skipped (not decoded).
METADATA_FEATURES = ("Text", "Scalar", "ClassLabel")
# Text features every clip needs: its ids (subjects are unique across datasets); still-image
# datasets derive them from theirs (`stills.ids`).
ID_FEATURES = ("subject", "clip", "source")
# Where a user chooses a label scheme, for error messages.
LABEL_SETTING = "config key 'input.label_scheme'; `mer-jax data describe --labels`"


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


class Part(NamedTuple):
    """One '+'-joined part of a dataset name: its builder and which stored clips are kept."""

    name: str  # 'casme2/cropped_112'
    builder: Any  # its prepared tfds builder
    keep: np.ndarray  # (n,) bool over its stored clips: False where the label scheme excludes
    split: str = "train"  # its TFDS split ('name@split' in the dataset name, else `split`)


class Metadata(NamedTuple):
    """The kept clips of a (possibly pooled) built dataset, in pooled order; no pixels."""

    labels: np.ndarray  # (N,) int32 into class_names
    subjects: np.ndarray  # (N,) str, unique across source datasets
    sources: np.ndarray  # (N,) str, e.g. 'casme2', 'samm', 'smic', 'smic_vis'
    clips: np.ndarray  # (N,) str
    class_names: tuple[str, ...]
    parts: tuple[Part, ...]


def _scheme_of(part: str, features, label_scheme: str, default: str, log):
    """The label scheme that labels `part` (None: its own `label` feature)."""
    name = label_scheme
    if not name and "label" not in features and default:
        name = default
        log(f"{part}: labels by the protocol's label scheme {name}")
    if not name and "label" not in features:
        raise ValueError(
            f"dataset {part} stores no 'label', only emotions: choose a label scheme "
            f"({LABEL_SETTING}), one of {sorted(label_schemes.SCHEMES)}"
        )
    scheme = label_schemes.get(name) if name else None
    if scheme is not None and scheme.field not in features:
        raise ValueError(
            f"dataset {part}: label scheme {scheme.name!r} reads feature {scheme.field!r}, "
            "which this dataset does not store"
        )
    return scheme


def _read_part(part: str, label_scheme: str, default: str, data_dir, split: str, log):
    """(Part, class names, {id feature: kept values}, kept labels) of one built dataset."""
    builder = prepare_builder(part, data_dir, log=log)
    split = split_of(part, split)[1]
    if split not in builder.info.splits:
        raise UserError(
            f"config key 'dataset': {part} has no split {split!r}; it has "
            f"{sorted(builder.info.splits)} (name one as NAME/CONFIG{SPLIT_MARK}SPLIT)"
        )
    features = builder.info.features
    missing = [key for key in ID_FEATURES if key not in features]
    if missing and not stills.stores_stills(features):
        raise UserError(
            f"dataset {part} has no {missing} feature: every clip needs {ID_FEATURES} "
            f"(a still-image dataset: {stills.FEATURES})"
        )
    scheme = _scheme_of(part, features, label_scheme, default, log)
    columns = read_columns(builder, split)
    if missing:
        ids = stills.ids(part, columns, log)
    else:
        ids = {key: np.array([text(v) for v in columns[key]], dtype=str) for key in ID_FEATURES}
    n = len(ids["clip"])
    if scheme is None:
        labels, keep = np.asarray(columns["label"], np.int32), np.ones(n, bool)
        class_names = tuple(features["label"].names)
    else:
        datasets = columns["dataset"] if "dataset" in columns else ids["source"]
        where = [f"{part} clip {c}" for c in ids["clip"]]
        labels, keep = label_schemes.apply(scheme, datasets, columns[scheme.field], where)
        class_names = tuple(scheme.classes)
        if not keep.all():
            log(f"{part}: label scheme {scheme.name} excludes {int((~keep).sum())} of {n} clips")
    kept = {key: values[keep] for key, values in ids.items()}
    return Part(part, builder, keep, split), class_names, kept, labels[keep]


def read_metadata(
    name: str,
    *,
    label_scheme: str = "",
    default_label_scheme: str = "",
    data_dir: str | None = None,
    split: str = "train",
    log: Callable[[str], None] = print,
) -> Metadata:
    """The clips of `name` ('a' or 'a+b+...'), labelled, from metadata alone (no pixels).

    Labels of each part: `label_scheme` if set; else its `label` feature if it
    stores one; else `default_label_scheme` (the protocol's); else ValueError.
    Clips the scheme excludes are left out and counted in the log. The parts
    must give the same classes, and no clip may appear twice. A dataset that is
    not built and needs your copy of the data raises FileNotFoundError
    (`prepare_builder`); synthetic ones are built on first use.
    """
    parts = [part for part in name.split("+") if part]
    if not parts:
        raise ValueError(f"dataset name {name!r} names no built dataset")
    read = [_read_part(p, label_scheme, default_label_scheme, data_dir, split, log) for p in parts]
    class_names = read[0][1]
    for part, names, _, _ in read:
        if names != class_names:
            raise ValueError(
                f"dataset {part.name} has classes {list(names)}, {parts[0]} has "
                f"{list(class_names)}; pool datasets under one label scheme ({LABEL_SETTING})"
            )
    ids = {key: np.concatenate([kept[key] for _, _, kept, _ in read]) for key in ID_FEATURES}
    clips, counts = np.unique(ids["clip"], return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"dataset {name}: clip {clips[counts > 1][0]} appears twice")
    return Metadata(
        np.concatenate([labels for *_, labels in read]).astype(np.int32),
        ids["subject"],
        ids["source"],
        ids["clip"],
        class_names,
        tuple(part for part, *_ in read),
    )


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


CACHE_DIR = "mer_jax_inputs"
# The code that turns frames into model inputs: its source files are part of the cache key.
PREPROCESS_MODULE = "mer_jax.preprocess.representations"


class CacheKey(NamedTuple):
    """Where a frames config's computed inputs are cached, and what the file name says."""

    path: pathlib.Path  # <data_dir>/mer_jax_inputs/<prefix><settings>-<content>-<code>.npy
    prefix: str  # '<dataset>-<split>-'
    settings: str  # digest of the dataset name, split and `input` keys (no label scheme)
    content: str  # digest of the prepared dataset's stored files (`fingerprint.stored`)
    code: str  # digest of the preprocessing source files (`fingerprint.sources`)


def _cache_key(builder, split: str, spec: Mapping) -> CacheKey:
    from data_builders import fingerprint

    keys = {k: v for k, v in _spec_dict(spec).items() if k != "label_scheme"}
    blob = json.dumps(
        {"dataset": builder.info.full_name, "split": split, "input": keys}, sort_keys=True
    )
    folder = pathlib.Path(builder.data_dir_root) / CACHE_DIR
    settings = hashlib.sha256(blob.encode()).hexdigest()[:16]
    content = fingerprint.stored(pathlib.Path(builder.data_dir), folder / "stored_digests.json")
    code = fingerprint.sources(PREPROCESS_MODULE)["digest"]
    prefix = f"{builder.info.full_name.replace('/', '_')}-{split}-"
    name = f"{prefix}{settings}-{content[:16]}-{code[:12]}.npy"
    return CacheKey(folder / name, prefix, settings, content[:16], code[:12])


def _cache_miss(key: CacheKey) -> tuple[str, list[pathlib.Path]]:
    """Why `key.path` is not there, and the cache files of the same settings it replaces."""
    folder = key.path.parent
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    others = [folder / n for n in names if n.startswith(key.prefix) and n.endswith(".npy")]
    others = [p for p in others if p != key.path]
    parts = {p: p.stem[len(key.prefix) :].split("-") for p in others}
    stale = [p for p, part in parts.items() if part[0] == key.settings]
    if not stale:
        if others:
            return f"not cached for these input settings ({len(others)} other settings are)", []
        return "not cached yet", []
    why = []
    if any(len(parts[p]) != 3 for p in stale):
        why.append("written by an earlier mer_jax that did not key it on the dataset's content")
    if any(len(parts[p]) == 3 and parts[p][1] != key.content for p in stale):
        why.append("the dataset's stored files changed (it was rebuilt)")
    if any(len(parts[p]) == 3 and parts[p][2] != key.code for p in stale):
        why.append(f"the preprocessing code ({PREPROCESS_MODULE} and its imports) changed")
    return f"cached inputs are stale: {' and '.join(why)}", stale


def _cached(key: CacheKey, n: int) -> tuple[np.ndarray | None, str]:
    """The cached inputs (None if absent or unusable) and, if None, why."""
    if not key.path.exists():
        return None, ""
    try:
        out = np.load(key.path)
    except (OSError, ValueError) as e:
        return None, f"cache file {key.path} unreadable ({e})"
    if len(out) != n:
        return None, f"cache file {key.path} holds {len(out)} clips, the dataset {n}"
    return out, ""


def _clip_inputs(source, spec: Mapping, desc: str, progress: bool) -> np.ndarray:
    """The representation of every stored clip of a frames config, (N, ...)."""
    to_input = representations.REPRESENTATIONS[spec["representation"]]
    out = None
    for i in tqdm(range(len(source)), desc=desc, unit="clip", disable=not progress):
        ex = source[i]
        clip = representations.Clip(
            ex["frames"], int(ex["onset"]), int(ex["apex"]), int(ex["offset"]), text(ex["clip"])
        )
        x = to_input(clip, spec)
        if out is None:
            out = np.zeros((len(source), *x.shape), x.dtype)
        out[i] = x
    return out


def _inputs(builder, source, split: str, spec: Mapping, log, progress: bool) -> np.ndarray:
    """The representation of every clip (or still image), from the cache when the same
    settings ran before on the same stored dataset with the same preprocessing code."""

    name = builder.info.full_name
    key = _cache_key(builder, split, spec)
    out, why = _cached(key, len(source))
    if out is not None:
        log(f"{name}: model inputs from the cache {key.path} (same settings, dataset and code)")
        return out
    reason, stale = _cache_miss(key)
    log(f"{name}: computing model inputs ({why or reason}); caching them in {key.path}")
    desc = f"{name} -> {spec['representation']}"
    if stills.stores_stills(builder.info.features):
        out = stills.inputs(source, spec, desc, progress)
    else:
        out = _clip_inputs(source, spec, desc, progress)
    files.write_bytes(key.path, lambda f: np.save(f, out))
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log(f"{name}: removed {len(stale)} stale cache file(s) of these settings")
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
    representation reads (`representations.REPRESENTATIONS[...].reads`) and that differs from
    the stored setting."""
    stored = view["input"]
    keys = ("representation", *representations.REPRESENTATIONS[stored["representation"]].reads)
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


def _part_inputs(part: Part, split: str, spec: Mapping, log, progress: bool) -> np.ndarray:
    """The model input of every stored clip of one part: its stored view, else computed."""
    builder = part.builder
    source = builder.as_data_source(split=split)
    view = stored_view(builder)
    if view is None:
        return _inputs(builder, source, split, spec, log, progress)
    ignored = ignored_keys(view, spec)
    log(
        f"{part.name}: model inputs stored in the dataset ({view['description']}); "
        + (
            f"the stored view is used, config keys ignored: {', '.join(ignored)}"
            if ignored
            else "the config's input keys agree with it"
        )
    )
    return _stored_inputs(builder, source, part.name, progress)


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
    emotions when `spec.label_scheme` is empty. Clips and labels: `read_metadata`.
    Still-image datasets give `apex` / `evm_apex` inputs only (`mer_jax.data.stills`).
    """
    representation = spec["representation"]
    if representation not in representations.REPRESENTATIONS:
        raise ValueError(
            f"config key 'input.representation': unknown {representation!r}; "
            f"known: {sorted(representations.REPRESENTATIONS)}"
        )
    meta = read_metadata(
        name,
        label_scheme=spec.get("label_scheme") or "",
        default_label_scheme=default_label_scheme,
        data_dir=data_dir,
        split=split,
        log=log,
    )
    for part in meta.parts:  # before any input is computed
        if stills.stores_stills(part.builder.info.features):
            stills.check_representation(part.name, representation)
    images = [_part_inputs(part, part.split, spec, log, progress)[part.keep] for part in meta.parts]
    shapes = {x.shape[1:] for x in images}
    if len(shapes) > 1:
        raise ValueError(f"config key 'dataset': the parts give inputs of shapes {sorted(shapes)}")
    out = Dataset(
        np.concatenate(images),
        meta.labels,
        meta.subjects,
        meta.sources,
        meta.clips,
        meta.class_names,
    )
    log(
        f"{name}: {len(out.labels)} clips, {len(set(out.subjects.tolist()))} subjects, "
        f"classes {list(out.class_names)}, inputs {out.images.shape[1:]} {out.images.dtype}"
    )
    return out
