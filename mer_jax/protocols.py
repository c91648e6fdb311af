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
  holdout               one fold 'validation': trains on every sample but a
                        class-stratified split of whole subjects (splits.py),
                        tests on it and validates on it (`validation_is_test`):
                        seed 000 Sec. 4.1 pre-trains on pooled macro-expression
                        datasets with 1/10 held out (validation_fraction 0.1),
                        seed 001 Sec. 4.1.1 keeps 20% for validation (0.2).
                        Options validation_fraction (default 0.1) and seed
                        (default 0) draw the split; any label scheme.
Cross-dataset tables (hde*, cdmer*) set `per_fold_metrics`: each fold is its
own experiment, scored on its own (a sample may be tested in several folds).
A table may also hold each fold's validation split (`FoldTable.val_mask`): the
holdout split, or `FoldTable.with_validation` (inner validation subjects).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import importlib.resources
import inspect
import pathlib
import re
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from mer_jax import label_schemes, splits
from mer_jax.errors import UserError
from mer_jax.splits import FoldTable, check_no_leakage
from mer_jax.splits import LeakageError as LeakageError  # re-exported
from mer_jax.splits import validation_split as validation_split  # re-exported

MEGC2019_CLASSES = ("negative", "positive", "surprise")
MEGC2019_LIST = "megc2019_combined_3class_gt.csv"
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
# The MEGC 2019 composite (CDE): the official clip list.


@dataclasses.dataclass(frozen=True)
class ListedClip:
    """One row of a clip list: ids as the list writes them, a MEGC 3-class label."""

    dataset: str
    subject: str
    clip: str
    label: int  # index into MEGC2019_CLASSES
    where: str  # 'megc2019_combined_3class_gt.csv row 7', for messages

    @property
    def key(self) -> tuple[str, str, str]:
        return clip_key(self.dataset, self.subject, self.clip)

    def __str__(self) -> str:
        return f"{self.where} ({self.dataset},{self.subject},{self.clip})"


# Seed 002 Table 9 counts SAMM 133 clips, 92 negative; the official list has 132, 91.
EXTRA_442 = ListedClip(
    "samm", "32", "032_3_1", 0, "the 442nd clip (seed 002 Table 9: SAMM 133 clips, 92 negative)"
)
_SMIC_CLIP = re.compile(r"^s0*(\d+)")
_TRAILING_NUMBER = re.compile(r"(\d+)$")


def clip_key(dataset: str, subject: str, clip: str) -> tuple[str, str, str]:
    """The (dataset, subject, clip) key on which list rows and samples are matched.

    Only the last '/' part of `subject` and `clip` counts (builders prefix ids:
    'samm/006/006_1_2'). A subject is its trailing number without zeros
    ('sub01', '006', 's01' -> '1', '6', '1'; no number: the lower-cased text).
    A clip name is lower-cased and, for SMIC, loses the zeros of the subject
    number it starts with ('s01_ne_01' -> 's1_ne_01', the release's folder
    name). So the list's 'smic,s01,s01_ne_01' is the sample 'smic/s1/s1_ne_01'
    and 'samm,6,006_1_2' is 'samm/006/006_1_2'.
    """
    dataset = dataset.strip().lower()
    subject = subject.strip().rsplit("/", 1)[-1]
    number = _TRAILING_NUMBER.search(subject)
    subject = str(int(number.group(1))) if number else subject.lower()
    name = clip.strip().rsplit("/", 1)[-1].lower()
    if dataset.startswith("smic"):
        name = _SMIC_CLIP.sub(lambda m: f"s{int(m.group(1))}", name)
    return dataset, subject, name


def official_list_path():
    """The packaged MEGC 2019 list (resources/README.md says where it comes from)."""
    return importlib.resources.files("mer_jax") / "resources" / MEGC2019_LIST


