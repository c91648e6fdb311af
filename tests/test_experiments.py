"""The paper tables as configs (mer_jax/experiments.py): every table config resolves without
training, the catalogue covers the five papers with their figures, the comparison puts the
paper's figure beside ours, and a few `:synthetic` tables run end to end."""

import json
import pathlib

import numpy as np
import pytest

import data_builders
from mer_jax import cli, experiments, label_schemes, models, protocols, sweep
from mer_jax import config as config_lib
from mer_jax.errors import UserError

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"


def _variants(path):
    return tuple(getattr(experiments.module_of(path), "VARIANTS", None) or ("",))


def _load(path, variant, synthetic=False):
    words = ",".join(w for w in (variant, "synthetic" if synthetic else "") if w)
    return config_lib.load(f"{path}:{words}" if words else str(path))


TABLES = [(p, v) for p in experiments.table_configs(EXPERIMENTS) for v in _variants(p)]
# Work dirs of the pre-training configs (and of their per-ablation variants, `ABLATIONS`).
PRETRAINING_DIRS = {
    str(sweep.default_workdir(str(p.relative_to(ROOT)) + arg))
    for p in EXPERIMENTS.rglob("pretrain*.py")
    for arg in (
        "",
        ":synthetic",
        *(":" + a for a in getattr(experiments.module_of(p), "ABLATIONS", ())),
    )
}


def test_catalogue_covers_the_five_papers_with_their_figures(capsys):
    assert cli.main(["experiments", "--json", "--dir", str(EXPERIMENTS)]) == 0
    rows = json.loads(capsys.readouterr().out)
    tables = {r["config"] for r in rows if r["seed"] != "baseline"}
    assert len(tables) >= 25  # seed 000 Tables 2, 4-6 and its pre-training, ... (issue 15)
    assert {r["seed"] for r in rows} >= {"000", "001", "002", "003", "004"}
    for config in tables:  # every table has figures (seed 003 Fig. 3: at n = 11 only)
        assert any(r["reported"] for r in rows if r["config"] == config), config
    for r in rows:
        for figures in r["reported"].values():
            assert figures and set(figures) <= set(r["metrics"]), r["config"]
        assert set(r["built"]) == set(r["datasets"])


def _check_dataset_names(config, where):
    """Every part of `config.dataset` is a registered builder config, and its label scheme
    maps that dataset (a synthetic corpus keeps its own labels)."""
    for part in config.dataset.split("+"):
        name, _, builder_config = part.partition("/")
        module = data_builders.import_builder(name)
        names = [c.name for c in module.Builder.BUILDER_CONFIGS]
        assert builder_config in names, f"{where}: {part} is not a builder config of {name}"
        scheme = config.input.label_scheme
        if scheme:
            assert name in label_schemes.SCHEMES[scheme].tables, f"{where}: {scheme} on {name}"


@pytest.mark.parametrize(
    "path,variant", TABLES, ids=[f"{p.parent.name}/{p.stem}:{v}" for p, v in TABLES]
)
def test_every_table_config_resolves(path, variant):
    where = f"{path.relative_to(ROOT)}:{variant}"
    for synthetic in (False, True):
        config = _load(path, variant, synthetic)
        pretrained = config.init.pretrained
        if pretrained:
            if not pretrained.endswith((".npz", ".pth", ".pt")):
                # A fine-tuning table starts from the work dir a pre-training table writes.
                assert pretrained in PRETRAINING_DIRS, f"{where}: init.pretrained {pretrained}"
            # (a weights file is the user's: AMAN's facial-expression ResNet-18)
            config.unlock()
            config.init.pretrained = ""
            config.init.random_frozen_trunk = True
        config_lib.check(config)  # keys, model, ablation kwargs, protocol, label scheme
        _check_dataset_names(config, where)
        assert config.protocol in protocols.PROTOCOLS
        spec = models.spec(config.model)
        spec.build(spec.num_classes, **config.model_kwargs)
        if not synthetic:
            assert config.paper.seed and config.paper.table, where
            pooled_megc = "megc2019" in config.dataset or config.dataset.count("+") == 2
            if pooled_megc and config.input.label_scheme == "megc2019_3class":
                assert config.protocol.startswith("cde_megc2019"), f"{where}: official list"


def test_arguments_refuse_unknown_words():
    assert experiments.arguments("t.py", None, ("a", "b")) == ("a", False)
    assert experiments.arguments("t.py", "b,synthetic", ("a", "b")) == ("b", True)
    with pytest.raises(ValueError, match="t.py: argument 'c'"):
        experiments.arguments("t.py", "c", ("a", "b"))
    with pytest.raises(ValueError, match="one variant"):
        experiments.arguments("t.py", "a,b", ("a", "b"))


def test_reported_figures_are_checked_by_key():
    config = config_lib.base()
    config.paper.reported = {"all": {"uar": 76.61}}
    with pytest.raises(UserError, match="'paper.reported.all.uar': 76.61 is not a fraction"):
        config_lib.check(config)
    config.paper.reported = {"all": {"recall": 0.5}}
    with pytest.raises(UserError, match="paper.reported.<row>.<metric>"):
        config_lib.check(config)


