"""A finished sweep's weights, exported for prediction: `<workdir>/weights/`.

`write` saves every fold's final parameters and model state (BatchNorm
statistics; no optimizer state) with orbax-checkpoint as host NumPy arrays,
beside `export.json`, which says what the weights are and how their model reads
a clip:

  format        "mer_jax.export/1"
  model         name, kwargs (`config.model_kwargs`), dtype (`train.dtype`),
                num_classes, layout: "folds" (every variable per fold) or
                "trunk_head" (a frozen trunk shared by every fold, saved once, and
                each fold's head; `load` joins them into the full model)
  class_names   the classes, in the order of the model's outputs
  fold_names    the folds' held-out subjects (protocol fold names), in fold order
  diverged      {fold name: epoch} of folds whose training diverged (their weights
                are those of an interrupted training)
  input         dataset, data_dir, config (the sweep's `input` keys),
                default_label_scheme (the protocol's), views (per dataset part: the
                settings of the view the model read, stored or computed), shape and
                dtype (one stored example), crop_size (the centre crop of the
                evaluation; None: whole), model_input_shape, model_input_dtype
  config        the sweep's flattened config (`mer_jax.config.flatten`)
  versions      mer_jax, jax, flax, orbax-checkpoint

`state/` is an orbax PyTree checkpoint of {"folds": {collection: tree with a
leading fold axis F}, "shared": {collection: tree}} ("shared" is empty unless
the layout is "trunk_head").

The export is written into a temporary directory beside `weights/` and
renamed when complete, so an interrupted export never leaves a half-written
`weights/`. `load` reads it back as an `Exported`: the model, every fold's full
variables (leading fold axis) and the metadata; a missing or incomplete
export is a `UserError` naming the file.
"""

import dataclasses
import json
import os
import pathlib
import re
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mer_jax import config as config_lib
from mer_jax import engine, errors, models, protocols
from mer_jax.preprocess import representations

FORMAT = "mer_jax.export/1"
WEIGHTS = "weights"
META = "export.json"
STATE = "state"
_TMP_PREFIX = ".weights.tmp-"


_SEED_SUFFIX = re.compile(r" \(seed \d+\)$")


def seed_name(name: str, seed: int) -> str:
    """A fold's exported name when a sweep ran several seeds: 's01 (seed 3)'."""
    return f"{name} (seed {seed})"


def base_name(name: str) -> str:
    """A fold's name without the ' (seed S)' of `seed_name`."""
    return _SEED_SUFFIX.sub("", name)


def is_final_model(name: str) -> bool:
    """Whether fold name `name` is a final model: FINAL_MODEL, or with a `seed_name` suffix."""
    return base_name(name) == FINAL_MODEL


@dataclasses.dataclass(frozen=True)
class Exported:
    """An exported sweep: `model` (a Flax module), `variables` ({collection: tree}, host
    arrays with a leading fold axis F, the full model's), `meta` (export.json)."""

    model: object
    variables: dict
    meta: dict

    @property
    def fold_names(self) -> tuple[str, ...]:
        return tuple(self.meta["fold_names"])

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.meta["class_names"])

    @property
    def input(self) -> dict:
        return self.meta["input"]

    def fold_variables(self, fold: int) -> dict:
        """The variables of fold `fold` (no fold axis)."""
        return jax.tree_util.tree_map(lambda v: v[fold], self.variables)


# The name of the model `train.final_model` adds: trained on every subject, never evaluated.
FINAL_MODEL = "all subjects"


def softmax(logits) -> np.ndarray:
    """Class probabilities of `logits` (..., K) as float32, computed in float64 on the host:
    the one softmax of held-out logits (results.json) and of `mer-jax predict`."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def plain(value):
    """A config section or value as plain JSON values (dicts, lists)."""
    if hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _tuples(value):
    """JSON lists back to tuples (Flax modules are hashable dataclasses)."""
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def model_input_shape(shape: Sequence[int], crop_size: int | None) -> tuple[int, ...]:
    """The shape the model reads of one stored example `shape` (..., H, W, C): the
    evaluation's centre crop of side `crop_size` (None: min(H, W), as `engine.augment_image`)."""
    shape = tuple(int(n) for n in shape)
    size = int(crop_size or min(shape[-3:-1]))
    return (*shape[:-3], size, size, shape[-1])


def view_settings(builder, spec: Mapping) -> dict:
    """The settings of the view a model reads from one built dataset: its stored view's
    (a view config), else those of `spec` (the `input` keys computing it from frames);
    only the keys its representation reads."""
    from mer_jax import data

    stored = data.stored_view(builder)
    settings = plain(stored["input"] if stored is not None else spec)
    representation = settings["representation"]
    reads = representations.REPRESENTATIONS[representation].reads
    return {key: settings.get(key) for key in ("representation", *reads)}


