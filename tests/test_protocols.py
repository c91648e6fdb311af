"""LOSO fold tables and the host-side leakage check."""

import numpy as np
import pytest

from mer_jax import protocols


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
    with pytest.raises(KeyError, match="config key 'protocol'"):
        protocols.make_folds("kfold", ["a", "b"])
    with pytest.raises(ValueError, match="at least two subjects"):
        protocols.loso(["a", "a"])
