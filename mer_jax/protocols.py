"""Evaluation protocols as fold tables the engine consumes.

A fold table (splits.FoldTable, re-exported here with check_no_leakage and
LeakageError) is data, not a code path: for F folds over N samples it holds a
(F, N) training mask, a (F, N) test mask, optionally a (F, N) validation mask,
and the name of what each fold holds out. A sample in no mask of a fold takes
no part in it, so every protocol below is a table over one pooled sample list,
whatever else that list holds.

The sample list is arrays over its N samples (as `data.Dataset` holds them):
  subjects  ids unique across datasets: 'casme2/sub01', 'samm/006', 'smic/s1'
  datasets  where each sample comes from, the builders' `source`: 'casme2',
            'samm', 'smic' (SMIC-HS), 'smic_vis', 'smic_nir' (Dataset.sources)
  clips     clip ids: 'casme2/sub01/EP02_01f', 'smic/s1/s1_ne_01'
  labels    class indices into `class_names`

Protocols (config key 'protocol'; `make_folds(protocol, subjects, **arrays)`):
  loso                  one fold per subject (SDE on one dataset; every seed).
  cde_megc2019          MEGC 2019 composite (seeds 001, 002): exactly the 441
                        clips of the official list, LOSO over its 68 subjects.
  cde_megc2019_442      the same plus SAMM 032_3_1, the 442 clips papers quote.
  cde_casme2_samm       seed 000 Sec. 4.2 CDE (MEGC 2018): CASME II + SAMM
                        pooled, LOSO (the paper: 26 + 20 folds).
  hde                   seed 000 Sec. 4.2 HDE: train on all of one of CASME II /
                        SAMM, test on all of the other; one fold per direction.
  hde_casme2_to_samm, hde_samm_to_casme2   one direction each.
  cdmer_<S>_to_<T>      seed 002 Sec. 6.1.3, Table 10: train on all of source
                        S, test on all of target T, S, T among smic_hs,
                        smic_vis, smic_nir, casme2 (fold 'Exp.7: C->H', ...).
  cdmer, cdmer_type1, cdmer_type2   all 12 tasks, tasks 1-6, tasks 7-12.
  cdmer_5fold[_<...>]   the same tasks and groups scored as seed 002 Sec. 6.1.3
                        and Table 11 say, "five-fold cross validation": each
                        task's target in 5 class-stratified folds of whole
                        subjects (option seed), fold k tests the k-th and trains
                        on all of the source; a task's folds are pooled and
                        scored together (FoldTable.tasks). cdmer_5fold_with_target
                        [_<...>]: the other reading, training on the source and
                        the other four target folds (docs/papers.md, seed 002).
  holdout               one fold 'validation': trains on every sample but a
                        class-stratified split of whole subjects (splits.py),
                        tests on it and validates on it (`validation_is_test`):
                        seed 000 Sec. 4.1 pre-trains on pooled macro-expression
                        datasets with 1/10 held out (validation_fraction 0.1),
                        seed 001 Sec. 4.1.1 keeps 20% for validation (0.2).
                        Options validation_fraction (default 0.1) and seed
                        (default 0) draw the split; any label scheme.
Cross-dataset tables (hde*, cdmer*) set `per_fold_metrics`: each fold is its
own experiment, scored on its own (a sample may be tested in several folds);
cdmer_5fold* tables name each fold's task (`tasks`): one task, five folds.
A table may also hold each fold's validation split (`FoldTable.val_mask`): the
holdout split, or `FoldTable.with_validation` (inner validation subjects).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from mer_jax import label_schemes, splits
from mer_jax.clip_list import EXTRA_442, MEGC2019_CLASSES, label_disagreements, match_clip_list
from mer_jax.clip_list import clip_key as clip_key  # re-exported
from mer_jax.clip_list import read_clip_list as read_clip_list  # re-exported
from mer_jax.errors import UserError
from mer_jax.splits import FoldTable, check_no_leakage
from mer_jax.splits import LeakageError as LeakageError  # re-exported
from mer_jax.splits import validation_split as validation_split  # re-exported

LABEL_MISMATCH = ("warn", "note", "error")
# Sample arrays (besides subjects) and options a protocol may take.
SAMPLE_ARRAYS = {
    "datasets": "the samples' source datasets, data.Dataset.sources ('casme2', 'samm', 'smic', "
    "'smic_vis', 'smic_nir')",
    "clips": "the samples' clip ids, data.Dataset.clips ('casme2/sub01/EP02_01f')",
    "labels": "the samples' class indices, data.Dataset.labels",
}
OPTIONS = ("class_names", "clip_list", "label_mismatch", "validation_fraction", "seed")


class ProtocolWarning(UserWarning):
    """The sample list disagrees with a protocol's reference list (a label, say)."""


