"""Dense + mixed attention (seed 001) on the synthetic MEGC 2019-shaped composite, CDE.

Paper setting (Sec. 4): EVM-magnified apex frame, colour, 112x112 (the
builder configs `synthetic_me/megc2019_evm_apex_112` and, for :quick,
`casme2_evm_apex_32`: views stored at build time); Adam,
batch 32, lr 0.01, x0.1 on plateau (patience 20, here on the training loss,
never on the held-out subject), 200 epochs; 68-fold LOSO over the three
sub-corpora, 3 classes.

    mer-jax sweep experiments/dense_mixed_attention_synthetic.py          # GPU
    mer-jax sweep experiments/dense_mixed_attention_synthetic.py:quick    # CPU, minutes

`--set model_kwargs.attention="'none'"` (or 'channel', 'spatial') and
`--set model_kwargs.backbone="'residual'"` give the ablations of Tables 11-12.
LOSO here: the synthetic corpus has no official list. On the real composite use the table
configs (experiments/dense_mixed_attention/, protocol `cde_megc2019`, docs/experiments.md).
"""

from mer_jax import config as config_lib


def get_config(arg=None):
    c = config_lib.base()
    # The view is a builder config; the input keys describe it (for frames datasets).
    c.dataset = "synthetic_me/megc2019_evm_apex_112"
    c.input.representation = "evm_apex"
    c.input.image_size = 112
    c.input.channels = 3
    c.model = "dense_mixed_attention"
    c.model_kwargs.growth_rate = 41
    c.model_kwargs.attention = "mixed"
    c.model_kwargs.backbone = "dense"
    c.train.epochs = 200
    c.train.batch_size = 32
    c.optimizer.name = "adam"
    c.optimizer.lr = 0.01
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = "plateau"
    c.optimizer.patience = 20
    if arg == "quick":
        c.dataset = "synthetic_me/casme2_evm_apex_32"
        c.input.image_size = 32
        c.model_kwargs.growth_rate = 6
        c.model_kwargs.layers_per_block = (2, 2)
        c.model_kwargs.head_size = 4
        c.train.epochs = 12
        c.train.batch_size = 16
        c.optimizer.lr = 3e-3
        c.optimizer.schedule = "constant"
    elif arg:
        raise ValueError(
            f"experiments/dense_mixed_attention_synthetic.py: unknown argument {arg!r}"
        )
    return c
