"""The papers' recipe end to end: holdout pre-training -> exported weights -> LOSO fine-tuning
from the pre-training work dir (`init.pretrained`, mer_jax/finetune.py), and many seeds.

One tiny pre-training (quickstart :tiny without attention units, protocol holdout) serves
the file; fine-tuning adds the micro-attention units, which must start fresh and be named.
"""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from mer_jax import cli, engine, errors, export, finetune, models, sweep
from mer_jax import config as config_lib

ROOT = Path(__file__).resolve().parents[1]
FINETUNE = ROOT / "experiments" / "micro_attention" / "finetune_casme2.py"
ATTENTION_LEAVES = [
    f"params/stage{s}_block1/micro_attention/embed/kernel" for s in range(1, 5)
]  # the units seed 000 adds at fine-tuning (models/micro_attention.py)


def _quiet(message):
    del message


def _tiny(tfds_dir, **overrides):
    config = config_lib.load(f"{ROOT / 'experiments' / 'quickstart.py'}:tiny")
    config.unlock()
    config.data_dir, config.report.attention_maps = tfds_dir, 0
    config.train.checkpoint_every = 0
    for key, value in overrides.items():
        node, *path = key.split(".")
        target = config
        for part in [node, *path][:-1]:
            target = target[part]
        target[key.split(".")[-1]] = value
    return config


@pytest.fixture(scope="module")
def pretrained(tfds_dir, tmp_path_factory):
    """(work dir, results) of a finished holdout pre-training without attention units."""
    config = _tiny(tfds_dir)
    config.protocol = "holdout"
    config.train.validation_fraction = 0.25
    config.train.early_stopping = 2
    config.model_kwargs.attention = False
    workdir = tmp_path_factory.mktemp("pretrain")
    return workdir, sweep.run(config, workdir, progress=False, log=_quiet)


def test_holdout_pretraining_exports_its_best_validation_weights(pretrained):
    workdir, results = pretrained
    assert results["protocol"] == "holdout" and results["num_folds"] == 1
    assert results["validation"]["kind"] == "holdout"
    (fold,) = results["folds"]
    assert fold["validation_subjects"] and fold["best_epoch"] >= 1
    exported = export.load(workdir)
    assert exported.fold_names == ("validation",)


def test_finetuning_starts_from_the_exported_weights_and_names_the_new_leaves(
    pretrained, tfds_dir, tmp_path
):
    workdir, _ = pretrained
    config = _tiny(tfds_dir)
    config.init.pretrained = str(workdir)
    config.train.epochs = 1
    lines = []
    state = sweep.load_folds(config, log=_quiet, progress=False)
    setup = sweep.build_training(config, state.schedule, state.dataset, log=lines.append)
    assert setup.initial.record["fresh_leaves"] == ATTENTION_LEAVES
    assert any("initialised fresh" in line and ATTENTION_LEAVES[0] in line for line in lines)
    # Step 0: every fold's initial state holds the exported leaves, the new ones random.
    fns = engine.make_fold_fns(
        setup.model, setup.tx, state.schedule, setup.aug, state.dataset.images.shape[1:]
    )
    init = jax.jit(jax.vmap(lambda key: fns.init(key, setup.initial.variables)))
    start = init(state.folds.key)
    first = finetune.flat({"params": start.params, **start.model_state})
    saved = finetune.flat(jax.tree_util.tree_map(lambda x: x[0], export.load(workdir).variables))
    for name, value in saved.items():
        for f in range(len(state.folds.key)):
            np.testing.assert_array_equal(np.asarray(first[name][f]), value, err_msg=name)
    for name in ATTENTION_LEAVES:  # fresh: each fold's own random draw, not zeros
        assert name not in saved and np.any(np.asarray(first[name][0]) != 0)
    # The whole sweep reports the same in results.json.
    results = sweep.run(config, tmp_path, progress=False, log=_quiet)
    assert results["init"]["fresh_leaves"] == ATTENTION_LEAVES
    assert results["init"]["loaded_leaves"] == len(saved)


def test_a_new_classifier_when_the_classes_differ(pretrained, monkeypatch):
    workdir, _ = pretrained
    spec = models.spec("micro_attention")
    names = export.load(workdir).class_names
    kept, _ = finetune.from_workdir(str(workdir), names, spec, log=_quiet)
    assert "params/head/kernel" in kept
    lines = []
    other, _ = finetune.from_workdir(str(workdir), ("a", "b"), spec, log=lines.append)
    assert set(kept) - set(other) == {"params/head/kernel", "params/head/bias"}
    assert "a new classifier" in lines[0]