def _text(values) -> np.ndarray:
    return np.array([label_schemes.text(v) for v in values], dtype=str)


# ----------------------------------------------------------------------------
# Leave-one-subject-out.


def _loso_over(
    subjects: np.ndarray, selected: np.ndarray, what: str = "LOSO", **table_kwargs
) -> FoldTable:
    """LOSO over the `selected` samples only; the others are in no fold."""
    names = tuple(sorted(set(subjects[selected].tolist())))
    if len(names) < 2:
        raise ValueError(f"{what} needs at least two subjects, got {list(names)}")
    test = np.stack([selected & (subjects == s) for s in names])
    table = FoldTable(names, selected[None] & ~test, test, **table_kwargs)
    check_no_leakage(table, subjects)
    return table


def loso(subjects: Sequence[str]) -> FoldTable:
    """Leave-one-subject-out: one fold per distinct subject, in sorted order."""
    subjects = np.asarray(subjects)
    return _loso_over(subjects, np.ones(len(subjects), bool))


# ----------------------------------------------------------------------------
# The MEGC 2019 composite (CDE): the official clip list (mer_jax/clip_list.py).


def cde_megc2019(
    subjects: np.ndarray,
    *,
    datasets: np.ndarray,
    clips: np.ndarray,
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    clip_list=None,
    label_mismatch: str = "warn",
    extra_442: bool = False,
) -> FoldTable:
    """MEGC 2019 CDE: LOSO over exactly the listed clips (seed 002 Sec. 6.1.2, Table 9).

    `clip_list`: a CSV path (default the packaged official list, 441 clips);
    `extra_442` adds SAMM 032_3_1. Samples not on the list are in no fold. With
    `labels`, a label that disagrees with the list (compared by class name,
    `class_names` default MEGC2019_CLASSES) goes into the table's notes and is
    warned about ('warn'), only noted ('note') or raised ('error').
    """
    what = "cde_megc2019" + ("_442" if extra_442 else "")
    if label_mismatch not in LABEL_MISMATCH:
        raise ValueError(f"label_mismatch {label_mismatch!r} not one of {LABEL_MISMATCH}")
    listed = read_clip_list(clip_list)
    if extra_442:
        if any(row.key == EXTRA_442.key for row in listed):
            source = listed[0].where.rsplit(" row ", 1)[0]
            raise ValueError(f"{what}: {EXTRA_442.clip} is already on the list {source}")
        listed = (*listed, EXTRA_442)
    index = match_clip_list(listed, datasets, subjects, clips, what=what)
    selected = np.zeros(len(subjects), bool)
    selected[index] = True
    notes = [f"{len(listed)} listed clips of {len(subjects)} samples take part"]
    if labels is not None:
        names = MEGC2019_CLASSES if class_names is None else tuple(class_names)
        wrong = label_disagreements(listed, index, labels, names, clips)
        if wrong:
            message = (
                f"{what}: {len(wrong)} label(s) disagree with the official list: "
                + "; ".join(wrong[:10])
                + (f" and {len(wrong) - 10} more" if len(wrong) > 10 else "")
            )
            if label_mismatch == "error":
                raise ValueError(message)
            if label_mismatch == "warn":
                warnings.warn(message, ProtocolWarning, stacklevel=2)
            notes.append(message)
    table = _loso_over(subjects, selected, what, notes=tuple(notes))
    expected = len({row.key[:2] for row in listed})
    if table.num_folds != expected:
        raise ValueError(
            f"{what}: the listed clips' samples have {table.num_folds} distinct subject ids, the "
            f"list {expected} subjects: give each subject one id"
        )
    return table


