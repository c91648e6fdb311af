"""`config.check`, `config.load` and `config.override`: every bad value named by its key and the
allowed range before anything loads or compiles; config files that fail say file and line."""

import ast
import importlib.util
import math
import pathlib
import re

import pytest

from mer_jax import config as config_lib
from mer_jax import models
from mer_jax.errors import UserError

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((ROOT / "experiments").rglob("*.py"))
TINY = f"{ROOT / 'experiments' / 'quickstart.py'}:tiny"


def _documented_args(path: pathlib.Path) -> list:
    """None, every `:ARG` / `file.py:ARG` the file's docstring shows, and its ARGS tuple."""
    source = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source)) or ""
    args = {a for m in re.finditer(r"`:(\w+)`|\.py:([\w,]+)", doc) for a in m.groups() if a}
    module_spec = importlib.util.spec_from_file_location(f"doc_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    args |= set(getattr(module, "ARGS", ()))
    return [None, *sorted(args)]


def _tiny(**settings):
    """quickstart.py:tiny with `settings` ({'train.batch_size': 0}), types not enforced."""
    config = config_lib.load(TINY)
    config.unlock()
    with config.ignore_type():
        for key, value in settings.items():
            *parents, last = key.split(".")
            node = config
            for part in parents:
                node = node[part]
            node[last] = value
    return config


def test_every_experiment_and_documented_argument_passes_check():
    checked = []
    for path in EXPERIMENTS:
        args = _documented_args(path)
        assert len(args) >= 2, f"{path.name}: no documented argument found"
        for arg in args:
            config = config_lib.load(f"{path}:{arg}" if arg else str(path))
            if config.init.pretrained and not pathlib.Path(config.init.pretrained).exists():
                # A fine-tuning config names its pre-training's work dir, not run here (or,
                # AMAN's, the user's facial-expression ResNet-18 weights file).
                with pytest.raises(
                    UserError, match="config key 'init.pretrained': .*(runs|weights)/"
                ):
                    config_lib.check(config)
                config.init.pretrained = ""
                config.init.random_frozen_trunk = True  # (AMAN's trunk, without its weights)
            config_lib.check(config)
            checked.append((path.name, arg))
    assert len(checked) >= 2 * len(EXPERIMENTS) >= 12, checked


def test_every_base_key_has_a_rule():
    """A key added to base() needs its rule in config.rules() (or model_kwargs: model_rules)."""
    keys = set(config_lib._leaves(config_lib.base()))
    assert keys == set(config_lib.rules()), keys ^ set(config_lib.rules())


# (key, bad value, what the message says is allowed), one per class of rejected value.
BAD = [
    ("train.batch_size", 0, "an integer >= 1"),
    ("train.batch_size", 2.5, "an integer >= 1"),
    ("train.batch_size", None, "an integer >= 1"),
    ("train.epochs", 0, "an integer >= 1"),
    ("train.epochs", True, "an integer >= 1"),
    ("train.epochs_per_call", 0, "an integer >= 1"),
    ("train.epochs_per_call", 3, "a divisor of train.epochs 2"),
    ("train.folds_per_call", -1, "an integer >= 0"),
    ("train.fold_group", 0, "an integer >= 1"),
    ("train.checkpoint_every", -1, "an integer >= 0"),
    ("train.checkpoint_keep", 0, "an integer >= 1"),
    ("train.balance", "yes", "True or False"),
    ("train.dtype", "float16", "one of ['bfloat16', 'float32']"),
    ("train.fold_strategy", "pmap", "one of ["),
    ("train.step_loop", "while", "one of ["),
    ("train.conv_impl", "cudnn", "one of ['auto', 'gemm', 'xla']"),
    ("seed", 2**32, "an integer in [0, 4294967295]"),
    ("seeds", (0, 0), "a tuple of distinct integers"),
    ("seeds", (-1,), "a tuple of distinct integers"),
    ("seeds", 3, "a tuple of distinct integers"),
    ("train.validation_subjects", -1, "an integer >= 0"),
    ("train.validation_fraction", 1.0, "a number in (0, 1)"),
    ("train.validation_fraction", 0.0, "a number in (0, 1)"),
    ("train.early_stopping", -1, "an integer >= 0"),
    ("train.early_stopping", 5, "0 without a validation split"),
    ("init.freeze", "(", "a regular expression"),
    ("seed", -1, "an integer in [0, 4294967295]"),
    ("optimizer.lr", -0.01, "a number > 0"),
    ("optimizer.lr", 0.0, "a number > 0"),
    ("optimizer.lr", math.nan, "a number > 0"),
    ("optimizer.lr", math.inf, "a number > 0"),
    ("optimizer.momentum", 1.0, "a number in [0, 1)"),
    ("optimizer.weight_decay", -1e-4, "a number >= 0"),
    ("optimizer.decay_rate", 0.0, "a number in (0, 1]"),
    ("optimizer.decay_rate", 1.5, "a number in (0, 1]"),
    ("optimizer.decay_every_epochs", 0, "an integer >= 1"),
    ("optimizer.patience", -1, "an integer >= 0"),
    ("optimizer.name", "sgdd", "one of ['adam', 'rmsprop', 'sgd']"),
    ("optimizer.schedule", "cosine", "one of ['constant', 'plateau', 'step']"),
    ("augment.crop_size", 0, "None or an integer >= 1"),
    ("augment.crop_size", 33, "an integer <= input.image_size 32"),
    ("augment.crop_mode", "centre", "one of ['corners', 'random']"),
    ("augment.rotate_deg", -5.0, "a number >= 0"),
    ("augment.color_shift", -1.0, "a number >= 0"),
    ("augment.prob", 1.5, "a number in [0, 1]"),
    ("augment.flip_sign", (), "None or a non-empty tuple"),
    ("augment.rescale", (0.0,), "None or a non-empty tuple, each item a number > 0"),
    ("augment.rescale", (0.8, 1.0), "the crop 28 inside the resized input.image_size 32 (0.8"),
    ("augment.smooth_max", 1, "0 (off) or an integer >= 2"),
    ("report.attention_maps", -1, "an integer >= 0"),
    ("report.attention_keys", "[", "a regular expression"),
    ("input.image_size", 0, "an integer >= 1"),
    ("input.channels", 2, "one of [1, 3] (input.representation 'apex')"),
    ("input.representation", "nope", "one of ["),
    ("input.apex", "peak", "one of ["),
    ("input.flow_method", "lucas_kanade", "one of ["),
    ("input.label_scheme", "seven_class", "one of ["),
    ("input.num_frames", 0, "an integer >= 1"),
    ("input.factors", (), "a non-empty tuple"),
    ("input.factors", (1, -2), "a non-empty tuple, each item a number > 0"),
    ("input.evm.fps", 0.0, "a number > 0"),
    ("input.evm.filter", "box", "one of ["),
    ("input.evm.low", 0.5, "below input.evm.high 0.4"),
    ("protocol", "loocv", "one of ["),
    ("dataset", "nope/tiny", "NAME[/CONFIG]"),
    ("dataset", "synthetic_me/tiny+", "NAME[/CONFIG]"),
    ("model", "resnet", "one of ['aman', "),
    ("model_kwargs.width", 0, "an integer >= 1"),
    ("model_kwargs.width", 4.0, "an integer >= 1"),
    ("model_kwargs.attention", "yes", "True or False"),
    ("model_kwargs.stage_blocks", (1, 0, 1, 1), "each item an integer >= 1"),
]


@pytest.mark.parametrize("key, value, allowed", BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_check_names_the_key_the_value_and_what_is_allowed(key, value, allowed):
    config = _tiny(**{key: value})
    with pytest.raises(UserError) as info:
        config_lib.check(config)
    message = str(info.value)
    assert message.startswith(f"config key {key!r}: {value!r} is not "), message
    assert allowed in message, message
    config_lib.check(_tiny())  # the same config without the bad value passes


def test_check_rejects_an_impossible_combination_of_keys():
    """'map' folds need the 'scan' step loop (engine.resolve_strategy's rule, reused)."""
    with pytest.raises(UserError, match="'train.fold_strategy' = 'map' needs 'train.step_loop'"):
        config_lib.check(_tiny(**{"train.fold_strategy": "map", "train.step_loop": "python"}))
    config_lib.check(_tiny(**{"train.fold_strategy": "map", "train.step_loop": "scan"}))


def test_check_accepts_the_edges_of_every_range():
    edges = {
        "train.batch_size": 1,
        "train.epochs": 1,
        "train.epochs_per_call": 1,
        "train.folds_per_call": 0,
        "train.checkpoint_every": 0,
        "seed": 2**32 - 1,
        "optimizer.lr": 1e-12,
        "optimizer.momentum": 0.0,
        "optimizer.weight_decay": 0.0,
        "optimizer.decay_rate": 1.0,
        "optimizer.patience": 0,
        "augment.crop_size": 32,
        "augment.rotate_deg": 0.0,
        "augment.prob": 1.0,
        "augment.flip_sign": (-1.0, 1.0),
        "report.attention_maps": 0,
        "report.attention_keys": "",
        "model_kwargs.width": 1,
        "model_kwargs.conv_impl": "gemm",
        "input.label_scheme": "casme2_5class",
        "dataset": "synthetic_me/tiny+casme2/cropped_112",
    }
    config_lib.check(_tiny(**edges))
    config_lib.check(_tiny(**{"augment.crop_size": None, "seed": 0, "train.epochs_per_call": 2}))
    # 0.88 x 32 = 28.16 -> 28: the resized input just holds the crop of 28.
    config_lib.check(_tiny(**{"augment.rescale": (0.88, 1.1), "augment.smooth_max": 2}))


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"train.epoch": 3}, "config key 'train.epoch': not a key of mer_jax.config.base(); "
         "did you mean 'train.epochs'?"),
        ({"model_kwargs.widht": 8}, "config key 'model_kwargs.widht': micro_attention.Model has "
         "no field 'widht'; its fields: ['attention', 'attention_unit', 'conv_impl', "
         "'input_batchnorm', 'mask_levels', 'stage_blocks', 'width']"),
        ({"model_kwargs.dtype": "bfloat16"}, "config key 'model_kwargs.dtype': set train.dtype"),
    ],
)  # fmt: skip
def test_check_refuses_keys_no_one_reads(settings, message):
    with pytest.raises(UserError) as info:
        config_lib.check(_tiny(**settings))
    assert str(info.value).startswith(message), str(info.value)


