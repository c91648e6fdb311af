"""Seed 001, dense connections + mixed attention (Gan et al.): the recipes of Sec. 4.1-4.4.

Input (Sec. 3.2, 4.1.2): the EVM-magnified apex frame (amplification 15, band 0.1-0.4,
`input.evm`), face cropped and resized to 112x112, colour: the builders' `evm_apex_112`
views. Network: growth rate 41, three 5x5 layers in each of four dense blocks, mixed
attention (the model's docstring: Table 13's 3.1 M parameters).
  pretrain  CK+, RAF-DB, FER-2013 in negative / positive / surprise (Table 2,
            `macro_3class`), 20% validation (protocol `holdout`), "we maintain the balance
            of the sample size in the three categories" (class resampling), batch 16, lr 0.01,
            x0.1 on plateau (patience 20), 200 epochs (Table 3), the best validation epoch's
            weights (Sec. 4.1.3). The optimizer is not named for pre-training: Adam, as
            fine-tuning's.
  cde       CASME II, SAMM and SMIC-HS pooled in the three classes, LOSO (Sec. 4.4);
            protocol `cde_megc2019` (the MEGC 2019 official list, 441 clips, 68 subjects),
            not the paper's 447-sample grouping (Sec. 4.5.1), which it does not list.
  sde       one dataset, LOSO: CASME II in five classes (`casme2_5class`), SAMM in five
            (`samm_5class`), SMIC-HS in three (`smic_3class`) (Sec. 4.5.2).
Fine-tuning (Table 4, Sec. 4.2): Adam, batch 32, lr 0.01, x0.1 on plateau (patience 20),
200 epochs, early stopping after 20 epochs without improvement "on the validation set",
whose construction the paper does not give: 2 of each fold's training subjects
(`train.validation_subjects`, never the test subject), which also drive the plateaus and
pick each fold's weights. No class resampling (the paper names none for fine-tuning), no
weight decay (Keras' Adam has none). It starts from the pre-training's exported weights
(`init.pretrained`); its 3-class classifier is kept for CDE, fresh for SDE's 5 classes.
`ablation` picks a row of Tables 10-12 (`models.dense_mixed_attention.ABLATIONS`); "all
experiments of the ablation study are conducted in accordance with the CDE benchmark"
(Sec. 4.6), transfer learning included: each ablation pre-trains its own network.
"""

from mer_jax.models import dense_mixed_attention as model

SETTINGS = ("cde", "sde")
DATASETS = ("smic", "casme2", "samm")
EVM_APEX_112 = {
    "casme2": "casme2/cropped_evm_apex_112",
    "samm": "samm/raw_face_evm_apex_112",
    "smic": "smic/hs_cropped_evm_apex_112",
}
LABEL_SCHEMES = {"casme2": "casme2_5class", "samm": "samm_5class", "smic": "smic_3class"}
PRETRAINED = "runs/dense_mixed_attention/pretrain_macro"
PRETRAINED_SYNTHETIC = "runs/dense_mixed_attention/pretrain_macro-synthetic"
# The paper's CDE figures of the full model and its ablations (UAR, UF1, Acc as a fraction;
# Tables 5-6 and 10-12 repeat them): 'all' = the composite, then per dataset.
CDE_FIGURES = {
    "mixed": {
        "all": {"uar": 0.9167, "uf1": 0.9213, "accuracy": 0.9374},
        "casme2": {"uar": 0.9174, "uf1": 0.934, "accuracy": 0.9467},
        "samm": {"uar": 0.8415, "uf1": 0.8485, "accuracy": 0.9015},
        "smic": {"uar": 0.9512, "uf1": 0.951, "accuracy": 0.9576},
    },
    "no_attention": {
        "all": {"uar": 0.8557, "uf1": 0.8691, "accuracy": 0.8926},
        "casme2": {"uar": 0.8653, "uf1": 0.8887, "accuracy": 0.9133},
        "samm": {"uar": 0.6477, "uf1": 0.689, "accuracy": 0.8258},
        "smic": {"uar": 0.9265, "uf1": 0.9215, "accuracy": 0.9273},
    },
    "channel_only": {
        "all": {"uar": 0.8892, "uf1": 0.8928, "accuracy": 0.9128},
        "casme2": {"uar": 0.8952, "uf1": 0.8957, "accuracy": 0.9133},
        "samm": {"uar": 0.7874, "uf1": 0.7931, "accuracy": 0.8864},
        "smic": {"uar": 0.9245, "uf1": 0.9256, "accuracy": 0.9333},
    },
    "spatial_only": {
        "all": {"uar": 0.8766, "uf1": 0.8942, "accuracy": 0.9105},
        "casme2": {"uar": 0.9108, "uf1": 0.9121, "accuracy": 0.9267},
        "samm": {"uar": 0.6644, "uf1": 0.7164, "accuracy": 0.8409},
        "smic": {"uar": 0.9428, "uf1": 0.9485, "accuracy": 0.9515},
    },
    "residual_mixed": {
        "all": {"uar": 0.7846, "uf1": 0.7954, "accuracy": 0.8456},
        "casme2": {"uar": 0.8163, "uf1": 0.8317, "accuracy": 0.8667},
        "samm": {"uar": 0.6507, "uf1": 0.6426, "accuracy": 0.8333},
        "smic": {"uar": 0.8102, "uf1": 0.8113, "accuracy": 0.8364},
    },
}
# The tables' stand-in: the MEGC 2019 composite in miniature (12 subjects, 60 clips), EVM
# apex at 32x32.
SYNTHETIC_DATASET = "synthetic_me/megc2019_mini_evm_apex_32"


