"""Fold tables and validation splits of whole subjects.

A fold table (`FoldTable`) is data, not a code path: for F folds over N
samples it holds (F, N) training, test and (optionally) validation masks and
the name of what each fold holds out; protocols.py builds them, the engine
consumes them, and `check_no_leakage` guards every one.

A validation split serves plateau scheduling, early stopping and picking the
best weights. It is made of whole subjects, so no subject is both trained on
and validated on (the same rule as for the test split). Two uses:
  - inner validation in LOSO (config `train.validation_subjects=k`): k of a
    fold's training subjects, `FoldTable.with_validation`;
  - the `holdout` protocol (config `train.validation_fraction`): seed 000
    Sec. 4.1 pre-trains on pooled macro-expression datasets with 1/10 of them
    held out, seed 001 Sec. 4.1.1 keeps 20% for validation. Neither paper says
    how the split is drawn; mer_jax draws whole subjects, stratified by class.

The rule (`validation_split`): draw DRAWS seeded random candidate splits and
keep the one whose per-class sample counts are closest to their targets.

`subject_folds` splits samples into k folds of whole subjects, stratified by
class where the subjects allow it (seed 002's five-fold CDMER scoring,
protocols.cdmer_five_fold).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from mer_jax import label_schemes
from mer_jax.errors import UserError

DRAWS = 16  # candidate splits per call; the most stratified one is kept (validation_split)
COUNT_KEY = "train.validation_subjects"
FRACTION_KEY = "train.validation_fraction"


class LeakageError(RuntimeError):
    """A held-out or validation sample (or its subject) reached a fold's training set, or a
    held-out one its validation split."""


@dataclasses.dataclass(frozen=True)
class FoldTable:
    """Which samples each fold trains, validates and tests on.

    `names[f]` says what fold f holds out (a subject id for LOSO, 'Exp.7: C->H'
    for a CDMER task). `val_mask`: (F, N) each fold's validation samples (plateau
    scheduling, early stopping, the best weights), whole subjects that neither
    train nor, unless `validation_is_test` (`holdout`: the held-out split IS the
    validation split), test; None: no validation (`validation()` is all False).
    `notes`: what building the table found worth reporting (labels that
    disagree with an official list). `per_fold_metrics`: each fold is a
    separate experiment (HDE, CDMER); report metrics per fold rather than over
    predictions pooled across folds. `tasks[f]`: the experiment fold f belongs
    to, where one experiment spans several folds (seed 002's CDMER task scored
    in five folds of its target): predictions are pooled over each task's
    folds and reported task by task; () = none.
    """

    names: tuple[str, ...]
    train_mask: np.ndarray  # (F, N) bool
    test_mask: np.ndarray  # (F, N) bool
    notes: tuple[str, ...] = ()
    per_fold_metrics: bool = False
    val_mask: np.ndarray | None = None  # (F, N) bool
    validation_is_test: bool = False
    tasks: tuple[str, ...] = ()

    @property
    def num_folds(self) -> int:
        return len(self.names)

    @property
    def num_samples(self) -> int:
        return self.train_mask.shape[1]

    def validation(self) -> np.ndarray:
        """(F, N) bool: each fold's validation samples (all False without a split)."""
        if self.val_mask is None:
            return np.zeros(self.train_mask.shape, bool)
        return np.asarray(self.val_mask, bool)

    def test_indices(self) -> tuple[np.ndarray, np.ndarray]:
        """Held-out indices padded to a static width: (F, T_max) int32 and a validity mask."""
        counts = self.test_mask.sum(axis=1)
        width = max(int(counts.max()), 1)
        idx = np.zeros((self.num_folds, width), np.int32)
        valid = np.zeros((self.num_folds, width), bool)
        for f in range(self.num_folds):
            members = np.flatnonzero(self.test_mask[f])
            idx[f, : len(members)] = members
            valid[f, : len(members)] = True
        return idx, valid

    def select(self, folds: Sequence[int]) -> FoldTable:
        """A table of only `folds` (in that order)."""
        folds = list(folds)
        return dataclasses.replace(
            self,
            names=tuple(self.names[f] for f in folds),
            train_mask=self.train_mask[folds],
            test_mask=self.test_mask[folds],
            val_mask=None if self.val_mask is None else self.val_mask[folds],
            tasks=tuple(self.tasks[f] for f in folds) if self.tasks else (),
        )

    def with_validation(
        self, subjects: Sequence[str], labels: Sequence[int], count: int, seed: int
    ) -> FoldTable:
        """This table with `count` of each fold's training subjects as its validation split.

        Fold f (its index in this table) draws `validation_split(subjects, labels,
        train_mask[f], count=count, seed=(seed, f))` (config key
        `train.validation_subjects`) and no longer trains on it; test masks keep.
        A table that already has a validation split (`holdout`) raises UserError.
        """
        if self.val_mask is not None:
            raise UserError(
                f"config key {COUNT_KEY!r}: the fold table already has a validation "
                f"split{' (its test split)' if self.validation_is_test else ''}; set it to 0"
            )
        subjects = np.array([label_schemes.text(s) for s in subjects], dtype=str)
        val = np.stack(
            [
                validation_split(
                    subjects, labels, train, seed=(seed, f), count=count, what=f"fold {f} ({n})"
                )
                for f, (n, train) in enumerate(zip(self.names, self.train_mask))
            ]
        )
        table = dataclasses.replace(self, train_mask=self.train_mask & ~val, val_mask=val)
        check_no_leakage(table, subjects)
        return table


