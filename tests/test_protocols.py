"""Fold tables (LOSO, MEGC 2019 CDE, seed 000 CDE/HDE, seed 002 CDMER, holdout), validation
splits of whole subjects and the leakage check."""

import collections
import csv
import importlib.resources
import types
import warnings

import numpy as np
import pytest

from mer_jax import protocols
from mer_jax.errors import UserError

LIST = importlib.resources.files("mer_jax") / "resources" / "megc2019_combined_3class_gt.csv"
MEGC = ("negative", "positive", "surprise")
# Seed 002 Table 9 (442 clips): class counts and subjects per dataset. The
# official list lacks one negative SAMM clip (032_3_1), so SAMM has 91 there.
TABLE_9 = {"smic": (70, 51, 43, 16), "casme2": (88, 32, 25, 24), "samm": (92, 26, 15, 28)}
# Seed 002 Table 10, written out: (experiment, source, target).
TABLE_10 = [
    (1, "SMIC-HS", "SMIC-VIS"),
    (2, "SMIC-VIS", "SMIC-HS"),
    (3, "SMIC-HS", "SMIC-NIR"),
    (4, "SMIC-NIR", "SMIC-HS"),
    (5, "SMIC-VIS", "SMIC-NIR"),
    (6, "SMIC-NIR", "SMIC-VIS"),
    (7, "CASME II", "SMIC-HS"),
    (8, "SMIC-HS", "CASME II"),
    (9, "CASME II", "SMIC-VIS"),
    (10, "SMIC-VIS", "CASME II"),
    (11, "CASME II", "SMIC-NIR"),
    (12, "SMIC-NIR", "CASME II"),
]
# Paper name -> (letter, protocol name part, the builders' `source`).
PAPER = {
    "SMIC-HS": ("H", "smic_hs", "smic"),
    "SMIC-VIS": ("V", "smic_vis", "smic_vis"),
    "SMIC-NIR": ("N", "smic_nir", "smic_nir"),
    "CASME II": ("C", "casme2", "casme2"),
}


def _csv_rows():
    with LIST.open(newline="") as f:
        return [row for row in csv.reader(f) if row]


def _builder_ids(dataset, subject, clip):
    """The (subject, clip) ids the ME builders give a listed clip: their folder names."""
    if dataset == "casme2":
        folder, name = subject, clip
    elif dataset == "samm":
        folder, name = f"{int(subject):03d}", clip
    else:  # SMIC folders are s1, s1_ne_01 where the list writes s01, s01_ne_01.
        folder = f"s{int(subject[1:])}"
        name = folder + clip[len(subject) :]
    return f"{dataset}/{folder}", f"{dataset}/{folder}/{name}"


def composite(seed=0, extra=()):
    """A pooled sample list: every listed clip, distractors, SMIC-VIS/NIR; shuffled.

    Returns (datasets, subjects, clips, labels) and the set of listed clip ids.
    """
    rows = []
    for dataset, subject, clip, label in _csv_rows():
        s, c = _builder_ids(dataset, subject, clip)
        rows.append((dataset, s, c, int(label)))
    listed = {r[2] for r in rows}
    rows += [
        ("casme2", "casme2/sub01", "casme2/sub01/EP99_01f", 2),  # not listed ('others')
        ("casme2", "casme2/sub10", "casme2/sub10/EP01_01", 0),  # a subject not on the list
        ("casme2", "casme2/sub10", "casme2/sub10/EP02_01", 1),
        ("samm", "samm/032", "samm/032/032_3_1", 0),  # the 442nd clip
        ("samm", "samm/008", "samm/008/008_1_1", 0),
        ("smic", "smic/s3", "smic/s3/s3_ne_99", 0),
        *extra,
    ]
    for source in ("smic_vis", "smic_nir"):  # Same folder names as HS: must not match.
        for k, (subject, emotion) in enumerate([("s1", "ne"), ("s1", "po"), ("s2", "sur")]):
            clip = f"{source}/{subject}/{subject}_{emotion}_0{k + 1}"
            rows.append((source, f"{source}/{subject}", clip, k))
    order = np.random.default_rng(seed).permutation(len(rows))
    cols = [np.array([rows[i][j] for i in order]) for j in range(3)]
    labels = np.array([rows[i][3] for i in order], np.int32)
    return (*cols, labels), listed


def _no_subject_shared(table, subjects):
    """Independent of check_no_leakage: test subjects never train, masks never overlap."""
    for f in range(table.num_folds):
        train, test = table.train_mask[f], table.test_mask[f]
        assert not np.any(train & test)
        assert not set(subjects[train]) & set(subjects[test])


def test_loso_one_fold_per_subject_each_sample_tested_once():
    rng = np.random.default_rng(0)
    subjects = np.array([f"casme2/s{i:02d}" for i in rng.integers(0, 7, 60)])
    table = protocols.loso(subjects)
    assert table.names == tuple(sorted(set(subjects)))
    assert table.test_mask.sum(axis=0).tolist() == [1] * 60
    np.testing.assert_array_equal(table.train_mask, ~table.test_mask)
    for f, name in enumerate(table.names):
        assert set(subjects[table.test_mask[f]]) == {name}
        assert name not in set(subjects[table.train_mask[f]])
    idx, valid = table.test_indices()
    for f in range(table.num_folds):
        assert sorted(idx[f][valid[f]]) == np.flatnonzero(table.test_mask[f]).tolist()
    assert not table.per_fold_metrics


