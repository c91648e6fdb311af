"""One sweep, end to end: builder -> arrays on device -> engine -> predictions -> metrics -> report.

The big_vision `train.py` of this project: `run(config, workdir)` does every
phase in order; each phase is one call into its module.
"""

import argparse
import contextlib
import dataclasses
import json
import os
import pathlib
import sys
import time
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

import mer_jax
from mer_jax import cli, data, engine, export, metrics, models, protocols, report
from mer_jax import config as config_lib
from mer_jax import workdir as workdir_lib
from mer_jax.models import weights


def run(config, workdir=None, *, force: bool = False, progress: bool = True, log=print) -> dict:
    """Run the sweep `config` describes; write results.json, summary.md and plots into `workdir`.

    The work dir is opened (created, checked, locked: `mer_jax.workdir`) before any
    data loads. An interrupted run of the same config there resumes from its
    checkpoints; a finished one returns its results.json without training again;
    `force` discards a run of another config. Without a work dir nothing is written
    and nothing checkpoints.
    """
    config_lib.check(config)
    flat = config_lib.flatten(config)
    opened = workdir_lib.open_workdir(workdir, flat, force=force, log=log) if workdir else None
    with opened or contextlib.nullcontext() as wd:
        if wd is not None and wd.finished:
            log(f"{wd.path} holds this config's finished run: nothing to do (--force: run again)")
            return json.loads((wd.path / "results.json").read_text(encoding="utf-8"))
        return _run(config, wd, progress=progress, log=log)


def _run(config, wd: workdir_lib.WorkDir | None, *, progress: bool, log) -> dict:
    """The sweep's phases, in order (see `run`)."""
    start = time.perf_counter()
    dataset, table, schedule, folds, codes = load_folds(config, log=log, progress=progress)
    setup = build_training(config, schedule, len(dataset.class_names), log=log)
    checkpointer = None
    if wd is not None:
        if wd.resuming:
            log(f"{wd.path}: an interrupted run of this config; resuming from its checkpoints")
        train_config = config.train
        checkpointer = engine.Checkpointer(
            wd.checkpoints, train_config.checkpoint_every, train_config.checkpoint_keep, log=log
        )
    if config.train.final_model:
        folds = engine.with_final_model(folds, config.seed)
    try:
        trained, aug, trunk = train(
            config, dataset, table, schedule, folds, codes, setup,
            progress=progress, log=log, checkpointer=checkpointer,
        )  # fmt: skip
    finally:
        if checkpointer is not None:
            checkpointer.close()
    out = protocol_folds(trained, table.num_folds)
    if np.all(out.diverged_epoch >= 0):
        raise ValueError(
            f"every fold's training loss turned non-finite (the first in epoch "
            f"{int(out.diverged_epoch.min()) + 1}): nothing to evaluate; lower 'optimizer.lr'?"
        )
    # Predictions pooled over folds -> metrics.
    results = summarize(config, dataset, table, out)
    if config.train.final_model:
        final = int(trained.diverged_epoch[-1])
        results["final_model"] = {
            "name": export.FINAL_MODEL,
            "diverged_epoch": None if final < 0 else final + 1,
        }
    maps, record = attention_maps(config, dataset, out, aug)
    if record:
        results["attention_maps"] = record
    results["engine"]["conv_impl"] = config.model_kwargs.get("conv_impl", setup.conv_impl)
    results["timing"] = {
        "compile_s": out.compile_s,
        "train_s": out.train_s,
        "images_per_s": out.images_seen / max(out.train_s, 1e-9),
        "total_s": time.perf_counter() - start,
    }
    if wd is not None:
        paths = report.write_report(results, wd.path, attention_maps=maps)
        log(f"wrote {wd.path}/: {', '.join(sorted(p.name for p in paths.values()))}")
        names = [*table.names, export.FINAL_MODEL][: len(trained.diverged_epoch)]
        exported = export.write(
            wd.path, trained.state, names, config, dataset.class_names, dataset,
            aug=aug, trunk_variables=trunk, diverged_epoch=trained.diverged_epoch,
        )  # fmt: skip
        log(f"exported every fold's weights to {exported}/ (for `mer-jax predict`)")
        wd.finish(paths.values())
    return results


