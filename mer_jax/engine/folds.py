"""What every fold trains on: the dataset on device, the per-fold arrays, the static schedule,
and each fold's epoch order (every training sample at least once, batches always full)."""

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mer_jax.engine.monitor import Monitor, Monitoring
from mer_jax.protocols import FoldTable, check_no_leakage
from mer_jax.splits import validation_split


class Data(NamedTuple):
    """The whole dataset, on device, shared by every fold."""

    images: jax.Array  # (N, ..., H, W, C): uint8 pixels, or float (e.g. optical flow)
    labels: jax.Array  # (N,) int32
    subjects: jax.Array  # (N,) int32 codes into the sweep's subject list


class Folds(NamedTuple):
    """Per-fold arrays with a leading fold axis F."""

    key: jax.Array  # (F,) typed PRNG keys, fold_in(key(seed), fold_id)
    train_mask: jax.Array  # (F, N) bool
    heldout_subjects: jax.Array  # (F, num_subjects) bool: subjects the fold tests on
    test_idx: jax.Array  # (F, T) int32, padded
    test_valid: jax.Array  # (F, T) bool
    # Validation split (monitor.py): (F, V) int32 padded indices and their validity (V >= 1;
    # no valid entry: no validation), the subjects it holds (F, num_subjects) bool, and
    # (F,) bool: the split IS the fold's test set (protocol 'holdout', pre-training).
    val_idx: jax.Array
    val_valid: jax.Array
    val_subjects: jax.Array
    val_is_test: jax.Array


class TrainState(NamedTuple):
    params: Any
    model_state: Any  # mutable collections, e.g. {'batch_stats': ...}
    opt_state: Any
    # int32 (): the epoch in which the fold's loss or weights turned non-finite, -1 while
    # healthy. From that step on the fold's state no longer changes (FoldFns.train_step).
    diverged_epoch: Any
    monitor: Monitor  # plateau, early stopping, best epoch (engine/monitor.py)
    # (params, model_state) of the best epoch on the validation split; None without one.
    best: Any = None


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Static numbers of a sweep, computed once in Python."""

    epochs: int
    batch_size: int
    steps_per_epoch: int
    num_classes: int
    balance: bool
    epochs_per_call: int = 1
    eval_batch_size: int = 64
    monitoring: Monitoring = Monitoring()


def epoch_length(
    train_mask: np.ndarray, labels: np.ndarray, num_classes: int, balance: bool
) -> int:
    """Slots one epoch needs for the largest fold: n_f, or (present classes x largest class)."""
    lengths = []
    for mask in np.asarray(train_mask, bool):
        if balance:
            counts = np.bincount(labels[mask], minlength=num_classes)
            lengths.append(int((counts > 0).sum() * counts.max()))
        else:
            lengths.append(int(mask.sum()))
    return max(lengths)


def epoch_order(key, train_mask, labels, num_classes: int, length: int, balance: bool):
    """Indices of one fold's epoch: `length` training samples in random order.

    Unbalanced: a random permutation of the fold's training samples, tiled to
    `length`. Balanced (class resampling to the largest class, as the seeds
    do): each present class's samples in random order, tiled to the largest
    class's count, then all slots shuffled. Only indices where `train_mask` is
    True can come out: non-training samples sort behind every training one and
    the slot arithmetic never reaches past a class's count.
    """
    order_key, shuffle_key = jax.random.split(key)
    group = labels if balance else jnp.zeros_like(labels)
    groups = num_classes if balance else 1
    counts = jnp.zeros((groups,), jnp.int32).at[group].add(train_mask.astype(jnp.int32))
    u = jax.random.uniform(order_key, labels.shape, maxval=0.5)
    perm = jnp.argsort(jnp.where(train_mask, group + u, groups + u))
    starts = jnp.cumsum(counts) - counts
    present = counts > 0
    per_group = jnp.max(counts)
    total = jnp.sum(present) * per_group
    slots = jnp.arange(length) % total
    present_groups = jnp.argsort(~present, stable=True)
    g = present_groups[slots // per_group]
    idx = perm[starts[g] + (slots % per_group) % counts[g]]
    return idx[jax.random.permutation(shuffle_key, length)]


def _padded_rows(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, W) int32 indices of each row's True entries, padded with 0, and their validity."""
    counts = mask.sum(axis=1)
    idx = np.zeros((mask.shape[0], max(int(counts.max(initial=0)), 1)), np.int32)
    valid = np.zeros(idx.shape, bool)
    for f, row in enumerate(mask):
        members = np.flatnonzero(row)
        idx[f, : len(members)], valid[f, : len(members)] = members, True
    return idx, valid


