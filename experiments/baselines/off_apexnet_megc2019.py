"""OFF-ApexNet (MEGC 2019 baseline; mer_jax/models/off_apexnet.py) on the MEGC 2019
composite, CDE.

Input: onset -> apex TV-L1 flow (u, v) at 28x28, the stored `flow_28` views of the three
composite parts (SMIC's apex by `interframe_diff`, the others' annotated; the paper spots
SMIC's apex with D&C-RoIs, which mer_jax does not implement). Protocol `cde_megc2019`: the
official composite list, LOSO over its 68 subjects, labels `megc2019_3class`. No class
balancing, no augmentation.

Optimiser: the OFF-ApexNet paper could not be read when this file was written, so its
optimiser, epochs and batch are NOT checked against it; these are the settings its authors
published for STSTNet the same year on the same composite and input size (Adam, learning
rate 0.00005, 500 epochs, batch 256; `ststnet_megc2019.py`). Replace them with the paper's
before quoting a reproduction.

    mer-jax sweep experiments/baselines/off_apexnet_megc2019.py
    mer-jax sweep experiments/baselines/off_apexnet_megc2019.py:synthetic   # CPU, about 2 min

`:synthetic`: the synthetic MEGC 2019-shaped composite's stored view
(`synthetic_me/megc2019_flow_28`; LOSO over its 68 subjects, the synthetic corpus has no
official list) with FC widths of 256, a larger learning rate and fewer epochs.
"""

from mer_jax import config as config_lib

ARGS = ("synthetic",)


def get_config(arg=None):
    if arg and arg not in ARGS:
        raise ValueError(
            f"experiments/baselines/off_apexnet_megc2019.py: unknown argument {arg!r} "
            f"(known: {', '.join(ARGS)})"
        )
    c = config_lib.base()
    # Data section: the stored onset -> apex flow views of the three composite parts.
    c.dataset = "smic/hs_cropped_flow_28+casme2/cropped_flow_28+samm/raw_face_flow_28"
    c.protocol = "cde_megc2019"
    c.input.label_scheme = "megc2019_3class"
    c.input.representation = "flow"
    c.input.image_size = 28
    c.input.channels = 2
    c.input.flow_method = "tvl1"
    c.augment.flip = False
    # Model section.
    c.model = "off_apexnet"
    c.model_kwargs.hidden_features = 1024
    # Training section (see the docstring: not checked against the paper).
    c.train.epochs = 500
    c.train.batch_size = 256
    c.train.balance = False
    c.optimizer.name = "adam"
    c.optimizer.lr = 5e-5
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = "constant"
    if arg == "synthetic":
        c.dataset = "synthetic_me/megc2019_flow_28"
        c.protocol = "loso"
        c.input.label_scheme = ""  # the builder's three classes
        c.model_kwargs.hidden_features = 256
        c.train.epochs = 6
        c.train.batch_size = 32
        c.optimizer.lr = 1e-3
    # The published MEGC 2019 composite figures (OFF-ApexNet; as seed 002 Table 2 and seed 001
    # Table 5 quote them): a reference row beside the seed models.
    c.paper.seed = "baseline"
    c.paper.table = "MEGC 2019"
    c.paper.title = "OFF-ApexNet on the MEGC 2019 composite, UF1 and UAR"
    c.paper.metrics = ("uf1", "uar")
    c.paper.reported = {
        "all": {"uf1": 0.7196, "uar": 0.7096},
        "smic": {"uf1": 0.6817, "uar": 0.6695},
        "casme2": {"uf1": 0.8764, "uar": 0.8681},
        "samm": {"uf1": 0.5409, "uar": 0.5392},
    }
    return c
