"""Sweep configs: Python files in experiments/ with `get_config(arg=None)` (big_vision style).

`load("experiments/quickstart.py:quick")` imports the file and calls
`get_config("quick")`; `override(config, ["train.epochs=3"])` applies
`--set` items, each value parsed as a Python literal (else kept as a string),
refusing unknown keys with the key's name.
"""

import ast
import importlib.util
import pathlib

import ml_collections


def load(spec: str) -> ml_collections.ConfigDict:
    """`path/to/config.py[:arg]` -> the ConfigDict its get_config(arg) returns."""
    path, _, arg = spec.partition(":")
    file = pathlib.Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    module_spec = importlib.util.spec_from_file_location(f"mer_jax_config_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise AttributeError(f"config file {path} defines no get_config(arg=None)")
    config = module.get_config(arg or None)
    config.lock()
    return config


def _parse(value: str):
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def override(config: ml_collections.ConfigDict, items: list[str]) -> ml_collections.ConfigDict:
    """Apply `key.sub=value` items in order; unknown keys and bad types name the key."""
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected key=value")
        parent = config
        parts = key.split(".")
        for part in parts[:-1]:
            if part not in parent:
                raise KeyError(f"--set {item!r}: config has no key {key!r}")
            parent = parent[part]
        if parts[-1] not in parent:
            raise KeyError(f"--set {item!r}: config has no key {key!r}")
        value = _parse(raw)
        old = parent[parts[-1]]
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        try:
            parent[parts[-1]] = value
        except TypeError as err:
            raise TypeError(f"--set {item!r}: config key {key!r} {err}") from None
    return config


def flatten(config, prefix: str = "") -> dict:
    """{'train.epochs': 10, ...} for reports."""
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, ml_collections.ConfigDict | dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def base() -> ml_collections.ConfigDict:
    """Every key a sweep reads, with defaults; experiment files start here and override."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    # Data section.
    c.dataset = "synthetic_me/casme2"
    c.data_dir = ""  # '' = TFDS_DATA_DIR or ~/tensorflow_datasets
    c.protocol = "loso"
    # Model input (mer_jax/preprocess/representations.py): the view of each clip a model reads.
    c.input = _input()
    # Model section.
    c.model = "micro_attention"
    c.model_kwargs = ml_collections.ConfigDict()  # keyword arguments of the model's `Model`
    # Initialisation: '' (random) or a weights file the model's `load_pretrained` reads
    # (AMAN: a torchvision ResNet-18 state_dict as .npz).
    c.init = ml_collections.ConfigDict({"pretrained": ""})
    c.train = _train()
    c.augment = _augment()
    c.optimizer = _optimizer()
    # Report section (mer_jax/report.py).
    c.report = _report()
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


def _train() -> ml_collections.ConfigDict:
    """The training section (`c.train`)."""
    return ml_collections.ConfigDict(
        {
            "epochs": 30,
            "batch_size": 10,
            "balance": True,  # class resampling to the largest class (seed 000)
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
        }
    )


def _augment() -> ml_collections.ConfigDict:
    """On-device augmentation (`c.augment`, engine.Augment)."""
    return ml_collections.ConfigDict(
        {
            "crop_size": ml_collections.config_dict.placeholder(int),
            "crop_mode": "random",
            "flip": False,
            "flip_sign": ml_collections.config_dict.placeholder(tuple),  # (-1.0, 1.0) for flow
            "color_shift": 0.0,
            "rotate_deg": 0.0,
            "prob": 0.5,
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
            "schedule": "step",  # constant | step | plateau (on the training loss)
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
            # Memory grows with the kept examples only (sweep.select_heldout).
            "attention_maps": 2,
            # Regex on the `out` leaf names to keep ('' = every leaf, features included).
            "attention_keys": "attention|mask$|weights$|affinity$",
        }
    )
