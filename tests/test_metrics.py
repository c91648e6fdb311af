"""Tests for mer_jax.metrics against scikit-learn and hand-worked examples."""

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from mer_jax import metrics


def _names(num_classes):
    return [f"class{k}" for k in range(num_classes)]


def _random_labels(seed, num_classes, *, drop_true_classes=0):
    """Random (y_true, y_pred); ``drop_true_classes`` classes never occur in y_true."""
    rng = np.random.default_rng(seed)
    num_samples = int(rng.integers(5, 120))
    true_classes = rng.permutation(num_classes)[: num_classes - drop_true_classes]
    y_true = rng.choice(true_classes, size=num_samples)
    # Mostly correct, some random, so every regime of TP/FP/FN appears.
    y_pred = np.where(
        rng.random(num_samples) < 0.5, y_true, rng.integers(0, num_classes, num_samples)
    )
    return y_true, y_pred


def _assert_matches_sklearn(result, y_true, y_pred, num_classes):
    labels = list(range(num_classes))
    present = sorted(set(np.asarray(y_true).tolist()))
    absent = [k for k in labels if k not in present]
    names = _names(num_classes)

    assert result["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert result["war"] == result["accuracy"]
    assert result["uar"] == pytest.approx(
        skm.recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    )
    assert result["uf1"] == pytest.approx(
        skm.f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    )
    np.testing.assert_array_equal(
        result["confusion_matrix"], skm.confusion_matrix(y_true, y_pred, labels=labels)
    )
    assert result["num_samples"] == len(y_true)
    assert result["class_names"] == names
    assert result["absent_classes"] == [names[k] for k in absent]

    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    for k, name in enumerate(names):
        stats = result["per_class"][name]
        assert stats["support"] == support[k]
        assert stats["precision"] == pytest.approx(precision[k])
        if k in absent:
            assert stats["recall"] is None and stats["f1"] is None
        else:
            assert stats["recall"] == pytest.approx(recall[k])
            assert stats["f1"] == pytest.approx(f1[k])


@pytest.mark.parametrize("num_classes", [2, 3, 5, 7])
@pytest.mark.parametrize("seed", range(12))
def test_classification_metrics_match_sklearn(seed, num_classes):
    y_true, y_pred = _random_labels(seed, num_classes)
    result = metrics.classification_metrics(y_true, y_pred, _names(num_classes))
    _assert_matches_sklearn(result, y_true, y_pred, num_classes)


@pytest.mark.parametrize("num_classes", [3, 5, 7])
@pytest.mark.parametrize("seed", range(8))
def test_absent_true_classes_still_predicted_match_sklearn(seed, num_classes):
    y_true, y_pred = _random_labels(seed, num_classes, drop_true_classes=1 + seed % 2)
    # Force at least one prediction of an absent class.
    absent = sorted(set(range(num_classes)) - set(y_true.tolist()))
    y_pred[0] = absent[0]
    result = metrics.classification_metrics(y_true, y_pred, _names(num_classes))
    assert len(result["absent_classes"]) == 1 + seed % 2
    _assert_matches_sklearn(result, y_true, y_pred, num_classes)


def test_absent_class_by_hand():
    # Class 'c' never occurs in y_true but is predicted once for a true 'a'.
    y_true = [0, 0, 1, 1]
    y_pred = [0, 2, 1, 0]
    result = metrics.classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert result["absent_classes"] == ["c"]
    assert result["accuracy"] == pytest.approx(0.5)
    # recall a = 1/2, b = 1/2 -> UAR over present classes only = 0.5 (not 1/3).
    assert result["uar"] == pytest.approx(0.5)
    # F1 a = 2*1/(2*1+1+1) = 0.5; F1 b = 2*1/(2*1+0+1) = 2/3.
    assert result["uf1"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert result["per_class"]["c"] == {"support": 0, "precision": 0.0, "recall": None, "f1": None}
    assert result["confusion_matrix"] == [[1, 0, 1], [1, 1, 0], [0, 0, 0]]


def test_strict_raises_naming_absent_classes():
    with pytest.raises(ValueError, match="surprise"):
        metrics.classification_metrics(
            [0, 1, 0], [0, 1, 1], ["negative", "positive", "surprise"], strict=True
        )
    with pytest.raises(ValueError, match="surprise"):
        metrics.pooled_metrics(
            [0, 1, 0], [0, 1, 2], ["negative", "positive", "surprise"], strict=True
        )
    # Nothing absent: strict is silent.
    result = metrics.classification_metrics([0, 1, 2], [0, 1, 1], ["n", "p", "s"], strict=True)
    assert result["absent_classes"] == []


def test_never_predicted_class_has_zero_precision():
    result = metrics.classification_metrics([0, 1, 1], [0, 0, 0], ["a", "b"])
    assert result["per_class"]["b"]["precision"] == 0.0
    assert result["per_class"]["b"]["f1"] == 0.0
    assert result["per_class"]["b"]["recall"] == 0.0


def test_confusion_matrix_is_int64_and_rows_are_true_labels():
    cm = metrics.confusion_matrix(np.array([0, 0, 2]), np.array([1, 1, 2]), 3)
    assert cm.dtype == np.int64 and cm.shape == (3, 3)
    np.testing.assert_array_equal(cm, [[0, 2, 0], [0, 0, 0], [0, 0, 1]])


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        ([0, 1, 3], [0, 1, 1], r"y_true\[2\] = 3"),
        ([0, 1, 2], [0, -1, 1], r"y_pred\[1\] = -1"),
        ([0, 1, 2], [0, 1, 7], r"y_pred\[2\] = 7"),
        ([0.0, 1.5, 2.0], [0, 1, 1], r"position 1 has value .*1\.5"),
        ([0, 1], [0, 1, 1], "differ in length"),
        ([], [], "empty"),
        ([[0, 1]], [[0, 1]], "1-D"),
        ([True, False], [1, 0], "integer"),
    ],
)
def test_invalid_labels_raise(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        metrics.classification_metrics(y_true, y_pred, ["a", "b", "c"])


def test_duplicate_class_names_raise():
    with pytest.raises(ValueError, match="duplicates"):
        metrics.classification_metrics([0, 1], [0, 1], ["a", "a"])


def test_result_is_plain_json():
    y_true, y_pred = _random_labels(0, 4, drop_true_classes=1)
    result = metrics.pooled_metrics(
        y_true.astype(np.int32), y_pred, _names(4), groups=["x"] * len(y_true)
    )

    def check(value):
        if isinstance(value, dict):
            for key, item in value.items():
                assert type(key) is str
                check(item)
        elif isinstance(value, list):
            for item in value:
                check(item)
        else:
            assert value is None or type(value) in (int, float, str), type(value)

    check(result)
    assert json.loads(json.dumps(result)) == result


@pytest.mark.parametrize("seed", range(6))
def test_pooled_metrics_by_group_matches_sklearn_per_group(seed):
    num_classes = 3
    y_true, y_pred = _random_labels(seed, num_classes)
    rng = np.random.default_rng(100 + seed)
    sources = np.array(["smic", "casme2", "samm"])
    groups = sources[rng.integers(0, 3, len(y_true))].tolist()
    groups[:3] = ["smic", "casme2", "samm"]  # Every group non-empty.

    result = metrics.pooled_metrics(y_true, y_pred, _names(num_classes), groups=groups)
    _assert_matches_sklearn(result["overall"], y_true, y_pred, num_classes)
    assert list(result["by_group"]) == ["casme2", "samm", "smic"]
    group_array = np.asarray(groups)
    for name, group_result in result["by_group"].items():
        mask = group_array == name
        _assert_matches_sklearn(group_result, y_true[mask], y_pred[mask], num_classes)
        assert group_result["num_samples"] == int(mask.sum())


def test_pooled_metrics_group_with_missing_class_reports_it():
    result = metrics.pooled_metrics(
        [0, 1, 2, 0, 1], [0, 1, 2, 2, 1], ["n", "p", "s"], groups=["a", "a", "a", "b", "b"]
    )
    assert result["overall"]["absent_classes"] == []
    assert result["by_group"]["b"]["absent_classes"] == ["s"]
    assert result["by_group"]["a"]["accuracy"] == 1.0


def test_pooled_metrics_without_groups_and_bad_groups():
    result = metrics.pooled_metrics([0, 1], [0, 0], ["a", "b"])
    assert set(result) == {"overall"}
    with pytest.raises(ValueError, match="groups"):
        metrics.pooled_metrics([0, 1], [0, 0], ["a", "b"], groups=["x"])
