"""`describe` counts against independent counting; `mer-jax data describe` on built datasets."""

import argparse
import collections
import json

import numpy as np
import pytest

from mer_jax import protocols
from mer_jax.data import describe
from tests.data_builders import fixtures

CLASSES = ("negative", "positive", "surprise")


def _pooled(seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for dataset, n_subjects in (("casme2", 5), ("samm", 4), ("smic", 3)):
        for s in range(n_subjects):
            for _ in range(rng.integers(1, 6)):
                rows.append((dataset, f"{dataset}/s{s}", int(rng.integers(0, 3))))
    rows.append(("samm", "samm/s9", 2))  # Only SAMM has a subject with surprise only.
    datasets = np.array([r[0] for r in rows])
    subjects = np.array([r[1] for r in rows])
    labels = np.array([r[2] for r in rows], np.int32)
    return datasets, subjects, labels


def _expected(table, subjects, labels, datasets):
    """The same counts by plain loops over samples."""
    n = len(subjects)
    folds = []
    for f in range(table.num_folds):
        train = [i for i in range(n) if table.train_mask[f, i]]
        test = [i for i in range(n) if table.test_mask[f, i]]
        folds.append(
            {
                "train_size": len(train),
                "test_size": len(test),
                "train_subjects": len({subjects[i] for i in train}),
                "test_subjects": sorted({subjects[i] for i in test}),
                "train_class_counts": {
                    c: sum(labels[i] == k for i in train) for k, c in enumerate(CLASSES)
                },
                "test_class_counts": {
                    c: sum(labels[i] == k for i in test) for k, c in enumerate(CLASSES)
                },
                "train_datasets": dict(
                    sorted(collections.Counter(datasets[i] for i in train).items())
                ),
                "test_datasets": dict(
                    sorted(collections.Counter(datasets[i] for i in test).items())
                ),
            }
        )
    used = [i for i in range(n) if table.train_mask[:, i].any() or table.test_mask[:, i].any()]
    tested = collections.Counter()
    for f in range(table.num_folds):
        for i in range(n):
            if table.test_mask[f, i]:
                tested[i] += 1
    by_dataset = {}
    for d in sorted(set(datasets)):
        mine = [i for i in used if datasets[i] == d]
        by_dataset[d] = {
            "samples": sum(datasets == d),
            "used": len(mine),
            "subjects": len({subjects[i] for i in mine}),
            "class_counts": {c: sum(labels[i] == k for i in mine) for k, c in enumerate(CLASSES)},
            "tested": sum(tested[i] for i in range(n) if datasets[i] == d),
        }
    pooled = {
        "samples": len(used),
        "unused": n - len(used),
        "subjects": len({subjects[i] for i in used}),
        "class_counts": {c: sum(labels[i] == k for i in used) for k, c in enumerate(CLASSES)},
        "tested": sum(tested.values()),
        "tested_class_counts": {
            c: sum(t for i, t in tested.items() if labels[i] == k) for k, c in enumerate(CLASSES)
        },
    }
    return folds, by_dataset, pooled


@pytest.mark.parametrize("protocol", ["loso", "cde_casme2_samm", "hde"])
def test_describe_counts_match_loops(protocol):
    datasets, subjects, labels = _pooled()
    table = protocols.make_folds(protocol, subjects, datasets=datasets)
    summary = describe.describe(table, subjects, labels, CLASSES, datasets, protocol=protocol)
    folds, by_dataset, pooled = _expected(table, subjects, labels, datasets)
    assert summary["num_folds"] == table.num_folds and summary["num_samples"] == len(subjects)
    for got, want, name in zip(summary["folds"], folds, table.names):
        assert got["name"] == name
        assert {k: got[k] for k in want} == want
    assert summary["by_dataset"] == by_dataset
    assert summary["pooled"] == pooled
    assert summary["per_fold_metrics"] == (protocol == "hde")
    assert summary["per_task_metrics"] is False
    json.dumps(summary)  # JSON-ready: plain ints, strs, lists, dicts.
    text = describe.render(summary)
    all_row = next(line for line in text.splitlines() if line.startswith("all "))
    assert all_row.split() == [
        "all",
        str(len(subjects)),
        str(pooled["samples"]),
        str(pooled["subjects"]),
        *(str(pooled["class_counts"][c]) for c in CLASSES),
        str(pooled["tested"]),
    ]
    for fold, want in zip(table.names, folds):
        row = next(line for line in text.splitlines() if line.startswith(f"{fold} "))
        counts = " / ".join(str(want["test_class_counts"][c]) for c in CLASSES)
        assert row.split()[1:4] == [
            str(want["train_size"]),
            str(want["test_size"]),
            str(len(want["test_subjects"])),
        ]
        assert row.endswith(counts)


def test_describe_warns_about_untrained_untested_and_repeated():
    subjects = np.array(["a", "a", "b", "c"])
    datasets = np.array(["x"] * 4)
    labels = np.array([0, 0, 1, 0])
    # Fold 'b' tests class 1 which nothing else has; 'surprise' is never tested.
    table = protocols.loso(subjects)
    warnings = describe.describe(table, subjects, labels, CLASSES, datasets)["warnings"]
    assert "fold b tests class(es) ['positive'] it never trains on" in warnings
    assert "class(es) ['surprise'] are never tested: metrics cannot score them" in warnings
    # A pooled table that tests sample 3 twice.
    test = np.array([[False, False, True, True], [True, False, False, True]])
    train = np.array([[True, True, False, False], [False, False, True, False]])
    twice = protocols.FoldTable(("f0", "f1"), train, test)
    summary = describe.describe(twice, ["a", "a", "b", "c"], labels, CLASSES, datasets)
    assert "1 samples are tested in several folds of a pooled protocol" in summary["warnings"]
    assert summary["pooled"]["tested"] == 4
    with pytest.raises(ValueError, match=r"labels\[2\] = 3 is not an index"):
        describe.describe(table, subjects, [0, 0, 3, 0], CLASSES, datasets)
    with pytest.raises(ValueError, match="`datasets` has 3 entries"):
        describe.describe(table, subjects, labels, CLASSES, datasets[:3])


def _cli(argv):
    parser = argparse.ArgumentParser()
    describe.add_parser(parser.add_subparsers(dest="data_command"))
    args = parser.parse_args(argv)
    return args.fn(args)


def test_cli_describes_a_built_synthetic_dataset(tfds_dir, capsys):
    # synthetic_me/tiny: SMIC-like 2 subjects x (3, 3, 3) clips, SAMM-like 2 x (5, 5, 5).
    assert _cli(["describe", "synthetic_me/tiny", "--data-dir", tfds_dir, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["protocol"] == "loso" and summary["num_folds"] == 4
    assert summary["class_names"] == list(CLASSES)
    assert summary["pooled"]["class_counts"] == {"negative": 8, "positive": 8, "surprise": 8}
    assert summary["by_dataset"]["smic"]["class_counts"] == dict.fromkeys(CLASSES, 3)
    assert summary["by_dataset"]["samm"]["class_counts"] == dict.fromkeys(CLASSES, 5)
    for source, clips in (("smic", 9), ("samm", 15)):
        mine = [f for f in summary["folds"] if f["name"].startswith(f"{source}/")]
        assert len(mine) == 2 and sum(f["test_size"] for f in mine) == clips
        assert all(f["train_size"] == 24 - f["test_size"] for f in mine)
    # The CDE list's clips are not in a synthetic set: the error names one.
    with pytest.raises(ValueError, match=r"441 listed clip\(s\) not in the sample list"):
        _cli(
            ["describe", "synthetic_me/tiny", "--data-dir", tfds_dir, "--protocol", "cde_megc2019"]
        )
    with pytest.raises(ValueError, match="no samples of source dataset 'casme2'"):
        _cli(["describe", "synthetic_me/tiny", "--data-dir", tfds_dir, "--protocol", "hde"])


def test_cli_reads_real_builders_through_the_protocols_label_scheme(tmp_path, capsys):
    import tensorflow_datasets as tfds

    import data_builders

    data_builders.import_builder("smic")
    fixtures.write_smic(tmp_path / "in")
    config = tfds.download.DownloadConfig(manual_dir=str(tmp_path / "in"))
    for name in ("smic/hs_112", "smic/vis_112"):
        builder = tfds.builder(name, data_dir=str(tmp_path / "data"))
        builder.download_and_prepare(file_format="array_record", download_config=config)
    capsys.readouterr()  # What the builds printed.
    argv = ["describe", "smic/hs_112", "smic/vis_112", "--data-dir", str(tmp_path / "data")]
    # No 'label' feature: the protocol's scheme (cdmer_3class) labels the clips.
    assert _cli([*argv, "--protocol", "cdmer_smic_vis_to_smic_hs", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    (fold,) = summary["folds"]
    # fixtures.SMIC_CLIPS: HS s1 ne/po/sur, s2 ne/ne; VIS s1 po/sur.
    assert fold["name"] == "Exp.2: V->H"
    assert fold["train_datasets"] == {"smic_vis": 2} and fold["test_datasets"] == {"smic": 5}
    assert fold["test_class_counts"] == {"negative": 3, "positive": 1, "surprise": 1}
    assert fold["train_class_counts"] == {"negative": 0, "positive": 1, "surprise": 1}
    assert fold["test_subjects"] == ["smic/s1", "smic/s2"]
    assert fold["untrained_classes"] == ["negative"]
    # LOSO needs a scheme: none is implied, so the error lists them.
    with pytest.raises(ValueError, match="stores no 'label', only emotions: choose a label scheme"):
        _cli([*argv[:2], *argv[3:]])
    assert _cli([*argv[:2], *argv[3:], "--labels", "smic_3class"]) == 0
    text = capsys.readouterr().out
    assert "2 folds over 5 of 5 samples, 2 subjects (metrics pooled over folds)" in text


def test_describe_says_a_five_fold_task_is_scored_on_its_pooled_folds():
    """Seed 002 CDMER: a task's five target folds are scored together (metrics.by_task)."""
    rng = np.random.default_rng(0)
    datasets = np.array(["casme2"] * 20 + ["smic"] * 20)
    subjects = np.array([f"{d}/s{i % 10}" for i, d in enumerate(datasets)])
    labels = rng.integers(0, 3, 40)
    table = protocols.make_folds(
        "cdmer_5fold_casme2_to_smic_hs", subjects, datasets=datasets, labels=labels
    )
    summary = describe.describe(table, subjects, labels, CLASSES, datasets)
    assert summary["per_task_metrics"] is True
    assert "(metrics per task, each task's folds pooled)" in describe.render(summary)