def read_clip_list(path=None) -> tuple[ListedClip, ...]:
    """Rows of a clip list CSV `dataset,subject,clip,label` (default: the MEGC 2019 list).

    An optional header row is skipped. Raises ValueError naming the file and
    row for a malformed row, a label outside 0..2 or a clip listed twice.
    """
    path = official_list_path() if path is None else pathlib.Path(path)
    name = getattr(path, "name", str(path))
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    out, seen = [], {}
    for i, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        where = f"{name} row {i}"
        if not any(cells):
            continue
        if len(cells) != 4:
            raise ValueError(f"{where}: expected 4 columns dataset,subject,clip,label, got {row}")
        dataset, subject, clip, label = cells
        if i == 1 and label.lower() == "label":
            continue
        if label not in ("0", "1", "2"):
            raise ValueError(f"{where}: label {label!r} is not 0, 1 or 2 {MEGC2019_CLASSES}")
        if not (dataset and subject and clip):
            raise ValueError(f"{where}: empty dataset, subject or clip in {row}")
        item = ListedClip(dataset.lower(), subject, clip, int(label), where)
        if item.key in seen:
            raise ValueError(f"{where}: clip {clip!r} is listed twice (also {seen[item.key]})")
        seen[item.key] = where
        out.append(item)
    if not out:
        raise ValueError(f"{name}: no rows")
    return tuple(out)


def match_clip_list(
    listed: Sequence[ListedClip],
    datasets: np.ndarray,
    subjects: np.ndarray,
    clips: np.ndarray,
    *,
    what: str = "clip list",
) -> np.ndarray:
    """Index of the sample holding each listed clip (clip_key rule).

    Raises ValueError naming every listed clip the samples lack (up to 10) and
    any listed clip that two samples hold.
    """
    by_key: dict[tuple[str, str, str], list[int]] = {}
    for i, key in enumerate(map(clip_key, datasets, subjects, clips)):
        by_key.setdefault(key, []).append(i)
    missing, index = [], np.zeros(len(listed), np.int64)
    for r, row in enumerate(listed):
        found = by_key.get(row.key, [])
        if not found:
            missing.append(row)
        elif len(found) > 1:
            raise ValueError(
                f"{what}: {row} is held by several samples: {[str(clips[i]) for i in found[:5]]}"
            )
        else:
            index[r] = found[0]
    if missing:
        shown = "; ".join(str(row) for row in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise ValueError(
            f"{what}: {len(missing)} listed clip(s) not in the sample list: {shown}{more}. "
            "Build every dataset the list names with all its clips, and use a label scheme "
            "that keeps them."
        )
    return index


def label_disagreements(
    listed: Sequence[ListedClip],
    index: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    clips: np.ndarray,
) -> list[str]:
    """One message per listed clip whose sample's class differs from the list's."""
    out = []
    for row, i in zip(listed, index):
        label = int(labels[i])
        if not 0 <= label < len(class_names):
            raise ValueError(
                f"labels[{i}] ({clips[i]}) = {label} is not an index into {tuple(class_names)}"
            )
        mine, theirs = class_names[label], MEGC2019_CLASSES[row.label]
        if mine != theirs:
            out.append(f"{clips[i]}: class {mine!r} in the sample list, {theirs!r} in {row.where}")
    return out


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


def cross_dataset(
    subjects: np.ndarray,
    *,
    datasets: np.ndarray,
    tasks: Sequence[tuple[str, str, str]],
    what: str = "cross-dataset",
) -> FoldTable:
    """One fold per task (name, source, target): train on every sample of dataset `source`,
    test on every sample of dataset `target`; other samples are in no fold."""
    present = sorted(set(datasets.tolist()))
    names, train, test = [], [], []
    for name, source, target in tasks:
        for role, dataset in (("source", source), ("target", target)):
            if dataset not in present:
                raise ValueError(
                    f"{what}, fold {name!r}: no samples of {role} dataset {dataset!r}; the "
                    f"sample list has {present}"
                )
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
    return {p.name: p for p in out}


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
