"""The defaults of every sweep config key: `base()` (re-exported by `mer_jax.config`).

Experiment files start from `base()` and override; `mer_jax.config.check` tests
every key against its allowed values.
"""

import ml_collections


def base() -> ml_collections.ConfigDict:
    """Every key a sweep reads, with defaults; experiment files start here and override."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    # Several seeds in one job (`--seeds N`: seed .. seed+N-1): seeds x folds train as one
    # fold axis; results give each metric as mean ± sd over seeds. () = (seed,).
    c.seeds = ()
    # Data section.
    c.dataset = "synthetic_me/casme2"
    c.data_dir = ""  # '' = TFDS_DATA_DIR or ~/tensorflow_datasets
    c.protocol = "loso"
    # Model input (mer_jax/preprocess/representations.py): the view of each clip a model reads.
    c.input = _input()
    # Model section.
    c.model = "micro_attention"
    c.model_kwargs = ml_collections.ConfigDict()  # keyword arguments of the model's `Model`
    c.init = _init()
    c.train = _train()
    c.augment = _augment()
    c.optimizer = _optimizer()
    # Report section (mer_jax/report.py).
    c.report = _report()
    # The paper table the config reproduces (mer_jax/experiments.py); empty for other sweeps.
    c.paper = _paper()
    return c


def _input() -> ml_collections.ConfigDict:
    """The model input section (`c.input`)."""
    return ml_collections.ConfigDict(
        {
            "representation": "apex",  # apex | evm_apex | flow | aman_stack | flow_sequence
            "image_size": 224,
            "channels": 1,
            # ground_truth | ground_truth_else_mid_clip | mid_clip | interframe_diff
            "apex": "ground_truth",
            "label_scheme": "",  # '' = the builder's labels; else mer_jax.label_schemes
            "flow_method": "tvl1",  # tvl1 | tvl1_jax | farneback | dis
            "num_frames": 20,  # flow_sequence: flows per clip; aman_stack: TIM frames
            "factors": (1, 2, 3, 4, 5, 6, 7, 8, 9),  # aman_stack magnification factors
            # aman_stack: a learned-magnifier .npz (mer_jax/magnifier/model.py, Oh et al. 2018);
            # '' = Eulerian magnification against the onset (the fallback).
            "magnifier_checkpoint": "",
            # evm_apex: Eulerian magnification, band as fractions of Nyquist (mer_jax/preprocess/evm.py).
            # lambda_c 16: the MIT reference's baby example; its face example's 80 leaves
            # frames under ~120 px almost unmagnified.
            "evm": {
                "alpha": 15.0,
                "low": 0.1,
                "high": 0.4,
                "fps": 200.0,
                "filter": "ideal",
                "lambda_c": 16.0,
            },
        }
    )


def _init() -> ml_collections.ConfigDict:
    """Initial weights (`c.init`, mer_jax/finetune.py)."""
    return ml_collections.ConfigDict(
        {
            # '' (random), a finished sweep's work dir (fine-tuning from its exported model:
            # the holdout fold or the final model), or a weights file the model's
            # `load_pretrained` reads (AMAN: torchvision ResNet-18 state_dict, .npz or .pth).
            "pretrained": "",
            # Regex on '/'-joined parameter paths ('stem|stage1'): parameters that never
            # change (no updates, no optimizer state); '' = none besides the model's own.
            "freeze": "",
            # A model that freezes a trunk (AMAN) without `pretrained` would train on a random,
            # fixed trunk: an error, unless this says it is intended (synthetic smoke runs).
            "random_frozen_trunk": False,
        }
    )


def _train() -> ml_collections.ConfigDict:
    """The training section (`c.train`)."""
    return ml_collections.ConfigDict(
        {
            "epochs": 30,
            "batch_size": 10,
            # Class resampling: each class tiled to the largest class's count per epoch. Off
            # unless a paper says so (seed 000's fine-tuning, seed 001's pre-training).
            "balance": False,
            "epochs_per_call": 1,
            "dtype": "float32",
            "fold_strategy": "auto",  # auto | vmap | map | loop (engine.resolve_strategy)
            "step_loop": "auto",  # auto | scan | python
            "fold_group": 1,  # folds per lax.map group with fold_strategy='map'
            # How convolutions compute (same results): auto | xla | gemm. 'auto' is
            # 'gemm' (patches x batched GEMM, mer_jax.models.layers) where per-fold weights are
            # vmapped on GPU/TPU, else 'xla' (engine.resolve_conv_impl).
            "conv_impl": "auto",
            # Models with a frozen trunk (AMAN): run it once per clip, train the head on
            # the cached features (identical for every fold; no pixel augmentation then).
            "cache_frozen_trunk": True,
            # vmap/map: folds per compiled call; 0 = as many as fit in device memory
            # (engine.max_folds_per_call). The fold axis is sharded over all local devices.
            "folds_per_call": 0,
            # Checkpoints in <workdir>/checkpoints (engine.Checkpointer): after the call that
            # reaches every `checkpoint_every` epochs (0: only at the end and on Ctrl-C),
            # the last `checkpoint_keep` kept. They change no result: a resume may alter them.
            "checkpoint_every": 10,
            "checkpoint_keep": 2,
            # One more model trained on every subject, in the same program as the folds
            # (its epochs as long as theirs); exported as 'all subjects', never evaluated.
            "final_model": False,
            # Validation splits of whole subjects (mer_jax.protocols.validation_split), watched
            # at every epoch's end (engine/monitor.py) for optimizer.schedule 'plateau', early
            # stopping and the best weights: LOSO folds hold `validation_subjects` of their
            # training subjects aside (0: none); protocol 'holdout' holds out
            # `validation_fraction` of the samples. The test subject never takes part.
            "validation_subjects": 0,
            "validation_fraction": 0.1,
            # Stop a fold after this many epochs without improvement on its validation split,
            # keeping its best epoch's weights (0: never; needs a validation split).
            "early_stopping": 0,
        }
    )


def _augment() -> ml_collections.ConfigDict:
    """On-device augmentation (`c.augment`, engine.Augment)."""
    return ml_collections.ConfigDict(
        {
            # Training crop side (None: the stored size); evaluation takes the centre crop.
            "crop_size": ml_collections.config_dict.placeholder(int),
            # random: anywhere; corners: one of the four corners or the centre (000 CDE, 004).
            "crop_mode": "random",
            "flip": False,  # horizontal flip with p = 0.5 (004 on SMIC-HS)
            "flip_sign": ml_collections.config_dict.placeholder(tuple),  # (-1.0, 1.0) for flow
            "color_shift": 0.0,  # max per-channel shift in 0..255 pixel units (000: 20)
            "rotate_deg": 0.0,  # max rotation in degrees (000: 10 pre-training, 8 fine-tuning)
            # Scale factors, one drawn uniformly per example; the image is resized by it
            # (bilinear) before the crop, and every resized side must hold crop_size
            # (004: (0.9, 1.0, 1.1)). None: no rescaling.
            "rescale": ml_collections.config_dict.placeholder(tuple),
            # Box smoothing, window drawn from 2..smooth_max (000 pre-training: 6); 0: off.
            "smooth_max": 0,
            "prob": 0.5,  # probability of colour shift, rotation and smoothing, each
        }
    )


def _optimizer() -> ml_collections.ConfigDict:
    """The optimizer section (`c.optimizer`, engine.make_optimizer)."""
    return ml_collections.ConfigDict(
        {
            "name": "sgd",
            "lr": 1e-3,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            # constant | step | plateau (on the validation loss with a validation split, else
            # on the training loss; engine/monitor.py)
            "schedule": "step",
            "decay_every_epochs": 10,
            "decay_rate": 0.1,
            "patience": 20,  # epochs without improvement, schedule 'plateau'
        }
    )


def _report() -> ml_collections.ConfigDict:
    """The report section (`c.report`)."""
    return ml_collections.ConfigDict(
        {
            # Attention maps of held-out examples (the model's `out` dict, final weights,
            # float16) for attention_maps.npz / .png: examples kept per class, 0 = off.
            # Memory grows with the kept examples only (heldout_maps.select_heldout).
            "attention_maps": 2,
            # Regex on the `out` leaf names to keep ('' = every leaf, features included).
            "attention_keys": "attention|mask$|weights$|affinity$",
        }
    )


def _paper() -> ml_collections.ConfigDict:
    """The paper table a config reproduces (`c.paper`, mer_jax/experiments.py).

    `reported[row][metric]`: the paper's figure as a fraction, or (mean, sd) where the paper
    gives one. Rows: 'all' (the headline metrics), a source dataset of a composite
    ('casme2', 'samm', 'smic'), or a fold of a cross-dataset protocol ('casme2->samm').
    """
    return ml_collections.ConfigDict(
        {
            "seed": "",  # '000'..'004' (docs/papers.md), 'baseline' for the MEGC baselines
            "table": "",  # 'Table 5', 'Fig. 3'
            "title": "",  # what the table shows, in a few words
            "variant": "",  # the row of the table this config is ('' = the whole table)
            "runs": 1,  # runs the paper's figure is the mean of
            "metrics": (),  # the metrics the table reports, of metrics.HEADLINE
            "reported": ml_collections.ConfigDict(),
            "note": "",  # how the paper's figure was read (units, footnotes)
        }
    )