def _network(c, ablation: str = "mixed"):
    c.input.representation = "evm_apex"
    c.input.image_size = 112
    c.input.channels = 3
    c.model = "dense_mixed_attention"
    c.model_kwargs.growth_rate = 41
    c.model_kwargs.attention = "mixed"
    c.model_kwargs.backbone = "dense"
    c.model_kwargs.update(model.ABLATIONS[ablation])
    c.optimizer.name = "adam"
    c.optimizer.lr = 0.01
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = "plateau"
    c.optimizer.patience = 20
    c.train.epochs = 200


def pretrain(c, *, ablation: str = "mixed"):
    """Set `c` to the macro-expression pre-training (Sec. 4.1.1, 4.1.3, Tables 2-3) of the
    network `ablation`."""
    _network(c, ablation)
    # Still images (EVM needs a clip: a still image is its own apex).
    c.dataset = "ck_plus/last3_112+raf_db/aligned_112+fer2013/112"
    c.input.label_scheme = "macro_3class"
    c.protocol = "holdout"
    c.train.validation_fraction = 0.2
    c.train.batch_size = 16
    c.train.balance = True
    return c


def finetune(c, setting: str, datasets=DATASETS, *, ablation: str = "mixed"):
    """Set `c` to seed 001's fine-tuning in `setting` ('cde' on the three datasets pooled,
    'sde' on one) with the model ablation `ablation`."""
    if setting not in SETTINGS:
        raise ValueError(f"dense_mixed_attention recipe: setting {setting!r} not in {SETTINGS}")
    _network(c, ablation)
    c.dataset = "+".join(EVM_APEX_112[d] for d in datasets)
    c.protocol = "cde_megc2019" if setting == "cde" else "loso"
    c.input.label_scheme = "" if setting == "cde" else LABEL_SCHEMES[datasets[0]]
    # Each ablation fine-tunes from its own pre-training (pretrain_macro.py:<ablation>).
    c.init.pretrained = PRETRAINED if ablation == "mixed" else f"{PRETRAINED}-{ablation}"
    c.train.batch_size = 32
    c.train.balance = False
    c.train.validation_subjects = 2
    c.train.early_stopping = 20
    return c


def _small_network(c):
    """The CPU-sized network of dense_mixed_attention_synthetic.py:quick at 32x32."""
    c.input.image_size = 32
    c.model_kwargs.growth_rate = 6
    c.model_kwargs.layers_per_block = (2, 2)
    c.model_kwargs.head_size = 4
    c.optimizer.lr = 3e-3


def pretrain_synthetic(c):
    """`pretrain` on the synthetic macro stand-in (`macro3_evm_apex_32`), CPU-sized."""
    _small_network(c)
    c.dataset = "synthetic_me/macro3_evm_apex_32"
    c.input.label_scheme = ""
    c.train.epochs = 15
    c.optimizer.patience = 3
    c.train.early_stopping = 6
    return c


def synthetic(c, setting: str, *, dataset=SYNTHETIC_DATASET, pretrained=""):
    """The same fine-tuning on `dataset` at a 2-core CPU's size (about a minute for the mini
    composite): LOSO over its subjects (a synthetic corpus has no official list; SDE runs
    on the composite too), its own labels, 10 epochs, plateau patience 2, early stopping 4."""
    del setting  # CDE and SDE differ in data only, and the stand-in is one corpus
    _small_network(c)
    c.dataset = dataset
    c.protocol = "loso"
    c.input.label_scheme = ""
    c.init.pretrained = pretrained
    c.train.epochs = 10
    c.train.batch_size = 16
    c.optimizer.patience = 2
    c.train.early_stopping = 4
    return c