# ----------------------------------------------------------------------------
# Cross-dataset protocols.


def cde_casme2_samm(subjects: np.ndarray, *, datasets: np.ndarray) -> FoldTable:
    """Seed 000 Sec. 4.2 CDE: CASME II and SAMM pooled, one fold per subject.

    The paper reports 26 CASME II + 20 SAMM folds with the 5 objective classes
    (label scheme objective_5class): subjects with no clip left after the
    scheme have no fold, so the count comes from the data.
    """
    for name in ("casme2", "samm"):
        if not np.any(datasets == name):
            raise ValueError(
                f"cde_casme2_samm: no samples of dataset {name!r}; the sample list has "
                f"{sorted(set(datasets.tolist()))}"
            )
    return _loso_over(subjects, np.isin(datasets, ["casme2", "samm"]), "cde_casme2_samm")


def _check_present(datasets: np.ndarray, tasks, what: str) -> None:
    """ValueError naming the task if a task's source or target has no samples."""
    present = sorted(set(datasets.tolist()))
    for name, source, target in tasks:
        for role, dataset in (("source", source), ("target", target)):
            if dataset not in present:
                raise ValueError(
                    f"{what} {name!r}: no samples of {role} dataset {dataset!r}; the sample "
                    f"list has {present}"
                )


def cross_dataset(
    subjects: np.ndarray,
    *,
    datasets: np.ndarray,
    tasks: Sequence[tuple[str, str, str]],
    what: str = "cross-dataset",
) -> FoldTable:
    """One fold per task (name, source, target): train on every sample of dataset `source`,
    test on every sample of dataset `target`; other samples are in no fold."""
    _check_present(datasets, tasks, f"{what}, fold")
    names, train, test = [], [], []
    for name, source, target in tasks:
        names.append(name)
        train.append(datasets == source)
        test.append(datasets == target)
    table = FoldTable(tuple(names), np.stack(train), np.stack(test), per_fold_metrics=True)
    check_no_leakage(table, subjects)
    return table


HDE_TASKS = (("casme2->samm", "casme2", "samm"), ("samm->casme2", "samm", "casme2"))
# Seed 002 Table 10: letter -> (protocol name part, dataset in the sample list).
CDMER_DATASETS = {
    "H": ("smic_hs", "smic"),
    "V": ("smic_vis", "smic_vis"),
    "N": ("smic_nir", "smic_nir"),
    "C": ("casme2", "casme2"),
}
CDMER_TASKS = tuple(
    (f"Exp.{i}: {s}->{t}", CDMER_DATASETS[s][1], CDMER_DATASETS[t][1])
    for i, (s, t) in enumerate(
        ("HV", "VH", "HN", "NH", "VN", "NV", "CH", "HC", "CV", "VC", "CN", "NC"), start=1
    )
)
_CDMER_DOC = (
    "seed 002 Sec. 6.1.3, Table 10; SMIC-VIS/NIR hold 8 of SMIC-HS's 16 participants "
    "(Sec. 4.9), so Type-I tasks are cross-camera, not cross-subject"
)


CDMER_FOLDS = 5


