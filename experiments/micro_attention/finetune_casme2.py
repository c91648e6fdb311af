"""Micro-Attention fine-tuned on CASME II, LOSO (seed 000, Sec. 4.2, Table 5).

Every fold starts from the pre-trained ResNet-10 of pretrain_macro.py (its work
dir, `init.pretrained`); the micro-attention units are added here and start
fresh (results.json `init.fresh_leaves` lists them). The classifier is kept:
`macro_5class` and `objective_5class` name the same five classes in the same
order. Paper settings: grey apex frame resized to 240, random 224 crops,
colour shift 20, rotation 8, p = 0.5, class resampling, SGD momentum 0.9,
batch 10, lr 1e-3 divided by 10 every 10 epochs.

    mer-jax sweep experiments/micro_attention/pretrain_macro.py
    mer-jax sweep experiments/micro_attention/finetune_casme2.py

    mer-jax sweep experiments/micro_attention/pretrain_macro.py:synthetic
    mer-jax sweep experiments/micro_attention/finetune_casme2.py:synthetic --seeds 5

`:synthetic` fine-tunes the quick-start-sized network on the subtle synthetic
corpus (`synthetic_me/casme2_subtle_apex_56`, 1 px movements, 26 folds) from
`runs/micro_attention/pretrain_macro-synthetic`; `--set init.pretrained=''`
trains the same from scratch (README: the comparison over seeds). `:smoke`
(with `synthetic`) shrinks it to the tiny corpus for tests.
"""

from mer_jax import config as config_lib

ARGS = ("synthetic", "smoke")


def get_config(arg=None):
    args = [a for a in (arg or "").split(",") if a]
    unknown = sorted(set(args) - set(ARGS))
    if unknown:
        raise ValueError(
            f"experiments/micro_attention/finetune_casme2.py: unknown argument {unknown[0]!r} "
            f"(known: {', '.join(ARGS)})"
        )
    c = config_lib.base()
    # Data section.
    c.dataset = "casme2/cropped_224"
    c.input.label_scheme = "objective_5class"
    c.input.image_size = 240
    c.input.channels = 1
    c.augment.crop_size = 224
    c.augment.color_shift = 20.0
    c.augment.rotate_deg = 8.0
    c.augment.prob = 0.5
    # Model section: the attention units are new.
    c.model = "micro_attention"
    c.model_kwargs.width = 64
    c.model_kwargs.attention = True
    c.init.pretrained = "runs/micro_attention/pretrain_macro"
    # Training section.
    c.train.epochs = 30
    c.train.batch_size = 10
    c.train.balance = True
    c.optimizer.name = "sgd"
    c.optimizer.lr = 1e-3
    c.optimizer.momentum = 0.9
    c.optimizer.decay_every_epochs = 10
    if "synthetic" in args:
        c.dataset = "synthetic_me/casme2_subtle_apex_56"
        c.input.label_scheme = ""
        c.input.image_size = 56
        c.augment.crop_size = 48
        c.model_kwargs.width = 16
        c.init.pretrained = "runs/micro_attention/pretrain_macro-synthetic"
        c.train.epochs = 8
        c.train.batch_size = 16
        c.optimizer.lr = 0.01
        c.optimizer.decay_every_epochs = 6
    if "smoke" in args:
        c.dataset = "synthetic_me/tiny"
        c.input.image_size = 32
        c.augment.crop_size = 28
        c.model_kwargs.width = 4
        c.train.epochs = 2
        c.train.batch_size = 8
    return c
