"""Seed 002, Table 5: single-database LOSO, accuracy (Sec. 4.6, 6.1.4).

"Leave-one-subject-out (LOSO) protocol is used. The parameters settings of the single database
experiment are the same to CDMER evaluation": SGD, lr 0.0005, momentum 0.8, batch 32, lambda
0.85, mean of ten seeds (`mer_jax.recipes.feature_refinement`, 'sde'). Rows (Tables 12-13):
  smic           SMIC-HS, negative / positive / surprise (164 clips, 16 subjects)
  casme2_5class  "CASME II (5 classes)": happiness, surprise, disgust, repression, others
                 (247 clips, 26 subjects)
  casme2_4class  "CASME II (4 classes)": negative (disgust, sadness, fear), positive,
                 surprise, others (repression, others); all 256 clips (`nps_others_4class`)
  samm           SAMM in the same four classes (159 clips, 32 subjects)
Accuracy pooled over the folds. The other methods' rows are not run here.

    mer-jax experiments run experiments/feature_refinement/table5_sde.py
    mer-jax experiments run experiments/feature_refinement/table5_sde.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import feature_refinement as recipe

VARIANTS = tuple(recipe.SDE_LABEL_SCHEMES)
# Table 5, FR (Ours) (Acc).
FIGURES = {
    "smic": {"all": {"accuracy": 0.5790}},
    "casme2_5class": {"all": {"accuracy": 0.6285}},
    "casme2_4class": {"all": {"accuracy": 0.6838}},
    "samm": {"all": {"accuracy": 0.6013}},
}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, "sde", variant)
    if synthetic:
        recipe.synthetic(c, "sde")
    c.paper.seed = "002"
    c.paper.table = "Table 5"
    c.paper.title = "Single-database LOSO, accuracy"
    c.paper.variant = variant
    c.paper.runs = recipe.RUNS
    c.paper.metrics = ("accuracy",)
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