def protocol_folds(out: engine.FoldsOutput, num_folds: int) -> engine.FoldsOutput:
    """`out` without the final model (`train.final_model`): the protocol's folds only, so its
    metrics, history and maps are exactly those of the same sweep without it."""
    if len(out.diverged_epoch) == num_folds:
        return out
    maps = None if out.maps is None else {k: v[:num_folds] for k, v in out.maps.items()}
    return dataclasses.replace(
        out,
        logits=out.logits[:num_folds],
        test_idx=out.test_idx[:num_folds],
        test_valid=out.test_valid[:num_folds],
        train_loss=out.train_loss[:, :num_folds],
        heldout_pred_history=out.heldout_pred_history[:, :num_folds],
        diverged_epoch=out.diverged_epoch[:num_folds],
        maps=maps,
        maps_pos=None if out.maps_pos is None else out.maps_pos[:num_folds],
        maps_valid=None if out.maps_valid is None else out.maps_valid[:num_folds],
    )


def load_folds(config, *, log=print, progress: bool = True):
    """Data (builder -> tfds.data_source -> model inputs) and the protocol's fold table, checked
    for leakage, with its static schedule: (dataset, table, schedule, folds, subject codes)."""
    dataset = data.load(
        config.dataset,
        config.input,
        data_dir=config.data_dir or None,
        log=log,
        progress=progress,
        default_label_scheme=protocols.label_scheme_of(config.protocol),
    )
    table = protocols.folds_of(config.protocol, dataset)
    for note in table.notes:
        log(f"{config.protocol}: {note}")
    schedule, folds, codes = engine.prepare(
        table,
        dataset.subjects,
        dataset.labels,
        len(dataset.class_names),
        batch_size=config.train.batch_size,
        balance=config.train.balance,
        epochs=config.train.epochs,
        seed=config.seed,
        epochs_per_call=config.train.epochs_per_call,
    )
    return dataset, table, schedule, folds, codes


class Training(NamedTuple):
    """The model side of a sweep: what `engine.train_folds` trains and how."""

    spec: models.ModelSpec
    model: object
    tx: object
    aug: engine.Augment
    conv_impl: str
    initial: object  # pretrained variables, or None


def build_training(config, schedule: engine.Schedule, num_classes: int, *, log=print) -> Training:
    """Model, optimizer, augmentation and initial weights of `config` (keys: config.check)."""
    conv_impl = engine.resolve_conv_impl(config.train.conv_impl, config.train.fold_strategy)
    model = models.build(
        config.model,
        num_classes,
        dtype=engine.DTYPES[config.train.dtype],
        **{"conv_impl": conv_impl, **config.model_kwargs},
    )
    spec = models.spec(config.model)
    tx = engine.make_optimizer(config.optimizer, schedule.steps_per_epoch, frozen=spec.frozen)
    initial = None
    if config.init.pretrained:
        initial = spec.load_pretrained(model, config.init.pretrained)
        log(f"initial weights from {config.init.pretrained}")
    aug = engine.Augment(**config.augment)
    return Training(spec, model, tx, aug, conv_impl, initial)


