"""Seed 003, Table 1: the ceiling k of the magnification factors on CASME II, accuracy.

"We conducted a series of comparison experiments on the CASME II" (Sec. 3.1.2): AMAN with
factors 1..k, k = 7..11, n = 11 frames, LOSO over CASME II's five classes with more than 10
samples (`mer_jax.recipes.aman`: RMSprop lr 1e-3, weight decay 1e-4, x0.2 every 30 epochs,
batch 4, 50 epochs, ResNet-18 frozen through layer3 from `init.pretrained`). Rows `k7` ..
`k11`; `k9` reads the stored `aman_11x9` view, the others compute their stacks from
`casme2/cropped_224` at load time (the same functions). Accuracy pooled over the folds.

    mer-jax experiments run experiments/aman/table1_magnification.py
    mer-jax experiments run experiments/aman/table1_magnification.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import aman as recipe

CEILINGS = (7, 8, 9, 10, 11)
VARIANTS = tuple(f"k{k}" for k in CEILINGS)
# Table 1 (Acc %, as a fraction).
FIGURES = {
    "k7": {"all": {"accuracy": 0.6985}},
    "k8": {"all": {"accuracy": 0.7234}},
    "k9": {"all": {"accuracy": 0.7540}},
    "k10": {"all": {"accuracy": 0.6923}},
    "k11": {"all": {"accuracy": 0.6641}},
}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    k = int(variant.removeprefix("k"))
    c = config_lib.base()
    recipe.finetune(c, "casme2", factors=k)
    if synthetic:
        recipe.synthetic(c, factors=tuple(float(a) for a in range(1, k + 1)))
    c.paper.seed = "003"
    c.paper.table = "Table 1"
    c.paper.title = "Ceiling of the magnification factors on CASME II, accuracy"
    c.paper.variant = variant
    c.paper.metrics = ("accuracy",)
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
