"""STANet (seed 004) on the synthetic CASME II-shaped corpus, LOSO.

Paper setting: onset..offset linearly interpolated, flow between adjacent
frames (FlowNet 2.0 in the paper; TV-L1, here its JAX port, stands in), 20
flows at 192x192; Adam lr 1e-5, weight decay 1e-4; 30 epochs on CASME II;
loss CE + 1e-8 ||M||_1 (the model's `aux_loss`); "corner crop and rescaling
augmentations ... The scaling factors are 0.9, 1.0 and 1.1" (CASME I / II; SMIC-HS:
corner crops and horizontal flips, `--set augment.rescale=None --set augment.flip=True
--set augment.flip_sign="(-1.0, 1.0)"`). The crop size is not given: 172, the largest
multiple of 4 that the 0.9 rescale of 192 (173) holds. No class resampling (the paper
names none). H of Eq. (3): LSTM states, s = 1/sqrt(d) (the model's docstring);
`--set model_kwargs.temporal_context=features --set model_kwargs.affinity_scale=1.0` is
the literal reading. Inputs: the builder configs `synthetic_me/casme2_flowseq_20x192`
and, for :quick, `casme2_flowseq_8x32_dis` (views stored at build time,
data_builders/views.py).

    mer-jax sweep experiments/stanet_synthetic.py          # GPU
    mer-jax sweep experiments/stanet_synthetic.py:quick    # CPU: 8 flows at 32x32, width 8

`--set model_kwargs.temporal_attention=False` etc. give the ablations of Table 2.
"""

from mer_jax import config as config_lib


def get_config(arg=None):
    c = config_lib.base()
    # The view is a builder config; the input keys describe it (for frames datasets).
    c.dataset = "synthetic_me/casme2_flowseq_20x192"
    c.input.representation = "flow_sequence"
    c.input.image_size = 192
    c.input.num_frames = 20
    c.input.flow_method = "tvl1_jax"  # TV-L1 in JAX: a clip's 20 pairs in one program
    c.augment.crop_size = 172
    c.augment.crop_mode = "corners"
    c.augment.rescale = (0.9, 1.0, 1.1)
    c.model = "stanet"
    c.model_kwargs.width = 32
    c.model_kwargs.spatial_attention = True
    c.model_kwargs.temporal_attention = True
    c.model_kwargs.temporal_context = "lstm"
    c.model_kwargs.affinity_scale = None  # 1 / sqrt(d)
    c.model_kwargs.l1_lambda = 1e-8
    c.train.epochs = 30
    c.train.batch_size = 8
    c.optimizer.name = "adam"
    c.optimizer.lr = 1e-5
    c.optimizer.weight_decay = 1e-4
    c.optimizer.schedule = "constant"
    if arg == "quick":
        c.dataset = "synthetic_me/casme2_flowseq_8x32_dis"
        c.input.image_size = 32
        c.input.num_frames = 8
        c.input.flow_method = "dis"
        c.augment.crop_size = 28  # 0.9 x 32 -> 29 holds it
        c.model_kwargs.width = 8
        c.model_kwargs.hourglass_depth = 2
        c.train.epochs = 6
        c.train.batch_size = 16
        c.optimizer.lr = 1e-3
    elif arg:
        raise ValueError(f"experiments/stanet_synthetic.py: unknown argument {arg!r}")
    return c
