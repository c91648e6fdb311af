"""What every fold trains on: the dataset on device, the per-fold arrays, the static schedule,
and each fold's epoch order (every training sample at least once, batches always full)."""

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mer_jax.protocols import FoldTable, check_no_leakage


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


class TrainState(NamedTuple):
    params: Any
    model_state: Any  # mutable collections, e.g. {'batch_stats': ...}
    opt_state: Any
    # int32 (): the epoch in which the fold's loss or weights turned non-finite, -1 while
    # healthy. From that step on the fold's state no longer changes (FoldFns.train_step).
    diverged_epoch: Any


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


def make_folds_arrays(
    table: FoldTable, subject_codes: np.ndarray, num_subjects: int, seed: int, fold_ids=None
) -> Folds:
    """Device arrays of a fold table; `fold_ids` default 0..F-1 (keys depend on them only)."""
    test_idx, test_valid = table.test_indices()
    heldout = np.zeros((table.num_folds, num_subjects), bool)
    for f in range(table.num_folds):
        heldout[f, np.unique(subject_codes[table.test_mask[f]])] = True
    ids = np.arange(table.num_folds) if fold_ids is None else np.asarray(fold_ids)
    base = jax.random.key(seed)
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(ids, jnp.uint32))
    return Folds(
        keys,
        jnp.asarray(table.train_mask),
        jnp.asarray(heldout),
        jnp.asarray(test_idx),
        jnp.asarray(test_valid),
    )


def with_final_model(folds: Folds, seed: int) -> Folds:
    """`folds` and one more: a fold that trains on every sample and tests none (fold id F,
    so its key is the key a fold F would have; the others' are unchanged)."""
    num_folds, n = folds.train_mask.shape
    key = jax.random.fold_in(jax.random.key(seed), jnp.uint32(num_folds))
    final = Folds(
        key[None],
        jnp.ones((1, n), bool),
        jnp.zeros((1, folds.heldout_subjects.shape[1]), bool),
        jnp.zeros((1, folds.test_idx.shape[1]), folds.test_idx.dtype),
        jnp.zeros((1, folds.test_valid.shape[1]), bool),
    )
    return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), folds, final)


def prepare(
    table: FoldTable,
    subjects,
    labels: np.ndarray,
    num_classes: int,
    *,
    batch_size: int,
    balance: bool,
    epochs: int,
    seed: int,
    epochs_per_call: int = 1,
    fold_ids=None,
):
    """Checks and static numbers for `train_folds`: (Schedule, Folds, subject codes)."""
    subjects = np.asarray(subjects)
    check_no_leakage(table, subjects)
    names, codes = np.unique(subjects, return_inverse=True)
    length = epoch_length(table.train_mask, labels, num_classes, balance)
    schedule = Schedule(
        epochs=epochs,
        batch_size=batch_size,
        steps_per_epoch=math.ceil(length / batch_size),
        num_classes=num_classes,
        balance=balance,
        epochs_per_call=epochs_per_call,
    )
    folds = make_folds_arrays(table, codes, len(names), seed, fold_ids)
    return schedule, folds, codes.astype(np.int32)
