"""Seed 002, Table 3: CDMER Type-I tasks (Exp.1-6), UF1 and accuracy (Sec. 4.5, 6.1.3).

"In each experiment of CDMER, two of four databases are chosen, where one is used as source
database and another as target database" (Table 10: Exp.1: H->V, Exp.2: V->H, Exp.3:
H->N, Exp.4: N->H, Exp.5: V->N, Exp.6: N->V; H, V, N = SMIC-HS, -VIS, -NIR); classes of
Table 11 (negative, positive, surprise: `cdmer_3class`); "five-fold cross
validation" read as protocol `cdmer_5fold_type1` (each task's target in five class-stratified
folds of whole subjects, every fold trained on all of the source, a task's five folds pooled
and scored together: docs/papers.md, seed 002); SGD, lr 0.0005, momentum 0.8, batch 32,
lambda 0.85, mean of ten seeds (`mer_jax.recipes.feature_refinement`, 'cdmer'). Rows: the
tasks `Exp1`..`Exp6` (`experiments.fold_key` of 'Exp.1: ...') and 'all', the mean
over the tasks (the table's "Average"). The descriptors' rows (LBP-TOP, LBP-SIP, LPQ-TOP,
HOG-TOP, HIGO-TOP, C3D), cited from [43], are not run here. One task alone:
`--set protocol=cdmer_5fold_<source>_to_<target>`.

    mer-jax experiments run experiments/feature_refinement/table3_cdmer_type1.py
    mer-jax experiments run experiments/feature_refinement/table3_cdmer_type1.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import feature_refinement as recipe

# Type-I tasks are among the SMIC cameras only.
SMIC_CAMERAS = ("smic", "smic_vis", "smic_nir")
VARIANTS = ("fr",)
# Table 3, FR (Ours) (UF1 / Acc).
FIGURES = {
    "fr": {
        "Exp1": {"uf1": 0.7065, "accuracy": 0.7149},  # H->V
        "Exp2": {"uf1": 0.5971, "accuracy": 0.5968},  # V->H
        "Exp3": {"uf1": 0.5335, "accuracy": 0.5673},  # H->N
        "Exp4": {"uf1": 0.5137, "accuracy": 0.52},  # N->H
        "Exp5": {"uf1": 0.7934, "accuracy": 0.791},  # V->N
        "Exp6": {"uf1": 0.7921, "accuracy": 0.7921},  # N->V
        "all": {"uf1": 0.6561, "accuracy": 0.6636},  # Average
    },
}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(
        c, "cdmer", ablation=variant, protocol="cdmer_5fold_type1", datasets=SMIC_CAMERAS
    )
    if synthetic:
        recipe.synthetic(c, "cdmer")
    c.paper.seed = "002"
    c.paper.table = "Table 3"
    c.paper.title = "CDMER Type-I (Exp.1-6), UF1 and accuracy"
    c.paper.variant = variant
    c.paper.runs = recipe.RUNS
    c.paper.metrics = ("uf1", "accuracy")
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
