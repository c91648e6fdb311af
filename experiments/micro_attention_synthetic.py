"""Micro-Attention at full size (seed 000, Sec. 4) on the synthetic CASME II-shaped corpus.

The paper's network and input: width 64 pre-activation ResNet-10 with a
micro-attention unit in every block, grey-scale apex frame resized to 240 and
randomly cropped to 224, class resampling, SGD momentum 0.9, batch 10,
lr 1e-3 divided by 10 every 10 epochs (the LOSO setting of Sec. 4.2). Sized
for a GPU: about 75 k images per epoch-sweep over 26 folds.

    mer-jax sweep experiments/micro_attention_synthetic.py
    mer-jax sweep experiments/micro_attention_synthetic.py:resnet10     # Table 3 ablation
    mer-jax sweep experiments/micro_attention_synthetic.py:subtle       # 1 px motion

Args (comma-separated): `resnet10` (no attention units), `subtle` (the
`casme2_subtle` corpus), `bf16` (bfloat16 compute).
"""

from mer_jax import config as config_lib

ARGS = ("resnet10", "subtle", "bf16")


def get_config(arg=None):
    args = [a for a in (arg or "").split(",") if a]
    unknown = sorted(set(args) - set(ARGS))
    if unknown:
        raise ValueError(
            f"experiments/micro_attention_synthetic.py: unknown argument {unknown[0]!r} "
            f"(known: {', '.join(ARGS)})"
        )
    c = config_lib.base()
    # Data section.
    # The corpus's 240x240 grey apex view (a builder config), randomly cropped to 224.
    corpus = "casme2_subtle" if "subtle" in args else "casme2"
    c.dataset = f"synthetic_me/{corpus}_apex_240"
    c.input.image_size = 240
    c.input.channels = 1
    c.augment.crop_size = 224
    c.augment.color_shift = 20.0
    # Model section.
    c.model = "micro_attention"
    c.model_kwargs.width = 64
    c.model_kwargs.attention = "resnet10" not in args
    # Training section.
    c.train.epochs = 30
    c.train.batch_size = 10
    c.train.balance = True
    c.train.dtype = "bfloat16" if "bf16" in args else "float32"
    c.optimizer.name = "sgd"
    c.optimizer.lr = 1e-3
    c.optimizer.momentum = 0.9
    c.optimizer.decay_every_epochs = 10
    return c
