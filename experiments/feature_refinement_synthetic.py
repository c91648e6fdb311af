"""Feature Refinement (seed 002) on the synthetic MEGC 2019-shaped composite, CDE.

Paper setting (Sec. 4.2): onset -> apex TV-L1 flow, horizontal and vertical
components at 28x28 (the builder configs `synthetic_me/megc2019_flow_28` and,
for :quick, `casme2_flow_28`: views stored at build time); SGD without momentum, lr 0.001, batch 32; loss
0.85 * L_prop + L_cls (the model's `aux_loss`).

    mer-jax sweep experiments/feature_refinement_synthetic.py
    mer-jax sweep experiments/feature_refinement_synthetic.py:quick   # CPU, casme2-shaped

`--set model_kwargs.proposal=False` is Basic Inception;
`--set model_kwargs.attention=False` FR-fc; `--set model_kwargs.fusion="'concat'"` FR-concatenated.
LOSO here: the synthetic corpus has no official list. On the real composite use the table
configs (experiments/feature_refinement/, protocol `cde_megc2019_442`, docs/experiments.md).
"""

from mer_jax import config as config_lib


def get_config(arg=None):
    c = config_lib.base()
    # The view is a builder config; the input keys describe it (for frames datasets).
    c.dataset = "synthetic_me/megc2019_flow_28"
    c.input.representation = "flow"
    c.input.image_size = 28
    c.input.channels = 2
    c.input.flow_method = "tvl1"
    c.augment.flip = False
    c.model = "feature_refinement"
    c.model_kwargs.proposal = True
    c.model_kwargs.attention = True
    c.model_kwargs.fusion = "sum"
    c.train.epochs = 60
    c.train.batch_size = 32
    c.optimizer.name = "sgd"
    c.optimizer.lr = 0.001
    c.optimizer.momentum = 0.0
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = "constant"
    if arg == "quick":
        c.dataset = "synthetic_me/casme2_flow_28"
        c.model_kwargs.shared_features = 256
        c.model_kwargs.head_features = 64
        c.train.epochs = 10
        c.train.balance = False
        c.optimizer.name = "adam"
        c.optimizer.lr = 1e-3
    elif arg:
        raise ValueError(f"experiments/feature_refinement_synthetic.py: unknown argument {arg!r}")
    return c
