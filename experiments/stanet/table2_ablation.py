"""Seed 004, Table 2: ablation on CASME I, accuracy (Sec. 4.3).

"Ablation experiments are performed on CASME I to demonstrate the effectiveness of SAB
(Sec. 3.1), TAB (Sec. 3.2) and l1 loss (Sec. 3.3)": LOSO on CASME I with the recipe of
Table 1 (`mer_jax.recipes.stanet`: 60 epochs, corner crops and rescaling by 0.9 / 1.0 / 1.1).
Rows (`models.stanet.ABLATIONS`):
  baseline    no spatial and no temporal attention branch, no l1 term
  sab         + the spatial attention branch
  sab_l1      + the l1 penalty on its mask (lambda 1e-8)
  sab_tab_l1  + the temporal attention branch: STANet
Accuracy pooled over the folds.

    mer-jax experiments run experiments/stanet/table2_ablation.py
    mer-jax experiments run experiments/stanet/table2_ablation.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import stanet as recipe

VARIANTS = ("sab_tab_l1", "baseline", "sab", "sab_l1")
# Table 2 (accuracy %, as fractions).
FIGURES = {
    "baseline": {"all": {"accuracy": 0.7135}},
    "sab": {"all": {"accuracy": 0.7310}},
    "sab_l1": {"all": {"accuracy": 0.7485}},
    "sab_tab_l1": {"all": {"accuracy": 0.7661}},
}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, "casme", ablation=variant)
    if synthetic:
        recipe.synthetic(c)
    c.paper.seed = "004"
    c.paper.table = "Table 2"
    c.paper.title = "Ablation on CASME I, accuracy"
    c.paper.variant = variant
    c.paper.metrics = ("accuracy",)
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
