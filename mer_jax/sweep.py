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
from mer_jax import (
    cli,
    data,
    distributed,
    engine,
    errors,
    export,
    finetune,
    heldout_maps,
    models,
    protocols,
    report,
)
from mer_jax import config as config_lib
from mer_jax import results as results_lib
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
    opened = None
    if workdir and distributed.is_main():
        opened = workdir_lib.open_workdir(workdir, flat, force=force, log=log)
    distributed.barrier("mer-jax sweep: work dir opened")  # several processes: 0 opens it
    if workdir and not distributed.is_main():
        opened = workdir_lib.follow(workdir, flat)
    with opened or contextlib.nullcontext() as wd:
        if wd is not None and wd.finished:
            log(f"{wd.path} holds this config's finished run: nothing to do (--force: run again)")
            return json.loads((wd.path / "results.json").read_text(encoding="utf-8"))
        return _run(config, wd, progress=progress, log=log)


def _run(config, wd: workdir_lib.WorkDir | None, *, progress: bool, log) -> dict:
    """The sweep's phases, in order (see `run`)."""
    start = time.perf_counter()
    sweep = load_folds(config, log=log, progress=progress)
    dataset = sweep.dataset
    setup = build_training(config, sweep.schedule, dataset, log=log)
    checkpointer = None
    if wd is not None:
        if wd.resuming:
            log(f"{wd.path}: an interrupted run of this config; resuming from its checkpoints")
        train_config = config.train
        checkpointer = engine.Checkpointer(
            wd.checkpoints, train_config.checkpoint_every, train_config.checkpoint_keep, log=log
        )
    try:
        trained, aug, trunk = train(
            config, sweep, setup, progress=progress, log=log, checkpointer=checkpointer
        )
    finally:
        if checkpointer is not None:
            checkpointer.close()
    if distributed.process_count() > 1:  # every process holds the whole state, on the host
        trained = dataclasses.replace(trained, state=engine.to_host_tree(trained.state))
    protocol = trained.select(sweep.protocol_rows())
    if np.all(protocol.diverged_epoch >= 0):
        raise ValueError(
            f"every fold's training loss turned non-finite (the first in epoch "
            f"{int(protocol.diverged_epoch.min()) + 1}): nothing to evaluate; lower 'optimizer.lr'?"
        )
    # Predictions pooled over folds -> metrics, seed by seed, then over seeds.
    per_seed = [
        results_lib.seed_results(config, dataset, sweep.tables[i], trained.select(rows), seed)
        for i, (seed, rows) in enumerate(zip(sweep.seeds, sweep.seed_rows()))
    ]
    results = {**header(config, dataset, sweep.tables[0]), **results_lib.combine(per_seed, dataset)}
    if setup.initial.variables is not None or setup.frozen:
        results["init"] = {**setup.initial.record, "frozen": setup.frozen}
    if sweep.validation:
        results["validation"] = validation_record(config)
    if config.train.final_model:
        finals = [int(trained.diverged_epoch[r]) for r in sweep.final_rows()]
        finals = [None if e < 0 else e + 1 for e in finals]
        results["final_model"] = {  # per seed when several ran
            "name": export.FINAL_MODEL,
            "diverged_epoch": finals[0] if len(finals) == 1 else finals,
        }
    first = trained.select(sweep.seed_rows()[0])
    maps, record = heldout_maps.attention_maps(config, dataset, first, aug, setup, trunk, log)
    if record:
        results["attention_maps"] = record
    results["engine"] = engine_record(
        trained, config.model_kwargs.get("conv_impl", setup.conv_impl)
    )
    results["timing"] = {
        "compile_s": trained.compile_s,
        "train_s": trained.train_s,
        "images_per_s": trained.images_seen / max(trained.train_s, 1e-9),
        "total_s": time.perf_counter() - start,
    }
    if wd is not None and wd.writes:
        paths = report.write_report(results, wd.path, attention_maps=maps)
        log(f"wrote {wd.path}/: {', '.join(sorted(p.name for p in paths.values()))}")
        exported = export.write(
            wd.path, trained.state, sweep.row_names(), config, dataset.class_names, dataset,
            aug=aug, trunk_variables=trunk, diverged_epoch=trained.diverged_epoch,
        )  # fmt: skip
        log(f"exported every fold's weights to {exported}/ (for `mer-jax predict`)")
        wd.finish(paths.values())
    return results


