"""Seed 003, Table 3: the MA and FA modules kept one at a time, accuracy (Sec. 3.2).

"We kept only one module each time, and compared the results with that of the whole
network": LOSO on each dataset with the recipe of Table 2 (`mer_jax.recipes.aman`). Rows
(`models.aman.ABLATIONS`):
  ma_only_<dataset>  "MA module": the FA module removed, frames averaged with equal weights
  fa_only_<dataset>  "FA module": the MA module removed, "the single-magnification method":
                     one factor per frame, the last (amp = k; the paper does not say which)
  <dataset>          "MA+FA module": AMAN
for <dataset> in casme2, samm, smic. Accuracy pooled over the folds.

    mer-jax experiments run experiments/aman/table3_ablation.py
    mer-jax experiments run experiments/aman/table3_ablation.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import aman as recipe

PREFIXES = {"": "aman", "ma_only_": "ma_only", "fa_only_": "fa_only"}
VARIANTS = tuple(f"{prefix}{d}" for prefix in PREFIXES for d in recipe.DATASETS)
# Table 3 (Acc %, as fractions).
FIGURES = {
    "ma_only_casme2": {"all": {"accuracy": 0.5919}},
    "ma_only_samm": {"all": {"accuracy": 0.5957}},
    "ma_only_smic": {"all": {"accuracy": 0.6402}},
    "fa_only_casme2": {"all": {"accuracy": 0.6271}},
    "fa_only_samm": {"all": {"accuracy": 0.5625}},
    "fa_only_smic": {"all": {"accuracy": 0.6280}},
    "casme2": {"all": {"accuracy": 0.7540}},
    "samm": {"all": {"accuracy": 0.6885}},
    "smic": {"all": {"accuracy": 0.7987}},
}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    prefix = next((p for p in PREFIXES if p and variant.startswith(p)), "")
    c = config_lib.base()
    recipe.finetune(c, variant.removeprefix(prefix), ablation=PREFIXES[prefix])
    if synthetic:
        recipe.synthetic(c)
    c.paper.seed = "003"
    c.paper.table = "Table 3"
    c.paper.title = "MA and FA modules one at a time, accuracy"
    c.paper.variant = variant
    c.paper.metrics = ("accuracy",)
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
