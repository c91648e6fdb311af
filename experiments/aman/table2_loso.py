"""Seed 003, Table 2: AMAN under LOSO on CASME II, SAMM and SMIC-HS, accuracy and F1.

"To avoid subject dependence in the process, we adopt the leave-one-subject-out (LOSO) cross
validation" (Sec. 3.1.1): CASME II and SAMM in their five classes with more than 10 samples,
SMIC-HS in its three; n = 11 frames, k = 9 factors (the `aman_11x9` views), ResNet-18 frozen
through layer3 from `init.pretrained`, RMSprop lr 1e-3, weight decay 1e-4, x0.2 every 30
epochs, batch 4, 50 epochs, the final epoch (`mer_jax.recipes.aman`). Rows: one dataset
each. Accuracy and F1 (macro F1 = UF1) pooled over the folds. The other methods' rows
(LBP-SIP, DSSN, TSCNN-I, LGCconD, RNMA, GEME) are not run here.

    mer-jax experiments run experiments/aman/table2_loso.py
    mer-jax experiments run experiments/aman/table2_loso.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import aman as recipe

VARIANTS = recipe.DATASETS
# Table 2, AMAN (ours) (Acc %, F1-score %, as fractions).
FIGURES = {
    "casme2": {"all": {"accuracy": 0.7540, "uf1": 0.7125}},
    "samm": {"all": {"accuracy": 0.6885, "uf1": 0.6682}},
    "smic": {"all": {"accuracy": 0.7987, "uf1": 0.7708}},
}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, variant)
    if synthetic:
        recipe.synthetic(c)
    c.paper.seed = "003"
    c.paper.table = "Table 2"
    c.paper.title = "LOSO on CASME II, SAMM and SMIC-HS, accuracy and F1"
    c.paper.variant = variant
    c.paper.metrics = ("accuracy", "uf1")
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