def train(
    config, dataset, table, schedule, folds, codes, setup: Training, *, progress, log,
    checkpointer=None,
):  # fmt: skip
    """Arrays on device, once (every fold indexes into them), then every fold trained:
    (engine.FoldsOutput, the augmentation it trained with, the frozen trunk's variables).

    With a frozen trunk (`train.cache_frozen_trunk`) the trunk's features replace the
    images and only the head trains, without augmentation; the trunk's variables
    (None without) complete each fold's head into the full model (`export.write`).
    """
    images, model, initial, aug = jnp.asarray(dataset.images), setup.model, setup.initial, setup.aug
    trunk = None
    if config.train.cache_frozen_trunk and setup.spec.trains_head_only(model):
        parts = setup.spec.trunk_head
        split = frozen_trunk_variables(parts, model, images.shape[1:], initial, config.seed)
        images, model, initial = frozen_trunk_features(
            parts, model, images, initial, config.seed, log=log, variables=split
        )
        aug, trunk = engine.Augment(), split[0]
    arrays = engine.Data(images, jnp.asarray(dataset.labels), jnp.asarray(codes))
    log(
        f"{config.model} on {config.dataset}: {table.num_folds} {config.protocol} folds, "
        f"{schedule.steps_per_epoch} steps x batch {schedule.batch_size} per fold-epoch, "
        f"{schedule.epochs} epochs"
    )
    maps = None
    if config.report.attention_maps > 0:
        pos, valid = select_heldout(
            folds.test_idx, folds.test_valid, dataset.labels, int(config.report.attention_maps)
        )
        maps = engine.Maps(pos, valid, keys=config.report.attention_keys)
    log(f"compiling the training program ({config.train.fold_strategy} fold strategy) ...")
    bars = []

    def on_compiled(seconds):
        log(f"compiled in {seconds:.1f} s")
        bars.append(
            tqdm(total=schedule.epochs, unit="epoch", desc="all folds", disable=not progress)
        )

    def on_epoch(epochs_done, fold_losses):
        bars[0].set_postfix(loss=f"{float(np.mean(fold_losses)):.3f}")
        bars[0].update(epochs_done - bars[0].n)

    layout = engine.Layout(
        strategy=config.train.fold_strategy,
        step_loop=config.train.step_loop,
        fold_group=config.train.fold_group,
        folds_per_call=config.train.folds_per_call,
    )
    try:
        out = engine.train_folds(
            model, setup.tx, schedule, aug, arrays, folds, layout,
            aux_loss=setup.spec.aux_loss, initial_variables=initial, maps=maps,
            progress=on_epoch, on_compiled=on_compiled, log=log, checkpointer=checkpointer,
        )  # fmt: skip
    finally:
        for bar in bars:
            bar.close()
    return out, aug, trunk


def frozen_trunk_variables(parts, model, example_shape, initial, seed: int):
    """(trunk variables, head variables) of the model whose trunk is frozen: initialised
    from `seed` alone, `initial` (pretrained) leaves merged in."""
    variables = jax.jit(partial(model.init, train=False))(
        jax.random.fold_in(jax.random.key(seed), 2**31 - 1), jnp.zeros((1, *example_shape))
    )
    if initial is not None:
        variables = weights.merge_variables(variables, initial)
    return parts.split_variables(variables)


def frozen_trunk_features(
    parts, model, images, initial, seed: int, *, log=print, chunk=32, variables=None
):
    """Run a model's frozen trunk once per clip (AMAN, seed 003: the authors cache ResNet-18
    features through layer3): returns (features, head model, head initial variables).

    The trunk is identical for every fold (pretrained, or initialised from
    `seed` alone), so one pass serves all folds and epochs; each fold then
    trains only the head. Pixel augmentation cannot apply to features and is off.
    `variables`: `frozen_trunk_variables(...)` when the caller computed them already.
    """
    start = time.perf_counter()
    if variables is None:
        variables = frozen_trunk_variables(parts, model, images.shape[1:], initial, seed)
    trunk_vars, head_vars = variables
    trunk = parts.trunk_of(model)
    forward = jax.jit(lambda x: trunk.apply(trunk_vars, engine.to_float(x)))
    features = jnp.concatenate(
        [forward(images[i : i + chunk]) for i in range(0, images.shape[0], chunk)]
    )
    log(
        f"frozen trunk: features {tuple(features.shape[1:])} "
        f"per clip in {time.perf_counter() - start:.1f} s (computed once, shared by every fold)"
    )
    head_initial = head_vars if initial is not None else None
    return features, parts.head_of(model), head_initial


