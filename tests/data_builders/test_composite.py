"""The MEGC 2019 composite: CASME II + SAMM + SMIC-HS built from fixture trees that
hold exactly the 441 clips of the official list (plus distractors), pooled by `data.load`,
folded by `cde_megc2019` / `cde_megc2019_442` and counted by `mer-jax data describe`.

Every expected figure comes from the list CSV, read here with the csv module, and from seed 002
Table 9 (the 442-clip composite: SMIC-HS 70/51/43, CASME II 88/32/25, SAMM 92/26/15, 68 subjects).
"""

import collections
import csv
import itertools
import json
import pathlib
import re

import cv2
import numpy as np
import pytest

import mer_jax
from mer_jax import cli, config, data, protocols
from tests.data_builders import fixtures

LIST_CSV = pathlib.Path(mer_jax.__file__).parent / "resources" / "megc2019_combined_3class_gt.csv"
CLASSES = ("negative", "positive", "surprise")  # The list's labels 0, 1, 2.
# Seed 002 Table 9 (442 clips): dataset -> ((negative, positive, surprise), subjects).
TABLE_9 = {"smic": ((70, 51, 43), 16), "casme2": ((88, 32, 25), 24), "samm": ((92, 26, 15), 28)}
EXTRA = "samm/032/032_3_1"  # The 442nd clip (SAMM, negative): on no list row.
# The builds: the smallest registered configs, built with `mer-jax data build`.
NAMES = ("casme2/cropped_112", "samm/raw_112", "smic/hs_112")
SIZE = 8  # Model input size: fixture frames are 16x16.
FIRST = 100  # Frame numbers of every fixture clip: FIRST..FIRST + 2 (apex FIRST + 1).

# Each list label as emotions the megc2019_3class scheme maps to it (cycled, so every
# negative emotion of the scheme occurs).
EMOTIONS = {
    "casme2": (("disgust", "repression"), ("happiness",), ("surprise",)),
    "samm": (
        ("Anger", "Contempt", "Disgust", "Fear", "Sadness"),
        ("Happiness",),
        ("Surprise",),
    ),
}


def _read_list():
    """[(dataset, subject, clip, label)] of the official list, as written there."""
    with LIST_CSV.open(newline="") as f:
        return [(d, s, c, int(y)) for d, s, c, y in csv.reader(f)]


def _sample_id(dataset, subject, clip):
    """(subject id, clip id) the builders give a list row, from the official folder names:
    CASME II sub01/EP02_01f, SAMM 006/006_1_2 (list subject '6'), SMIC s1/s1_ne_01 (list
    's01' / 's01_ne_01')."""
    if dataset == "casme2":
        sub = subject
    elif dataset == "samm":
        sub = f"{int(subject):03d}"
    else:
        sub = f"s{int(subject[1:])}"
        clip = re.sub(r"^s0*(\d+)", lambda m: f"s{int(m.group(1))}", clip)
    return f"{dataset}/{sub}", f"{dataset}/{sub}/{clip}"


def _row(subject, filename, emotion, digits=0):
    return fixtures.Row(
        subject, filename, FIRST, FIRST + 1, FIRST + 2, emotion, FIRST, FIRST + 2, digits=digits
    )


# Clips on no list row: (dataset, subject folder, clip, emotion, kept by megc2019_3class).
DISTRACTORS = (
    ("casme2", 1, "EP03_02", "others", False),
    ("casme2", 1, "EP08_03", "repression", True),  # Negative, but not on the list.
    ("samm", 32, "032_3_1", "Anger", True),
    ("samm", 6, "006_9_9", "Other", False),
    ("samm", 25, "025_1_1", "Happiness", True),  # A subject the list does not have.
)


def _distractor_ids(kept_only=False):
    """Clip ids of the distractors (of those the scheme keeps)."""
    folder = lambda d, s: f"{s:03d}" if d == "samm" else f"sub{s:02d}"
    return [f"{d}/{folder(d, s)}/{c}" for d, s, c, _, keep in DISTRACTORS if keep or not kept_only]


