"""Seed 002, Table 1: model ablation on the CDE composite, UF1 and UAR (Sec. 4.3, 6.1.1).

"Ablation study is conducted on the CDE protocol in MEGC 2019 ... LOSO validation is used ...
SMIC-HS, CASME II, and SAMM are merged into one dataset" in negative / positive / surprise
(Table 9, 442 clips, 68 subjects: protocol `cde_megc2019_442`); "without momentum, the batch
size, learning rate, and loss function weight factor lambda are set as 32, 0.001, and 0.85"
(`mer_jax.recipes.feature_refinement`, setting 'cde'; mean of ten seeds). Rows:
  dual_inception   (a) Dual-Inception [38]: "uses the mid-position frame of each sample as the
                   apex frame" (Basic Inception's network; flow from the frames at load time)
  basic_inception  (a) Basic Inception: interframe-difference apex on SMIC-HS, the annotated
                   apex on CASME II and SAMM; no proposal module
  fr_fc            (b) FR-fc: "only uses fully-connected layers in the proposal module"
  fr_concatenated  (c) FR-concatenated: "directly concatenates the expression-specific features"
  fr               (b), (c) FR: attention and element-wise sum
UF1 and UAR pooled over the folds of the composite.

    mer-jax experiments run experiments/feature_refinement/table1_ablation.py
    mer-jax experiments run experiments/feature_refinement/table1_ablation.py:synthetic
"""

from mer_jax import config as config_lib
from mer_jax import experiments
from mer_jax.recipes import feature_refinement as recipe

VARIANTS = ("fr", "dual_inception", "basic_inception", "fr_fc", "fr_concatenated")
# The composite row of each variant (recipe.CDE_FIGURES).
FIGURES = {v: {"all": recipe.CDE_FIGURES[v]["all"]} for v in VARIANTS}


def get_config(arg=None):
    variant, synthetic = experiments.arguments(__file__, arg, VARIANTS)
    c = config_lib.base()
    recipe.finetune(c, "cde", ablation=variant)
    if synthetic:
        recipe.synthetic(c, "cde")
    c.paper.seed = "002"
    c.paper.table = "Table 1"
    c.paper.title = "Model ablation on the CDE composite, UF1 and UAR"
    c.paper.variant = variant
    c.paper.runs = recipe.RUNS
    c.paper.metrics = ("uf1", "uar")
    c.paper.reported = experiments.reported(FIGURES, variant)
    return c
