"""Seed 003, AMAN (Wei et al.): the recipe of Sec. 2.1 and 3.1.

Input (Sec. 2.1, 3.1.1-3.1.2): each clip (onset..offset) TIM-normalised to 20 frames ("the
maximum length(20) of the video"), n = 11 of them from the first at the largest whole
interval that fits (`mer_jax.preprocess.tim.sample_indices`: the paper says "at a certain
interval"), each magnified against the onset at factors 1..k, k = 9 (Table 1), faces aligned
(SAMM: the `raw_aligned` release; CASME II and SMIC-HS as their authors cropped them),
224x224: the builders' `aman_11x9` views. Other n and k (Table 1, Fig. 3) are computed from
the frames configs at load time. The magnifier: Eulerian against the onset unless the view
names a learned-magnifier checkpoint (docs/papers.md, seed 003).
Network: ResNet-18 "pre-trained on FER2017" (not published: `init.pretrained` names a
torchvision ResNet-18 state_dict saved as .npz, PRETRAINED, that the user supplies), frozen
through layer3 ("we freeze the former residual blocks ... and release the last residual
block for fine-tuning"), MA and FA modules (`models.aman`).
Training: LOSO (Sec. 3.1.1); CASME II and SAMM in their classes with more than 10 samples
(five each: `casme2_5class`, `samm_5class`), SMIC-HS in all three. The paper gives no
optimizer: the authors' code, RMSprop lr 1e-3, weight decay 1e-4, x0.2 every 30 epochs,
batch 4, 50 epochs. The code keeps the best epoch on the test subject; mer_jax reports the
final epoch (no model selection on the test subject). No class resampling, no augmentation
(the trunk's features are cached). One run (the paper reports no repeats).
"""

from mer_jax import recipes
from mer_jax.models import aman as model

DATASETS = ("casme2", "samm", "smic")
VIEWS = {
    "casme2": "casme2/cropped_aman_11x9",
    "samm": "samm/raw_aligned_aman_11x9",
    "smic": "smic/hs_cropped_aman_11x9",
}
FRAMES_224 = {**recipes.FRAMES_224, "samm": "samm/raw_aligned_224"}
LABEL_SCHEMES = {"casme2": "casme2_5class", "samm": "samm_5class", "smic": "smic_3class"}
FRAMES, FACTORS = 11, 9  # n (Fig. 3) and k (Table 1)
# A torchvision ResNet-18 state_dict as .npz (mer_jax/models/aman.py, load_torchvision_resnet18),
# pre-trained on facial expressions as the paper's FER2017 one (or ImageNet's, as a stand-in).
PRETRAINED = "weights/resnet18_fer.npz"
# The stand-in: frames of the MEGC 2019 composite in miniature (12 subjects, 60 clips).
SYNTHETIC_DATASET = "synthetic_me/megc2019_mini"


def finetune(c, dataset: str, *, ablation="aman", frames=FRAMES, factors=FACTORS):
    """Set `c` to seed 003's LOSO on `dataset` with the Table 3 row `ablation`
    (`models.aman.ABLATIONS`), `frames` = n frames per clip and factors 1..`factors`."""
    if ablation not in model.ABLATIONS:
        raise ValueError(f"aman recipe: ablation {ablation!r} not in {tuple(model.ABLATIONS)}")
    stored = (frames, factors) == (FRAMES, FACTORS)
    c.dataset = VIEWS[dataset] if stored else FRAMES_224[dataset]
    c.protocol = "loso"
    c.input.label_scheme = LABEL_SCHEMES[dataset]
    c.input.representation = "aman_stack"
    c.input.image_size = 224
    c.input.num_frames = frames
    c.input.factors = tuple(float(a) for a in range(1, factors + 1))
    c.model = "aman"
    c.model_kwargs.width = 64
    c.model_kwargs.frozen_through = "layer3"
    c.model_kwargs.update(model.ABLATIONS[ablation])
    c.init.pretrained = PRETRAINED
    c.train.epochs = 50
    c.train.batch_size = 4
    c.train.balance = False
    c.optimizer.name = "rmsprop"
    c.optimizer.lr = 1e-3
    c.optimizer.momentum = 0.0
    c.optimizer.weight_decay = 1e-4
    c.optimizer.schedule = "step"
    c.optimizer.decay_every_epochs = 30
    c.optimizer.decay_rate = 0.2
    return c


def synthetic(c, *, frames=5, factors=(1.0, 4.0, 8.0)):
    """The same recipe at a 2-core CPU's size (about a minute): the mini composite's frames,
    the stack computed at load time at 32x32 (`frames` frames, `factors`), width 8, the
    frozen trunk random (no ResNet-18 weights ship with mer_jax), 10 epochs, x0.2 every 6,
    batch 8; LOSO over its 12 subjects and its own three classes."""
    c.dataset = SYNTHETIC_DATASET
    c.input.label_scheme = ""
    c.input.image_size = 32
    c.input.num_frames = frames
    c.input.factors = tuple(factors)
    c.model_kwargs.width = 8
    c.init.pretrained = ""
    c.init.random_frozen_trunk = True
    c.train.epochs = 10
    c.train.batch_size = 8
    c.optimizer.decay_every_epochs = 6
    return c