@pytest.fixture(scope="module")
def composite(tmp_path_factory):
    """Fixture trees of the three datasets, built into one data dir, and the expected samples."""
    root = tmp_path_factory.mktemp("composite")
    listed = _read_list()
    cycles = {
        (ds, y): itertools.cycle(emotions[y]) for ds, emotions in EMOTIONS.items() for y in range(3)
    }
    casme2_rows, samm_rows, smic_clips = [], [], []
    expected = {}  # clip id -> (dataset, subject id, class name)
    for dataset, subject, clip, label in listed:
        if dataset == "casme2":
            casme2_rows.append(_row(int(subject[3:]), clip, next(cycles[dataset, label])))
        elif dataset == "samm":
            samm_rows.append(_row(int(subject), clip, next(cycles[dataset, label]), digits=5))
        else:
            subject_id, clip_id = _sample_id(dataset, subject, clip)
            folder = subject_id.split("/")[1]
            smic_clips.append(
                ("HS", folder, CLASSES[label], clip_id.rsplit("/")[-1], FIRST, FIRST + 2)
            )
        subject_id, clip_id = _sample_id(dataset, subject, clip)
        expected[clip_id] = (dataset, subject_id, CLASSES[label])
    for dataset, subject, clip, emotion, _ in DISTRACTORS:
        rows = casme2_rows if dataset == "casme2" else samm_rows
        rows.append(_row(subject, clip, emotion, digits=5 if dataset == "samm" else 0))
    manual = {name.split("/")[0]: root / name.split("/")[0] for name in NAMES}
    fixtures.write_casme2(manual["casme2"], casme2_rows, objective=False)
    fixtures.write_samm(manual["samm"], samm_rows)
    fixtures.write_smic(manual["smic"], smic_clips)
    data_dir = root / "tfds"
    for name in NAMES:
        argv = ["data", "build", name, "--manual-dir", str(manual[name.split("/")[0]])]
        assert cli.main([*argv, "--data-dir", str(data_dir)]) == 0
    return {"data_dir": str(data_dir), "listed": listed, "expected": expected, "root": root}


@pytest.fixture(scope="module")
def pooled(composite):
    spec = config.base().input
    spec.update(
        representation="apex",
        image_size=SIZE,
        channels=3,
        apex="mid_clip",  # SMIC has no apex; on CASME II / SAMM it is the annotated one.
        label_scheme="megc2019_3class",
    )
    return data.load(
        "+".join(NAMES),
        spec,
        data_dir=composite["data_dir"],
        log=lambda _: None,
        progress=False,
    )


def _list_counts(listed):
    """dataset -> Counter of class names, and dataset -> set of subject ids, from the CSV."""
    counts = collections.defaultdict(collections.Counter)
    subjects = collections.defaultdict(set)
    for dataset, subject, clip, label in listed:
        counts[dataset][CLASSES[label]] += 1
        subjects[dataset].add(_sample_id(dataset, subject, clip)[0])
    return counts, subjects


def test_list_matches_table_9(composite):
    """The CSV itself: 441 clips, seed 002 Table 9 less SAMM 032_3_1 (one SAMM negative)."""
    counts, subjects = _list_counts(composite["listed"])
    assert len(composite["listed"]) == 441
    for dataset, (classes, num_subjects) in TABLE_9.items():
        less = 1 if dataset == "samm" else 0
        assert [counts[dataset][c] for c in CLASSES] == [classes[0] - less, *classes[1:]]
        assert len(subjects[dataset]) == num_subjects
    assert not set(_distractor_ids()) & set(composite["expected"])
    assert EXTRA in _distractor_ids()


