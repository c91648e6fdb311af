"""Seed 002, Table 2: FR on the CDE composite and each of its databases, UF1 and UAR.

"Regrouped samples of three databases are combined into one dataset and using LOSO validation
methods to evaluate the performance" (Table 2's caption, Sec. 6.1.2: "the same expression
grouped rules and parameters setting for CDE evaluation to the experiment of model
ablation"): SMIC-HS, CASME II and SAMM in negative / positive / surprise, protocol
`cde_megc2019_442` (Table 9: 442 clips, 68 subjects), SGD without momentum, batch 32, lr
0.001, lambda 0.85, mean of ten seeds (`mer_jax.recipes.feature_refinement`, 'cde'). Rows:
'all' (the composite) and the sources 'smic', 'casme2', 'samm' of the pooled predictions.
The other methods' rows (LBP-TOP, Bi-WOOF, AlexNet, GoogLeNet, VGG16, CapsuleNet, EMR) are
not run here; OFF-ApexNet and STSTNet are in experiments/baselines/.

    mer-jax experiments run experiments/feature_refinement/table2_cde.py
    mer-jax experiments run experiments/feature_refinement/table2_cde.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import feature_refinement as recipe

VARIANTS = ("fr",)
# Table 2, FR (Ours): the composite and per database (recipe.CDE_FIGURES).
FIGURES = {"fr": recipe.CDE_FIGURES["fr"]}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, "cde", ablation=variant)
    if synthetic:
        recipe.synthetic(c, "cde")
    c.paper.seed = "002"
    c.paper.table = "Table 2"
    c.paper.title = "CDE, composite and per database, UF1 and UAR"
    c.paper.variant = variant
    c.paper.runs = recipe.RUNS
    c.paper.metrics = ("uf1", "uar")
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
