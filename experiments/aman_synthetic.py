"""AMAN (seed 003) on the synthetic CASME II-shaped corpus, LOSO.

Paper setting: onset..offset TIM-normalised to n = 11 frames, each magnified
against the onset at k = 9 factors (Eulerian fallback of the learned
magnifier), 224x224; ResNet-18 frozen through layer3, layer4 + MA + FA
trained; RMSprop lr 1e-3, weight decay 1e-4, step x0.2 every 30 epochs,
batch 4, 50 epochs. The authors pick the best epoch on the test subject; this
project reports the final epoch. Inputs: the builder configs
`synthetic_me/casme2_aman_11x9` and, for :quick, `casme2_aman_5x3_32` (views
stored at build time, data_builders/views.py; they record the magnifier).

    mer-jax sweep experiments/aman_synthetic.py          # GPU
    mer-jax sweep experiments/aman_synthetic.py:quick    # CPU: n 5, k 3, 32x32, width 8

`--set model_kwargs.frame_pool="'mean'"` is MA only;
`--set model_kwargs.magnification_pool="'single'"` FA only.
"""

from mer_jax import config as config_lib


def get_config(arg=None):
    c = config_lib.base()
    # The view is a builder config; the input keys describe it (for frames datasets).
    c.dataset = "synthetic_me/casme2_aman_11x9"
    c.input.representation = "aman_stack"
    c.input.image_size = 224
    c.input.num_frames = 11
    c.input.factors = (1, 2, 3, 4, 5, 6, 7, 8, 9)
    c.model = "aman"
    c.model_kwargs.width = 64
    c.model_kwargs.frozen_through = "layer3"
    # No ResNet-18 weights ship with mer_jax (nothing downloads): on the synthetic corpus the
    # frozen trunk is a random one, on purpose. With the real data give init.pretrained.
    c.init.random_frozen_trunk = True
    c.model_kwargs.magnification_pool = "attention"
    c.model_kwargs.frame_pool = "attention"
    c.train.epochs = 50
    c.train.batch_size = 4
    c.optimizer.name = "rmsprop"
    c.optimizer.lr = 1e-3
    c.optimizer.momentum = 0.0
    c.optimizer.weight_decay = 1e-4
    c.optimizer.decay_every_epochs = 30
    c.optimizer.decay_rate = 0.2
    if arg == "quick":
        c.dataset = "synthetic_me/casme2_aman_5x3_32"
        c.input.image_size = 32
        c.input.num_frames = 5
        c.input.factors = (1, 4, 8)
        c.model_kwargs.width = 8
        c.model_kwargs.frozen_through = "none"
        c.train.epochs = 8
        c.train.batch_size = 8
    elif arg:
        raise ValueError(f"experiments/aman_synthetic.py: unknown argument {arg!r}")
    return c