def test_check_refuses_paths_of_the_wrong_kind(tmp_path):
    a_file = tmp_path / "weights.npz"
    a_file.write_bytes(b"")
    cases = [
        ({"data_dir": str(a_file)}, f"config key 'data_dir': {str(a_file)!r} is a file"),
        ({"init.pretrained": str(tmp_path / "no.npz")}, "config key 'init.pretrained': "),
        ({"init.pretrained": str(tmp_path)}, "is a directory without exported weights"),
        ({"init.pretrained": str(a_file)}, "model micro_attention reads no weight files"),
        ({"input.magnifier_checkpoint": str(tmp_path / "m.npz")}, "does not exist"),
        ({"input.magnifier_checkpoint": str(tmp_path)}, "is a directory, not a file"),
    ]
    for settings, message in cases:
        with pytest.raises(UserError, match=re.escape(message)):
            config_lib.check(_tiny(**settings))
    # A data dir not there yet is fine (synthetic corpora are built into it); so is AMAN's file.
    config_lib.check(_tiny(data_dir=str(tmp_path / "not_yet")))
    aman = config_lib.load(f"{ROOT / 'experiments' / 'aman_synthetic.py'}:quick")
    aman.unlock()
    aman.init.pretrained = str(a_file)
    config_lib.check(aman)


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_model_rules_come_from_the_fields_and_pass_the_papers_ablations(name):
    spec, rules = models.spec(name), config_lib.model_rules(name)
    assert set(rules) <= spec.fields and "dtype" not in rules
    for ablation, kwargs in [*spec.ablations.items(), ("small", spec.small.kwargs)]:
        for key, value in kwargs.items():
            assert rules[key].ok(value), (ablation, key, value, rules[key].what)
    width = rules[spec.width_kwarg]  # the size knob `mer-jax bench --width` scales
    assert width.what == "an integer >= 1" and not width.ok(0) and not width.ok(8.0)
    assert not rules["conv_impl"].ok("cudnn") and rules["conv_impl"].ok("xla")