def dataset_views(name: str, spec: Mapping, data_dir) -> list[dict]:
    """[{part, stored, settings}] of every '+'-joined part of dataset `name`."""
    from mer_jax import data

    views = []
    for part in (p for p in name.split("+") if p):
        builder = data.prepare_builder(part, data_dir or None, log=lambda message: None)
        stored = data.stored_view(builder) is not None
        views.append({"part": part, "stored": stored, "settings": view_settings(builder, spec)})
    return views


def _host(tree) -> dict:
    """Device arrays -> host NumPy arrays (sharded ones gathered)."""
    return jax.tree_util.tree_map(np.asarray, jax.device_get(dict(tree)))


def _meta(config, class_names, fold_names, dataset, aug, layout: str, diverged) -> dict:
    images = dataset.images
    crop = None if aug is None else aug.crop_size
    shape = model_input_shape(images.shape[1:], crop)
    return {
        "format": FORMAT,
        "model": {
            "name": config.model,
            "kwargs": plain(config.model_kwargs),
            "dtype": config.train.dtype,
            "num_classes": len(class_names),
            "layout": layout,
        },
        "class_names": list(class_names),
        "fold_names": list(fold_names),
        "diverged": diverged,
        "input": {
            "dataset": config.dataset,
            "data_dir": config.data_dir,
            "config": plain(config.input),
            "default_label_scheme": protocols.label_scheme_of(config.protocol),
            "views": dataset_views(config.dataset, config.input, config.data_dir),
            "shape": list(images.shape[1:]),
            "dtype": str(images.dtype),
            "crop_size": crop,
            "model_input_shape": list(shape),
            "model_input_dtype": str(jax.dtypes.canonicalize_dtype(jnp.float64)),
        },
        "config": config_lib.flatten(config),
        "versions": _versions(),
    }


def _versions() -> dict:
    import flax
    import orbax.checkpoint as ocp

    import mer_jax

    return {
        "mer_jax": mer_jax.__version__,
        "jax": jax.__version__,
        "flax": flax.__version__,
        "orbax-checkpoint": getattr(ocp, "__version__", ""),
    }


def write(
    workdir,
    state,
    fold_names: Sequence[str],
    config,
    class_names: Sequence[str],
    dataset,
    *,
    aug=None,
    trunk_variables=None,
    diverged_epoch=None,
) -> pathlib.Path:
    """Export every fold's final weights into `<workdir>/weights/` (see the module docstring).

    `state`: the sweep's final `engine.TrainState` (leading fold axis F; its
    opt_state is not saved); `fold_names`: the F folds' names; `dataset`: the
    `data.Dataset` trained on (its input shape and dtype); `aug`: the
    `engine.Augment` the folds were evaluated with (its crop); `trunk_variables`:
    with a cached frozen trunk (`train.cache_frozen_trunk`), the trunk's variables,
    `state` then holding each fold's head; `diverged_epoch` (F,): the epoch a
    fold diverged at, -1 if it did not. Replaces an earlier export. Returns the path.
    """
    workdir = pathlib.Path(workdir)
    folds = _host({"params": state.params, **dict(state.model_state)})
    sizes = {int(np.shape(v)[0]) for v in jax.tree_util.tree_leaves(folds)}
    if sizes != {len(fold_names)}:
        raise ValueError(f"export: states of {sorted(sizes)} folds for {len(fold_names)} names")
    shared = {} if trunk_variables is None else _host(trunk_variables)
    epochs = np.full(len(fold_names), -1) if diverged_epoch is None else np.asarray(diverged_epoch)
    diverged = {n: int(e) for n, e in zip(fold_names, epochs) if e >= 0}
    layout = "folds" if trunk_variables is None else "trunk_head"
    meta = _meta(config, class_names, fold_names, dataset, aug, layout, diverged)
    text = json.dumps(meta, indent=2, allow_nan=False) + "\n"
    for stale in workdir.glob(f"{_TMP_PREFIX}*"):  # left by an interrupted export
        shutil.rmtree(stale, ignore_errors=True)
    tmp = (workdir / f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}").absolute()
    tmp.mkdir()  # with the umask's permissions (mkdtemp would give 0700)
    try:
        _save_state(tmp / STATE, {"folds": folds, "shared": shared})
        (tmp / META).write_text(text, encoding="utf-8")  # written last: the export is complete
        _replace_dir(tmp, workdir / WEIGHTS)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return workdir / WEIGHTS


def _checkpointer():
    """An orbax PyTree checkpointer of this process alone: an export is host arrays, written
    by one process and read by any, with no barrier across a distributed run's processes."""
    import jax
    import orbax.checkpoint as ocp

    me = jax.process_index()
    alone = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})
    handler = ocp.PyTreeCheckpointHandler(multiprocessing_options=alone)
    return ocp.Checkpointer(handler, multiprocessing_options=alone)


def _save_state(path: pathlib.Path, tree: dict) -> None:
    with _checkpointer() as checkpointer:
        checkpointer.save(path, tree)


