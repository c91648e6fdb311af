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
weights. Protocol `cde_megc2019`: the official 441-clip list, 68 folds. The settings live in
`mer_jax.recipes.dense_mixed_attention` (`finetune`, setting 'cde'); the paper's tables
are experiments/dense_mixed_attention/table5_cde_mixed.py .. table12_backbone.py.

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
from mer_jax.recipes import dense_mixed_attention as recipe

ARGS = ("synthetic",)


def get_config(arg=None):
    if arg and arg not in ARGS:
        raise ValueError(
            f"experiments/dense_mixed_attention/finetune_megc2019.py: unknown argument {arg!r} "
            f"(known: {', '.join(ARGS)})"
        )
    c = config_lib.base()
    recipe.finetune(c, "cde")
    if arg == "synthetic":
        # The pre-training -> fine-tuning pair: the subtle composite (1 px movements), from
        # pretrain_macro.py:synthetic's work dir.
        recipe.synthetic(
            c,
            "cde",
            dataset="synthetic_me/megc2019_subtle_evm_apex_32",
            pretrained=recipe.PRETRAINED_SYNTHETIC,
        )
        c.train.epochs = 8
    return c