def test_model_rules_read_each_string_fields_own_choices():
    aman = config_lib.model_rules("aman")
    assert aman["magnification_pool"].ok("single") and not aman["frame_pool"].ok("single")
    assert aman["frozen_through"].ok("none") and not aman["frozen_through"].ok("layer5")
    assert aman["single_factor"].ok(-1)  # not a size: its default is -1
    dense = config_lib.model_rules("dense_mixed_attention")
    assert dense["residual_widths"].ok(None) and not dense["residual_widths"].ok((8, 0))
    fr = config_lib.model_rules("feature_refinement")
    assert fr["dropout_rate"].ok(0.0) and not fr["dropout_rate"].ok(1.0)


# ---------------------------------------------------------------------------
# load and override.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "source, line, says",
    [
        (
            "from mer_jax import config\n\ndef get_config(arg=None)\n    return 1\n",
            3,
            "expected ':'",
        ),
        ("import os\nraise RuntimeError('boom')\n", 2, "RuntimeError: boom"),
        ("import os\nfrom mer_jax import nothing_here\n", 2, "ImportError: cannot import name"),
        (
            "from mer_jax import config\n\ndef get_config(arg=None):\n    c = config.base()\n"
            "    c.trian.epochs = 3\n    return c\n",
            5,
            "AttributeError: 'trian'; Did you mean \"train\"",
        ),
    ],
    ids=["syntax", "raises-on-import", "bad-import", "bad-attribute"],
)
def test_a_config_file_that_fails_says_file_and_line(tmp_path, source, line, says):
    path = tmp_path / "broken.py"
    path.write_text(source)
    with pytest.raises(UserError) as info:
        config_lib.load(str(path))
    assert str(info.value).startswith(f"{path}:{line}: {says}"), str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.__cause__ is not None  # the traceback stays reachable (--debug)


