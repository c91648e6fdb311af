"""Seed 000, Table 4: Composite-database Evaluation, accuracy and F1 (Sec. 4.2, 4.3 B).

"CDE is a Leave-One-Subject-Out validation (LOSO) with the two databases pooled together",
"20 training-testing processes are prepared for SAMM and 26 for CASME II" (protocol
`cde_casme2_samm`: one fold per subject with a clip in the objective classes I-V); class
resampling, "cropping the four corners of the original image with size of 240 x 240 into a
'new' one with size of 224 x 224" (`augment.crop_mode='corners'`), batch 8, lr 1e-3
(momentum 0.9, weight decay "5e6", read 5e-6) x0.1 every 10 epochs
(`mer_jax.recipes.micro_attention`, setting 'cde'). "Average accuracy and F1-score": the
pooled predictions' accuracy and macro F1 (UF1); Table 5's confusion matrix gives exactly
Table 4's 0.763 and 0.668 that way (table5_cde_confusion.py). Variants: `micro_attention`,
`resnet10` ([17]), `complex_attention` ([29]); LBP-TOP, HOOF, 3D-HOG, ELRCN [32] and
Merghani et al. [39] are other methods' figures, not run here.

    mer-jax experiments run experiments/micro_attention/table4_cde.py
    mer-jax experiments run experiments/micro_attention/table4_cde.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import micro_attention as recipe

VARIANTS = ("micro_attention", "resnet10", "complex_attention")
ATTENTION = {"micro_attention": "micro", "resnet10": "none", "complex_attention": "complex"}
# Table 4 (accuracy, F1-score).
FIGURES = {
    "micro_attention": {"all": {"accuracy": 0.763, "uf1": 0.668}},
    "resnet10": {"all": {"accuracy": 0.747, "uf1": 0.640}},
    "complex_attention": {"all": {"accuracy": 0.625, "uf1": 0.489}},
}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, "cde", ("casme2", "samm"), attention=ATTENTION[variant])
    if synthetic:
        recipe.synthetic(c, "cde")
    c.paper.seed = "000"
    c.paper.table = "Table 4"
    c.paper.title = "CDE, CASME II + SAMM pooled, accuracy and F1"
    c.paper.variant = variant
    c.paper.metrics = ("accuracy", "uf1")
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