def cdmer_five_fold(
    subjects: np.ndarray,
    *,
    datasets: np.ndarray,
    labels: np.ndarray,
    tasks: Sequence[tuple[str, str, str]],
    seed=0,
    target_training: bool = False,
    what: str = "cdmer_5fold",
) -> FoldTable:
    """Seed 002 Sec. 6.1.3 / Table 11 "five-fold cross validation" of each CDMER task.

    Per task (name, source, target): the target's samples in CDMER_FOLDS folds of
    whole subjects, class-stratified (splits.subject_folds, drawn with `seed`);
    fold 'Exp.7: C->H 2/5' tests the 2nd and trains on every source sample (Sec.
    4.2: "trained on the source dataset and tested on the target dataset") or,
    with `target_training`, on the source and the other four target folds.
    `tasks` names each fold's task: a task's five folds are pooled and scored
    together, every target sample tested once per task.
    """
    _check_present(datasets, tasks, f"{what}, task")
    names, train, test, task_of = [], [], [], []
    for name, source, target in tasks:
        folds = splits.subject_folds(
            subjects, labels, datasets == target, num_folds=CDMER_FOLDS, seed=seed,
            what=f"{what}, task {name!r}, target {target!r}",
        )  # fmt: skip
        for k, held_out in enumerate(folds):
            rest = folds.any(axis=0) & ~held_out if target_training else False
            names.append(f"{name} {k + 1}/{CDMER_FOLDS}")
            train.append((datasets == source) | rest)
            test.append(held_out)
            task_of.append(name)
    table = FoldTable(
        tuple(names), np.stack(train), np.stack(test), per_fold_metrics=True,
        tasks=tuple(task_of),
        notes=(f"each task's target in {CDMER_FOLDS} subject folds (seed {seed}), "
               "pooled and scored task by task",),
    )  # fmt: skip
    check_no_leakage(table, subjects)
    return table


def holdout(
    subjects: np.ndarray, *, labels: np.ndarray, validation_fraction: float = 0.1, seed=0
) -> FoldTable:
    """One fold 'validation': a stratified split of whole subjects holding about
    `validation_fraction` of the samples (splits.validation_split, drawn with `seed`) is
    tested on and validated on; every other sample trains (seed 000 Sec. 4.1: 1/10 held
    out; seed 001 Sec. 4.1.1: 20%)."""
    split = splits.validation_split(
        subjects, labels, np.ones(len(subjects), bool), seed=seed, fraction=validation_fraction
    )
    table = FoldTable(
        ("validation",), ~split[None], split[None], val_mask=split[None], validation_is_test=True
    )
    check_no_leakage(table, subjects)
    return table