def test_load_refuses_a_file_without_get_config_or_returning_something_else(tmp_path):
    (tmp_path / "empty.py").write_text("X = 1\n")
    with pytest.raises(UserError, match="defines no get_config"):
        config_lib.load(str(tmp_path / "empty.py"))
    (tmp_path / "dict.py").write_text("def get_config(arg=None):\n    return {}\n")
    with pytest.raises(UserError, match="returned a dict, not an ml_collections.ConfigDict"):
        config_lib.load(str(tmp_path / "dict.py"))
    with pytest.raises(ValueError, match="unknown argument 'nope'"):
        config_lib.load(f"{ROOT / 'experiments' / 'quickstart.py'}:nope")
    with pytest.raises(FileNotFoundError, match="is a directory, not a file"):
        config_lib.load(str(tmp_path))


@pytest.mark.parametrize(
    "item, says",
    [
        ("train.epoch=3", "config has no key 'train.epoch'; did you mean 'train.epochs'?"),
        ("seed.x=1", "config has no key 'seed.x'"),
        ("train.epochs", "expected key=value"),
        ("train.epochs=many", "config key 'train.epochs' Could not override field"),
        ("train=3", "config key 'train' Could not override field"),
    ],
)
def test_override_errors_are_user_errors_naming_the_key(item, says):
    with pytest.raises(UserError) as info:
        config_lib.override(config_lib.load(TINY), [item])
    assert says in str(info.value) and str(info.value).startswith(f"--set {item!r}: ")


def test_override_sets_values_that_check_then_judges():
    config = config_lib.override(config_lib.load(TINY), ["train.epochs=4", "optimizer.lr=1"])
    assert config.train.epochs == 4 and config.optimizer.lr == 1.0
    config_lib.check(config)
    config_lib.override(config, ["optimizer.lr=-1"])
    with pytest.raises(UserError, match=r"^config key 'optimizer.lr': -1.0 is not a number > 0$"):
        config_lib.check(config)


def test_a_frozen_random_trunk_is_an_error_unless_intended(tmp_path):
    """AMAN freezes ResNet-18 through layer3 (seed 003): without init.pretrained that trunk
    would stay random; the synthetic config says it means it, a copy that does not fails."""
    aman = config_lib.load(str(ROOT / "experiments" / "aman_synthetic.py"))
    config_lib.check(aman)  # init.random_frozen_trunk=True there
    aman.init.random_frozen_trunk = False
    with pytest.raises(UserError, match="freezes its trunk .* random initialisation"):
        config_lib.check(aman)
    weights = tmp_path / "resnet18.npz"
    weights.write_bytes(b"")
    aman.init.pretrained = str(weights)
    config_lib.check(aman)
    aman.init.pretrained, aman.model_kwargs.frozen_through = "", "none"  # nothing frozen
    config_lib.check(aman)