def header(config, dataset: data.Dataset, table: protocols.FoldTable) -> dict:
    """The results keys that say what ran (results.json, before the scores)."""
    return {
        "model": config.model,
        "dataset": config.dataset,
        "protocol": config.protocol,
        "num_folds": table.num_folds,
        "class_names": list(dataset.class_names),
        "device": engine.device_info(),
        "config": config_lib.flatten(config),
        "versions": {
            "mer_jax": mer_jax.__version__,
            "jax": jax.__version__,
            "flax": __import__("flax").__version__,
        },
    }


def validation_record(config) -> dict:
    """results.json `validation`: where the validation splits came from and what used them."""
    holdout = config.protocol == "holdout"
    return {
        "kind": "holdout" if holdout else "inner",
        "subjects_per_fold": None if holdout else config.train.validation_subjects,
        "fraction": config.train.validation_fraction if holdout else None,
        "early_stopping": config.train.early_stopping,
        "plateau": config.optimizer.schedule == "plateau",
        "monitor": "validation loss",
    }


def engine_record(out: engine.FoldsOutput, conv_impl: str) -> dict:
    return {
        "fold_strategy": out.strategy,
        "step_loop": out.step_loop,
        "fold_groups": list(out.fold_groups),
        "layout": out.layout,
        "conv_impl": conv_impl,
    }


@dataclasses.dataclass(frozen=True)
class Sweep:
    """The data and folds of a sweep: `seeds` blocks of rows on the fold axis, each the
    protocol's folds of `tables[i]` (with that seed's validation splits), then the seed's
    final model with `train.final_model`."""

    dataset: data.Dataset
    tables: list  # protocols.FoldTable per seed
    seeds: tuple[int, ...]
    schedule: engine.Schedule
    folds: engine.Folds
    codes: np.ndarray
    final_model: bool
    validation: bool

    @property
    def rows_per_seed(self) -> int:
        return self.tables[0].num_folds + int(self.final_model)

    def seed_rows(self) -> list[np.ndarray]:
        """Each seed's protocol folds' rows."""
        size, num_folds = self.rows_per_seed, self.tables[0].num_folds
        return [i * size + np.arange(num_folds) for i in range(len(self.seeds))]

    def protocol_rows(self) -> np.ndarray:
        return np.concatenate(self.seed_rows())

    def final_rows(self) -> list[int]:
        size = self.rows_per_seed
        return [i * size + size - 1 for i in range(len(self.seeds))] if self.final_model else []

    def row_names(self) -> list[str]:
        """Every row's name: the fold's, then the final model's, ' (seed S)' after each when
        several seeds ran (the export's fold names)."""
        names = [*self.tables[0].names, *([export.FINAL_MODEL] if self.final_model else [])]
        if len(self.seeds) == 1:
            return names
        return [export.seed_name(n, s) for s in self.seeds for n in names]


def load_folds(config, *, log=print, progress: bool = True) -> Sweep:
    """Data (builder -> tfds.data_source -> model inputs) and the protocol's fold table, with
    each seed's validation splits, checked for leakage, and the static schedule."""
    dataset = data.load(
        config.dataset,
        config.input,
        data_dir=config.data_dir or None,
        log=log,
        progress=progress,
        default_label_scheme=protocols.label_scheme_of(config.protocol),
    )
    seeds = config_lib.seeds_of(config)
    table = protocols.folds_of(
        config.protocol, dataset,
        validation_fraction=config.train.validation_fraction, seed=seeds[0],
    )  # fmt: skip
    for note in table.notes:
        log(f"{config.protocol}: {note}")
    t = config.train
    tables = engine.seed_tables(
        table, dataset.subjects, dataset.labels, seeds, t.validation_subjects
    )
    validation = bool(tables[0].validation().any())
    monitoring = engine.monitoring(
        config.optimizer, validation=validation, early_stopping=t.early_stopping
    )
    schedule, folds, codes = engine.prepare(
        tables, dataset.subjects, dataset.labels, len(dataset.class_names),
        batch_size=t.batch_size, balance=t.balance, epochs=t.epochs, seeds=seeds,
        epochs_per_call=t.epochs_per_call, final_model=t.final_model,
        validation_subjects=t.validation_subjects, monitoring=monitoring,
    )  # fmt: skip
    if len(seeds) > 1:
        log(f"{len(seeds)} seeds {list(seeds)} x {table.num_folds} folds: one fold axis")
    return Sweep(dataset, tables, seeds, schedule, folds, codes, t.final_model, validation)


