"""Seed 001, Table 12: CDE, densely-connected vs residual feature extractor.

"Comparison of the densely-connected and residual feature extractors under the CDE
benchmark" (Sec. 4.7). Variants: `mixed` (densely connected) and `residual_mixed` (residual
units at the dense blocks' widths, mixed attention: the paper gives no residual design).
Each ablation fine-tunes from its own pre-training (pretrain_macro.py:<variant>).

"All tested models are fine-tuned using data from the three experimental micro-expression
datasets and tested with the LOSO protocol" (Sec. 4.5.1): CASME II, SAMM and SMIC-HS
pooled in negative / positive / surprise, protocol `cde_megc2019` (the official 441-clip
list, 68 subjects: the paper's own 447-sample grouping is not listed), EVM apex 112x112,
Adam, batch 32, lr 0.01 x0.1 on plateau (patience 20), 200 epochs, early stopping 20 on 2
held-out training subjects per fold (`mer_jax.recipes.dense_mixed_attention`, 'cde').
Rows: 'all' (the Mixed columns: every pooled prediction) and the sources 'casme2',
'samm', 'smic' (the same predictions scored per dataset).

    mer-jax experiments run experiments/dense_mixed_attention/table12_backbone.py
    mer-jax experiments run experiments/dense_mixed_attention/table12_backbone.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import dense_mixed_attention as recipe

VARIANTS = ("mixed", "residual_mixed")
# The paper's rows of this table (recipe.CDE_FIGURES).
FIGURES = {v: recipe.CDE_FIGURES[v] for v in VARIANTS}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, "cde", ablation=variant)
    if synthetic:
        recipe.synthetic(c, "cde")
    c.paper.seed = "001"
    c.paper.table = "Table 12"
    c.paper.title = "CDE, densely-connected vs residual feature extractor"
    c.paper.variant = variant
    c.paper.metrics = ("uar", "uf1", "accuracy")
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
