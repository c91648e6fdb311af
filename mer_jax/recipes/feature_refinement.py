"""Seed 002, Feature Refinement (Zhou et al.): the recipes of Sec. 4.2 and 6.1.

Input (Sec. 3.1, 4.2): onset -> apex TV-L1 flow of the face crop, horizontal and vertical
components resized to 28x28 (the builders' `flow_28` views); apex: the annotation for
CASME II and SAMM, the interframe difference (Eq. 1) for SMIC, which has none (the SMIC
views store it). Network: two-stream Inception, proposal module, sum fusion, lambda 0.85
(Eq. 8; `models.feature_refinement`, whose docstring gives the widths the paper leaves out).
  cde    SMIC-HS, CASME II and SAMM pooled in negative / positive / surprise (Sec. 6.1.1,
         Table 9: 442 clips, 68 subjects), LOSO: protocol `cde_megc2019_442` (the official
         list plus SAMM 032_3_1, Table 9's count); "without momentum, the batch size,
         learning rate, and loss function weight factor lambda are set as 32, 0.001, and
         0.85" (Sec. 6.1.1; CDE "the same ... parameters setting", Sec. 6.1.2).
  cdmer  train on all of a source database, test on a target (Table 10's Exp.1-12, classes
         of Table 11, `cdmer_3class`), "five-fold cross validation" (Sec. 6.1.3) read as
         protocol `cdmer_5fold*` (docs/papers.md, seed 002); "the learning rate is set as
         0.0005, with the momentum rate of 0.8. Batch size and lambda are set as 32 and 0.85".
  sde    one database, LOSO, "the same to CDMER evaluation" (Sec. 6.1.4): SMIC-HS in three
         classes, CASME II in five (247 clips) or four (negative / positive / surprise /
         others, 256 clips), SAMM in four (Table 12).
The optimizer is SGD (momentum is the only other setting given; Keras 2.2.4). Where the
paper is silent: no weight decay (Keras' SGD has none), a constant rate, 60 epochs, no class
resampling, no augmentation. "All results ... are the average of at least ten rounds"
(Sec. 4.2): ten seeds in one job. `ablation` picks a row of Table 1
(`models.feature_refinement.ABLATIONS`); Dual-Inception [38] is Basic Inception fed the
mid-clip frame as apex for every database (Sec. 4.3 (1)), its flow computed from the frames
configs at load time.
"""

from mer_jax.models import feature_refinement as model

SETTINGS = ("cde", "cdmer", "sde")
# Table 1's rows: a model ablation, or 'dual_inception' (Basic Inception, mid-clip apex).
ABLATIONS = (*model.ABLATIONS, "dual_inception")
CDE_DATASETS = ("smic", "casme2", "samm")
CDMER_DATASETS = ("smic", "smic_vis", "smic_nir", "casme2")
FLOW_28 = {
    "casme2": "casme2/cropped_flow_28",
    "samm": "samm/raw_face_flow_28",
    "smic": "smic/hs_cropped_flow_28",
    "smic_vis": "smic/vis_cropped_flow_28",
    "smic_nir": "smic/nir_cropped_flow_28",
}
# The frames the flow views are computed from (Dual-Inception's mid-clip apex: at load time).
FRAMES_112 = {
    "casme2": "casme2/cropped_112",
    "samm": "samm/raw_face_112",
    "smic": "smic/hs_cropped_112",
}
# Single-database LOSO (Table 5's columns, Tables 12-13).
SDE_LABEL_SCHEMES = {
    "smic": ("smic", "smic_3class"),
    "casme2_5class": ("casme2", "casme2_5class"),
    "casme2_4class": ("casme2", "nps_others_4class"),
    "samm": ("samm", "nps_others_4class"),
}
RUNS = 10
# The paper's CDE figures of FR and its ablations (UF1, UAR; Tables 1, 2 and 6 repeat them):
# 'all' = the composite, per dataset where Table 2 gives it.
CDE_FIGURES = {
    "fr": {
        "all": {"uf1": 0.7838, "uar": 0.7832},
        "smic": {"uf1": 0.7011, "uar": 0.7083},
        "casme2": {"uf1": 0.8915, "uar": 0.8873},
        "samm": {"uf1": 0.7372, "uar": 0.7155},
    },
    "dual_inception": {"all": {"uf1": 0.7322, "uar": 0.7278}},
    "basic_inception": {"all": {"uf1": 0.7360, "uar": 0.7391}},
    "fr_fc": {"all": {"uf1": 0.7377, "uar": 0.7443}},
    "fr_concatenated": {"all": {"uf1": 0.7632, "uar": 0.7727}},
}
# The tables' stand-ins: frames of the MEGC 2019 composite in miniature (12 subjects, 60
# clips) and of the four CDMER databases in miniature (20 subjects, 63 clips); the 28x28
# flow computed at load time.
SYNTHETIC_DATASET = "synthetic_me/megc2019_mini"
SYNTHETIC_CDMER_DATASET = "synthetic_me/cdmer_mini"