def test_wrong_leaves_and_ambiguous_work_dirs_are_one_line_errors(pretrained, tfds_dir, tmp_path):
    workdir, _ = pretrained
    wider = _tiny(tfds_dir)
    wider.init.pretrained = str(workdir)
    wider.model_kwargs.width = 8  # every kernel's shape differs
    state = sweep.load_folds(wider, log=_quiet, progress=False)
    with pytest.raises(errors.UserError, match=r"leaf \S+ of .* has shape \(\d+,\), the model's"):
        sweep.build_training(wider, state.schedule, state.dataset, log=_quiet)
    other = _tiny(tfds_dir, model="dense_mixed_attention")
    other.model_kwargs = config_lib.base().model_kwargs
    other.init.pretrained = str(workdir)
    with pytest.raises(errors.UserError, match=r"leaf \S+ of .* is not in the model"):
        dense = models.build("dense_mixed_attention", 3, growth_rate=4, layers_per_block=(1, 1),
                             head_size=2)  # fmt: skip
        finetune.initial_weights(
            other, dense, models.spec("dense_mixed_attention"),
            ("negative", "positive", "surprise"), models.variable_shapes(dense, (28, 28, 1)),
            log=_quiet,
        )  # fmt: skip
    loso = _tiny(tfds_dir, **{"train.epochs": 1})
    sweep.run(loso, tmp_path / "loso", progress=False, log=_quiet)
    with pytest.raises(errors.UserError, match="fine-tuning starts from one"):
        finetune.from_workdir(str(tmp_path / "loso"), ("x",), models.spec("micro_attention"))
    with pytest.raises(errors.UserError, match="without exported weights"):
        config_lib.check(_tiny(tfds_dir, **{"init.pretrained": str(tmp_path)}))


def test_frozen_stages_never_change(pretrained, tfds_dir, tmp_path):
    workdir, _ = pretrained
    config = _tiny(tfds_dir, **{"init.pretrained": str(workdir), "init.freeze": "^stem|input_bn"})
    config.train.epochs = 1
    results = sweep.run(config, tmp_path, progress=False, log=_quiet)
    assert results["init"]["frozen"] == ["input_bn", "stem"]
    before = finetune.flat(export.load(workdir).variables)
    after = finetune.flat(export.load(tmp_path).variables)
    np.testing.assert_array_equal(after["params/stem/kernel"][1], before["params/stem/kernel"][0])
    assert not np.array_equal(after["params/head/kernel"][1], before["params/head/kernel"][0])
    bad = _tiny(tfds_dir, **{"init.freeze": "no_such_module"})
    state = sweep.load_folds(bad, log=_quiet, progress=False)
    with pytest.raises(errors.UserError, match="'init.freeze': 'no_such_module' matches no"):
        sweep.build_training(bad, state.schedule, state.dataset, log=_quiet)


def test_synthetic_finetune_config_with_seeds_writes_mean_and_sd(pretrained, tfds_dir, tmp_path):
    """`mer-jax sweep <fine-tune config>:synthetic,smoke --seeds 2`: results.json holds every
    headline metric's mean and sample sd over the seeds, and each seed's own."""
    workdir, _ = pretrained
    code = cli.main([
        "sweep", f"{FINETUNE}:synthetic,smoke", "--seeds", "2", "--no-progress",
        "--workdir", str(tmp_path / "run"), "--no-compile-cache",
        "--set", f"init.pretrained={workdir}", "--set", f"data_dir={tfds_dir}",
        "--set", "report.attention_maps=0", "--set", "train.validation_subjects=1",
    ])  # fmt: skip
    assert code in (0, 3)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["seeds"] == [0, 1] and len(results["per_seed"]) == 2
    for key in ("uf1", "uar", "accuracy", "war"):
        values = [r["metrics"][key] for r in results["per_seed"]]
        assert results["metrics"][key] == pytest.approx(np.mean(values))
        assert results["metrics_sd"][key] == pytest.approx(np.std(values, ddof=1))
    assert {f["seed"] for f in results["folds"]} == {0, 1}
    assert results["init"]["fresh_leaves"] == ATTENTION_LEAVES
    assert (tmp_path / "run" / "seeds.png").is_file()
    names = export.load(tmp_path / "run").fold_names
    assert names[0].endswith("(seed 0)") and names[-1].endswith("(seed 1)")


def test_default_work_dirs_follow_the_config_path_and_argument():
    assert sweep.default_workdir("experiments/quickstart.py") == Path("runs/quickstart")
    assert sweep.default_workdir("experiments/quickstart.py:tiny") == Path("runs/quickstart-tiny")
    assert sweep.default_workdir(f"{FINETUNE}:synthetic,smoke") == Path(
        "runs/micro_attention/finetune_casme2-synthetic-smoke"
    )
    # What the fine-tuning configs read is where their pre-training writes by default.
    for pre, fine in (("pretrain_macro.py:synthetic", "finetune_casme2.py:synthetic"),
                      ("pretrain_macro.py", "finetune_casme2.py")):  # fmt: skip
        config = config_lib.load(str(FINETUNE.parent / fine))
        assert Path(config.init.pretrained) == sweep.default_workdir(
            f"experiments/micro_attention/{pre}"
        )


def test_validation_keys_that_contradict_are_refused(tfds_dir):
    holdout = _tiny(tfds_dir, protocol="holdout", **{"train.validation_subjects": 1})
    with pytest.raises(errors.UserError, match="'train.validation_subjects': 1 is not 0 with"):
        config_lib.check(holdout)
    assert cli.main(["sweep", f"{FINETUNE}:synthetic,smoke", "--seeds", "0"]) == 2
    quick = config_lib.load(str(ROOT / "experiments" / "quickstart.py"))  # seeds (0, 1, 2)
    quick.seed = 1  # would be ignored without a word
    with pytest.raises(errors.UserError, match="'seed': 1 is not used with 'seeds'"):
        config_lib.check(quick)
    quick.seeds = (1,)
    config_lib.check(quick)