def test_comparison_puts_the_paper_beside_the_mean_and_sd_over_seeds():
    config = config_lib.base()
    config.paper.reported = {
        "all": {"uar": 0.7, "uf1": (0.6, 0.02)},
        "samm": {"uar": 0.5},
        "Exp1": {"uar": 0.4},
        "Exp7": {"uf1": 0.5},
    }
    fold_uar = [0.3, 0.5, 0.6]  # task Exp.1 in three seeds
    results = {
        "seeds": [0, 1, 2],
        "config": config_lib.flatten(config),
        "metrics": {"uar": 0.65, "uf1": 0.55},
        "metrics_sd": {"uar": 0.05, "uf1": 0.04},
        "metrics_by_source": {"samm": {"uar": 0.45}},
        "metrics_by_source_sd": {"samm": {"uar": 0.01}},
        "per_seed": [  # five-fold CDMER: a task's folds pooled per seed (metrics.by_task)
            {"seed": s, "metrics": {"by_task": {"Exp.7: C->H": {"uf1": u}}}}
            for s, u in enumerate((0.2, 0.4, 0.9))
        ],
        "folds": [
            {"seed": s, "subject": "Exp.1: H->V", "metrics": dict.fromkeys(experiments.HEADLINE, u)}
            for s, u in enumerate(fold_uar)
        ],
    }
    rows = {(r["row"], r["metric"]): r for r in experiments.comparison(results)}
    assert rows["all", "uar"] | {} == {
        "row": "all", "metric": "uar", "paper": 0.7, "paper_sd": None,
        "ours": 0.65, "ours_sd": 0.05, "seeds": 3,
    }  # fmt: skip
    assert (rows["all", "uf1"]["paper"], rows["all", "uf1"]["paper_sd"]) == (0.6, 0.02)
    assert (rows["samm", "uar"]["ours"], rows["samm", "uar"]["ours_sd"]) == (0.45, 0.01)
    assert rows["Exp1", "uar"]["ours"] == pytest.approx(np.mean(fold_uar))
    assert rows["Exp1", "uar"]["ours_sd"] == pytest.approx(np.std(fold_uar, ddof=1))
    assert rows["Exp7", "uf1"]["ours"] == pytest.approx(0.5)
    assert rows["Exp7", "uf1"]["ours_sd"] == pytest.approx(np.std((0.2, 0.4, 0.9), ddof=1))
    text = "\n".join(experiments.comparison_markdown(list(rows.values())))
    assert "| all | UAR | 0.7000 | 0.6500 ± 0.0500 | 3 |" in text


# Tiny sizes for the end-to-end runs: the recipe's keys stay, the corpus and widths shrink.
TINY = ("dataset=synthetic_me/tiny", "input.image_size=32", "augment.crop_size=28",
        "train.epochs=2", "train.batch_size=8", "report.attention_maps=0")  # fmt: skip


def test_a_table_runs_its_variants_in_one_job(tmp_path, tfds_dir):
    path = EXPERIMENTS / "micro_attention" / "table6_loso.py"
    overrides = (*TINY, "model_kwargs.width=4", f"data_dir={tfds_dir}")
    table = experiments.run_table(
        f"{path}:synthetic", tmp_path, variants=["casme2", "resnet10_casme2"],
        overrides=overrides, progress=False, log=lambda *a: None,
    )  # fmt: skip
    assert list(table["variants"]) == ["casme2", "resnet10_casme2"]
    for variant, attention in (("casme2", True), ("resnet10_casme2", False)):
        results = json.loads((tmp_path / variant / "results.json").read_text())
        assert results["config"]["model_kwargs.attention"] is attention
        rows = {(r["row"], r["metric"]): r for r in table["variants"][variant]["rows"]}
        assert rows["all", "uf1"]["ours"] == pytest.approx(results["metrics"]["uf1"])
        assert (
            rows["all", "accuracy"]["paper"] == {"casme2": 0.659, "resnet10_casme2": 0.622}[variant]
        )
        summary = (tmp_path / variant / "summary.md").read_text()
        assert "## Paper vs ours" in summary
    text = (tmp_path / "table.md").read_text()
    assert "| resnet10_casme2 | all | Acc | 0.6220 |" in text


def test_summary_shows_each_task_as_mean_and_sd_over_seeds():
    from mer_jax import report_markdown

    def task(uar):
        return {k: uar for k in experiments.HEADLINE} | {"num_samples": 10, "absent_classes": []}

    results = {
        "seeds": [0, 1],
        "metrics": {"uar": 0.5},
        "per_seed": [
            {"seed": 0, "metrics": {"by_task": {"Exp.7: C->H": task(0.25)}}},
            {"seed": 1, "metrics": {"by_task": {"Exp.7: C->H": task(0.75)}}},
        ],
    }
    text = report_markdown.summary_markdown(results)
    sd = np.std([0.25, 0.75], ddof=1)
    assert "## Per task (mean ± sd over 2 seeds)" in text
    assert f"| Exp.7: C->H | 0.5000 ± {sd:.4f} |" in text


def test_markdown_catalogue_and_a_bad_variant_is_one_line(capsys):
    assert cli.main(["experiments", "--markdown", "--dir", str(EXPERIMENTS)]) == 0
    lines = capsys.readouterr().out.splitlines()
    configs = {p for p, _ in TABLES}
    assert lines[0].startswith("| seed | table | config |") and len(lines) == 2 + len(configs)
    path = EXPERIMENTS / "micro_attention" / "table6_loso.py"
    assert cli.main(["experiments", "run", f"{path}:synthetic", "--variants", "cifar"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"mer-jax: error: --variants: 'cifar' is not a variant of {path} ("
        + ", ".join(experiments.module_of(path).VARIANTS)
        + ")"
    ]
