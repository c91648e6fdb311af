"""Seed 001, Table 5: CDE on the Mixed dataset, UAR, UF1 and Acc.

The proposed network ("Ours") on the pooled composite ("Mixed"). The one variant `mixed`
is the full model (mixed attention, dense backbone).

"All tested models are fine-tuned using data from the three experimental micro-expression
datasets and tested with the LOSO protocol" (Sec. 4.5.1): CASME II, SAMM and SMIC-HS
pooled in negative / positive / surprise, protocol `cde_megc2019` (the official 441-clip
list, 68 subjects: the paper's own 447-sample grouping is not listed), EVM apex 112x112,
Adam, batch 32, lr 0.01 x0.1 on plateau (patience 20), 200 epochs, early stopping 20 on 2
held-out training subjects per fold (`mer_jax.recipes.dense_mixed_attention`, 'cde').
Row 'all': every pooled prediction. table6_cde_per_dataset.py scores the same training
per dataset (one run serves both tables).
Bi-WOOF, LBP-TOP, CapsuleNet, OFF-ApexNet, Dual-Inception, STSTNet, EMR, SA-AT, RCN,
ICE-GAN and MERASTC are other methods' figures, not run here.

    mer-jax experiments run experiments/dense_mixed_attention/table5_cde_mixed.py
    mer-jax experiments run experiments/dense_mixed_attention/table5_cde_mixed.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import dense_mixed_attention as recipe

VARIANTS = ("mixed",)
# Table 5: the composite (recipe.CDE_FIGURES).
FIGURES = {"mixed": {"all": recipe.CDE_FIGURES["mixed"]["all"]}}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, "cde", ablation=variant)
    if synthetic:
        recipe.synthetic(c, "cde")
    c.paper.seed = "001"
    c.paper.table = "Table 5"
    c.paper.title = "CDE on the Mixed dataset, UAR, UF1 and Acc"
    c.paper.variant = variant
    c.paper.metrics = ("uar", "uf1", "accuracy")
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
