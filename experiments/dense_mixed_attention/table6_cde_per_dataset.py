"""Seed 001, Table 6: CDE scored per dataset, UAR, UF1 and Acc.

The proposed network trained on the pooled composite and scored on "the CASME II, SAMM,
and SMIC-HS datasets separately" (Sec. 4.5.1): the same training as table5_cde_mixed.py.

"All tested models are fine-tuned using data from the three experimental micro-expression
datasets and tested with the LOSO protocol" (Sec. 4.5.1): CASME II, SAMM and SMIC-HS
pooled in negative / positive / surprise, protocol `cde_megc2019` (the official 441-clip
list, 68 subjects: the paper's own 447-sample grouping is not listed), EVM apex 112x112,
Adam, batch 32, lr 0.01 x0.1 on plateau (patience 20), 200 epochs, early stopping 20 on 2
held-out training subjects per fold (`mer_jax.recipes.dense_mixed_attention`, 'cde').
Rows: the sources 'casme2', 'samm', 'smic' of the pooled predictions.
The other methods' rows are not run here.

    mer-jax experiments run experiments/dense_mixed_attention/table6_cde_per_dataset.py
    mer-jax experiments run experiments/dense_mixed_attention/table6_cde_per_dataset.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import dense_mixed_attention as recipe

VARIANTS = ("mixed",)
# Table 6: per dataset (recipe.CDE_FIGURES).
FIGURES = {"mixed": {d: recipe.CDE_FIGURES["mixed"][d] for d in recipe.DATASETS}}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, "cde", ablation=variant)
    if synthetic:
        recipe.synthetic(c, "cde")
    c.paper.seed = "001"
    c.paper.table = "Table 6"
    c.paper.title = "CDE scored per dataset, UAR, UF1 and Acc"
    c.paper.variant = variant
    c.paper.metrics = ("uar", "uf1", "accuracy")
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