def _scored(out: engine.FoldsOutput, f: int) -> np.ndarray:
    """Fold f's test positions that are scored: valid ones, none if the fold diverged."""
    return out.test_valid[f] & (out.diverged_epoch[f] < 0)


def pooled_probabilities(out: engine.FoldsOutput) -> np.ndarray:
    """(M, K) float32 class probabilities (`export.softmax`) of the predictions of
    `pooled_predictions`, in the same order."""
    probs = [export.softmax(out.logits[f][_scored(out, f)]) for f in range(out.logits.shape[0])]
    return np.concatenate(probs)


def pooled_predictions(out: engine.FoldsOutput):
    """(sample index, fold, predicted class) of every held-out prediction, fold by fold.

    Diverged folds (`out.diverged_epoch` >= 0) predict nothing: their weights are
    those of an interrupted training, so the pooled metrics leave them out.
    """
    index, fold, pred = [], [], []
    for f in range(out.logits.shape[0]):
        valid = _scored(out, f)
        index.append(out.test_idx[f][valid])
        fold.append(np.full(valid.sum(), f))
        pred.append(out.logits[f][valid].argmax(-1))
    return np.concatenate(index), np.concatenate(fold), np.concatenate(pred)


def select_heldout(test_idx, test_valid, labels, per_class: int):
    """Held-out entries whose attention maps a report keeps: (pos (F, J), valid (F, J)).

    Entries are (fold, test position) pairs in fold-major order, the order of the
    pooled predictions (a sample tested by several folds is several entries). For
    each class, `per_class` of its entries (all if fewer) evenly spaced over that
    order, so they come from different folds (subjects), at an offset that differs
    by class (class c of C present: entries floor((i + (c + 1/2) / C) L / n), i < n,
    of its L), so classes do not all come from the same folds. Row f lists fold f's kept
    test positions, padded with position 0, `valid` False; J >= 1 is the most any
    fold keeps. Depends on labels and the fold table only, never on predictions.
    The engine evaluates these positions after the final epoch (`engine.Maps`);
    the report draws them (`report.plot_attention_maps`).
    """
    test_idx, test_valid = np.asarray(test_idx), np.asarray(test_valid, bool)
    fold, position = np.nonzero(test_valid)
    classes = np.asarray(labels)[test_idx[fold, position]]
    keep, present = [], np.unique(classes)
    for rank, c in enumerate(present):
        mine = np.flatnonzero(classes == c)
        n = min(int(per_class), len(mine))
        offset = (rank + 0.5) / len(present)
        keep += mine[((np.arange(n) + offset) * len(mine) / n).astype(int)].tolist()
    keep = np.unique(np.asarray(keep, int))
    counts = np.bincount(fold[keep], minlength=test_idx.shape[0])
    pos = np.zeros((test_idx.shape[0], max(1, int(counts.max(initial=0)))), np.int32)
    valid = np.zeros(pos.shape, bool)
    for f in range(test_idx.shape[0]):
        mine = position[keep[fold[keep] == f]]
        pos[f, : len(mine)], valid[f, : len(mine)] = mine, True
    return pos, valid


def pooled_maps(out: engine.FoldsOutput):
    """(sample index, fold, test position, {name: (M, ...)}) of the kept held-out maps.

    Fold by fold, like `pooled_predictions`: entry m is fold[m]'s test position
    pos[m], whose logits are `out.logits[fold[m], pos[m]]`.
    """
    fold, slot = np.nonzero(out.maps_valid & (out.diverged_epoch[:, None] < 0))  # as scored
    pos = out.maps_pos[fold, slot]
    maps = {name: value[fold, slot] for name, value in out.maps.items()}
    return out.test_idx[fold, pos], fold, pos, maps


