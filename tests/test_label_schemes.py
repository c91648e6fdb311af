"""Label schemes: class counts on the published emotion distributions, and clear errors."""

import numpy as np
import pytest

from mer_jax import label_schemes

# Emotion columns with the published per-emotion counts, written as the sheets write them.
# CASME II 2014 sheet, 256 clips: seed 002 Tables 12 and 13.
CASME2 = {
    "happiness": 32,
    "surprise": 25,
    "disgust": 64,
    "repression": 27,
    "others": 99,
    "sadness": 7,
    "fear": 2,
}
# SAMM v2 sheet, 159 clips (its negatives sum to seed 002 Table 9's 92).
SAMM = {
    "Anger": 57,
    "Contempt": 12,
    "Happiness": 26,
    "Surprise": 15,
    "Other": 26,
    "Disgust": 9,
    "Fear": 8,
    "Sadness": 6,
}
SMIC = {"negative": 70, "positive": 51, "surprise": 43}  # SMIC-HS, 164 clips.
# Objective classes I-VII: seed 000 Table 1.
CASME2_OBJECTIVE = {"1": 25, "2": 15, "3": 99, "4": 26, "5": 20, "6": 1, "7": 69}
SAMM_OBJECTIVE = {1: 24, 2: 13, 3: 20, 4: 8, 5: 3, 6: 7, 7: 84}
CASME = {"disgust": 3, "repression": 2, "surprise": 1, "tense": 4, "happiness": 2, "contempt": 1}
# MMEW and DFME: illustrative columns (not published counts), expected counts by hand.
MMEW = {
    "happiness": 3,
    "surprise": 4,
    "anger": 1,
    "disgust": 5,
    "fear": 2,
    "sadness": 1,
    "others": 6,
}
DFME = {
    "Anger": 4,
    "Contempt": 1,
    "Disgust": 3,
    "Fear": 2,
    "Happiness": 5,
    "Sadness": 2,
    "Surprise": 3,
}
# CAS(ME)^3 Part A and 4DME: illustrative columns too, expected counts by hand.
CASME3 = {"happy": 2, "disgust": 5, "fear": 1, "anger": 3, "sad": 2, "surprise": 4, "others": 6}
FOURD_ME = {"Positive": 3, "Negative": 6, "Surprise": 2, "Repression": 4, "Others": 5}

# scheme -> dataset -> (values, expected class counts in scheme order). The
# counts are the papers' tables (their section named by the scheme's reference).
EXPECTED = {
    "megc2019_3class": {
        # 64 disgust + 27 repression; the official MEGC list keeps 88 of them.
        "casme2": (CASME2, (91, 32, 25)),
        "samm": (SAMM, (92, 26, 15)),  # seed 002 Table 9
        "smic": (SMIC, (70, 51, 43)),  # seed 002 Table 9
        "mmew": (MMEW, (9, 3, 4)),  # others excluded
        "dfme": (DFME, (12, 5, 3)),
    },
    "casme2_5class": {"casme2": (CASME2, (32, 25, 64, 27, 99))},  # 247, seed 002 Table 13
    "casme2_7class": {"casme2": (CASME2, (32, 25, 64, 7, 2, 27, 99))},  # all 256
    "nps_others_4class": {
        "casme2": (CASME2, (73, 32, 25, 126)),  # seed 002 Table 12
        "samm": (SAMM, (92, 26, 15, 26)),  # seed 002 Table 12
        "mmew": (MMEW, (9, 3, 4, 6)),
    },
    "cdmer_3class": {
        "casme2": (CASME2, (73, 32, 25)),  # 130, seed 002 Table 11
        "smic": (SMIC, (70, 51, 43)),
    },
    "samm_5class": {"samm": (SAMM, (57, 12, 26, 15, 26))},
    "objective_5class": {
        "casme2": (CASME2_OBJECTIVE, (25, 15, 99, 26, 20)),  # 185 (MEGC 2018)
        "samm": (SAMM_OBJECTIVE, (24, 13, 20, 8, 3)),  # 68 (MEGC 2018)
    },
    "casme_4class": {"casme": (CASME, (3, 2, 1, 4))},
    "smic_3class": {"smic": (SMIC, (70, 51, 43))},
    "mmew_7class": {"mmew": (MMEW, (3, 4, 1, 5, 2, 1, 6))},
    "mmew_4class": {"mmew": (MMEW, (3, 4, 5, 6))},  # anger, fear, sadness excluded
    "dfme_7class": {"dfme": (DFME, (4, 1, 3, 2, 5, 2, 3))},
    "casme3_7class": {"casme3": (CASME3, (3, 5, 1, 2, 2, 4, 6))},
    "casme3_4class": {"casme3": (CASME3, (11, 2, 4, 6))},  # anger+disgust+fear+sad negative
    "casme3_3class": {"casme3": (CASME3, (11, 2, 4))},  # others excluded
    "fourd_me_5class": {"fourd_me": (FOURD_ME, (6, 3, 2, 4, 5))},
    "fourd_me_3class": {"fourd_me": (FOURD_ME, (10, 3, 2))},  # repression negative
}


