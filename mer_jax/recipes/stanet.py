"""Seed 004, STANet: the recipe of Sec. 4.1.

Input: "Linear interpolation is used to interpolate all training and test samples into 20
frames ... Each frame is resized to 192*192 pixels ... an optical flow sequence is calculated
by FlowNet 2.0 from adjacent frames": the builders' `flowseq_20x192` views (TV-L1 in JAX
stands in for FlowNet 2.0, whose weights are not available; onset..offset interpolated to 21
frames for 20 flows). Network: `models.stanet` with its default temporal attention (the
model's docstring: what H and the scale of Eq. (3) are), width 32, lambda 1e-8 (Eq. 7).
Training: "the Adam is chosen as an optimizer ... learning rate is set to be 1e-5 ... weight
decay coefficient is set as 1e-4 ... trained for 60, 30, and 100 epochs respectively on
CASME I, CASME II, and SMIC-HS"; LOSO, accuracy. Augmentation: "For CASME I and CASME II,
corner crop and rescaling augmentations are employed. The scaling factors are 0.9, 1.0 and
1.1 respectively. For SMIC-HS dataset, corner crop and horizontal flip augmentations are
employed" (the flip negates the horizontal flow component). Where the paper is silent: the
crop, 172x172 (the largest multiple of 4 that the 0.9 rescale of 192 holds; evaluation the
centre crop), batch 8, a constant rate, no class resampling, one run. Classes: CASME I
disgust / repression / surprise / tense (`casme_4class`), CASME II its five (`casme2_5class`),
SMIC-HS its three (Sec. 4.1). `ablation` picks a row of Table 2 (`models.stanet.ABLATIONS`).
"""

from mer_jax.models import stanet as model

DATASETS = ("casme", "casme2", "smic")
VIEWS = {
    "casme": "casme/cropped_flowseq_20x192",
    "casme2": "casme2/cropped_flowseq_20x192",
    "smic": "smic/hs_cropped_flowseq_20x192",
}
LABEL_SCHEMES = {"casme": "casme_4class", "casme2": "casme2_5class", "smic": "smic_3class"}
EPOCHS = {"casme": 60, "casme2": 30, "smic": 100}
RESCALE = (0.9, 1.0, 1.1)
# The stand-in: frames of the MEGC 2019 composite in miniature (12 subjects, 60 clips).
SYNTHETIC_DATASET = "synthetic_me/megc2019_mini"


def finetune(c, dataset: str, *, ablation="sab_tab_l1"):
    """Set `c` to seed 004's LOSO on `dataset` with the Table 2 row `ablation`."""
    if ablation not in model.ABLATIONS:
        raise ValueError(f"stanet recipe: ablation {ablation!r} not in {tuple(model.ABLATIONS)}")
    c.dataset = VIEWS[dataset]
    c.protocol = "loso"
    c.input.label_scheme = LABEL_SCHEMES[dataset]
    c.input.representation = "flow_sequence"
    c.input.image_size = 192
    c.input.channels = 2
    c.input.num_frames = 20
    c.input.flow_method = "tvl1_jax"
    c.augment.crop_size = 172
    c.augment.crop_mode = "corners"
    if dataset == "smic":
        c.augment.flip = True
        c.augment.flip_sign = (-1.0, 1.0)  # the horizontal component changes sign
    else:
        c.augment.rescale = RESCALE
    c.model = "stanet"
    c.model_kwargs.width = 32
    c.model_kwargs.update(model.ABLATIONS[ablation])
    c.train.epochs = EPOCHS[dataset]
    c.train.batch_size = 8
    c.train.balance = False
    c.optimizer.name = "adam"
    c.optimizer.lr = 1e-5
    c.optimizer.weight_decay = 1e-4
    c.optimizer.schedule = "constant"
    return c


def synthetic(c):
    """The same recipe at a 2-core CPU's size (about a minute): the mini composite's frames,
    8 DIS flows at 32x32 computed at load time, crops of 28 (0.9 x 32 holds them), width 8,
    hourglass depth 2, 6 epochs, batch 16, lr 1e-3; LOSO over its 12 subjects, its own
    three classes."""
    c.dataset = SYNTHETIC_DATASET
    c.input.label_scheme = ""
    c.input.image_size = 32
    c.input.num_frames = 8
    c.input.flow_method = "dis"
    c.augment.crop_size = 28
    c.model_kwargs.width = 8
    c.model_kwargs.hourglass_depth = 2
    c.train.epochs = 6
    c.train.batch_size = 16
    c.optimizer.lr = 1e-3
    return c