def test_check_no_leakage_rejects_a_held_out_subject_in_training():
    subjects = np.array(["a", "a", "b", "b", "c"])
    table = protocols.loso(subjects)
    train = table.train_mask.copy()
    train[0, 1] = True  # fold 0 holds out 'a'; sample 1 is 'a'
    with pytest.raises(
        protocols.LeakageError, match=r"fold 0 \(a\) trains on its own test samples"
    ):
        protocols.check_no_leakage(
            protocols.FoldTable(table.names, train, table.test_mask), subjects
        )
    # Same subject, different sample: still leakage.
    test = table.test_mask.copy()
    test[0, 1] = False
    train = table.train_mask.copy()
    train[0, 1] = True
    with pytest.raises(protocols.LeakageError, match=r"held-out subject\(s\) \['a'\]"):
        protocols.check_no_leakage(protocols.FoldTable(table.names, train, test), subjects)


def test_unknown_protocol_names_the_config_key():
    with pytest.raises(ValueError, match="config key 'protocol'"):
        protocols.make_folds("kfold", ["a", "b"])
    with pytest.raises(ValueError, match="at least two subjects"):
        protocols.loso(["a", "a"])


# ----------------------------------------------------------------------------
# MEGC 2019 composite.


def test_official_list_has_the_papers_counts():
    rows = _csv_rows()
    counts = collections.Counter((d, int(label)) for d, _, _, label in rows)
    subjects = {d: len({s for dd, s, _, _ in rows if dd == d}) for d in TABLE_9}
    for dataset, (neg, pos, sur, n_subjects) in TABLE_9.items():
        if dataset == "samm":
            neg -= 1  # 032_3_1, the clip the 442 adds.
        assert [counts[dataset, k] for k in range(3)] == [neg, pos, sur]
        assert subjects[dataset] == n_subjects
    assert len(rows) == 441
    assert sum(subjects.values()) == 68
    read = protocols.read_clip_list()
    assert [(r.dataset, r.subject, r.clip, r.label) for r in read] == [
        (d, s, c, int(label)) for d, s, c, label in rows
    ]
    assert read[4].where == "megc2019_combined_3class_gt.csv row 5"


def test_clip_key_normalises_the_lists_ids():
    key = protocols.clip_key
    assert key("smic", "s01", "s01_ne_01") == key("smic", "smic/s1", "smic/s1/s1_ne_01")
    assert key("smic", "s01", "s01_ne_01") == key("smic", "smic/s01", "smic/s01/s01_ne_01")
    assert key("smic", "s10", "s10_po_01")[2] == "s10_po_01"
    assert key("samm", "6", "006_1_2") == key("samm", "samm/006", "samm/006/006_1_2")
    assert key("casme2", "sub01", "EP02_01f") == key(
        "casme2", "casme2/sub01", "casme2/sub01/EP02_01f"
    )
    assert key("casme2", "sub01", "EP02_01f") != key("casme2", "sub02", "EP02_01f")
    assert key("smic", "s01", "s01_ne_01") != key("smic_vis", "smic_vis/s1", "smic_vis/s1/s1_ne_01")


def test_cde_megc2019_is_loso_over_exactly_the_listed_clips():
    (datasets, subjects, clips, labels), listed = composite()
    table = protocols.make_folds(
        "cde_megc2019", subjects, datasets=datasets, clips=clips, labels=labels
    )
    on_list = np.isin(clips, sorted(listed))
    assert on_list.sum() == 441
    # 68 folds, one per listed subject (ids as the builders write them).
    expected = sorted({_builder_ids(d, s, c)[0] for d, s, c, _ in _csv_rows()})
    assert len(expected) == 68 and list(table.names) == expected
    # Each listed clip tested once; nothing else trains or tests.
    np.testing.assert_array_equal(table.test_mask.sum(0), on_list.astype(int))
    assert not table.train_mask[:, ~on_list].any()
    np.testing.assert_array_equal(table.train_mask | table.test_mask, np.tile(on_list, (68, 1)))
    for f, name in enumerate(table.names):
        np.testing.assert_array_equal(table.test_mask[f], on_list & (subjects == name))
    # Per-dataset class counts of the tested samples: the list's own.
    rows = _csv_rows()
    for dataset in ("smic", "casme2", "samm"):
        want = [sum(1 for d, _, _, y in rows if d == dataset and int(y) == k) for k in range(3)]
        tested = table.test_mask.any(0) & (datasets == dataset)
        assert np.bincount(labels[tested], minlength=3).tolist() == want
    _no_subject_shared(table, subjects)
    protocols.check_no_leakage(table, subjects)
    assert table.notes == (f"441 listed clips of {len(clips)} samples take part",)