def _replace_dir(new: pathlib.Path, final: pathlib.Path) -> None:
    """Rename `new` to `final`; an existing `final` is moved aside first and then removed."""
    if not final.exists():
        os.replace(new, final)
        return
    old = pathlib.Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=final.parent))
    os.replace(final, old / WEIGHTS)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)


def _incomplete(path, why: str) -> errors.UserError:
    return errors.UserError(
        f"{path}: {why}; a finished `mer-jax sweep --workdir DIR` exports its weights there"
    )


def read_meta(workdir) -> dict:
    """`<workdir>/weights/export.json`, checked (a `UserError` naming the file if not)."""
    root = pathlib.Path(workdir) / WEIGHTS
    path = root / META
    if not root.is_dir():
        raise _incomplete(root, "no exported weights")
    if not path.is_file():
        raise _incomplete(path, "missing, the export is incomplete")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise errors.UserError(f"{path}: not readable as JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise errors.UserError(f"{path}: format {found!r}, expected {FORMAT!r}")
    missing = sorted({"model", "class_names", "fold_names", "input"} - set(meta))
    if missing:
        raise errors.UserError(f"{path}: keys {missing} missing")
    return meta


def build_model(meta: Mapping):
    """The exported model, as the sweep built it (convolutions computed the default way)."""
    spec = meta["model"]
    kwargs = _tuples(dict(spec["kwargs"]))
    return models.build(
        spec["name"], len(meta["class_names"]), dtype=engine.DTYPES[spec["dtype"]], **kwargs
    )


def load(workdir) -> Exported:
    """The export of `workdir` (see the module docstring); a `UserError` naming the file or
    directory when it is missing, incomplete or does not fit its model."""
    meta = read_meta(workdir)
    root = pathlib.Path(workdir) / WEIGHTS
    state_dir = (root / STATE).absolute()
    if not state_dir.is_dir():
        raise _incomplete(state_dir, "missing, the export is incomplete")
    try:
        with _checkpointer() as checkpointer:
            tree = checkpointer.restore(state_dir)
    except Exception as err:
        raise errors.UserError(f"{state_dir}: cannot restore the weights ({err})") from None
    model = build_model(meta)
    template = models.variable_shapes(model, meta["input"]["model_input_shape"])
    num_folds = len(meta["fold_names"])
    folds, shared = dict(tree.get("folds") or {}), dict(tree.get("shared") or {})
    if meta["model"].get("layout") == "trunk_head":
        parts = models.spec(meta["model"]["name"]).trunk_head
        variables = _join(parts, template, shared, folds, num_folds, state_dir)
    else:
        variables = _fit(template, folds, num_folds, state_dir, "")
    return Exported(model, variables, meta)


def _fit(template, values, num_folds: int, where, part: str) -> dict:
    """`values` checked against `template` (same tree; leaves of the template's shape after a
    leading fold axis of `num_folds`, or of its shape alone where `num_folds` is None)."""
    t_def = jax.tree_util.tree_structure(template)
    v_leaves, v_def = jax.tree_util.tree_flatten(values)
    if t_def != v_def:
        raise errors.UserError(
            f"{where}: the saved {part or 'variables'} do not fit the model of export.json "
            f"(saved {v_def}, the model has {t_def})"
        )
    lead = () if num_folds is None else (num_folds,)
    for (path, t), v in zip(jax.tree_util.tree_leaves_with_path(template), v_leaves):
        if tuple(np.shape(v)) != (*lead, *t.shape):
            name = jax.tree_util.keystr(path)
            raise errors.UserError(
                f"{where}: {part or 'variable'} {name} has shape {tuple(np.shape(v))}, "
                f"the model of export.json needs {(*lead, *t.shape)}"
            )
    return values


def _join(parts, template, shared, folds, num_folds: int, where) -> dict:
    """The full model's variables (leading fold axis) from the shared trunk and each fold's
    head: the positions of each part's leaves are found by splitting a tree of leaf numbers
    with the model's own `split_variables`."""
    leaves, treedef = jax.tree_util.tree_flatten(template)
    numbers = jax.tree_util.tree_unflatten(treedef, list(range(len(leaves))))
    trunk_numbers, head_numbers = parts.split_variables(numbers)
    trunk_template, head_template = parts.split_variables(template)
    _fit(trunk_template, shared, None, where, "trunk")
    _fit(head_template, folds, num_folds, where, "head")
    out = [None] * len(leaves)
    for i, v in zip(jax.tree_util.tree_leaves(trunk_numbers), jax.tree_util.tree_leaves(shared)):
        out[i] = np.broadcast_to(v, (num_folds, *np.shape(v)))
    for i, v in zip(jax.tree_util.tree_leaves(head_numbers), jax.tree_util.tree_leaves(folds)):
        out[i] = v
    if any(v is None for v in out):
        raise errors.UserError(f"{where}: the trunk and head do not cover the model's variables")
    return jax.tree_util.tree_unflatten(treedef, out)