def _reference_input(root, clip):
    """The model input of `clip` from the fixture files alone: its middle frame FIRST + 1 as
    cv2 decodes it (RGB; SAMM grey replicated), shrunk 16 -> SIZE by 2x2 means."""
    dataset, sub, name = clip.split("/")
    folder = {
        "casme2": root / "casme2" / "Cropped" / sub / name,
        "samm": root / "samm" / "SAMM" / sub / name,
    }.get(dataset)
    if folder is None:
        folder = next((root / "smic" / "SMIC_all_raw" / "HS" / sub / "micro").glob(f"*/{name}"))
    (path,) = folder.glob(f"*{FIRST + 1}.*")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].astype(np.float64)
    k = fixtures.FRAME_SIZE // SIZE
    return image.reshape(SIZE, k, SIZE, k, 3).mean(axis=(1, 3))


def test_load_pools_the_three_datasets(composite, pooled):
    """'+'-joined names pool the builds in order; the scheme drops only the excluded emotions;
    each sample's subject, source, class and pixels are those of its own fixture clip."""
    kept = set(_distractor_ids(kept_only=True))
    expected = composite["expected"]
    assert len(pooled.clips) == len(expected) + len(kept) == 444
    assert pooled.class_names == CLASSES
    order = [str(s) for s in pooled.sources]
    assert order == sorted(order, key=["casme2", "samm", "smic"].index)
    for i, clip in enumerate(pooled.clips.tolist()):
        if clip in kept:
            continue
        dataset, subject, cls = expected[clip]
        assert (pooled.sources[i], pooled.subjects[i]) == (dataset, subject), clip
        assert pooled.class_names[pooled.labels[i]] == cls, clip
    assert set(pooled.clips.tolist()) == set(expected) | kept  # No 'others', no non_micro.
    assert pooled.images.shape == (444, SIZE, SIZE, 3) and pooled.images.dtype == np.uint8
    # Stored at 112 (INTER_AREA up from 16), then back down to 8: within ~0.3 grey levels of
    # the 2x2 means of the clip's middle fixture frame; any other frame (independent noise)
    # is ~30 or more away.
    for i, clip in enumerate(pooled.clips.tolist()):
        error = np.abs(pooled.images[i] - _reference_input(composite["root"], clip)).mean()
        assert error < 2, (clip, error)


def _folds(pooled, protocol):
    return protocols.make_folds(
        protocol,
        pooled.subjects,
        datasets=pooled.sources,
        clips=pooled.clips,
        labels=pooled.labels,
        class_names=pooled.class_names,
        label_mismatch="error",  # Every class must agree with the list's label.
    )


def _check_folds(table, pooled, listed_clips, counts, subjects):
    """LOSO over exactly `listed_clips`: one fold per subject of `subjects`, each listed clip
    tested once (in its subject's fold) and trained on in every other fold, the rest in no
    fold; per-dataset class counts of the tested clips equal `counts`."""
    expected_subjects = sorted(set().union(*subjects.values()))
    assert table.names == tuple(expected_subjects)
    assert table.num_folds == len(expected_subjects) == 68
    clips = pooled.clips.tolist()
    listed = np.isin(pooled.clips, sorted(listed_clips))
    assert listed.sum() == len(listed_clips)
    np.testing.assert_array_equal(table.test_mask.sum(axis=0), listed.astype(int))
    np.testing.assert_array_equal(table.train_mask.sum(axis=0), listed * (table.num_folds - 1))
    for f, name in enumerate(table.names):
        tested = table.test_mask[f]
        assert tested.any() and set(pooled.subjects[tested].tolist()) == {name}
        np.testing.assert_array_equal(tested, listed & (pooled.subjects == name))
    tested = table.test_mask.any(axis=0)
    for dataset, want in counts.items():
        mine = tested & (pooled.sources == dataset)
        got = collections.Counter(pooled.class_names[y] for y in pooled.labels[mine])
        assert got == want, dataset
        assert set(pooled.subjects[mine].tolist()) == subjects[dataset]
    assert [c for c, t in zip(clips, tested) if not t] == [
        c for c in clips if c not in listed_clips
    ]