def attention_maps(config, dataset: data.Dataset, out, aug: engine.Augment):
    """(arrays for attention_maps.npz, results.json record) of the kept held-out maps.

    (None, {}) when `report.attention_maps` is 0. Arrays: each map by name
    (M, ...), and `index`, `fold`, `clip`, `subject`, `label`, `prediction`
    (final epoch) and `input` (M, H, W[, 3]): the example as the model saw it
    (centre crop) drawn as one picture (report.display_input). With a cached
    frozen trunk the model read trunk features; `input` is the clip's view.
    """
    if out.maps is None:
        return None, {}
    index, fold, pos, maps = pooled_maps(out)
    views = engine.augment_batch(
        jax.random.key(0), jnp.asarray(dataset.images[index]), aug, train=False
    )
    flow = dataset.images.dtype != np.uint8  # float inputs are optical flow (mer_jax.data)
    arrays = {
        **maps,
        "index": index,
        "fold": fold,
        "clip": np.asarray(dataset.clips[index]).astype(str),
        "subject": np.asarray(dataset.subjects[index]).astype(str),
        "label": np.asarray(dataset.labels[index]),
        "prediction": out.logits[fold, pos].argmax(-1),
        "input": np.stack([report.display_input(v, flow=flow) for v in np.asarray(views)]),
    }
    record = {
        "file": "attention_maps.npz",
        "figure": "attention_maps.png",
        "per_class": int(config.report.attention_maps),
        "keys": config.report.attention_keys,
        "num_examples": len(index),
        "maps": {
            name: {"shape": list(value.shape[1:]), "dtype": str(value.dtype)}
            for name, value in maps.items()
        },
    }
    return arrays, record


