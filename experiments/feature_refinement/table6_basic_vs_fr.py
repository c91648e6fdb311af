"""Seed 002, Table 6: Basic Inception against FR on the CDE composite, UF1 and UAR (Sec. 4.7).

"Table 6 reports comparison results in terms of UF1 and UAR. It is seen that with
expression-specific feature learning and fusion module FR obtains the significant
improvement": the CDE training of Table 1 (`mer_jax.recipes.feature_refinement`, 'cde':
protocol `cde_megc2019_442`, SGD without momentum, batch 32, lr 0.001, lambda 0.85, ten
seeds) for the backbone alone (`basic_inception`: no proposal module) and for FR (`fr`).
The per-class accuracies of Fig. 3 (FR: 83.60%, 70.64%, 80.72% for negative, positive,
surprise) are in each run's confusion matrix.

    mer-jax experiments run experiments/feature_refinement/table6_basic_vs_fr.py
    mer-jax experiments run experiments/feature_refinement/table6_basic_vs_fr.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import feature_refinement as recipe

VARIANTS = ("fr", "basic_inception")
# The composite row of each variant (recipe.CDE_FIGURES).
FIGURES = {v: {"all": recipe.CDE_FIGURES[v]["all"]} for v in VARIANTS}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, "cde", ablation=variant)
    if synthetic:
        recipe.synthetic(c, "cde")
    c.paper.seed = "002"
    c.paper.table = "Table 6"
    c.paper.title = "Basic Inception against FR on the CDE composite, UF1 and UAR"
    c.paper.variant = variant
    c.paper.runs = recipe.RUNS
    c.paper.metrics = ("uf1", "uar")
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
