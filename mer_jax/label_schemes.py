"""Label protocols as data: which class each dataset's emotion becomes.

The micro-expression builders store each clip's emotion as its sheet writes it
(CASME II 'happiness', SAMM 'Happiness', SMIC the folder name) and SAMM's /
CASME II's MEGC 2018 objective class ('1'..'7'). A scheme maps, per dataset,
every known value of one such field (matched ignoring case and extra spaces)
to a class name or to EXCLUDE (the clip is dropped). `apply` turns a column of
values into class indices and a keep mask; a value the table does not know is
an error, never a silent drop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from mer_jax.errors import UserError

EXCLUDE = "<exclude>"


@dataclasses.dataclass(frozen=True)
class Scheme:
    """`tables[dataset][value]` is a class of `classes` or EXCLUDE; `field` is the example
    feature holding the values ('emotion' or 'objective_class')."""

    name: str
    classes: tuple[str, ...]
    tables: Mapping[str, Mapping[str, str]]
    field: str = "emotion"
    reference: str = ""


def _identity(*names: str) -> dict[str, str]:
    return {n: n for n in names}


_SMIC_3 = _identity("negative", "positive", "surprise")
# MMEW's seven sheet emotions and DFME's seven (data_builders/mmew, data_builders/dfme).
_MMEW_7 = ("happiness", "surprise", "anger", "disgust", "fear", "sadness", "others")
_DFME_7 = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise")
# MEGC 2018 objective classes I-VII (Davison et al. 2018), written 1-7 in the
# SAMM sheet and CASME2-ObjectiveClasses.xlsx; seed 000 Table 1 names them.
_OBJECTIVE = {
    "1": "happiness",
    "2": "surprise",
    "3": "anger",
    "4": "disgust",
    "5": "sadness",
    "6": EXCLUDE,  # fear
    "7": EXCLUDE,  # others
}
_OBJECTIVE |= {
    roman: _OBJECTIVE[str(i)] for i, roman in enumerate("i ii iii iv v vi vii".split(), 1)
}

SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme(
            name="megc2019_3class",
            classes=("negative", "positive", "surprise"),
            reference=(
                "MEGC 2019 composite (CDE): seed 002 Table 9, seed 001 Table 2. "
                "The official list (megc2019_combined_3class_gt.csv) also leaves out a few "
                "CASME II clips this table keeps (88 negative there, 91 here)."
            ),
            tables={
                "casme2": {
                    "happiness": "positive",
                    "surprise": "surprise",
                    "disgust": "negative",
                    "repression": "negative",
                    "others": EXCLUDE,
                    "fear": EXCLUDE,
                    "sadness": EXCLUDE,
                },
                "samm": {
                    "happiness": "positive",
                    "surprise": "surprise",
                    "anger": "negative",
                    "contempt": "negative",
                    "disgust": "negative",
                    "fear": "negative",
                    "sadness": "negative",
                    "other": EXCLUDE,
                    "others": EXCLUDE,
                },
                "smic": _SMIC_3,
                # Not in MEGC 2019: MMEW and DFME mapped as SAMM is (negatives pooled).
                "mmew": {
                    "happiness": "positive",
                    "surprise": "surprise",
                    **dict.fromkeys(("anger", "disgust", "fear", "sadness"), "negative"),
                    "others": EXCLUDE,
                },
                "dfme": {
                    "happiness": "positive",
                    "surprise": "surprise",
                    **dict.fromkeys(
                        ("anger", "contempt", "disgust", "fear", "sadness"), "negative"
                    ),
                },
            },
        ),
        Scheme(
            name="casme2_5class",
            classes=("happiness", "surprise", "disgust", "repression", "others"),
            reference="CASME II, 247 clips: seed 002 Table 13, seed 001 Sec. 4.5.2, 003 Sec. 3.1.1, 004 Sec. 4.1.",
            tables={
                "casme2": {
                    **_identity("happiness", "surprise", "disgust", "repression", "others"),
                    "fear": EXCLUDE,
                    "sadness": EXCLUDE,
                }
            },
        ),
        Scheme(
            name="casme2_7class",
            classes=("happiness", "surprise", "disgust", "sadness", "fear", "repression", "others"),
            reference="CASME II, all 256 clips: seed 002 Sec. 6.1.4.",
            tables={
                "casme2": _identity(
                    "happiness", "surprise", "disgust", "sadness", "fear", "repression", "others"
                )
            },
        ),
        Scheme(
            name="nps_others_4class",
            classes=("negative", "positive", "surprise", "others"),
            reference="CASME II (256 clips) and SAMM in 4 classes: seed 002 Table 12.",
            tables={
                "casme2": {
                    "disgust": "negative",
                    "sadness": "negative",
                    "fear": "negative",
                    "happiness": "positive",
                    "surprise": "surprise",
                    "repression": "others",
                    "others": "others",
                },
                "samm": {
                    "anger": "negative",
                    "contempt": "negative",
                    "disgust": "negative",
                    "fear": "negative",
                    "sadness": "negative",
                    "happiness": "positive",
                    "surprise": "surprise",
                    "other": "others",
                    "others": "others",
                },
                "mmew": {
                    **dict.fromkeys(("anger", "disgust", "fear", "sadness"), "negative"),
                    "happiness": "positive",
                    "surprise": "surprise",
                    "others": "others",
                },
            },
        ),
        Scheme(
            name="cdmer_3class",
            classes=("negative", "positive", "surprise"),
            reference="CDMER, CASME II <-> SMIC HS/VIS/NIR: seed 002 Table 11 (CASME II 130 clips).",
            tables={
                "casme2": {
                    "disgust": "negative",
                    "sadness": "negative",
                    "fear": "negative",
                    "happiness": "positive",
                    "surprise": "surprise",
                    "repression": EXCLUDE,
                    "others": EXCLUDE,
                },
                "smic": _SMIC_3,
            },
        ),
        Scheme(
            name="samm_5class",
            classes=("anger", "contempt", "happiness", "surprise", "other"),
            reference="SAMM classes with > 10 clips: seed 001 Sec. 4.5.2 (SDE), seed 003 Sec. 3.1.1.",
            tables={
                "samm": {
                    **_identity("anger", "contempt", "happiness", "surprise", "other"),
                    "others": "other",
                    "disgust": EXCLUDE,
                    "fear": EXCLUDE,
                    "sadness": EXCLUDE,
                }
            },
        ),
        Scheme(
            name="objective_5class",
            classes=("happiness", "surprise", "anger", "disgust", "sadness"),
            field="objective_class",
            reference=(
                "Seed 000 Sec. 4.1 and Table 1 (MEGC 2018 objective classes I-V; VI fear and VII "
                "others dropped): CASME II 185 clips, SAMM 68. CASME II's classes come from "
                "CASME2-ObjectiveClasses.xlsx, SAMM's from its sheet."
            ),
            tables={"casme2": _OBJECTIVE, "samm": _OBJECTIVE},
        ),
        Scheme(
            name="casme_4class",
            classes=("disgust", "repression", "surprise", "tense"),
            reference="CASME I in 4 classes: seed 004 Sec. 4.1.",
            tables={
                "casme": {
                    **_identity("disgust", "repression", "surprise", "tense"),
                    **dict.fromkeys(
                        ("amusement", "happiness", "contempt", "fear", "sadness"), EXCLUDE
                    ),
                }
            },
        ),
        Scheme(
            name="smic_3class",
            classes=("negative", "positive", "surprise"),
            reference="SMIC (HS, VIS, NIR) folder labels: seeds 000-004.",
            tables={"smic": _SMIC_3},
        ),
        Scheme(
            name="mmew_7class",
            classes=_MMEW_7,
            reference="MMEW, all seven emotions of MMEW_Micro_Exp.xlsx (Ben et al. 2021).",
            tables={"mmew": _identity(*_MMEW_7)},
        ),
        Scheme(
            name="mmew_4class",
            classes=("happiness", "surprise", "disgust", "others"),
            reference=(
                "MMEW in its four classes with enough clips (anger, fear, sadness dropped), "
                "as public loaders train on it."
            ),
            tables={
                "mmew": {
                    **_identity("happiness", "surprise", "disgust", "others"),
                    **dict.fromkeys(("anger", "fear", "sadness"), EXCLUDE),
                }
            },
        ),
        Scheme(
            name="dfme_7class",
            classes=_DFME_7,
            reference="DFME's seven emotions (Zhao et al. 2024; the CCAC 2024 DFME challenge).",
            tables={"dfme": _identity(*_DFME_7)},
        ),
    )
}


# ----------------------------------------------------------------------------
# CAS(ME)^3 Part A (data_builders/casme3: the sheet's lower-case `emotion`, as public
# loaders read it: happy, disgust, fear, anger, sad, surprise, others) and 4DME
# (data_builders/fourd_me: `Emotion` Positive, Negative, Surprise, Repression, Others).
# Spelling variants (happiness, sadness, other) are accepted; a compound label (e.g.
# 'Negative+Surprise') is in no table: apply() names the clip, fix it in corrections.csv.

_CASME3_NEGATIVE = ("anger", "disgust", "fear", "sad", "sadness")
_CASME3_7 = {
    **_identity("anger", "disgust", "fear", "happy", "sad", "surprise", "others"),
    "happiness": "happy",
    "sadness": "sad",
    "other": "others",
}
_MORE_ME: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme(
            name="casme3_7class",
            classes=("anger", "disgust", "fear", "happy", "sad", "surprise", "others"),
            reference="CAS(ME)^3 Part A, all emotions: the 7 / 4 / 3-class baselines of Li et al. 2022 (TPAMI).",
            tables={"casme3": _CASME3_7},
        ),
        Scheme(
            name="casme3_4class",
            classes=("negative", "positive", "surprise", "others"),
            reference="CAS(ME)^3 Part A in 4 classes: the 7 / 4 / 3-class baselines of Li et al. 2022 (TPAMI).",
            tables={
                "casme3": {
                    **dict.fromkeys(_CASME3_NEGATIVE, "negative"),
                    "happy": "positive",
                    "happiness": "positive",
                    "surprise": "surprise",
                    "others": "others",
                    "other": "others",
                }
            },
        ),
        Scheme(
            name="casme3_3class",
            classes=("negative", "positive", "surprise"),
            reference=(
                "CAS(ME)^3 Part A in the MEGC 3 classes (the 3-class baseline of Li et al. 2022, TPAMI; the "
                "MEGC 2019 mapping of 'megc2019_3class'): others excluded."
            ),
            tables={
                "casme3": {
                    **dict.fromkeys(_CASME3_NEGATIVE, "negative"),
                    "happy": "positive",
                    "happiness": "positive",
                    "surprise": "surprise",
                    "others": EXCLUDE,
                    "other": EXCLUDE,
                }
            },
        ),
        Scheme(
            name="fourd_me_5class",
            classes=("negative", "positive", "surprise", "repression", "others"),
            reference="4DME, its five emotion labels (Li et al. 2022, IEEE TAC).",
            tables={
                "fourd_me": {
                    **_identity("negative", "positive", "surprise", "repression", "others"),
                    "other": "others",
                }
            },
        ),
        Scheme(
            name="fourd_me_3class",
            classes=("negative", "positive", "surprise"),
            reference=(
                "4DME in the MEGC 3 classes, mapped as 'megc2019_3class' maps CASME II "
                "(repression -> negative, others excluded)."
            ),
            tables={
                "fourd_me": {
                    "negative": "negative",
                    "repression": "negative",
                    "positive": "positive",
                    "surprise": "surprise",
                    "others": EXCLUDE,
                    "other": EXCLUDE,
                }
            },
        ),
    )
}
SCHEMES.update(_MORE_ME)


def _check(scheme: Scheme) -> None:
    for dataset, table in scheme.tables.items():
        for value, cls in table.items():
            if cls != EXCLUDE and cls not in scheme.classes:
                raise ValueError(
                    f"label scheme {scheme.name!r}, dataset {dataset!r}: {value!r} maps to "
                    f"{cls!r}, not one of {scheme.classes}"
                )


# ----------------------------------------------------------------------------
# Macro-expression pre-training sets (data_builders/ck_plus, oulu_casia, jaffe,
# mug, raf_db, fer2013): each stores the emotion under the dataset's own name
# (CK+ 'happy', Oulu-CASIA 'Happiness', FER-2013 'sad'); each scheme's classes are
# in the order of the micro-expression scheme it is fine-tuned on, so a
# pre-trained head lines up with the fine-tuning classes.

# The five classes of seed 000, in the order of label_schemes 'objective_5class'.
_FIVE = ("happiness", "surprise", "anger", "disgust", "sadness")
_FIVE_ELSEWHERE = {
    **_identity("anger", "disgust", "happiness", "sadness", "surprise"),
    "fear": EXCLUDE,
    "neutral": EXCLUDE,
}

_MACRO: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme(
            name="macro_5class",
            classes=_FIVE,
            reference=(
                "Seed 000 Sec. 4.1 pre-training on CK+, Oulu-CASIA (VIS, normal light), JAFFE, MUG "
                "in its five emotion types (those of the objective classes I-V): CK+ 852 images "
                "(last 3 frames of 284 sequences), Oulu-CASIA 1200 (400 x 3), JAFFE 151, MUG 8228; "
                "contempt, fear and neutral are dropped."
            ),
            tables={
                "ck_plus": {
                    "happy": "happiness",
                    **_identity("anger", "disgust", "sadness", "surprise"),
                    "neutral": EXCLUDE,
                    "contempt": EXCLUDE,
                    "fear": EXCLUDE,
                },
                "oulu_casia": {k: v for k, v in _FIVE_ELSEWHERE.items() if k != "neutral"},
                "jaffe": _FIVE_ELSEWHERE,
                "mug": _FIVE_ELSEWHERE,
            },
        ),
        Scheme(
            name="macro_3class",
            classes=("negative", "positive", "surprise"),
            reference=(
                "Seed 001 Sec. 4.1.1, Table 2: CK+, RAF-DB, FER-2013 in the MEGC 2019 classes "
                "(order of 'megc2019_3class'); RAF-DB and FER-2013 neutral excluded. CK+ neutral "
                "(code 0, absent from the released emotion files) is excluded too."
            ),
            tables={
                "ck_plus": {
                    **dict.fromkeys(
                        ("anger", "contempt", "disgust", "fear", "sadness"), "negative"
                    ),
                    "happy": "positive",
                    "surprise": "surprise",
                    "neutral": EXCLUDE,
                },
                "raf_db": {
                    **dict.fromkeys(("fear", "disgust", "sadness", "anger"), "negative"),
                    "happiness": "positive",
                    "surprise": "surprise",
                    "neutral": EXCLUDE,
                },
                "fer2013": {
                    **dict.fromkeys(("angry", "fear", "disgust", "sad"), "negative"),
                    "happy": "positive",
                    "surprise": "surprise",
                    "neutral": EXCLUDE,
                },
            },
        ),
    )
}

SCHEMES.update(_MACRO)

for _scheme in SCHEMES.values():
    _check(_scheme)


def get(name: str) -> Scheme:
    if name not in SCHEMES:
        raise UserError(f"unknown label scheme {name!r}; known: {sorted(SCHEMES)}")
    return SCHEMES[name]


def text(value) -> str:
    """A stored value as str: TFDS gives Text features as UTF-8 bytes; anything else via str().

    The package's one bytes-to-text helper. It lives here because this module imports
    nothing of the package, so every reader of builder metadata (`mer_jax.data`,
    `mer_jax.protocols`, the builders) can import it without an import cycle.
    """
    return value.decode() if isinstance(value, bytes) else str(value)


def _key(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # A numeric cell: 3.0 -> '3'.
    return " ".join(text(value).split()).lower()


def _where(where, i: int) -> str:
    if where is None:
        return f"item {i}"
    if isinstance(where, str):
        return f"{where} item {i}"
    return text(where[i])


def apply(
    scheme: Scheme | str,
    dataset: str | bytes | Sequence[str | bytes],
    emotions: Sequence[str | bytes],
    where: str | Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, keep): class indices (int32, -1 where dropped) and the keep mask (bool).

    `emotions` are the values of the scheme's `field`; `dataset` names the
    table, one for all values or one per value (composite sets); `where[i]`
    (e.g. the clip id, or 'sheet.xlsx row 7') names value i in errors.
    Raises ValueError for a value or dataset the scheme does not know.
    """
    scheme = get(scheme) if isinstance(scheme, str) else scheme
    n = len(emotions)
    if isinstance(dataset, str | bytes):
        datasets = [text(dataset)] * n
    else:
        datasets = [text(d) for d in dataset]
        if len(datasets) != n:
            raise ValueError(f"{len(datasets)} dataset names for {n} values")
    if where is not None and not isinstance(where, str) and len(where) != n:
        raise ValueError(f"{len(where)} `where` entries for {n} values")
    index = {c: i for i, c in enumerate(scheme.classes)}
    labels = np.full(n, -1, np.int32)
    keep = np.zeros(n, bool)
    for i, (ds, value) in enumerate(zip(datasets, emotions)):
        table = scheme.tables.get(ds)
        if table is None:
            raise ValueError(
                f"{_where(where, i)}: label scheme {scheme.name!r} has no table for dataset "
                f"{ds!r}; it covers {sorted(scheme.tables)}"
            )
        cls = table.get(_key(value))
        if cls is None:
            hint = ""
            if scheme.field == "objective_class" and not _key(value):
                hint = " (empty: for CASME II put CASME2-ObjectiveClasses.xlsx in manual_dir)"
            raise ValueError(
                f"{_where(where, i)}: {scheme.field} {text(value)!r} of dataset {ds!r} is not in "
                f"label scheme {scheme.name!r}{hint}; known: {sorted(table)}"
            )
        if cls != EXCLUDE:
            labels[i] = index[cls]
            keep[i] = True
    return labels, keep