def test_cde_442_adds_exactly_samm_032_3_1():
    (datasets, subjects, clips, labels), _ = composite(seed=1)
    info = dict(datasets=datasets, clips=clips, labels=labels)
    t441 = protocols.make_folds("cde_megc2019", subjects, **info)
    t442 = protocols.make_folds("cde_megc2019_442", subjects, **info)
    assert t442.names == t441.names
    added = np.flatnonzero(t442.test_mask.any(0) & ~t441.test_mask.any(0))
    assert clips[added].tolist() == ["samm/032/032_3_1"]
    assert t442.test_mask.sum() == 442
    assert t442.names[np.flatnonzero(t442.test_mask[:, added[0]])[0]] == "samm/032"
    keep = clips != "samm/032/032_3_1"
    protocols.make_folds("cde_megc2019", subjects[keep], datasets=datasets[keep], clips=clips[keep])
    with pytest.raises(ValueError, match=r"1 listed clip\(s\) not in the sample list.*032_3_1"):
        protocols.make_folds(
            "cde_megc2019_442", subjects[keep], datasets=datasets[keep], clips=clips[keep]
        )


def test_a_listed_clip_missing_from_the_data_is_named():
    (datasets, subjects, clips, labels), _ = composite()
    rows = _csv_rows()
    row = next(i for i, r in enumerate(rows, 1) if r[2] == "s02_sur_03")
    keep = clips != "smic/s2/s2_sur_03"
    assert keep.sum() == len(clips) - 1
    with pytest.raises(ValueError, match=rf"row {row} \(smic,s02,s02_sur_03\)"):
        protocols.make_folds(
            "cde_megc2019", subjects[keep], datasets=datasets[keep], clips=clips[keep]
        )
    # A SMIC-VIS clip of the same name does not stand in for the HS one.
    datasets = datasets.copy()
    datasets[clips == "smic/s1/s1_ne_01"] = "smic_vis"
    with pytest.raises(ValueError, match=r"\(smic,s01,s01_ne_01\)"):
        protocols.make_folds("cde_megc2019", subjects, datasets=datasets, clips=clips)