def _subject_rows(mask: np.ndarray, subject_codes: np.ndarray, num_subjects: int) -> np.ndarray:
    """(F, num_subjects) bool: the subjects of each row's samples."""
    out = np.zeros((mask.shape[0], num_subjects), bool)
    for f, row in enumerate(mask):
        out[f, np.unique(subject_codes[row])] = True
    return out


def make_folds_arrays(
    table: FoldTable, subject_codes: np.ndarray, num_subjects: int, seed: int, fold_ids=None
) -> Folds:
    """Device arrays of a fold table (its validation split, if any, included); `fold_ids`
    default 0..F-1 (keys depend on them only)."""
    test_idx, test_valid = table.test_indices()
    val_mask = table.validation()
    val_idx, val_valid = _padded_rows(val_mask)
    ids = np.arange(table.num_folds) if fold_ids is None else np.asarray(fold_ids)
    base = jax.random.key(seed)
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(ids, jnp.uint32))
    return Folds(
        keys,
        jnp.asarray(table.train_mask),
        jnp.asarray(_subject_rows(table.test_mask, subject_codes, num_subjects)),
        jnp.asarray(test_idx),
        jnp.asarray(test_valid),
        jnp.asarray(val_idx),
        jnp.asarray(val_valid),
        jnp.asarray(_subject_rows(val_mask, subject_codes, num_subjects)),
        jnp.full((table.num_folds,), table.validation_is_test),
    )


def with_final_model(folds: Folds, seed: int, val_mask=None, subject_codes=None) -> Folds:
    """`folds` and one more: a fold that trains on every sample (but those of `val_mask`, its
    validation split, if given) and tests none (fold id F, so its key is the key a fold F
    would have; the others' are unchanged)."""
    num_folds, n = folds.train_mask.shape
    num_subjects = folds.heldout_subjects.shape[1]
    val = np.zeros((1, n), bool) if val_mask is None else np.asarray(val_mask, bool)[None]
    val_idx, val_valid = _padded_rows(val)
    width = max(val_idx.shape[1], folds.val_idx.shape[1])
    folds = _pad_validation(folds, width)
    val_subjects = np.zeros((1, num_subjects), bool)
    if val_mask is not None:
        val_subjects = _subject_rows(val, np.asarray(subject_codes), num_subjects)
    key = jax.random.fold_in(jax.random.key(seed), jnp.uint32(num_folds))
    final = Folds(
        key[None],
        jnp.asarray(~val),
        jnp.zeros((1, num_subjects), bool),
        jnp.zeros((1, folds.test_idx.shape[1]), folds.test_idx.dtype),
        jnp.zeros((1, folds.test_valid.shape[1]), bool),
        jnp.asarray(np.pad(val_idx, ((0, 0), (0, width - val_idx.shape[1])))),
        jnp.asarray(np.pad(val_valid, ((0, 0), (0, width - val_valid.shape[1])))),
        jnp.asarray(val_subjects),
        jnp.zeros((1,), bool),
    )
    return concatenate([folds, final])


