"""STSTNet (MEGC 2019 baseline; mer_jax/models/ststnet.py) on the MEGC 2019 composite, CDE.

Paper setting (Liong et al., FG 2019, Sec. II-III): onset -> apex TV-L1 flow (u, v) and its
optical strain, 28x28x3; Adam, initial learning rate 0.00005, 500 epochs; mini-batch 256 as
in the authors' MATLAB `main.m` and PyTorch `main.py` (github.com/christy1206/STSTNet);
no class balancing, no augmentation. Protocol `cde_megc2019`: the official composite list
(SMIC-HS, CASME II, SAMM), leave-one-subject-out over its 68 subjects, labels
`megc2019_3class`. Published: UF1 0.7353, UAR 0.7605 (composite).

The real datasets have no stored flow + strain view, so the input is computed from the
frames configs at sweep time (`input.representation = 'flow'`, 3 channels: the same
functions as the stored `flow_28_strain` views). Apex: the annotation (CASME II, SAMM) or,
for SMIC which has none, the mid-clip frame (`ground_truth_else_mid_clip`); the paper spots
SMIC's apex with D&C-RoIs, which mer_jax does not implement.

    mer-jax sweep experiments/baselines/ststnet_megc2019.py
    mer-jax sweep experiments/baselines/ststnet_megc2019.py:synthetic   # CPU, about 80 s

`:synthetic`: the synthetic MEGC 2019-shaped composite's stored view
(`synthetic_me/megc2019_flow_28_strain`; LOSO over its 68 subjects, the synthetic corpus
has no official list) with a larger learning rate and fewer epochs.
"""

from mer_jax import config as config_lib

ARGS = ("synthetic",)


def get_config(arg=None):
    if arg and arg not in ARGS:
        raise ValueError(
            f"experiments/baselines/ststnet_megc2019.py: unknown argument {arg!r} "
            f"(known: {', '.join(ARGS)})"
        )
    c = config_lib.base()
    # Data section: the frames of the three composite parts; flow + strain computed per clip.
    c.dataset = "smic/hs_cropped_112+casme2/cropped_112+samm/raw_face_112"
    c.protocol = "cde_megc2019"
    c.input.label_scheme = "megc2019_3class"
    c.input.representation = "flow"
    c.input.image_size = 28
    c.input.channels = 3  # u, v, optical strain
    c.input.flow_method = "tvl1"
    c.input.apex = "ground_truth_else_mid_clip"
    c.augment.flip = False
    # Model section.
    c.model = "ststnet"
    # Training section.
    c.train.epochs = 500
    c.train.batch_size = 256
    c.train.balance = False
    c.optimizer.name = "adam"
    c.optimizer.lr = 5e-5
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = "constant"
    if arg == "synthetic":
        c.dataset = "synthetic_me/megc2019_flow_28_strain"
        c.protocol = "loso"
        c.input.apex = "ground_truth"
        c.input.label_scheme = ""  # the builder's three classes
        c.train.epochs = 6
        c.train.batch_size = 32
        c.optimizer.lr = 3e-3
    # The published MEGC 2019 composite figures (STSTNet; as seed 002 Table 2 and seed 001
    # Table 5 quote them): a reference row beside the seed models.
    c.paper.seed = "baseline"
    c.paper.table = "MEGC 2019"
    c.paper.title = "STSTNet on the MEGC 2019 composite, UF1 and UAR"
    c.paper.metrics = ("uf1", "uar")
    c.paper.reported = {
        "all": {"uf1": 0.7353, "uar": 0.7605},
        "smic": {"uf1": 0.6801, "uar": 0.7013},
        "casme2": {"uf1": 0.8382, "uar": 0.8686},
        "samm": {"uf1": 0.6588, "uar": 0.681},
    }
    return c