def check_no_leakage(table: FoldTable, subjects: Sequence[str]) -> None:
    """Raise LeakageError if any fold trains on a test or validation sample or on such a
    sample's subject, or (unless `validation_is_test`) validates on a test sample or subject."""
    subjects = np.asarray(subjects)
    val_mask = table.validation()
    if not (
        table.train_mask.shape == table.test_mask.shape == val_mask.shape
        and table.train_mask.shape[1] == len(subjects)
    ):
        raise ValueError(
            f"fold table masks {table.train_mask.shape}/{table.test_mask.shape}/"
            f"{val_mask.shape} (train/test/validation) do not match {len(subjects)} samples"
        )
    if table.tasks and len(table.tasks) != table.num_folds:
        raise ValueError(f"fold table: {len(table.tasks)} task names for {table.num_folds} folds")
    for f, name in enumerate(table.names):
        train, test, val = table.train_mask[f], table.test_mask[f], val_mask[f]
        if not test.any():
            raise ValueError(f"fold {f} ({name}) has no test samples")
        if not train.any():
            raise ValueError(f"fold {f} ({name}) has no training samples")
        pairs = [("trains on", "test", "held-out", train, test)]
        pairs.append(("trains on", "validation", "validation", train, val))
        if not table.validation_is_test:
            pairs.append(("validates on", "test", "held-out", val, test))
        for verb, split, whose, a, b in pairs:
            overlap = np.flatnonzero(a & b)
            if overlap.size:
                raise LeakageError(
                    f"fold {f} ({name}) {verb} its own {split} samples, e.g. index {overlap[0]}"
                )
            shared = np.intersect1d(subjects[a], subjects[b])
            if shared.size:
                raise LeakageError(
                    f"fold {f} ({name}) {verb} {whose} subject(s) {shared.tolist()[:5]}"
                )


def validation_split(
    subjects: Sequence[str],
    labels: Sequence[int],
    candidates: np.ndarray,
    *,
    seed: int | Sequence[int],
    count: int | None = None,
    fraction: float | None = None,
    what: str = "",
) -> np.ndarray:
    """(N,) bool: the samples of whole subjects chosen among the `candidates` samples.

    Give exactly one of `count` (that many subjects) or `fraction` (subjects
    holding as close to that share of the candidate samples as possible).
    `seed`: an int or a sequence of ints (np.random.default_rng), e.g.
    (run seed, fold id); the same seed gives the same split.

    Rule. With n_k candidate samples of class k (n in all), DRAWS candidate
    splits are drawn from a seeded random generator:
      - `count`: `count` subjects drawn uniformly without replacement; each
        class's target is its candidate share of the split's own size V:
        T_k = V * n_k / n (the error measures stratification only);
      - `fraction`: subjects taken in a random order until the taken samples
        come closest to fraction * n (at least one subject, at most all but
        one); T_k = fraction * n_k (the error measures size and stratification).
    The kept split is the draw with the smallest sum_k |v_k - T_k| / sum_k T_k
    (v_k: its samples of class k); the first such draw on ties. Each draw is
    a random subject draw, so the kept one is never less stratified than the
    first. DRAWS is 16, not more, on purpose: the kept split lies among the
    most stratified ~1/17 of random draws, yet each seed (each fold of each
    run) still draws its own; an exhaustive search would give every seed the
    same split whenever a fold has few subjects. At least one candidate
    subject always stays out of the split (for training).

    Raises UserError naming `train.validation_subjects` or
    `train.validation_fraction` and the numbers: count < 1, count >= the
    number of candidate subjects, a fraction outside (0, 1), or fewer than two
    candidate subjects. `what` ('fold 3 (casme2/sub04)') prefixes messages.
    """
    subjects, labels = np.asarray(subjects).astype(str), np.asarray(labels)
    candidates = np.asarray(candidates, bool)
    if not len(subjects) == len(labels) == len(candidates):
        raise ValueError(
            f"validation_split: {len(subjects)} subjects, {len(labels)} labels and "
            f"{len(candidates)} candidate flags"
        )
    names, per_subject = _subject_class_counts(subjects, labels, candidates)
    _check_request(len(names), count, fraction, what)
    rng = np.random.default_rng(seed)
    totals = per_subject.sum(axis=0)
    best, best_error = None, np.inf
    for _ in range(DRAWS):
        chosen = _draw(rng, per_subject, count, fraction)
        counts = per_subject[chosen].sum(axis=0)
        target = totals * (fraction if count is None else counts.sum() / totals.sum())
        error = np.abs(counts - target).sum() / target.sum()
        if error < best_error:
            best, best_error = chosen, error
    return candidates & np.isin(subjects, names[best])


