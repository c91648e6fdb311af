"""Seed 001, Table 9: SDE on SMIC-HS (3 classes), UF1 and Acc.

"For each experiment, a single dataset is used for fine-tuning and testing using the LOSO
protocol" (Sec. 4.5.2). "the experiments on the SMIC-HS dataset are conducted for a three-class
task, where emotions include negative, positive, and surprise" (Sec. 4.5.2): label scheme
`smic_3class`, LOSO over its subjects. The fine-tuning of
`mer_jax.recipes.dense_mixed_attention` (setting 'sde'): EVM apex 112x112, Adam, batch 32,
lr 0.01 x0.1 on plateau (patience 20), 200 epochs, early stopping 20 on 2 held-out training
subjects per fold, from the 3-class macro pre-training (a fresh classifier for the dataset's
classes). One variant, `mixed`: the proposed network ("Ours"); LBP-TOP + AdaBoost, STCLQP,
FDM, Bi-WOOF + Phase, AlexNet, GoogleNet, OFF-ApexNet, SSSN, DSSN and TSCNN are other
methods' figures, not run here. The paper gives UF1 and Acc only.

    mer-jax experiments run experiments/dense_mixed_attention/table9_sde_smic.py
    mer-jax experiments run experiments/dense_mixed_attention/table9_sde_smic.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import dense_mixed_attention as recipe

VARIANTS = ("mixed",)
# Table 9 (UF1, Acc as a fraction).
FIGURES = {"mixed": {"all": {"uf1": 0.9139, "accuracy": 0.9273}}}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, "sde", ("smic",), ablation=variant)
    if synthetic:
        recipe.synthetic(c, "sde")
    c.paper.seed = "001"
    c.paper.table = "Table 9"
    c.paper.title = "SDE on SMIC-HS (3 classes), UF1 and Acc"
    c.paper.variant = variant
    c.paper.metrics = ("uf1", "accuracy")
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