def _pad_validation(folds: Folds, width: int) -> Folds:
    """`folds` with its validation arrays padded to `width` columns (invalid entries)."""
    extra = width - folds.val_idx.shape[1]
    if extra <= 0:
        return folds
    pad = lambda x: jnp.pad(x, ((0, 0), (0, extra)))
    return folds._replace(val_idx=pad(folds.val_idx), val_valid=pad(folds.val_valid))


def concatenate(parts: list[Folds]) -> Folds:
    """Folds after one another on the fold axis (test and validation widths padded)."""
    test = max(p.test_idx.shape[1] for p in parts)
    val = max(p.val_idx.shape[1] for p in parts)
    padded = []
    for p in parts:
        extra = test - p.test_idx.shape[1]
        if extra:
            pad = lambda x: jnp.pad(x, ((0, 0), (0, extra)))  # noqa: B023
            p = p._replace(test_idx=pad(p.test_idx), test_valid=pad(p.test_valid))
        padded.append(_pad_validation(p, val))
    return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *padded)


def seed_tables(table: FoldTable, subjects, labels, seeds, validation_subjects: int = 0):
    """One fold table per seed: `table`, or with `validation_subjects` > 0 each fold's inner
    validation split of that many whole training subjects, drawn by (seed, fold)."""
    if not validation_subjects:
        return [table for _ in seeds]
    return [
        table.with_validation(np.asarray(subjects), np.asarray(labels), validation_subjects, s)
        for s in seeds
    ]


def prepare(
    table: FoldTable | list,
    subjects,
    labels: np.ndarray,
    num_classes: int,
    *,
    batch_size: int,
    balance: bool,
    epochs: int,
    seed: int = 0,
    seeds=None,
    epochs_per_call: int = 1,
    fold_ids=None,
    final_model: bool = False,
    validation_subjects: int = 0,
    monitoring: Monitoring | None = None,
):
    """Checks and static numbers for `train_folds`: (Schedule, Folds, subject codes).

    `seeds` (default (`seed`,)): every seed's folds, one block after another on
    the fold axis (keys fold_in(key(seed), fold id), as each seed alone would
    have); `table` is one table for all, or one per seed (`seed_tables`).
    `final_model`: each seed's block ends with a fold trained on every subject
    (`with_final_model`; with `validation_subjects` its own validation split).
    """
    subjects = np.asarray(subjects)
    seeds = (seed,) if seeds is None else tuple(seeds)
    tables = table if isinstance(table, list | tuple) else [table] * len(seeds)
    if len(tables) != len(seeds):
        raise ValueError(f"prepare: {len(tables)} fold tables for {len(seeds)} seeds")
    names, codes = np.unique(subjects, return_inverse=True)
    blocks, masks = [], []
    for i, (s, t) in enumerate(zip(seeds, tables)):
        if i == 0 or t is not tables[i - 1]:  # one table for every seed is checked once
            check_no_leakage(t, subjects)
        block = make_folds_arrays(t, codes, len(names), s, fold_ids)
        # A fold's training subjects before its inner validation split took some: the epoch
        # length then does not depend on the seed's split (each seed alone = all seeds).
        masks.append(t.train_mask if t.validation_is_test else t.train_mask | t.validation())
        if final_model:
            val = None
            if validation_subjects:
                every = np.ones(len(subjects), bool)
                val = validation_split(
                    subjects, labels, every, seed=(s, t.num_folds), count=validation_subjects
                )
            block = with_final_model(block, s, val, codes)  # epochs as long as the folds'
        blocks.append(block)
    length = epoch_length(np.concatenate(masks), labels, num_classes, balance)
    schedule = Schedule(
        epochs=epochs,
        batch_size=batch_size,
        steps_per_epoch=math.ceil(length / batch_size),
        num_classes=num_classes,
        balance=balance,
        epochs_per_call=epochs_per_call,
        monitoring=monitoring or Monitoring(),
    )
    folds = blocks[0] if len(blocks) == 1 else concatenate(blocks)
    return schedule, folds, codes.astype(np.int32)
