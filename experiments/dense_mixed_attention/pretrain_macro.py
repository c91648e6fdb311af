"""Dense + mixed attention pre-training on macro-expressions (seed 001, Sec. 4.1.1, Table 2).

The paper: CK+, RAF-DB and FER-2013 mixed, mapped to negative / positive /
surprise (label scheme `macro_3class`: neutral excluded), class-balanced, 20%
validation, batch 16, lr 0.01 x0.1 on plateau (patience 20), 200 epochs. The
validation part is protocol `holdout` (whole subjects, stratified; RAF-DB and
FER-2013 name no subjects: each image is its own), which drives the plateaus
and picks the exported weights. The paper (Keras) names no optimizer for
pre-training; Adam as in its fine-tuning.

    mer-jax sweep experiments/dense_mixed_attention/pretrain_macro.py              # licensed data
    mer-jax sweep experiments/dense_mixed_attention/pretrain_macro.py:synthetic    # CPU

`:synthetic`: the CPU-sized network of dense_mixed_attention_synthetic.py (its quick variant) on
`synthetic_me/macro3_evm_apex_32` (three synthetic "datasets", 8 px movements).
Not run at full size in this repository.
"""

from mer_jax import config as config_lib

ARGS = ("synthetic",)


def get_config(arg=None):
    if arg and arg not in ARGS:
        raise ValueError(
            f"experiments/dense_mixed_attention/pretrain_macro.py: unknown argument {arg!r} "
            f"(known: {', '.join(ARGS)})"
        )
    c = config_lib.base()
    # Data section: still images (EVM needs a clip: a still image is its own apex).
    c.dataset = "ck_plus/last3_112+raf_db/aligned_112+fer2013/112"
    c.input.label_scheme = "macro_3class"
    c.input.representation = "evm_apex"
    c.input.image_size = 112
    c.input.channels = 3
    c.protocol = "holdout"
    c.train.validation_fraction = 0.2
    # Model section (dense_mixed_attention_synthetic.py: growth 41 gives the paper's 3.1 M).
    c.model = "dense_mixed_attention"
    c.model_kwargs.growth_rate = 41
    c.model_kwargs.attention = "mixed"
    c.model_kwargs.backbone = "dense"
    # Training section.
    c.train.epochs = 200
    c.train.batch_size = 16
    c.train.balance = True
    c.optimizer.name = "adam"
    c.optimizer.lr = 0.01
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = "plateau"
    c.optimizer.patience = 20
    if arg == "synthetic":
        c.dataset = "synthetic_me/macro3_evm_apex_32"
        c.input.label_scheme = ""
        c.input.image_size = 32
        c.model_kwargs.growth_rate = 6
        c.model_kwargs.layers_per_block = (2, 2)
        c.model_kwargs.head_size = 4
        c.train.epochs = 15
        c.optimizer.lr = 3e-3
        c.optimizer.patience = 3
        c.train.early_stopping = 6
    return c