def test_label_disagreement_is_reported_by_class_name():
    (datasets, subjects, clips, labels), _ = composite()
    info = dict(datasets=datasets, clips=clips)
    # Same classes in another order: no disagreement.
    order = ("surprise", "negative", "positive")
    renamed = np.array([order.index(MEGC[y]) for y in labels], np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        protocols.make_folds("cde_megc2019", subjects, labels=renamed, class_names=order, **info)
    # One clip relabelled positive -> surprise.
    wrong = labels.copy()
    i = np.flatnonzero(clips == "casme2/sub01/EP02_01f")[0]
    assert wrong[i] == 1
    wrong[i] = 2
    match = r"casme2/sub01/EP02_01f: class 'surprise' in the sample list, 'positive' in .* row 1"
    with pytest.warns(protocols.ProtocolWarning, match=match):
        table = protocols.make_folds("cde_megc2019", subjects, labels=wrong, **info)
    assert any("1 label(s) disagree" in n for n in table.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        noted = protocols.make_folds(
            "cde_megc2019", subjects, labels=wrong, label_mismatch="note", **info
        )
    assert noted.notes == table.notes
    with pytest.raises(ValueError, match=match):
        protocols.make_folds("cde_megc2019", subjects, labels=wrong, label_mismatch="error", **info)


def test_make_folds_asks_for_missing_arrays_by_name():
    (datasets, subjects, clips, labels), _ = composite()
    with pytest.raises(ValueError, match=r"'cde_megc2019' needs .*`clips`"):
        protocols.make_folds("cde_megc2019", subjects, datasets=datasets)
    with pytest.raises(ValueError, match=r"'hde' needs .*`datasets`"):
        protocols.make_folds("hde", subjects, clips=clips, datasets=None)
    with pytest.raises(ValueError, match=r"`datasets` has 3 entries for \d+ samples"):
        protocols.make_folds("hde", subjects, datasets=datasets[:3])
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['sources'\]"):
        protocols.make_folds("loso", subjects, sources=datasets)
    # LOSO ignores arrays it does not use (a sweep passes them all).
    table = protocols.make_folds("loso", subjects, datasets=datasets, clips=clips, labels=labels)
    assert table.num_folds == len(set(subjects))


def test_read_clip_list_rejects_bad_rows(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("dataset,subject,clip,label\nsamm,6,006_1_2,0\nsamm,6,006_1_3,3\n")
    with pytest.raises(ValueError, match=r"list.csv row 3: label '3'"):
        protocols.read_clip_list(path)
    path.write_text("samm,6,006_1_2,0\nsamm,006,006_1_2,1\n")
    with pytest.raises(ValueError, match=r"list.csv row 2: clip '006_1_2' is listed twice"):
        protocols.read_clip_list(path)
    path.write_text("samm,6,006_1_2\n")
    with pytest.raises(ValueError, match=r"list.csv row 1: expected 4 columns"):
        protocols.read_clip_list(path)


# ----------------------------------------------------------------------------
# Seed 000 CDE / HDE, seed 002 CDMER.


def _objective_like():
    """CASME II 26 subjects, SAMM 20 (seed 000's 26 + 20 folds), SMIC distractors."""
    rows = [("casme2", f"casme2/sub{s:02d}") for s in range(1, 27) for _ in range(3)]
    rows += [("samm", f"samm/{s:03d}") for s in range(6, 26) for _ in range(2)]
    rows += [("smic", f"smic/s{s}") for s in range(1, 4) for _ in range(2)]
    datasets = np.array([r[0] for r in rows])
    subjects = np.array([r[1] for r in rows])
    return datasets, subjects


def test_seed000_cde_pools_casme2_and_samm_only():
    datasets, subjects = _objective_like()
    table = protocols.make_folds("cde_casme2_samm", subjects, datasets=datasets)
    assert table.num_folds == 26 + 20
    assert {n.split("/")[0] for n in table.names} == {"casme2", "samm"}
    pooled = np.isin(datasets, ["casme2", "samm"])
    np.testing.assert_array_equal(table.test_mask.sum(0), pooled.astype(int))
    assert not table.train_mask[:, ~pooled].any()
    _no_subject_shared(table, subjects)
    with pytest.raises(ValueError, match="no samples of dataset 'samm'"):
        protocols.make_folds(
            "cde_casme2_samm", subjects[datasets != "samm"], datasets=datasets[datasets != "samm"]
        )


def test_hde_trains_on_one_dataset_and_tests_on_the_other():
    datasets, subjects = _objective_like()
    casme2, samm = datasets == "casme2", datasets == "samm"
    table = protocols.make_folds("hde", subjects, datasets=datasets)
    assert table.names == ("casme2->samm", "samm->casme2")
    np.testing.assert_array_equal(table.train_mask, np.stack([casme2, samm]))
    np.testing.assert_array_equal(table.test_mask, np.stack([samm, casme2]))
    assert table.per_fold_metrics
    for f, name in enumerate(("hde_casme2_to_samm", "hde_samm_to_casme2")):
        one = protocols.make_folds(name, subjects, datasets=datasets)
        assert one.names == table.names[f : f + 1]
        np.testing.assert_array_equal(one.train_mask[0], table.train_mask[f])
        np.testing.assert_array_equal(one.test_mask[0], table.test_mask[f])
    with pytest.raises(
        ValueError, match="fold 'casme2->samm': no samples of target dataset 'samm'"
    ):
        protocols.make_folds("hde", subjects[~samm], datasets=datasets[~samm])


def test_cdmer_tasks_follow_table_10():
    (datasets, subjects, _, _), _ = composite()
    every = protocols.make_folds("cdmer", subjects, datasets=datasets)
    assert every.num_folds == 12 and every.per_fold_metrics
    for i, source, target in TABLE_10:
        (s, s_name, s_data), (t, t_name, t_data) = PAPER[source], PAPER[target]
        table = protocols.make_folds(f"cdmer_{s_name}_to_{t_name}", subjects, datasets=datasets)
        assert table.names == (f"Exp.{i}: {s}->{t}",)
        np.testing.assert_array_equal(table.train_mask[0], datasets == s_data)
        np.testing.assert_array_equal(table.test_mask[0], datasets == t_data)
        assert every.names[i - 1] == table.names[0]
        np.testing.assert_array_equal(every.train_mask[i - 1], table.train_mask[0])
        np.testing.assert_array_equal(every.test_mask[i - 1], table.test_mask[0])
    type1 = protocols.make_folds("cdmer_type1", subjects, datasets=datasets)
    type2 = protocols.make_folds("cdmer_type2", subjects, datasets=datasets)
    assert type1.names + type2.names == every.names
    part = every.select([6, 0])
    assert part.names == (every.names[6], every.names[0]) and part.per_fold_metrics


# Seed 002 Table 11 (negative, positive, surprise) and the releases' subject counts.
TABLE_11 = {"smic": (70, 51, 43, 16), "smic_vis": (23, 28, 20, 8), "smic_nir": (23, 28, 20, 8)}
TABLE_11["casme2"] = (73, 32, 25, 24)


def table_11_like(seed=0):
    """(datasets, subjects, labels): Table 11's class counts spread over random subjects."""
    rng = np.random.default_rng(seed)
    datasets, subjects, labels = [], [], []
    for dataset, (*counts, num_subjects) in TABLE_11.items():
        for label, count in enumerate(counts):
            who = np.r_[np.arange(num_subjects), rng.integers(0, num_subjects, count)][:count]
            subjects += [f"{dataset}/s{i + 1}" for i in who]
            datasets += [dataset] * count
            labels += [label] * count
    order = rng.permutation(len(labels))
    return np.array(datasets)[order], np.array(subjects)[order], np.array(labels)[order]


def test_cdmer_5fold_tests_each_target_sample_once_per_task():
    datasets, subjects, labels = table_11_like()
    info = dict(datasets=datasets, labels=labels)
    every = protocols.make_folds("cdmer_5fold", subjects, **info, seed=3)
    plus = protocols.make_folds("cdmer_5fold_with_target", subjects, **info, seed=3)
    assert every.num_folds == 60 and every.per_fold_metrics
    for i, source, target in TABLE_10:
        (s, s_name, s_data), (t, t_name, t_data) = PAPER[source], PAPER[target]
        task = f"Exp.{i}: {s}->{t}"
        rows = [f for f, name in enumerate(every.tasks) if name == task]
        assert [every.names[f] for f in rows] == [f"{task} {k}/5" for k in range(1, 6)]
        one = protocols.make_folds(f"cdmer_5fold_{s_name}_to_{t_name}", subjects, **info, seed=3)
        assert one.tasks == (task,) * 5 and one.names == tuple(every.names[f] for f in rows)
        np.testing.assert_array_equal(one.test_mask, every.test_mask[rows])
        test, target = every.test_mask[rows], datasets == t_data
        # Every target sample tested exactly once in the task; nothing else tested.
        np.testing.assert_array_equal(test.sum(axis=0), target.astype(int))
        folds_of = [set(subjects[m]) for m in test]  # whole subjects: no subject in two folds
        assert sum(map(len, folds_of)) == len(set().union(*folds_of)) == TABLE_11[t_data][3]
        for f, held_out in zip(rows, test):
            np.testing.assert_array_equal(every.train_mask[f], datasets == s_data)
            np.testing.assert_array_equal(
                plus.train_mask[f], (datasets == s_data) | target & ~held_out
            )
            # Class-stratified: each fold within 40% of an even share of each class, +-2.
            share = np.bincount(labels[target], minlength=3) / 5
            assert np.all(
                np.abs(np.bincount(labels[held_out], minlength=3) - share) <= 0.4 * share + 2
            )
        _no_subject_shared(every.select(rows), subjects)
        _no_subject_shared(plus.select(rows), subjects)
    again = protocols.make_folds("cdmer_5fold", subjects, **info, seed=3)
    np.testing.assert_array_equal(again.test_mask, every.test_mask)
    other = protocols.make_folds("cdmer_5fold", subjects, **info, seed=4)
    assert not np.array_equal(other.test_mask, every.test_mask)
    assert every.select([7, 2]).tasks == (every.tasks[7], every.tasks[2])
    few = (datasets != "smic_vis") | np.isin(subjects, ["smic_vis/s1", "smic_vis/s2"])
    with pytest.raises(
        ValueError, match=r"Exp.1: H->V'.*5 folds of whole subjects need at least 5"
    ):
        protocols.make_folds("cdmer_5fold_smic_hs_to_smic_vis", subjects[few],
                             datasets=datasets[few], labels=labels[few])  # fmt: skip


def test_subject_folds_reach_an_even_split_when_one_exists():
    """Ten subjects of 4 samples, five of class 0 only and five of class 1 only: the only
    perfectly stratified 5-fold split pairs one of each per fold (4 + 4 samples)."""
    subjects = np.repeat([f"p{i}" for i in range(10)], 4)
    labels = np.repeat([0, 1] * 5, 4)
    for seed in range(5):
        folds = protocols.splits.subject_folds(
            subjects, labels, np.ones(40, bool), num_folds=5, seed=seed
        )
        assert folds.sum(axis=0).tolist() == [1] * 40
        for fold in folds:
            assert np.bincount(labels[fold], minlength=2).tolist() == [4, 4]
            assert len(set(subjects[fold])) == 2


def test_no_protocol_leaks_and_unprefixed_ids_are_caught():
    (datasets, subjects, clips, labels), _ = composite()
    info = dict(datasets=datasets, clips=clips, labels=labels)
    built = 0
    for name in protocols.PROTOCOLS:
        if name.startswith(("cde_casme2", "hde")):
            d, s = _objective_like()
            table = protocols.make_folds(name, s, datasets=d)
        elif name.startswith("cdmer_5fold"):  # five folds of whole target subjects
            d, s, y = table_11_like()
            table = protocols.make_folds(name, s, datasets=d, labels=y)
        else:
            d, s = datasets, subjects
            table = protocols.make_folds(name, s, **info)
        protocols.check_no_leakage(table, s)
        _no_subject_shared(table, s)
        assert table.test_mask.any(1).all() and table.train_mask.any(1).all()
        built += 1
    assert built == len(protocols.PROTOCOLS) >= 52
    # SMIC-VIS subject ids written like HS ones ('s1'): the check refuses the table.
    bare = np.array([s.split("/", 1)[1] if s.startswith("smic") else s for s in subjects])
    with pytest.raises(protocols.LeakageError, match=r"Exp.2: V->H\) trains on held-out"):
        protocols.make_folds("cdmer_smic_vis_to_smic_hs", bare, datasets=datasets)


def test_cde_reads_a_given_clip_list(tmp_path):
    (datasets, subjects, clips, labels), _ = composite()
    path = tmp_path / "mine.csv"
    path.write_text("dataset,subject,clip,label\nsamm,6,006_1_2,0\nsmic,s01,s01_po_01,1\n")
    table = protocols.make_folds(
        "cde_megc2019", subjects, datasets=datasets, clips=clips, clip_list=str(path)
    )
    assert table.names == ("samm/006", "smic/s1")
    tested = table.test_mask.any(0)
    assert sorted(clips[tested]) == ["samm/006/006_1_2", "smic/s1/s1_po_01"]
    np.testing.assert_array_equal(table.train_mask, table.test_mask[::-1])


# ----------------------------------------------------------------------------
# Validation splits of whole subjects (mer_jax/splits.py) and the holdout protocol.


def _imbalanced(num_subjects=40, seed=0, class_p=(0.55, 0.25, 0.12, 0.08)):
    """Subjects of 2..8 samples, each with its own skewed class mix; classes imbalanced."""
    rng = np.random.default_rng(seed)
    subjects, labels = [], []
    for s in range(num_subjects):
        size = int(rng.integers(2, 9))
        mix = rng.dirichlet(4 * np.asarray(class_p))
        labels += rng.choice(len(class_p), size=size, p=mix).tolist()
        subjects += [f"macro/s{s:02d}"] * size
    order = rng.permutation(len(subjects))
    return np.array(subjects)[order], np.array(labels, np.int32)[order]


def _whole_subjects(split, subjects, candidates):
    """The split lies in the candidates and holds every candidate sample of its subjects."""
    assert not np.any(split & ~candidates)
    np.testing.assert_array_equal(split, candidates & np.isin(subjects, subjects[split]))


def _share_error(split, labels, candidates, num_classes):
    """L1 distance between the split's class shares and the candidates' class shares."""
    share = lambda m: np.bincount(labels[m], minlength=num_classes) / m.sum()  # noqa: E731
    return np.abs(share(split) - share(candidates)).sum()


def test_validation_split_takes_count_whole_subjects_deterministically():
    subjects, labels = _imbalanced()
    candidates = subjects != "macro/s03"  # a LOSO fold's training samples
    names = set(subjects[candidates])
    for count in (1, 3, 7):
        drawn = set()
        for seed in (0, 1, 2, (5, 2), (5, 3)):
            split = protocols.validation_split(subjects, labels, candidates, seed=seed, count=count)
            _whole_subjects(split, subjects, candidates)
            assert len(set(subjects[split])) == count
            assert names - set(subjects[split])  # training subjects remain
            again = protocols.validation_split(
                subjects, labels, candidates.tolist(), seed=seed, count=count
            )
            np.testing.assert_array_equal(split, again)
            drawn.add(tuple(sorted(set(subjects[split]))))
        assert len(drawn) > 1, count  # different seeds, different splits
    # count = all but one subject is allowed; the one left trains.
    split = protocols.validation_split(subjects, labels, candidates, seed=0, count=len(names) - 1)
    assert len(set(subjects[candidates & ~split])) == 1


def test_validation_split_fraction_holds_that_share_of_the_samples():
    subjects, labels = _imbalanced(seed=1)
    every = np.ones(len(subjects), bool)
    largest = max(collections.Counter(subjects.tolist()).values())
    for fraction in (0.1, 0.2, 0.5):
        for seed in range(5):
            split = protocols.validation_split(
                subjects, labels, every, seed=seed, fraction=fraction
            )
            _whole_subjects(split, subjects, every)
            # Within one subject's samples of the requested share.
            assert abs(split.mean() - fraction) <= largest / len(subjects)
    # Near 1: still one training subject at least.
    split = protocols.validation_split(subjects, labels, every, seed=0, fraction=0.999)
    assert len(set(subjects[~split])) >= 1
    # Two subjects and a tiny fraction: one of them validates, the other trains.
    two = np.array(["a"] * 5 + ["b"] * 5)
    split = protocols.validation_split(two, np.arange(10) % 2, two != "", seed=0, fraction=0.01)
    assert len(set(two[split])) == 1 and len(set(two[~split])) == 1


def test_validation_split_is_more_stratified_than_a_random_subject_draw():
    subjects, labels = _imbalanced(num_subjects=40, seed=2)
    candidates = ~np.isin(subjects, ["macro/s00", "macro/s01"])
    names = np.unique(subjects[candidates])
    total = candidates.sum()
    rng = np.random.default_rng(123)
    for count, fraction in ((5, None), (None, 0.2)):
        ours, baseline = [], []
        for seed in range(30):
            split = protocols.validation_split(
                subjects, labels, candidates, seed=seed, count=count, fraction=fraction
            )
            ours.append(_share_error(split, labels, candidates, 4))
            order = rng.permutation(names)
            if count is not None:
                chosen = order[:count]
            else:  # the random order's prefix holding closest to `fraction` of the samples
                sizes = np.cumsum([np.sum(candidates & (subjects == s)) for s in order])
                chosen = order[: int(np.argmin(np.abs(sizes[:-1] - fraction * total))) + 1]
            baseline.append(
                _share_error(candidates & np.isin(subjects, chosen), labels, candidates, 4)
            )
        assert np.mean(ours) < np.mean(baseline), (count, np.mean(ours), np.mean(baseline))


def test_validation_split_errors_name_the_config_key_and_numbers():
    subjects = np.array(["a", "a", "b", "c", "d"])
    labels = np.array([0, 1, 0, 1, 0])
    every = np.ones(5, bool)
    split = protocols.validation_split
    for bad in (0, -1, 2.5, True):
        with pytest.raises(
            UserError, match=rf"'train.validation_subjects': {bad!r} is not an integer >= 1"
        ):
            split(subjects, labels, every, seed=0, count=bad)
    with pytest.raises(
        UserError,
        match=r"'train.validation_subjects': 4 validation subject\(s\) leave no training "
        r"subject: the training samples hold 4 subject\(s\)",
    ):
        split(subjects, labels, every, seed=0, count=4)
    with pytest.raises(UserError, match=r"hold 3 subject\(s\)"):
        split(subjects, labels, subjects != "a", seed=0, count=5)
    for bad in (0, 1, 1.5, -0.1, float("nan")):
        with pytest.raises(
            UserError, match=rf"'train.validation_fraction': {bad!r} is not in \(0, 1\)"
        ):
            split(subjects, labels, every, seed=0, fraction=bad)
    with pytest.raises(UserError, match=r"'train.validation_fraction': 'x' is not a number"):
        split(subjects, labels, every, seed=0, fraction="x")
    with pytest.raises(
        UserError,
        match=r"'train.validation_fraction': a validation split of whole subjects needs at "
        r"least 2 subjects, the samples hold 1",
    ):
        split(subjects, labels, subjects == "a", seed=0, fraction=0.5)
    with pytest.raises(ValueError, match="give count or fraction"):
        split(subjects, labels, every, seed=0)
    with pytest.raises(ValueError, match="give count or fraction"):
        split(subjects, labels, every, seed=0, count=1, fraction=0.5)


def test_with_validation_moves_whole_training_subjects_per_fold():
    subjects, labels = _imbalanced(num_subjects=12, seed=3)
    table = protocols.loso(subjects)
    inner = table.with_validation(subjects, labels, 2, 7)
    val = inner.validation()
    assert inner.names == table.names and inner.val_mask is not None
    assert not inner.validation_is_test
    np.testing.assert_array_equal(inner.test_mask, table.test_mask)
    np.testing.assert_array_equal(inner.train_mask | val, table.train_mask)
    assert not np.any(inner.train_mask & val)
    for f in range(table.num_folds):
        _whole_subjects(val[f], subjects, table.train_mask[f])
        assert len(set(subjects[val[f]])) == 2
        assert not set(subjects[val[f]]) & set(subjects[inner.train_mask[f]])
        assert not set(subjects[val[f]]) & set(subjects[inner.test_mask[f]])
        expected = protocols.validation_split(
            subjects, labels, table.train_mask[f], seed=(7, f), count=2
        )
        np.testing.assert_array_equal(val[f], expected)
    _no_subject_shared(inner, subjects)
    protocols.check_no_leakage(inner, subjects)
    assert len({tuple(sorted(set(subjects[v]))) for v in val}) > 1  # folds draw their own
    other = table.with_validation(subjects, labels, 2, 8)
    assert not np.array_equal(other.val_mask, inner.val_mask)
    with pytest.raises(UserError, match=r"fold 0 \(macro/s00\): 11 validation subject\(s\)"):
        table.with_validation(subjects, labels, 11, 7)
    with pytest.raises(UserError, match="already has a validation split"):
        inner.with_validation(subjects, labels, 2, 7)


def test_select_carries_the_validation_mask():
    subjects, labels = _imbalanced(num_subjects=6, seed=4)
    table = protocols.loso(subjects)
    assert table.val_mask is None
    np.testing.assert_array_equal(table.validation(), np.zeros((6, len(subjects)), bool))
    assert table.select([3, 1]).val_mask is None
    inner = table.with_validation(subjects, labels, 1, 0)
    part = inner.select([3, 1])
    np.testing.assert_array_equal(part.val_mask, inner.val_mask[[3, 1]])
    np.testing.assert_array_equal(part.validation(), inner.validation()[[3, 1]])
    assert part.names == (inner.names[3], inner.names[1])
    protocols.check_no_leakage(part, subjects)


def test_check_no_leakage_covers_the_validation_split():
    subjects = np.array(["a", "a", "b", "b", "c", "c"])

    def mask(*members):
        out = np.zeros((1, len(subjects)), bool)
        out[0, list(members)] = True
        return out

    test, train, val = mask(0, 1), mask(2, 3), mask(4, 5)

    def check(train=train, test=test, val=val, is_test=False):
        table = protocols.FoldTable(("a",), train, test, val_mask=val, validation_is_test=is_test)
        protocols.check_no_leakage(table, subjects)

    check()
    leak = protocols.LeakageError
    with pytest.raises(leak, match=r"fold 0 \(a\) validates on held-out subject\(s\) \['a'\]"):
        check(test=mask(0), val=mask(1, 4, 5))
    with pytest.raises(leak, match=r"fold 0 \(a\) validates on its own test samples, e.g. index 0"):
        check(val=mask(0, 1, 4, 5))
    with pytest.raises(leak, match=r"fold 0 \(a\) trains on validation subject\(s\) \['c'\]"):
        check(train=mask(2, 3, 4), val=mask(5))
    with pytest.raises(
        leak, match=r"fold 0 \(a\) trains on its own validation samples, e.g. index 5"
    ):
        check(train=mask(2, 3, 5))
    # A validation sample of a training subject is caught too (sample 3 is 'b').
    with pytest.raises(leak, match=r"trains on validation subject\(s\) \['b'\]"):
        check(train=mask(2), val=mask(3, 4, 5))
    # holdout: the validation split IS the test split.
    check(val=test, is_test=True)
    with pytest.raises(leak, match="validates on its own test samples"):
        check(val=test)
    with pytest.raises(ValueError, match=r"\(1, 6\)/\(1, 6\)/\(2, 6\)"):
        check(val=np.zeros((2, 6), bool))


def _samples(subjects, labels):
    return types.SimpleNamespace(
        subjects=subjects,
        sources=np.array([s.split("/")[0] for s in subjects]),
        clips=np.array([f"{s}/clip{i}" for i, s in enumerate(subjects)]),
        labels=labels,
        class_names=("a", "b", "c", "d"),
    )


def test_holdout_tests_and_validates_on_one_stratified_subject_split():
    subjects, labels = _imbalanced(num_subjects=60, seed=5)
    largest = max(collections.Counter(subjects.tolist()).values())
    every = np.ones(len(subjects), bool)
    table = protocols.make_folds("holdout", subjects, labels=labels)
    assert table.names == ("validation",) and table.num_folds == 1
    assert table.validation_is_test and not table.per_fold_metrics
    assert table.train_mask.shape == table.test_mask.shape == (1, len(subjects))
    np.testing.assert_array_equal(table.val_mask, table.test_mask)
    np.testing.assert_array_equal(table.train_mask, ~table.test_mask)
    _whole_subjects(table.test_mask[0], subjects, every)
    _no_subject_shared(table, subjects)
    assert abs(table.test_mask.mean() - 0.1) <= largest / len(subjects)  # seed 000: 1/10
    np.testing.assert_array_equal(
        table.test_mask[0],
        protocols.validation_split(subjects, labels, every, seed=0, fraction=0.1),
    )
    # Options pass through make_folds and folds_of; seeds draw their own split.
    samples = _samples(subjects, labels)
    twenty = protocols.folds_of("holdout", samples, validation_fraction=0.2, seed=3)
    assert abs(twenty.test_mask.mean() - 0.2) <= largest / len(subjects)  # seed 001: 20%
    same = protocols.make_folds("holdout", subjects, labels=labels, validation_fraction=0.2, seed=3)
    np.testing.assert_array_equal(twenty.test_mask, same.test_mask)
    other = protocols.make_folds(
        "holdout", subjects, labels=labels, validation_fraction=0.2, seed=4
    )
    assert not np.array_equal(other.test_mask, same.test_mask)
    # Other protocols ignore the options.
    loso = protocols.folds_of("loso", samples, validation_fraction=0.2, seed=3)
    assert loso.num_folds == 60 and loso.val_mask is None
    assert protocols.label_scheme_of("holdout") == ""
    with pytest.raises(ValueError, match=r"'holdout' needs .*`labels`"):
        protocols.make_folds("holdout", subjects)
    with pytest.raises(UserError, match="'train.validation_fraction': 1.2"):
        protocols.make_folds("holdout", subjects, labels=labels, validation_fraction=1.2)


def test_cdmer_5fold_results_pool_each_tasks_folds():
    """results.seed_results on a two-task five-fold table: each task's metrics are those of its
    five folds' predictions pooled (metrics.classification_metrics), the headline their mean."""
    from mer_jax import metrics, results

    datasets, subjects, labels = table_11_like()
    table = protocols.make_folds("cdmer_5fold_type2", subjects, datasets=datasets, labels=labels)
    table = table.select([f for f, t in enumerate(table.tasks) if t.startswith(("Exp.7", "Exp.8"))])
    idx, valid = table.test_indices()
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(*idx.shape, 3)).astype(np.float32)
    f = table.num_folds
    out = types.SimpleNamespace(
        logits=logits, test_idx=idx, test_valid=valid, diverged_epoch=np.full(f, -1),
        train_loss=np.ones((1, f)), heldout_pred_history=[logits.argmax(-1)], val_loss=None,
    )  # fmt: skip
    dataset = types.SimpleNamespace(
        labels=labels, sources=datasets, clips=np.arange(len(labels)).astype(str),
        subjects=subjects, class_names=MEGC,
    )  # fmt: skip
    config = types.SimpleNamespace(train=types.SimpleNamespace(epochs_per_call=1))
    got = results.seed_results(config, dataset, table, out, seed=0)["metrics"]
    expected = {}
    for task in ("Exp.7: C->H", "Exp.8: H->C"):
        rows = [k for k, t in enumerate(table.tasks) if t == task]
        index = np.concatenate([idx[k][valid[k]] for k in rows])
        pred = np.concatenate([logits[k][valid[k]].argmax(-1) for k in rows])
        expected[task] = metrics.classification_metrics(labels[index], pred, MEGC)
        assert got["by_task"][task]["uf1"] == pytest.approx(expected[task]["uf1"])
        assert got["by_task"][task]["num_samples"] == len(index)
    assert got["aggregation"] == "mean over tasks"
    assert got["uar"] == pytest.approx(np.mean([m["uar"] for m in expected.values()]))
