"""Seed 004, Table 1: STANet under LOSO on CASME I, CASME II and SMIC-HS, accuracy.

"Unless otherwise specified, leave-one-subject-out (LOSO) cross-validation is employed and the
classification accuracy is utilized" (Sec. 4.1): 20 optical flows of 192x192 per clip (the
`flowseq_20x192` views), Adam lr 1e-5, weight decay 1e-4, lambda 1e-8, 60 / 30 / 100 epochs
on CASME I / CASME II / SMIC-HS, corner crops with rescaling by 0.9 / 1.0 / 1.1 (CASME I and
II) or with horizontal flips (SMIC-HS) (`mer_jax.recipes.stanet`). Rows: one dataset each
(CASME I in disgust / repression / surprise / tense, CASME II in its five classes, SMIC-HS in
its three). Accuracy pooled over the folds. The other methods' rows (CNN+LSTM, HSTLBP-IP,
DiSTLBP-RIP, HIGO, FHOFO, FDM, MDMO, Sparse MDMO) are not run here.

    mer-jax experiments run experiments/stanet/table1_loso.py
    mer-jax experiments run experiments/stanet/table1_loso.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import stanet as recipe

VARIANTS = recipe.DATASETS
# Table 1, Ours (accuracy %, as fractions).
FIGURES = {
    "casme": {"all": {"accuracy": 0.7661}},
    "casme2": {"all": {"accuracy": 0.6911}},
    "smic": {"all": {"accuracy": 0.6890}},
}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, variant)
    if synthetic:
        recipe.synthetic(c)
    c.paper.seed = "004"
    c.paper.table = "Table 1"
    c.paper.title = "LOSO on CASME I, CASME II and SMIC-HS, accuracy"
    c.paper.variant = variant
    c.paper.metrics = ("accuracy",)
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
