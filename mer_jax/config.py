"""Sweep configs: Python files in experiments/ with `get_config(arg=None)` (big_vision style).

`load("experiments/quickstart.py:quick")` imports the file and calls
`get_config("quick")`; `override(config, ["train.epochs=3"])` applies
`--set` items, each value parsed as a Python literal (else kept as a string),
refusing unknown keys with the key's name. `check(config)` tests every key
against its allowed values before a sweep loads data or compiles (`RULES`, the
model's fields for `model_kwargs`, and the rules that tie keys together).
Mistakes in any of these raise `errors.UserError`: one line naming the key (or
the config file and line) and what is allowed.
"""

import ast
import dataclasses
import difflib
import importlib.util
import math
import numbers
import os
import pathlib
import re
import sys
import traceback
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import ml_collections

from mer_jax.config_defaults import base
from mer_jax.errors import UserError
from mer_jax.metrics import HEADLINE


def load(spec: str) -> ml_collections.ConfigDict:
    """`path/to/config.py[:arg]` -> the ConfigDict its get_config(arg) returns.

    A file that does not compile or raises on import, and a get_config that fails
    (other than with its own ValueError, e.g. an unknown argument), raise
    UserError `path:line: ...` (the traceback stays in the exception's cause).
    """
    path, _, arg = spec.partition(":")
    file = pathlib.Path(path)
    if not file.is_file():
        what = "is a directory, not a file" if file.is_dir() else "does not exist"
        raise FileNotFoundError(f"config file {path} {what}")
    module_spec = importlib.util.spec_from_file_location(f"mer_jax_config_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as err:
        where = path if _same_file(err.filename, file) else err.filename
        raise UserError(f"{where}:{err.lineno}: {err.msg}") from err
    except Exception as err:
        raise UserError(_failed_at(path, file, err)) from err
    if not callable(getattr(module, "get_config", None)):
        raise UserError(f"config file {path} defines no get_config(arg=None)")
    try:
        config = module.get_config(arg or None)
    except ValueError:
        raise
    except Exception as err:
        raise UserError(_failed_at(path, file, err)) from err
    if not isinstance(config, ml_collections.ConfigDict):
        raise UserError(
            f"{path}: get_config({arg or None!r}) returned a {type(config).__name__}, "
            "not an ml_collections.ConfigDict"
        )
    config.lock()
    return config


def _same_file(name, file: pathlib.Path) -> bool:
    try:
        return name is not None and os.path.samefile(name, file)
    except OSError:
        return False


def _failed_at(path: str, file: pathlib.Path, err: Exception) -> str:
    """'path:line: Type: message', at the deepest line of the config file in err's traceback."""
    lines = [
        n
        for frame, n in traceback.walk_tb(err.__traceback__)
        if _same_file(frame.f_code.co_filename, file)
    ]
    where = f"{path}:{lines[-1]}" if lines else path
    inner = err  # ml_collections wraps a KeyError in an AttributeError: say its text
    while len(inner.args) == 1 and isinstance(inner.args[0], BaseException):
        inner = inner.args[0]
    text = inner.args[0] if len(inner.args) == 1 and isinstance(inner.args[0], str) else str(err)
    return f"{where}: {type(err).__name__}: {'; '.join(text.splitlines())}"


def _parse(value: str):
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _no_key(item: str, key: str, config) -> UserError:
    close = difflib.get_close_matches(key, list(flatten(config)), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return UserError(f"--set {item!r}: config has no key {key!r}{hint}")


def override(config: ml_collections.ConfigDict, items: list[str]) -> ml_collections.ConfigDict:
    """Apply `key.sub=value` items in order; unknown keys and bad types name the key
    (UserError)."""
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r}: expected key=value")
        parent = config
        parts = key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(parent, ml_collections.ConfigDict) or part not in parent:
                raise _no_key(item, key, config)
            if i < len(parts) - 1:
                parent = parent[part]
        value = _parse(raw)
        old = parent[parts[-1]]
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        try:
            parent[parts[-1]] = value
        except TypeError as err:
            raise UserError(f"--set {item!r}: config key {key!r} {err}") from None
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


def seeds_of(config) -> tuple[int, ...]:
    """The seeds a sweep runs: `seeds`, or (`seed`,) when it is empty."""
    return tuple(int(s) for s in config.seeds) or (int(config.seed),)


# ---------------------------------------------------------------------------
# check(config): every value against what it may be, before any data or compiling.
# ---------------------------------------------------------------------------
class Rule(NamedTuple):
    """What a config value may be: `ok(value)`, and `what` says it ('an integer >= 1')."""

    ok: Callable[[Any], bool]
    what: str


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def integer(low: int | None = None, high: int | None = None) -> Rule:
    """An integer in [low, high] (None: unbounded)."""
    ok = lambda v: _is_int(v) and (low is None or v >= low) and (high is None or v <= high)
    bounds = "" if low is None else f" >= {low}" if high is None else f" in [{low}, {high}]"
    return Rule(ok, f"an integer{bounds}")


def number(low=None, high=None, *, open_low: bool = False, open_high: bool = False) -> Rule:
    """A finite number in [low, high], ( or ) where open (None: unbounded)."""

    def ok(v) -> bool:
        above = low is None or (v > low if open_low else v >= low)
        return _is_number(v) and above and (high is None or (v < high if open_high else v <= high))

    if low is None:
        return Rule(ok, "a finite number")
    if high is None:
        return Rule(ok, f"a number {'>' if open_low else '>='} {low}")
    return Rule(ok, f"a number in {'(['[not open_low]}{low}, {high}{')]'[not open_high]}")


def choice(values) -> Rule:
    return Rule(lambda v: isinstance(v, str) and v in values, f"one of {sorted(values)}")


def optional(rule: Rule) -> Rule:
    return Rule(lambda v: v is None or rule.ok(v), f"None or {rule.what}")


def sequence(rule: Rule) -> Rule:
    """A non-empty tuple (or list) of values that each pass `rule`."""
    ok = lambda v: isinstance(v, tuple | list) and len(v) > 0 and all(rule.ok(x) for x in v)
    return Rule(ok, f"a non-empty tuple, each item {rule.what}")


BOOL = Rule(lambda v: isinstance(v, bool), "True or False")
TEXT = Rule(lambda v: isinstance(v, str), "a string")


def _is_regex(v) -> bool:
    try:
        re.compile(v)
    except (re.error, TypeError):
        return False
    return isinstance(v, str)


def _dataset_rule(known) -> Rule:
    """'NAME[/CONFIG]' of a registered builder, '+' between the parts of a pooled dataset."""
    ok = lambda v: isinstance(v, str) and all(p.split("/")[0] in known for p in v.split("+"))
    return Rule(ok, f"NAME[/CONFIG] ('+' between several), NAME one of {sorted(known)}")


def rules() -> dict[str, Rule]:
    """The rule of every key of `base()` but `model_kwargs` (`model_rules`); the rules that
    tie keys together are in `check`. Allowed sets come from the modules that use them."""
    import data_builders
    from mer_jax import engine, label_schemes, models, protocols
    from mer_jax.models.layers import CONV_IMPLS
    from mer_jax.preprocess import evm, flow
    from mer_jax.preprocess import representations as reps

    positive, count = integer(1), integer(0)
    return {
        "seed": integer(0, 2**32 - 1),
        "seeds": Rule(
            lambda v: (
                isinstance(v, tuple | list)
                and all(_is_int(x) and 0 <= x < 2**32 for x in v)
                and len(set(v)) == len(v)
            ),
            "a tuple of distinct integers in [0, 2**32 - 1] (() = (seed,))",
        ),
        "dataset": _dataset_rule(data_builders.BUILDER_MODULES),
        "data_dir": TEXT,  # and not a file (check)
        "protocol": choice(protocols.PROTOCOLS),
        "input.representation": choice(reps.REPRESENTATIONS),
        "input.image_size": positive,
        "input.channels": positive,  # and one the representation gives (check)
        "input.apex": choice(reps.APEX_RULES),
        "input.label_scheme": choice(("", *label_schemes.SCHEMES)),
        "input.flow_method": choice(flow.METHODS),
        "input.num_frames": positive,
        "input.factors": sequence(number(0, open_low=True)),
        "input.magnifier_checkpoint": TEXT,  # '' or a file (check)
        "input.evm.alpha": number(0),
        "input.evm.low": number(0, 1, open_high=True),  # and below high (check)
        "input.evm.high": number(0, 1, open_low=True),
        "input.evm.fps": number(0, open_low=True),
        "input.evm.filter": choice(evm.FILTERS),
        "input.evm.lambda_c": number(0, open_low=True),
        "model": choice(models.MODELS),
        "init.pretrained": TEXT,  # '', a work dir or a file the model loads (check)
        "init.freeze": Rule(_is_regex, "a regular expression (Python re)"),
        "init.random_frozen_trunk": BOOL,  # False: a frozen trunk needs init.pretrained (check)
        "train.epochs": positive,
        "train.batch_size": positive,
        "train.balance": BOOL,
        "train.epochs_per_call": positive,  # and a divisor of train.epochs (check)
        "train.dtype": choice(engine.DTYPES),
        "train.fold_strategy": choice(engine.FOLD_STRATEGIES),
        "train.step_loop": choice(engine.STEP_LOOPS),  # 'map' needs 'scan' (check)
        "train.fold_group": positive,
        "train.conv_impl": choice(("auto", *CONV_IMPLS)),
        "train.cache_frozen_trunk": BOOL,
        "train.final_model": BOOL,
        "train.folds_per_call": count,
        "train.checkpoint_every": count,
        "train.checkpoint_keep": positive,
        "train.validation_subjects": count,  # not with protocol 'holdout' (check)
        "train.validation_fraction": number(0, 1, open_low=True, open_high=True),
        "train.early_stopping": count,  # > 0 needs a validation split (check)
        "augment.crop_size": optional(positive),  # and <= input.image_size (check)
        "augment.crop_mode": choice(("random", "corners")),  # engine/augment.py _crop_origin
        "augment.flip": BOOL,
        "augment.flip_sign": optional(sequence(number())),
        "augment.color_shift": number(0),
        "augment.rotate_deg": number(0),
        "augment.prob": number(0, 1),
        "augment.rescale": optional(sequence(number(0, open_low=True))),  # hold the crop (check)
        "augment.smooth_max": Rule(
            lambda v: _is_int(v) and (v == 0 or v >= 2), "0 (off) or an integer >= 2"
        ),
        "optimizer.name": choice(engine.OPTIMIZERS),
        "optimizer.lr": number(0, open_low=True),
        "optimizer.momentum": number(0, 1, open_high=True),
        "optimizer.weight_decay": number(0),
        "optimizer.schedule": choice(engine.SCHEDULES),
        "optimizer.decay_every_epochs": positive,
        "optimizer.decay_rate": number(0, 1, open_low=True),
        "optimizer.patience": count,
        "report.attention_maps": count,
        "report.attention_keys": Rule(_is_regex, "a regular expression (Python re)"),
        "paper.seed": choice(("", "000", "001", "002", "003", "004", "baseline")),
        "paper.table": TEXT,
        "paper.title": TEXT,
        "paper.variant": TEXT,
        "paper.runs": positive,
        "paper.metrics": Rule(
            lambda v: isinstance(v, tuple | list) and set(v) <= set(HEADLINE),
            f"a tuple of metric names of {list(HEADLINE)}",
        ),
        "paper.note": TEXT,
    }


_FIGURE = Rule(
    lambda v: (
        _is_number(v)
        and 0 <= v <= 1
        or isinstance(v, tuple | list)
        and len(v) == 2
        and all(_is_number(x) for x in v)
        and 0 <= v[0] <= 1
        and 0 <= v[1] <= 1
    ),
    "a fraction in [0, 1] or a (mean, sd) pair of fractions",
)


def _check_reported(key: str, value) -> None:
    """`paper.reported.<row>.<metric>`: a headline metric's figure (config_defaults._paper)."""
    parts = key.split(".")
    if len(parts) != 4 or parts[3] not in HEADLINE:
        raise UserError(
            f"config key {key!r}: expected paper.reported.<row>.<metric>, metric one of "
            f"{list(HEADLINE)}"
        )
    if not _FIGURE.ok(value):
        raise _bad(key, value, _FIGURE.what)


def model_rules(name: str) -> dict[str, Rule]:
    """The rule of each `model_kwargs` key model `name` takes, read off its Flax fields:
    bool; int (>= 1 where the default is: sizes and counts); float (>= 0 where the default
    is, [0, 1) for a `*_rate`); str (one of the tuple named like the field, `ATTENTIONS` for
    `attention`, in the model's module or models/layers.py, if there is one); a sequence of
    ints (each >= 1 where the default's are); `X | None`: None or X."""
    from mer_jax import models
    from mer_jax.models import layers

    spec = models.spec(name)
    hints = typing.get_type_hints(spec.module)
    homes = (sys.modules[spec.module.__module__], layers)
    out = {}
    for field in dataclasses.fields(spec.module):
        if field.name not in spec.fields:
            continue
        hint, optional_ = hints.get(field.name, Any), False
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            optional_ = len(args) < len(typing.get_args(hint))
            hint = args[0] if len(args) == 1 else Any
        rule = _field_rule(field.name, hint, field.default, homes)
        if rule is not None:
            out[field.name] = optional(rule) if optional_ else rule
    return out


def _field_rule(name: str, hint, default, homes) -> Rule | None:
    if hint is bool:
        return BOOL
    if hint is int:
        return integer(1) if _is_int(default) and default >= 1 else integer()
    if hint is float:
        if name.endswith("_rate"):
            return number(0, 1, open_high=True)
        return number(0) if _is_number(default) and default >= 0 else number()
    if hint is str:
        for home in homes:
            for const in (name.upper() + "S", name.upper()):
                values = getattr(home, const, None)
                if isinstance(values, tuple) and all(isinstance(v, str) for v in values):
                    return choice(values)
        return TEXT
    if typing.get_origin(hint) in (Sequence, tuple, list) and typing.get_args(hint)[:1] == (int,):
        sizes = isinstance(default, Sequence) and all(_is_int(d) and d >= 1 for d in default)
        return sequence(integer(1) if sizes or default is None else integer())
    return None


def _leaves(config, prefix: str = "") -> dict:
    """{'train.epochs': 10, ...}: the values as they are (`flatten` makes tuples lists)."""
    out = {}
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict | dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _bad(key: str, value, what: str) -> UserError:
    return UserError(f"config key {key!r}: {value!r} is not {what}")


def check(config) -> None:
    """Raise UserError naming the first key of `config` whose value is not allowed, and what
    is: unknown or missing keys, `rules()`, `model_rules()`, then the rules across keys.

    Loads no data and compiles nothing (it imports the modules whose tables it reads);
    `sweep.run` calls it first.
    """
    from mer_jax import models

    known, values = _leaves(base()), _leaves(config)
    for key in values:
        if key.startswith("paper.reported."):
            _check_reported(key, values[key])
        elif key not in known and not key.startswith("model_kwargs."):
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UserError(f"config key {key!r}: not a key of mer_jax.config.base(){hint}")
    missing = [key for key in known if key not in values]
    if missing:
        raise UserError(f"config key {missing[0]!r} is missing (mer_jax.config.base() sets it)")
    for key, rule in rules().items():
        if key in values and not rule.ok(values[key]):
            raise _bad(key, values[key], rule.what)
    spec, fields = models.spec(config.model), model_rules(config.model)
    for name, value in config.model_kwargs.items():
        key = f"model_kwargs.{name}"
        if name == "dtype":
            raise UserError(f"config key {key!r}: set train.dtype instead")
        if name not in spec.fields:
            raise UserError(
                f"config key {key!r}: {spec.name}.Model has no field {name!r}; "
                f"its fields: {sorted(spec.fields - {'dtype'})}"
            )
        if name in fields and not fields[name].ok(value):
            raise _bad(key, value, fields[name].what)
    _check_across(config, spec)


def _check_across(config, spec) -> None:
    """The rules that tie keys together, and the paths."""
    from mer_jax import engine
    from mer_jax.preprocess import representations as reps

    t, i = config.train, config.input
    if t.epochs % t.epochs_per_call:
        raise _bad(
            "train.epochs_per_call", t.epochs_per_call, f"a divisor of train.epochs {t.epochs}"
        )
    try:
        engine.resolve_strategy(t.fold_strategy, t.step_loop)
        engine.resolve_conv_impl(t.conv_impl, t.fold_strategy)
    except ValueError as err:
        raise UserError(str(err)) from None
    accepts = reps.REPRESENTATIONS[i.representation].channels
    if accepts and i.channels not in accepts:
        what = f"one of {list(accepts)} (input.representation {i.representation!r})"
        raise _bad("input.channels", i.channels, what)
    if i.evm.low >= i.evm.high:
        raise _bad("input.evm.low", i.evm.low, f"below input.evm.high {i.evm.high}")
    crop = config.augment.crop_size
    if crop is not None and crop > i.image_size:
        raise _bad("augment.crop_size", crop, f"an integer <= input.image_size {i.image_size}")
    _check_rescale(config.augment.rescale, crop or i.image_size, i.image_size)
    if config.data_dir and os.path.isfile(os.path.expanduser(config.data_dir)):
        raise UserError(f"config key 'data_dir': {config.data_dir!r} is a file, not a directory")
    full = os.path.expanduser(i.magnifier_checkpoint)
    if i.magnifier_checkpoint and not os.path.isfile(full):
        what = "is a directory, not a file" if os.path.isdir(full) else "does not exist"
        raise _bad("input.magnifier_checkpoint", i.magnifier_checkpoint, f"a file ({what})")
    _check_seeds(config)
    _check_validation(config)
    _check_pretrained(config.init.pretrained, spec)
    _check_frozen_trunk(config, spec)


def _check_rescale(factors, crop: int, image_size: int) -> None:
    """Every `augment.rescale` factor must leave the resized image able to hold the crop."""
    from mer_jax.engine.augment import scaled_size

    for factor in factors or ():
        if scaled_size(image_size, factor) < crop:
            what = (
                f"factors that keep the crop {crop} inside the resized input.image_size "
                f"{image_size} ({factor} gives {scaled_size(image_size, factor)})"
            )
            raise _bad("augment.rescale", factors, what)


def _check_seeds(config) -> None:
    """`seed` may not contradict a non-empty `seeds` (it would be ignored without a word)."""
    if config.seeds and config.seed not in (0, config.seeds[0]):
        raise _bad(
            "seed", config.seed,
            f"used with 'seeds' {tuple(config.seeds)} set: give one seed with --seeds 1, or "
            f"set seeds=({config.seed},)",
        )  # fmt: skip


def _check_frozen_trunk(config, spec) -> None:
    """A frozen trunk (AMAN: ResNet-18 through `frozen_through`, seed 003 Sec. 3.1.1, pre-trained
    on facial expressions) left random is an error unless `init.random_frozen_trunk` says so."""
    if config.init.pretrained or config.init.random_frozen_trunk or spec.trunk_head is None:
        return
    if spec.trains_head_only(spec.build(spec.num_classes, **config.model_kwargs)):
        raise UserError(
            f"config key 'init.pretrained': model {spec.name} freezes its trunk "
            f"({dict(config.model_kwargs)}), which would stay at its random initialisation: "
            "give its pre-trained weights (a torchvision ResNet-18 .npz/.pth, or a pre-training "
            "work dir), or set init.random_frozen_trunk=True if a random frozen trunk is meant"
        )


def _check_validation(config) -> None:
    """Validation splits: where they come from, and what needs one."""
    t = config.train
    holdout = config.protocol == "holdout"
    if holdout and t.validation_subjects:
        raise _bad(
            "train.validation_subjects", t.validation_subjects,
            "0 with protocol 'holdout' (its held-out split is the validation split: "
            "train.validation_fraction)",
        )  # fmt: skip
    if t.early_stopping and not (holdout or t.validation_subjects):
        raise _bad(
            "train.early_stopping", t.early_stopping,
            "0 without a validation split (set train.validation_subjects, or protocol 'holdout')",
        )  # fmt: skip


def _check_pretrained(path: str, spec) -> None:
    """'' , a finished sweep's work dir (weights/export.json), or a file the model reads."""
    if not path:
        return
    full = os.path.expanduser(path)
    if os.path.isdir(full):
        if not os.path.isfile(os.path.join(full, "weights", "export.json")):
            raise UserError(
                f"config key 'init.pretrained': {path!r} is a directory without exported weights "
                "(weights/export.json): run the pre-training sweep with --workdir there first"
            )
        return
    if not os.path.isfile(full):
        raise UserError(f"config key 'init.pretrained': {path!r} does not exist")
    if spec.load_pretrained is None:
        raise UserError(
            f"config key 'init.pretrained': model {spec.name} reads no weight files "
            "(a pre-training sweep's work dir works for every model)"
        )