class Training(NamedTuple):
    """The model side of a sweep: what `engine.train_folds` trains and how."""

    spec: models.ModelSpec
    model: object
    tx: object
    aug: engine.Augment
    conv_impl: str
    initial: finetune.Initial  # pretrained leaves (or None) and what results.json says
    frozen: list  # the frozen modules' names


def build_training(config, schedule: engine.Schedule, dataset, *, log=print) -> Training:
    """Model, optimizer, augmentation and initial weights of `config` (keys: config.check)."""
    conv_impl = engine.resolve_conv_impl(config.train.conv_impl, config.train.fold_strategy)
    model = models.build(
        config.model,
        len(dataset.class_names),
        dtype=engine.DTYPES[config.train.dtype],
        **{"conv_impl": conv_impl, **config.model_kwargs},
    )
    spec = models.spec(config.model)
    aug = engine.Augment(**config.augment)
    size = aug.crop_size or min(dataset.images.shape[-3:-1])
    example = (*dataset.images.shape[1:-3], size, size, dataset.images.shape[-1])
    template = models.variable_shapes(model, example)
    initial = finetune.initial_weights(config, model, spec, dataset.class_names, template, log=log)
    frozen, frozen_names = finetune.frozen_rule(config.init.freeze, spec, template["params"])
    if config.init.freeze:
        log(f"init.freeze: {len(frozen_names)} modules frozen: {', '.join(frozen_names)}")
    tx = engine.make_optimizer(config.optimizer, schedule.steps_per_epoch, frozen=frozen)
    return Training(spec, model, tx, aug, conv_impl, initial, frozen_names)


