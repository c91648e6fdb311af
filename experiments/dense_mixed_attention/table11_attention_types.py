"""Seed 001, Table 11: CDE, comparison of attention mechanisms.

"We consider four settings, i.e., no attention, only channel attention, only spatial
attention, and mixed attention" (Sec. 4.6). Variants: `no_attention`, `channel_only`,
`spatial_only`, `mixed` (the models.dense_mixed_attention ablations).
Each ablation fine-tunes from its own pre-training (pretrain_macro.py:<variant>).

"All tested models are fine-tuned using data from the three experimental micro-expression
datasets and tested with the LOSO protocol" (Sec. 4.5.1): CASME II, SAMM and SMIC-HS
pooled in negative / positive / surprise, protocol `cde_megc2019` (the official 441-clip
list, 68 subjects: the paper's own 447-sample grouping is not listed), EVM apex 112x112,
Adam, batch 32, lr 0.01 x0.1 on plateau (patience 20), 200 epochs, early stopping 20 on 2
held-out training subjects per fold (`mer_jax.recipes.dense_mixed_attention`, 'cde').
Rows: 'all' (the Mixed columns: every pooled prediction) and the sources 'casme2',
'samm', 'smic' (the same predictions scored per dataset).

    mer-jax experiments run experiments/dense_mixed_attention/table11_attention_types.py
    mer-jax experiments run experiments/dense_mixed_attention/table11_attention_types.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import dense_mixed_attention as recipe

VARIANTS = ("mixed", "no_attention", "channel_only", "spatial_only")
# The paper's rows of this table (recipe.CDE_FIGURES).
FIGURES = {v: recipe.CDE_FIGURES[v] for v in VARIANTS}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, "cde", ablation=variant)
    if synthetic:
        recipe.synthetic(c, "cde")
    c.paper.seed = "001"
    c.paper.table = "Table 11"
    c.paper.title = "CDE, comparison of attention mechanisms"
    c.paper.variant = variant
    c.paper.metrics = ("uar", "uf1", "accuracy")
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