def test_cde_megc2019_folds(composite, pooled):
    counts, subjects = _list_counts(composite["listed"])
    table = _folds(pooled, "cde_megc2019")
    listed = set(composite["expected"])
    _check_folds(table, pooled, listed, counts, subjects)
    unused = sorted(set(pooled.clips.tolist()) - listed)
    assert unused == sorted(_distractor_ids(kept_only=True))
    assert "samm/025" not in table.names  # The extra subject holds no listed clip: no fold.


def test_cde_megc2019_442_adds_samm_032_3_1(composite, pooled):
    counts, subjects = _list_counts(composite["listed"])
    counts["samm"]["negative"] += 1
    assert {d: [counts[d][c] for c in CLASSES] for d in counts} == {
        d: list(classes) for d, (classes, _) in TABLE_9.items()
    }
    table = _folds(pooled, "cde_megc2019_442")
    _check_folds(table, pooled, set(composite["expected"]) | {EXTRA}, counts, subjects)
    base = _folds(pooled, "cde_megc2019")
    assert table.names == base.names
    added = table.test_mask & ~base.test_mask
    assert pooled.clips[added.any(axis=0)].tolist() == [EXTRA]
    assert table.names[int(np.flatnonzero(added.any(axis=1))[0])] == "samm/032"
    assert not (base.test_mask & ~table.test_mask).any()


@pytest.mark.parametrize("protocol", ["cde_megc2019", "cde_megc2019_442"])
def test_describe_reports_the_list_counts(composite, capsys, protocol):
    """`mer-jax data describe` on the three builds (labels: the protocol's scheme)."""
    counts, subjects = _list_counts(composite["listed"])
    extra = protocol.endswith("_442")
    counts["samm"]["negative"] += extra
    capsys.readouterr()  # Drop what building the fixture printed.
    argv = ["data", "describe", *NAMES, "--protocol", protocol, "--json"]
    assert cli.main([*argv, "--data-dir", composite["data_dir"]]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["protocol"] == protocol and summary["datasets"] == list(NAMES)
    assert summary["class_names"] == list(CLASSES)
    assert summary["num_folds"] == 68 and summary["num_samples"] == 444
    assert [f["name"] for f in summary["folds"]] == sorted(set().union(*subjects.values()))
    pooled = summary["pooled"]
    kept = _distractor_ids(kept_only=True)
    assert pooled["samples"] == pooled["tested"] == 441 + extra
    assert pooled["unused"] == len(kept) - extra and pooled["subjects"] == 68
    total = sum(counts.values(), collections.Counter())
    assert pooled["class_counts"] == pooled["tested_class_counts"] == dict(total)
    kept = collections.Counter(clip.split("/")[0] for clip in kept)
    for dataset, row in summary["by_dataset"].items():
        n = sum(counts[dataset].values())
        assert row["samples"] == n - extra * (dataset == "samm") + kept[dataset], dataset
        assert row["used"] == row["tested"] == n, dataset
        assert row["subjects"] == len(subjects[dataset]), dataset
        assert row["class_counts"] == {c: counts[dataset][c] for c in CLASSES}, dataset
    assert set(summary["by_dataset"]) == set(counts)
    folds = {f["name"]: f for f in summary["folds"]}
    per_subject = collections.Counter(_sample_id(d, s, c)[0] for d, s, c, _ in composite["listed"])
    per_subject["samm/032"] += extra
    assert {name: f["test_size"] for name, f in folds.items()} == dict(per_subject)
    assert all(f["train_size"] == 441 + extra - f["test_size"] for f in folds.values())
    assert summary["warnings"] == []
    # One note, that of the clips taking part: no label disagrees with the list.
    assert len(summary["notes"]) == 1 and str(441 + extra) in summary["notes"][0]