def _network(c, ablation: str):
    if ablation not in ABLATIONS:
        raise ValueError(f"feature_refinement recipe: ablation {ablation!r} not in {ABLATIONS}")
    c.input.representation = "flow"
    c.input.image_size = 28
    c.input.channels = 2
    c.input.flow_method = "tvl1"
    c.augment.flip = False
    c.model = "feature_refinement"
    c.model_kwargs.update(model.ABLATIONS["fr"])
    c.model_kwargs.update(
        model.ABLATIONS["basic_inception" if ablation == "dual_inception" else ablation]
    )


def finetune(
    c, setting: str, variant: str = "", *, ablation="fr", protocol="", datasets=CDMER_DATASETS
):
    """Set `c` to seed 002's training in `setting`: 'cde' (the composite), 'cdmer' (`protocol`
    of the `cdmer_5fold*` group on the CDMER `datasets`), 'sde' (`variant` a key of
    SDE_LABEL_SCHEMES), with the Table 1 row `ablation`."""
    if setting not in SETTINGS:
        raise ValueError(f"feature_refinement recipe: setting {setting!r} not one of {SETTINGS}")
    _network(c, ablation)
    if setting == "cde":
        parts = FRAMES_112 if ablation == "dual_inception" else FLOW_28
        c.dataset = "+".join(parts[d] for d in CDE_DATASETS)
        c.protocol = "cde_megc2019_442"
        c.input.label_scheme = "megc2019_3class"
    elif setting == "cdmer":
        c.dataset = "+".join(FLOW_28[d] for d in datasets)
        c.protocol = protocol or "cdmer_5fold"
        c.input.label_scheme = "cdmer_3class"
    else:
        dataset, scheme = SDE_LABEL_SCHEMES[variant]
        c.dataset = FLOW_28[dataset]
        c.protocol = "loso"
        c.input.label_scheme = scheme
    # Dual-Inception "straightforwardly uses the mid-position frame of each sample as the apex".
    c.input.apex = "mid_clip" if ablation == "dual_inception" else "ground_truth"
    c.train.epochs = 60
    c.train.batch_size = 32
    c.train.balance = False
    c.optimizer.name = "sgd"
    c.optimizer.lr = 1e-3 if setting == "cde" else 5e-4
    c.optimizer.momentum = 0.0 if setting == "cde" else 0.8
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = "constant"
    c.seeds = tuple(range(RUNS))
    return c


def synthetic(c, setting: str):
    """The same recipe at a 2-core CPU's size (about a minute): the synthetic stand-ins'
    frames, flow computed at load time (apex: the generator's, mid-clip for Dual-Inception),
    the model's small widths, 10 epochs at lr x10, one seed (CDMER type II: 30 folds, ~1.5 min
    of one core). CDE and SDE run LOSO over the
    mini composite (no official list, no per-dataset corpus this small); CDMER keeps its
    protocol on `cdmer_mini`, whose sources are the four CDMER databases'."""
    c.dataset = SYNTHETIC_CDMER_DATASET if setting == "cdmer" else SYNTHETIC_DATASET
    c.protocol = c.protocol if setting == "cdmer" else "loso"
    c.input.label_scheme = ""
    c.input.apex = "mid_clip" if c.input.apex == "mid_clip" else "ground_truth"
    c.model_kwargs.update(model.SPEC.small.kwargs)
    c.train.epochs = 10
    c.optimizer.lr *= 10
    c.seeds = ()
    return c
