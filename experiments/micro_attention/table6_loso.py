"""Seed 000, Table 6: LOSO on SAMM, CASME II and SMIC separately (Sec. 4.2, 4.3 C).

"For the LOSO on SAMM, CASME II and SMIC databases separately": one fold per subject of one
dataset, objective classes I-V on CASME II and SAMM, SMIC's three classes with the mid-clip
frame as apex; "the resampling method and the data augmentation methods mentioned above are
together used", batch 10, lr 1e-3 (momentum 0.9, weight decay "5e4", read 5e-4) x0.1 every
10 epochs (`mer_jax.recipes.micro_attention`, setting 'loso'). Rows: the paper's network
(`samm`, `casme2`, `smic`), the plain ResNet-10 of [17] (`resnet10_<dataset>`) and the
"complex attention" network of [29] (`complex_<dataset>`) on each dataset. Accuracy and F1
(macro F1 = UF1) pooled over the folds.

    mer-jax experiments run experiments/micro_attention/table6_loso.py
    mer-jax experiments run experiments/micro_attention/table6_loso.py:synthetic
    mer-jax sweep experiments/micro_attention/table6_loso.py:samm     # one row
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import micro_attention as recipe

DATASETS = ("samm", "casme2", "smic")
PREFIXES = {"": "micro", "resnet10_": "none", "complex_": "complex"}
VARIANTS = tuple(f"{prefix}{d}" for prefix in PREFIXES for d in DATASETS)
# Table 6 (accuracy, F1-score).
FIGURES = {
    "samm": {"all": {"accuracy": 0.485, "uf1": 0.402}},
    "casme2": {"all": {"accuracy": 0.659, "uf1": 0.539}},
    "smic": {"all": {"accuracy": 0.494, "uf1": 0.496}},
    "resnet10_samm": {"all": {"accuracy": 0.456, "uf1": 0.383}},
    "resnet10_casme2": {"all": {"accuracy": 0.622, "uf1": 0.464}},
    "resnet10_smic": {"all": {"accuracy": 0.415, "uf1": 0.406}},
    "complex_samm": {"all": {"accuracy": 0.471, "uf1": 0.306}},
    "complex_casme2": {"all": {"accuracy": 0.627, "uf1": 0.473}},
    "complex_smic": {"all": {"accuracy": 0.494, "uf1": 0.448}},
}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    prefix = next(p for p in PREFIXES if p and variant.startswith(p)) if "_" in variant else ""
    dataset = variant.removeprefix(prefix)
    c = config_lib.base()
    recipe.finetune(c, "loso", (dataset,), attention=PREFIXES[prefix])
    if synthetic:
        recipe.synthetic(c, "loso")
    c.paper.seed = "000"
    c.paper.table = "Table 6"
    c.paper.title = "LOSO per dataset, accuracy and F1"
    c.paper.variant = variant
    c.paper.metrics = ("accuracy", "uf1")
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
