"""Seed 002, Table 4: CDMER Type-II tasks (Exp.7-12), UF1 and accuracy (Sec. 4.5, 6.1.3).

"In each experiment of CDMER, two of four databases are chosen, where one is used as source
database and another as target database" (Table 10: Exp.7: C->H, Exp.8: H->C, Exp.9:
C->V, Exp.10: V->C, Exp.11: C->N, Exp.12: N->C; C = CASME II); classes of Table 11
(negative = disgust, sadness, fear for CASME II: `cdmer_3class`); "five-fold cross
validation" read as protocol `cdmer_5fold_type2` (each task's target in five class-stratified
folds of whole subjects, every fold trained on all of the source, a task's five folds pooled
and scored together: docs/papers.md, seed 002); SGD, lr 0.0005, momentum 0.8, batch 32,
lambda 0.85, mean of ten seeds (`mer_jax.recipes.feature_refinement`, 'cdmer'). Rows: the
tasks `Exp7`..`Exp12` (`experiments.fold_key` of 'Exp.7: ...') and 'all', the mean
over the tasks (the table's "Average"). The descriptors' rows (LBP-TOP, LBP-SIP, LPQ-TOP,
HOG-TOP, HIGO-TOP, C3D), cited from [43], are not run here. One task alone:
`--set protocol=cdmer_5fold_<source>_to_<target>`.

    mer-jax experiments run experiments/feature_refinement/table4_cdmer_type2.py
    mer-jax experiments run experiments/feature_refinement/table4_cdmer_type2.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import feature_refinement as recipe

VARIANTS = ("fr",)
# Table 4, FR (Ours) (UF1 / Acc).
FIGURES = {
    "fr": {
        "Exp7": {"uf1": 0.467, "accuracy": 0.4905},  # C->H
        "Exp8": {"uf1": 0.4883, "accuracy": 0.538},  # H->C
        "Exp9": {"uf1": 0.5678, "accuracy": 0.6101},  # C->V
        "Exp10": {"uf1": 0.5929, "accuracy": 0.6019},  # V->C
        "Exp11": {"uf1": 0.4399, "accuracy": 0.4823},  # C->N
        "Exp12": {"uf1": 0.5963, "accuracy": 0.6081},  # N->C
        "all": {"uf1": 0.5254, "accuracy": 0.5552},  # Average
    },
}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, "cdmer", ablation=variant, protocol="cdmer_5fold_type2")
    if synthetic:
        recipe.synthetic(c, "cdmer")
    c.paper.seed = "002"
    c.paper.table = "Table 4"
    c.paper.title = "CDMER Type-II (Exp.7-12), UF1 and accuracy"
    c.paper.variant = variant
    c.paper.runs = recipe.RUNS
    c.paper.metrics = ("uf1", "accuracy")
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