def summarize(config, dataset: data.Dataset, table: protocols.FoldTable, out) -> dict:
    """The results dict (see report.py) of a finished sweep."""
    index, fold, pred = pooled_predictions(out)
    y_true = dataset.labels[index]
    sources = dataset.sources[index]
    pooled = metrics.pooled_metrics(y_true, pred, dataset.class_names, groups=sources)
    folds = []
    for f, name in enumerate(table.names):
        mine, diverged = fold == f, int(out.diverged_epoch[f])
        folds.append(
            {
                "fold": f,
                "subject": name,
                "num_train": int(table.train_mask[f].sum()),
                "num_test": int(np.sum(out.test_valid[f])),
                "accuracy": float(np.mean(pred[mine] == y_true[mine])) if mine.any() else None,
                "final_train_loss": float(out.train_loss[-1, f]),
            }
        )
        if diverged >= 0:  # counted from 1, like the history's epochs
            folds[-1]["diverged_epoch"] = diverged + 1
        if table.per_fold_metrics and diverged < 0:
            folds[-1]["metrics"] = metrics.classification_metrics(
                y_true[mine], pred[mine], dataset.class_names
            )
    summary = pooled["overall"]
    if table.per_fold_metrics:
        # Cross-dataset tasks (HDE, CDMER) are scored one task at a time; the headline is
        # their mean (a sample may be tested by several tasks, so pooling would double count).
        keys = ("accuracy", "uf1", "uar", "war")
        scored = [f for f in folds if "metrics" in f]
        summary = {k: float(np.mean([f["metrics"][k] for f in scored])) for k in keys}
        summary["aggregation"] = "mean over folds"
        summary["absent_classes"] = sorted(
            {c for f in scored for c in f["metrics"]["absent_classes"]}
        )
    summary["complete"] = not np.any(out.diverged_epoch >= 0)
    # Held-out UAR after each evaluation: a learning curve, never used to pick a model.
    heldout_uar = []
    for preds in out.heldout_pred_history:
        p = np.concatenate([preds[f][_scored(out, f)] for f in range(len(preds))])
        heldout_uar.append(metrics.classification_metrics(y_true, p, dataset.class_names)["uar"])
    per_call = config.train.epochs_per_call
    healthy = out.diverged_epoch < 0  # the mean training loss of the folds that trained on
    healthy_loss = (
        out.train_loss[:, healthy].mean(axis=1) if healthy.any() else out.train_loss[:, 0]
    )
    by_source = pooled["by_group"] if len(set(sources.tolist())) > 1 else {}
    return {
        "model": config.model,
        "dataset": config.dataset,
        "protocol": config.protocol,
        "num_folds": table.num_folds,
        "class_names": list(dataset.class_names),
        "seed": config.seed,
        "metrics": summary,
        "metrics_by_source": by_source,
        "folds": folds,
        "diverged_folds": [
            {"fold": f["fold"], "subject": f["subject"], "epoch": f["diverged_epoch"]}
            for f in folds
            if "diverged_epoch" in f
        ],
        "predictions": {
            "clip": dataset.clips[index].tolist(),
            "subject": dataset.subjects[index].tolist(),
            "label": y_true.tolist(),
            "pred": pred.tolist(),
            "prob": pooled_probabilities(out).tolist(),
        },
        "history": {
            "epoch": [per_call * (i + 1) for i in range(len(heldout_uar))],
            "train_loss": healthy_loss[per_call - 1 :: per_call].tolist(),
            "heldout_uar": heldout_uar,
        },
        "engine": {
            "fold_strategy": out.strategy,
            "step_loop": out.step_loop,
            "fold_groups": list(out.fold_groups),
            "layout": out.layout,
        },
        "device": engine.device_info(),
        "config": config_lib.flatten(config),
        "versions": {
            "mer_jax": mer_jax.__version__,
            "jax": jax.__version__,
            "flax": __import__("flax").__version__,
        },
    }


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `mer-jax sweep` to `subparsers`."""
    p = subparsers.add_parser("sweep", help=cli.help_of("sweep"))
    p.add_argument("config", help="experiments/<file>.py, optionally :ARG for get_config(ARG)")
    p.add_argument("--workdir", help="where results go (default runs/<config name>)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--force", action="store_true", help="discard the run the work dir holds and start afresh"
    )
    p.add_argument(
        "--compile-cache",
        default=os.environ.get("MER_JAX_COMPILE_CACHE", os.path.expanduser("~/.cache/mer_jax/xla")),
        help="persistent XLA compilation cache directory",
    )
    p.add_argument("--no-compile-cache", action="store_true")
    p.set_defaults(fn=cmd_sweep)
    return p


def _enable_compilation_cache(path: str | None) -> None:
    """Persistent XLA cache: an identical second sweep skips most of its compile time."""
    if not path:
        return
    pathlib.Path(path).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def cmd_sweep(args) -> int:
    config = config_lib.load(args.config)
    config_lib.override(config, args.set or [])
    stem = pathlib.Path(args.config.partition(":")[0]).stem
    workdir = pathlib.Path(args.workdir or f"runs/{stem}")
    _enable_compilation_cache(None if args.no_compile_cache else args.compile_cache)
    try:
        results = run(config, workdir, force=args.force, progress=not args.no_progress)
    except engine.Interrupted as stop:
        print(f"mer-jax: {stop}", file=sys.stderr)
        return 130
    m, t = results["metrics"], results["timing"]
    print(
        f"\n{results['model']} | {results['dataset']} | {results['protocol']} "
        f"({results['num_folds']} folds)\n"
        f"  Acc {m['accuracy']:.4f}  UF1 {m['uf1']:.4f}  UAR {m['uar']:.4f}  WAR {m['war']:.4f}\n"
        f"  compile {t['compile_s']:.1f} s, train {t['train_s']:.1f} s "
        f"({t['images_per_s']:.0f} images/s) on {results['device']['device_kind']}"
    )
    for source, sm in results["metrics_by_source"].items():
        print(f"  {source:>8}: Acc {sm['accuracy']:.4f}  UF1 {sm['uf1']:.4f}  UAR {sm['uar']:.4f}")
    if m["absent_classes"]:
        print(f"  classes absent from the ground truth: {m['absent_classes']}")
    if results.get("diverged_folds"):
        named = ", ".join(f"{d['subject']} (epoch {d['epoch']})" for d in results["diverged_folds"])
        print(
            f"mer-jax: incomplete: folds {named} diverged; metrics pool the rest", file=sys.stderr
        )
        return 3
    return 0
