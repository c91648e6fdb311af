"""Seed 001, Table 10: CDE ablation, with and without mixed attention.

"In the first stage, we remove the entire attention mechanism from our model" (Sec. 4.6).
Variants: `mixed` ("Ours") and `no_attention` ("w/o Attention"); each fine-tunes from its
own pre-training (pretrain_macro.py and pretrain_macro.py:no_attention).

"All tested models are fine-tuned using data from the three experimental micro-expression
datasets and tested with the LOSO protocol" (Sec. 4.5.1): CASME II, SAMM and SMIC-HS
pooled in negative / positive / surprise, protocol `cde_megc2019` (the official 441-clip
list, 68 subjects: the paper's own 447-sample grouping is not listed), EVM apex 112x112,
Adam, batch 32, lr 0.01 x0.1 on plateau (patience 20), 200 epochs, early stopping 20 on 2
held-out training subjects per fold (`mer_jax.recipes.dense_mixed_attention`, 'cde').
Rows: 'all' (the Mixed columns: every pooled prediction) and the sources 'casme2',
'samm', 'smic' (the same predictions scored per dataset).

    mer-jax experiments run experiments/dense_mixed_attention/table10_attention_ablation.py
    mer-jax experiments run experiments/dense_mixed_attention/table10_attention_ablation.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import dense_mixed_attention as recipe

VARIANTS = ("mixed", "no_attention")
# The paper's rows of this table (recipe.CDE_FIGURES).
FIGURES = {v: recipe.CDE_FIGURES[v] for v in VARIANTS}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, "cde", ablation=variant)
    if synthetic:
        recipe.synthetic(c, "cde")
    c.paper.seed = "001"
    c.paper.table = "Table 10"
    c.paper.title = "CDE ablation, with and without mixed attention"
    c.paper.variant = variant
    c.paper.metrics = ("uar", "uf1", "accuracy")
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