def _subject_class_counts(
    subjects: np.ndarray, labels: np.ndarray, candidates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The candidates' sorted subject names and their (S, K) per-class sample counts."""
    names, subject_of = np.unique(subjects[candidates], return_inverse=True)
    _, class_of = np.unique(labels[candidates], return_inverse=True)
    counts = np.zeros((len(names), int(class_of.max(initial=-1)) + 1), np.int64)
    np.add.at(counts, (subject_of, class_of), 1)
    return names, counts


def _check_request(num_subjects: int, count, fraction, what: str) -> None:
    """UserError for a count or fraction the candidates cannot give (module docstring)."""
    where = f"{what}: " if what else ""
    if (count is None) == (fraction is None):
        raise ValueError(f"validation_split: give count or fraction, got {count=}, {fraction=}")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise UserError(f"config key {COUNT_KEY!r}: {count!r} is not an integer >= 1")
        if count >= num_subjects:
            raise UserError(
                f"config key {COUNT_KEY!r}: {where}{count} validation subject(s) leave no "
                f"training subject: the training samples hold {num_subjects} subject(s)"
            )
        return
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.number)):
        raise UserError(f"config key {FRACTION_KEY!r}: {fraction!r} is not a number in (0, 1)")
    if not 0 < fraction < 1:
        raise UserError(f"config key {FRACTION_KEY!r}: {fraction!r} is not in (0, 1)")
    if num_subjects < 2:
        raise UserError(
            f"config key {FRACTION_KEY!r}: {where}a validation split of whole subjects "
            f"needs at least 2 subjects, the samples hold {num_subjects}"
        )


def _draw(rng: np.random.Generator, per_subject: np.ndarray, count, fraction) -> np.ndarray:
    """Indices of one random candidate split (validation_split's rule)."""
    order = rng.permutation(len(per_subject))
    if count is not None:
        return order[:count]
    sizes = np.cumsum(per_subject[order].sum(axis=1))[:-1]  # never every subject
    taken = int(np.argmin(np.abs(sizes - fraction * per_subject.sum()))) + 1
    return order[:taken]


def subject_folds(
    subjects: Sequence[str],
    labels: Sequence[int],
    candidates: np.ndarray,
    *,
    num_folds: int,
    seed: int | Sequence[int],
    what: str = "",
) -> np.ndarray:
    """(num_folds, N) bool: the `candidates` samples split into folds of whole subjects.

    Every candidate sample is in exactly one fold, every subject in one fold,
    each fold non-empty. Stratified by class where the subjects allow it:
    subjects are put in a seeded random order (np.random.default_rng(seed)),
    then stably sorted by sample count, largest first; the first `num_folds`
    subjects open one fold each, and each later subject joins the fold where
    it brings the per-class counts closest to an equal share, i.e. the fold
    minimising sum_k |c_fk + s_k - n_k / F| - |c_fk - n_k / F| (c_fk: fold f's
    samples of class k, s_k: the subject's, n_k: all candidates'), ties to the
    fold with fewer samples, then the lower index. The same seed gives the
    same folds. Raises ValueError (prefixed by `what`) with fewer candidate
    subjects than folds.
    """
    subjects, labels = np.asarray(subjects).astype(str), np.asarray(labels)
    candidates = np.asarray(candidates, bool)
    names, per_subject = _subject_class_counts(subjects, labels, candidates)
    where = f"{what}: " if what else ""
    if isinstance(num_folds, bool) or not isinstance(num_folds, int | np.integer) or num_folds < 2:
        raise ValueError(f"{where}num_folds {num_folds!r} is not an integer >= 2")
    if len(names) < num_folds:
        raise ValueError(
            f"{where}{num_folds} folds of whole subjects need at least {num_folds} subjects, "
            f"the samples hold {len(names)}: {names.tolist()}"
        )
    order = np.random.default_rng(seed).permutation(len(names))
    order = order[np.argsort(-per_subject[order].sum(axis=1), kind="stable")]
    share = per_subject.sum(axis=0) / num_folds
    counts = np.zeros((num_folds, per_subject.shape[1]))
    fold_of = np.zeros(len(names), np.int64)
    for rank, s in enumerate(order):
        if rank < num_folds:
            best = rank
        else:
            gain = np.abs(counts + per_subject[s] - share) - np.abs(counts - share)
            cost = gain.sum(axis=1)
            best = min(range(num_folds), key=lambda f: (cost[f], counts[f].sum(), f))
        counts[best] += per_subject[s]
        fold_of[s] = best
    index = {name: i for i, name in enumerate(names)}
    out = np.zeros((num_folds, len(subjects)), bool)
    for i in np.flatnonzero(candidates):
        out[fold_of[index[subjects[i]]], i] = True
    return out