def train(config, sweep: Sweep, setup: Training, *, progress, log, checkpointer=None):
    """Arrays on device, once (every fold indexes into them), then every fold trained:
    (engine.FoldsOutput, the augmentation it trained with, the frozen trunk's variables).

    With a frozen trunk (`train.cache_frozen_trunk`) the trunk's features replace the
    images and only the head trains, without augmentation; the trunk's variables
    (None without) complete each fold's head into the full model (`export.write`).
    """
    dataset, schedule, folds = sweep.dataset, sweep.schedule, sweep.folds
    images, model, aug = jnp.asarray(dataset.images), setup.model, setup.aug
    initial = setup.initial.variables
    trunk = None
    if config.train.cache_frozen_trunk and setup.spec.trains_head_only(model):
        parts = setup.spec.trunk_head
        split = frozen_trunk_variables(parts, model, images.shape[1:], initial, config.seed)
        images, model, initial = frozen_trunk_features(
            parts, model, images, initial, config.seed, log=log, variables=split
        )
        aug, trunk = engine.Augment(), split[0]
    arrays = engine.Data(images, jnp.asarray(dataset.labels), jnp.asarray(sweep.codes))
    log(
        f"{config.model} on {config.dataset}: {sweep.tables[0].num_folds} {config.protocol} "
        f"folds, {schedule.steps_per_epoch} steps x batch {schedule.batch_size} per "
        f"fold-epoch, {schedule.epochs} epochs"
    )
    maps = None
    if config.report.attention_maps > 0:  # of the first seed's folds
        first = sweep.seed_rows()[0]
        pos, valid = heldout_maps.select_heldout(
            np.asarray(folds.test_idx)[first], np.asarray(folds.test_valid)[first],
            dataset.labels, int(config.report.attention_maps),
        )  # fmt: skip
        rows = len(folds.key)
        pos = np.pad(pos, ((0, rows - len(first)), (0, 0)))
        valid = np.pad(valid, ((0, rows - len(first)), (0, 0)))
        maps = engine.Maps(pos, valid, keys=config.report.attention_keys)
    log(f"compiling the training program ({config.train.fold_strategy} fold strategy) ...")
    bars = []

    def on_compiled(seconds):
        log(f"compiled in {seconds:.1f} s")
        bars.append(
            tqdm(total=schedule.epochs, unit="epoch", desc="all folds", disable=not progress)
        )

    def on_epoch(epochs_done, fold_losses, fold_val_losses):
        shown = {"loss": f"{float(np.mean(fold_losses)):.3f}"}
        if sweep.validation:
            shown["val_loss"] = f"{float(np.nanmean(fold_val_losses)):.3f}"
        bars[0].set_postfix(shown)
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


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `mer-jax sweep` to `subparsers`."""
    p = subparsers.add_parser("sweep", help=cli.help_of("sweep"))
    p.add_argument("config", help="experiments/<file>.py, optionally :ARG for get_config(ARG)")
    p.add_argument(
        "--workdir",
        help="where results go (default runs/<config path under experiments/>[-ARG])",
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    p.add_argument(
        "--seeds", type=int, metavar="N",
        help="run seeds seed .. seed+N-1 in one job (config key 'seeds')",
    )  # fmt: skip
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
    distributed.add_arguments(p)
    p.set_defaults(fn=cmd_sweep)
    return p


def _enable_compilation_cache(path: str | None) -> None:
    """Persistent XLA cache: an identical second sweep skips most of its compile time."""
    if not path:
        return
    pathlib.Path(path).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def default_workdir(spec: str) -> pathlib.Path:
    """runs/<config path below experiments/, without .py>[-ARG]: 'experiments/a/b.py:x' ->
    runs/a/b-x (a config outside experiments/: runs/<file name>[-ARG])."""
    path, _, arg = spec.partition(":")
    parts = pathlib.Path(path).with_suffix("").parts
    below = parts[parts.index("experiments") + 1 :] if "experiments" in parts else parts[-1:]
    name = pathlib.Path(*below)
    return pathlib.Path("runs") / (f"{name}-{arg.replace(',', '-')}" if arg else name)


def cmd_sweep(args) -> int:
    distributed.initialize(args)  # before anything touches a device
    main = distributed.is_main()
    if not main:
        print(
            f"mer-jax: process {jax.process_index()} of {distributed.process_count()}: "
            "training its share of the folds; process 0 reports",
            file=sys.stderr,
        )
    config = config_lib.load(args.config)
    config_lib.override(config, args.set or [])
    if args.seeds is not None:
        if args.seeds < 1:
            raise errors.UserError(f"--seeds {args.seeds}: give a number of seeds >= 1")
        config.seeds = tuple(range(config.seed, config.seed + args.seeds))
    workdir = pathlib.Path(args.workdir) if args.workdir else default_workdir(args.config)
    _enable_compilation_cache(None if args.no_compile_cache else args.compile_cache)
    try:
        results = run(
            config, workdir, force=args.force, progress=main and not args.no_progress,
            log=print if main else distributed.quiet,
        )  # fmt: skip
    except engine.Interrupted as stop:
        print(f"mer-jax: {stop}", file=sys.stderr)
        return 130
    if not main:
        return 3 if results.get("diverged_folds") else 0
    m, t = results["metrics"], results["timing"]
    sd, by_source_sd = results.get("metrics_sd") or {}, results.get("metrics_by_source_sd") or {}
    seeds = results.get("seeds") or [results.get("seed")]
    over = f", mean ± sd over {len(seeds)} seeds" if len(seeds) > 1 else ""
    print(
        f"\n{results['model']} | {results['dataset']} | {results['protocol']} "
        f"({results['num_folds']} folds{over})\n"
        f"  {_scores(m, sd, ('accuracy', 'uf1', 'uar', 'war'))}\n"
        f"  compile {t['compile_s']:.1f} s, train {t['train_s']:.1f} s "
        f"({t['images_per_s']:.0f} images/s) on {results['device']['device_kind']}"
    )
    for source, sm in results["metrics_by_source"].items():
        scores = _scores(sm, by_source_sd.get(source, {}), ("accuracy", "uf1", "uar"))
        print(f"  {source:>8}: {scores}")
    if m["absent_classes"]:
        print(f"  classes absent from the ground truth: {m['absent_classes']}")
    if results.get("diverged_folds"):
        named = ", ".join(
            f"{d['subject']} (epoch {d['epoch']}{_seed_of(d, seeds)})"
            for d in results["diverged_folds"]
        )
        print(
            f"mer-jax: incomplete: folds {named} diverged; metrics pool the rest", file=sys.stderr
        )
        return 3
    return 0


def _scores(m: dict, sd: dict, keys) -> str:
    """'Acc 0.6100 ± 0.0300  UF1 ...' (± only where `sd` has the key)."""
    names = {"accuracy": "Acc", "uf1": "UF1", "uar": "UAR", "war": "WAR"}
    return "  ".join(
        f"{names[k]} {m[k]:.4f}" + (f" ± {sd[k]:.4f}" if k in sd else "") for k in keys
    )


def _seed_of(diverged: dict, seeds: list) -> str:
    return f", seed {diverged['seed']}" if len(seeds) > 1 and "seed" in diverged else ""
