"""Seed 000, Micro-Attention (Wang, Peng, Bi, Chen): the recipes of Sec. 4.1-4.2.

Every setting fine-tunes the pre-activation ResNet-10 (width 64) on the grey apex frame
(Sec. 4.1; SMIC: the mid-clip frame), resized to 240 and randomly cropped to 224 (CDE: the
four corners or the centre), with class resampling to the largest class ("resampled
according to the one having largest size", Sec. 4.2), colour shift <= 20 and rotation <= 8
degrees, each with p = 0.5 (LOSO: "the data augmentation methods mentioned above are
together used"; CDE is read the same way), SGD momentum 0.9, lr x0.1 every 10 epochs:
  hde   batch 10, lr 1e-4, weight decay 3e-2; objective classes I-V; WAR, UAR.
  cde   batch 8, lr 1e-3, weight decay 5e-6; CASME II + SAMM pooled; accuracy, F1.
  loso  batch 10, lr 1e-3, weight decay 5e-4; one dataset; accuracy, F1.
The text prints the exponents without their minus sign ("1e4", "3e2", "5e6", "5e4"): read
as negative, as the learning rate's must be. The paper gives no epoch count: 30 (three
steps of the schedule). It starts from the macro-expression pre-training
(experiments/micro_attention/pretrain_macro.py), named by `init.pretrained` (its work
dir); the attention units start fresh. `attention` picks the row of Tables 2, 4 and 6:
'micro' (the paper's network), 'none' (the ResNet-10 of [17]), 'complex' (the
"complex attention" of [29], `models.micro_attention` ablation `complex_attention`); the
paper pre-trains and fine-tunes the three alike ("The same transfer learning procedure is
applied for all the deep learning based methods").
"""

from mer_jax import recipes
from mer_jax.models import micro_attention as model

SETTINGS = ("hde", "cde", "loso")
PRETRAINED = "runs/micro_attention/pretrain_macro"
PRETRAINED_SYNTHETIC = "runs/micro_attention/pretrain_macro-synthetic"
# Objective classes I-V for CASME II and SAMM (Sec. 3.1, Table 1); SMIC's three classes.
LABEL_SCHEMES = {"casme2": "objective_5class", "samm": "objective_5class", "smic": "smic_3class"}
# The methods of Tables 2, 4 and 6 the paper trains itself: `models.micro_attention` ablations.
ATTENTIONS = {"micro": "micro_attention", "none": "resnet10", "complex": "complex_attention"}
WEIGHT_DECAY = {"hde": 3e-2, "cde": 5e-6, "loso": 5e-4}
# The tables' stand-in: the MEGC 2019 composite in miniature (12 subjects, 60 clips; its
# CASME II and SAMM parts make the HDE / CDE pair), grey 56x56 apex frames.
SYNTHETIC_DATASET = "synthetic_me/megc2019_mini_apex_56"


def finetune(c, setting: str, datasets=("casme2",), *, attention="micro"):
    """Set `c` to seed 000's fine-tuning in `setting` ('hde', 'cde', 'loso') on `datasets`
    with the `attention` of ATTENTIONS."""
    if setting not in SETTINGS:
        raise ValueError(f"micro_attention recipe: setting {setting!r} not one of {SETTINGS}")
    if attention not in ATTENTIONS:
        raise ValueError(f"micro_attention recipe: attention {attention!r} not in {ATTENTIONS}")
    c.dataset = "+".join(recipes.FRAMES_224[d] for d in datasets)
    c.protocol = {"hde": "hde", "cde": "cde_casme2_samm", "loso": "loso"}[setting]
    c.input.representation = "apex"
    c.input.label_scheme = LABEL_SCHEMES[datasets[0]]
    # SMIC has no apex annotation: the mid-clip frame (Sec. 4.1).
    c.input.apex = "mid_clip" if datasets == ("smic",) else "ground_truth"
    c.input.image_size = 240
    c.input.channels = 1
    c.augment.crop_size = 224
    c.augment.crop_mode = "corners" if setting == "cde" else "random"
    c.augment.color_shift = 20.0
    c.augment.rotate_deg = 8.0
    c.augment.prob = 0.5
    c.model = "micro_attention"
    c.model_kwargs.width = 64
    c.model_kwargs.update(model.ABLATIONS[ATTENTIONS[attention]])
    c.init.pretrained = PRETRAINED
    c.train.epochs = 30
    c.train.batch_size = 8 if setting == "cde" else 10
    c.train.balance = True
    c.optimizer.name = "sgd"
    c.optimizer.lr = 1e-4 if setting == "hde" else 1e-3
    c.optimizer.momentum = 0.9
    c.optimizer.weight_decay = WEIGHT_DECAY[setting]
    c.optimizer.schedule = "step"
    c.optimizer.decay_every_epochs = 10
    c.optimizer.decay_rate = 0.1
    return c


def synthetic(c, setting: str):
    """The same recipe on SYNTHETIC_DATASET at a 2-core CPU's size (about a minute): 56 px
    grey apex crops of 48, width 16, 10 epochs, no pre-training. HDE and CDE keep their
    protocols (the corpus' CASME II and SAMM parts); LOSO runs over its 12 subjects (the
    synthetic corpus has no per-dataset corpus this small)."""
    c.dataset = SYNTHETIC_DATASET
    c.protocol = "loso" if setting == "loso" else c.protocol
    c.input.label_scheme = ""
    c.input.apex = "ground_truth"
    c.input.image_size = 56
    c.augment.crop_size = 48
    c.model_kwargs.width = 16
    c.init.pretrained = ""
    c.train.epochs = 10
    c.train.batch_size = 16
    c.optimizer.lr = 0.01
    c.optimizer.decay_every_epochs = 8
    return c