# ----------------------------------------------------------------------------
# The registry.


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A named fold-table builder: `needs` the sample arrays it cannot do without;
    `label_scheme` is the mer_jax.label_schemes entry its papers use (None: any)."""

    name: str
    build: Callable[..., FoldTable]
    needs: tuple[str, ...] = ()
    label_scheme: str | None = None
    description: str = ""

    def __call__(self, subjects: Sequence[str], **info) -> FoldTable:
        """The table over samples' `subjects`; `info` holds SAMPLE_ARRAYS and OPTIONS (extra
        ones the protocol does not use are ignored, None counts as absent)."""
        unknown = sorted(set(info) - set(SAMPLE_ARRAYS) - set(OPTIONS))
        if unknown:
            raise TypeError(
                f"make_folds: unknown argument(s) {unknown}; known: {[*SAMPLE_ARRAYS, *OPTIONS]}"
            )
        subjects = _text(subjects)
        given = {k: v for k, v in info.items() if v is not None}
        for key in SAMPLE_ARRAYS:
            if key in given:
                given[key] = np.asarray(given[key]) if key == "labels" else _text(given[key])
                if len(given[key]) != len(subjects):
                    raise ValueError(
                        f"protocol {self.name!r}: `{key}` has {len(given[key])} entries for "
                        f"{len(subjects)} samples (`subjects`)"
                    )
        missing = [k for k in self.needs if k not in given]
        if missing:
            wanted = "; ".join(f"`{k}`: {SAMPLE_ARRAYS[k]}" for k in missing)
            raise ValueError(
                f"config key 'protocol': {self.name!r} needs more than the subjects: {wanted}"
            )
        params = inspect.signature(self.build).parameters
        return self.build(subjects, **{k: v for k, v in given.items() if k in params})


def _registry() -> dict[str, Protocol]:
    out = [
        Protocol("loso", loso, description="one fold per subject"),
        Protocol(
            "cde_megc2019",
            cde_megc2019,
            ("datasets", "clips"),
            "megc2019_3class",
            "MEGC 2019 composite, the 441 listed clips, LOSO over 68 subjects",
        ),
        Protocol(
            "cde_megc2019_442",
            functools.partial(cde_megc2019, extra_442=True),
            ("datasets", "clips"),
            "megc2019_3class",
            "MEGC 2019 composite plus SAMM 032_3_1 (442 clips), LOSO over 68 subjects",
        ),
        Protocol(
            "cde_casme2_samm",
            cde_casme2_samm,
            ("datasets",),
            "objective_5class",
            "seed 000 CDE: CASME II + SAMM pooled, LOSO",
        ),
        Protocol(
            "hde",
            functools.partial(cross_dataset, tasks=HDE_TASKS, what="hde"),
            ("datasets",),
            "objective_5class",
            "seed 000 HDE: CASME II -> SAMM and SAMM -> CASME II, one fold each",
        ),
        Protocol(
            "holdout",
            holdout,
            ("labels",),
            None,
            "one fold: a class-stratified split of whole subjects (validation_fraction of the "
            "samples) tests and validates, the rest trains",
        ),
    ]
    for task in HDE_TASKS:
        name = "hde_" + task[0].replace("->", "_to_")
        out.append(
            Protocol(
                name,
                functools.partial(cross_dataset, tasks=(task,), what=name),
                ("datasets",),
                "objective_5class",
                f"seed 000 HDE, {task[1]} -> {task[2]}",
            )
        )
    groups = {"cdmer": CDMER_TASKS, "cdmer_type1": CDMER_TASKS[:6], "cdmer_type2": CDMER_TASKS[6:]}
    for task in CDMER_TASKS:
        source, target = task[0].split(": ")[1].split("->")
        name = f"cdmer_{CDMER_DATASETS[source][0]}_to_{CDMER_DATASETS[target][0]}"
        groups[name] = (task,)
    for name, tasks in groups.items():
        first, last = tasks[0][0].split(":")[0], tasks[-1][0].split(":")[0]
        span = first if len(tasks) == 1 else f"{first}-{last}"
        out.append(
            Protocol(
                name,
                functools.partial(cross_dataset, tasks=tasks, what=name),
                ("datasets",),
                "cdmer_3class",
                f"CDMER {span} ({_CDMER_DOC})",
            )
        )
        for suffix, target_training, how in _FIVE_FOLD_VARIANTS:
            five = name.replace("cdmer", f"cdmer_5fold{suffix}", 1)
            build = functools.partial(
                cdmer_five_fold, tasks=tasks, target_training=target_training, what=five
            )
            description = f"CDMER {span}, five subject folds of the target, {how}"
            out.append(Protocol(five, build, ("datasets", "labels"), "cdmer_3class", description))
    return {p.name: p for p in out}


_FIVE_FOLD_VARIANTS = (
    ("", False, "each trained on all of the source"),
    ("_with_target", True, "each trained on the source and the other four target folds"),
)


PROTOCOLS = _registry()


def make_folds(protocol: str, subjects: Sequence[str], **info) -> FoldTable:
    """The fold table of `protocol` (config key 'protocol') over samples' `subjects`.

    `info`: the other sample arrays (datasets, clips, labels) and options
    (class_names, clip_list, label_mismatch, validation_fraction, seed); see
    Protocol.__call__.
    """
    if protocol not in PROTOCOLS:
        raise UserError(
            f"config key 'protocol': unknown protocol {protocol!r}; known: {sorted(PROTOCOLS)}"
        )
    return PROTOCOLS[protocol](subjects, **info)


def folds_of(protocol: str, samples, **options) -> FoldTable:
    """`make_folds` over a dataset's samples: a loaded `data.Dataset` or its `data.Metadata`
    (their subjects, sources, clips, labels and class names), with `options` (label_mismatch,
    validation_fraction, seed; each protocol takes those it uses)."""
    return make_folds(
        protocol,
        samples.subjects,
        datasets=samples.sources,
        clips=samples.clips,
        labels=samples.labels,
        class_names=samples.class_names,
        **options,
    )


def label_scheme_of(protocol: str) -> str:
    """The label scheme `protocol`'s papers use ('' when any will do; unknown names: '')."""
    entry = PROTOCOLS.get(protocol)
    return (entry.label_scheme or "") if entry is not None else ""