def _column(counts):
    """The values in a shuffled order, as the cells of a sheet column."""
    values = [value for value, n in counts.items() for _ in range(n)]
    return [values[i] for i in np.random.default_rng(0).permutation(len(values))]


# Tested against the seeds' pre-training counts in tests/data_builders/test_macro_builders.py.
MACRO = {"macro_5class", "macro_3class"}


def test_every_scheme_is_tested():
    assert set(EXPECTED) == set(label_schemes.SCHEMES) - MACRO
    for name in EXPECTED:
        assert set(EXPECTED[name]) == set(label_schemes.get(name).tables), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_class_counts(name):
    scheme = label_schemes.get(name)
    for dataset, (counts, expected) in EXPECTED[name].items():
        values = _column(counts)
        labels, keep = label_schemes.apply(name, dataset, values)
        assert labels.dtype == np.int32 and keep.dtype == bool
        np.testing.assert_array_equal(keep, labels >= 0)
        assert tuple(np.bincount(labels[keep], minlength=len(scheme.classes))) == expected
        assert (~keep).sum() == len(values) - sum(expected)
        # A kept value named like a class gets that class.
        for value, label in zip(values, labels):
            if label >= 0 and str(value).lower() in scheme.classes:
                assert scheme.classes[label] == str(value).lower()


def test_composite_with_one_dataset_per_value():
    values = ["happiness", "Happiness", "positive", "others", "Other"]
    datasets = ["casme2", "samm", "smic", "casme2", "samm"]
    labels, keep = label_schemes.apply("megc2019_3class", datasets, values)
    assert labels.tolist() == [1, 1, 1, -1, -1] and keep.tolist() == [1, 1, 1, 0, 0]


def test_values_match_ignoring_case_spaces_and_bytes():
    labels, _ = label_schemes.apply(
        "samm_5class", b"samm", [b"Anger", " anger ", "ANGER", "Others", "Other"]
    )
    assert labels.tolist() == [0, 0, 0, 4, 4]
    labels, _ = label_schemes.apply("objective_5class", "samm", [1, "2", 3.0, "IV", b"v"])
    assert labels.tolist() == [0, 1, 2, 3, 4]


def test_unknown_emotion_names_where_and_value():
    where = ["casme2/sub01/EP02_01f", "CASME2-coding-20140508.xlsx row 3 (casme2/sub01/EP03_02)"]
    with pytest.raises(ValueError) as info:
        label_schemes.apply("casme2_5class", "casme2", ["happiness", "joy"], where=where)
    message = str(info.value)
    assert message.startswith(where[1]) and "emotion 'joy'" in message
    assert "casme2_5class" in message and "'repression'" in message  # Lists the known values.
    with pytest.raises(
        ValueError, match=r"^clips\.txt item 1: emotion 'Anger' of dataset 'casme2'"
    ):
        label_schemes.apply("casme2_7class", "casme2", ["fear", "Anger"], where="clips.txt")


def test_empty_objective_class_says_where_to_get_it():
    with pytest.raises(ValueError, match="CASME2-ObjectiveClasses.xlsx") as info:
        label_schemes.apply("objective_5class", "casme2", ["1", ""])
    assert str(info.value).startswith("item 1: objective_class ''")


def test_dataset_outside_the_scheme():
    with pytest.raises(ValueError, match="no table for dataset 'samm'; it covers \\['casme2'\\]"):
        label_schemes.apply("casme2_5class", "samm", ["Happiness"], where=["samm/006/006_1_2"])
    with pytest.raises(ValueError, match="2 dataset names for 3 values"):
        label_schemes.apply("megc2019_3class", ["samm", "smic"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="unknown label scheme 'casme2_6class'"):
        label_schemes.get("casme2_6class")


def test_tables_map_only_to_their_classes():
    for scheme in label_schemes.SCHEMES.values():
        for table in scheme.tables.values():
            assert set(table.values()) <= {*scheme.classes, label_schemes.EXCLUDE}
            assert all(k == " ".join(k.split()).lower() for k in table)  # Lookup keys.
    bad = label_schemes.Scheme("bad", ("a", "b"), {"x": {"v": "c"}})
    with pytest.raises(ValueError, match="'v' maps to 'c', not one of"):
        label_schemes._check(bad)
