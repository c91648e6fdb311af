"""Dense + mixed attention fine-tuned on the MEGC 2019 composite, CDE (seed 001, Sec. 4.2,
Table 4).

Every fold starts from pretrain_macro.py's exported weights (`init.pretrained`,
its work dir); `macro_3class` and `megc2019_3class` name the same classes in
the same order, so the classifier is kept. Paper settings: EVM-magnified apex,
colour, 112x112; Adam, batch 32, lr 0.01, x0.1 on plateau (patience 20), 200
epochs, early stopping after 20 epochs without improvement "on a validation
set" whose construction the paper does not give: here 2 of each fold's
training subjects (`train.validation_subjects`, drawn per fold and seed,
never the test subject), which also drive the plateaus and pick each fold's
weights. Protocol `cde_megc2019`: the official 441-clip list, 68 folds.

    mer-jax sweep experiments/dense_mixed_attention/pretrain_macro.py
    mer-jax sweep experiments/dense_mixed_attention/finetune_megc2019.py

    mer-jax sweep experiments/dense_mixed_attention/pretrain_macro.py:synthetic
    mer-jax sweep experiments/dense_mixed_attention/finetune_megc2019.py:synthetic --seeds 5

`:synthetic`: the subtle synthetic composite (`synthetic_me/megc2019_subtle_evm_apex_32`,
1 px movements, LOSO over its 68 subjects: the synthetic corpus has no official
list) from `runs/dense_mixed_attention/pretrain_macro-synthetic`: about 10
minutes per seed on a 2-core CPU (68 folds, 8 epochs). Not run at full size in
this repository.
"""

from mer_jax import config as config_lib

ARGS = ("synthetic",)


def get_config(arg=None):
    if arg and arg not in ARGS:
        raise ValueError(
            f"experiments/dense_mixed_attention/finetune_megc2019.py: unknown argument {arg!r} "
            f"(known: {', '.join(ARGS)})"
        )
    c = config_lib.base()
    # Data section: the three composite parts' EVM-apex views.
    c.dataset = (
        "smic/hs_cropped_evm_apex_112+casme2/cropped_evm_apex_112+samm/raw_face_evm_apex_112"
    )
    c.protocol = "cde_megc2019"
    c.input.representation = "evm_apex"
    c.input.image_size = 112
    c.input.channels = 3
    # Model section.
    c.model = "dense_mixed_attention"
    c.model_kwargs.growth_rate = 41
    c.model_kwargs.attention = "mixed"
    c.model_kwargs.backbone = "dense"
    c.init.pretrained = "runs/dense_mixed_attention/pretrain_macro"
    # Training section.
    c.train.epochs = 200
    c.train.batch_size = 32
    c.train.validation_subjects = 2
    c.train.early_stopping = 20
    c.optimizer.name = "adam"
    c.optimizer.lr = 0.01
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = "plateau"
    c.optimizer.patience = 20
    if arg == "synthetic":
        c.dataset = "synthetic_me/megc2019_subtle_evm_apex_32"
        c.protocol = "loso"
        c.input.image_size = 32
        c.model_kwargs.growth_rate = 6
        c.model_kwargs.layers_per_block = (2, 2)
        c.model_kwargs.head_size = 4
        c.init.pretrained = "runs/dense_mixed_attention/pretrain_macro-synthetic"
        c.train.epochs = 8
        c.train.batch_size = 16
        c.optimizer.lr = 3e-3
        c.optimizer.patience = 2
        c.train.early_stopping = 4
    return c
