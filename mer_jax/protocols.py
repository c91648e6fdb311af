"""Evaluation protocols as fold tables the engine consumes.

A fold table is data, not a code path: for F folds over N samples it holds a
(F, N) training mask, a (F, N) test mask and the name of what each fold holds
out. Leave-one-subject-out (LOSO) is the protocol of every seed paper: one fold
per subject, trained on all other subjects and tested on the held-out one.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np


class LeakageError(RuntimeError):
    """A held-out sample (or its subject) reached a fold's training set."""


@dataclasses.dataclass(frozen=True)
class FoldTable:
    """Which samples each fold trains and tests on.

    `names[f]` says what fold f holds out (a subject id for LOSO).
    """

    names: tuple[str, ...]
    train_mask: np.ndarray  # (F, N) bool
    test_mask: np.ndarray  # (F, N) bool

    @property
    def num_folds(self) -> int:
        return len(self.names)

    @property
    def num_samples(self) -> int:
        return self.train_mask.shape[1]

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

    def select(self, folds: Sequence[int]) -> "FoldTable":
        """A table of only `folds` (in that order)."""
        folds = list(folds)
        return FoldTable(
            tuple(self.names[f] for f in folds), self.train_mask[folds], self.test_mask[folds]
        )


def check_no_leakage(table: FoldTable, subjects: Sequence[str]) -> None:
    """Raise LeakageError if any fold trains on a test sample or on a test sample's subject."""
    subjects = np.asarray(subjects)
    if table.train_mask.shape != table.test_mask.shape or table.train_mask.shape[1] != len(
        subjects
    ):
        raise ValueError(
            f"fold table masks {table.train_mask.shape}/{table.test_mask.shape} do not match "
            f"{len(subjects)} samples"
        )
    for f, name in enumerate(table.names):
        train, test = table.train_mask[f], table.test_mask[f]
        if not test.any():
            raise ValueError(f"fold {f} ({name}) has no test samples")
        if not train.any():
            raise ValueError(f"fold {f} ({name}) has no training samples")
        overlap = np.flatnonzero(train & test)
        if overlap.size:
            raise LeakageError(
                f"fold {f} ({name}) trains on its own test samples, e.g. index {overlap[0]}"
            )
        shared = np.intersect1d(subjects[train], subjects[test])
        if shared.size:
            raise LeakageError(
                f"fold {f} ({name}) trains on held-out subject(s) {shared.tolist()[:5]}"
            )


def loso(subjects: Sequence[str]) -> FoldTable:
    """Leave-one-subject-out: one fold per distinct subject, in sorted order."""
    subjects = np.asarray(subjects)
    names = tuple(sorted(set(subjects.tolist())))
    if len(names) < 2:
        raise ValueError(f"LOSO needs at least two subjects, got {list(names)}")
    test = np.stack([subjects == s for s in names])
    table = FoldTable(names, ~test, test)
    check_no_leakage(table, subjects)
    return table


PROTOCOLS = {"loso": loso}


def make_folds(protocol: str, subjects: Sequence[str]) -> FoldTable:
    """The fold table of `protocol` (config key 'protocol') over samples' `subjects`."""
    if protocol not in PROTOCOLS:
        raise KeyError(
            f"config key 'protocol': unknown protocol {protocol!r}; known: {sorted(PROTOCOLS)}"
        )
    return PROTOCOLS[protocol](subjects)
