"""Model registry: one file per paper, each exporting `SPEC` (models/contract.py).

`spec(name)` is the one way in: the sweep, the engine's bench and the tests build
models and read their optional parts (extra loss terms, frozen parameters,
pretrained weights, trunk/head split) from it. Shared building blocks are in
`layers.py`, weight files and merging in `weights.py`.
"""

import argparse
import importlib
import json

import jax
import jax.numpy as jnp

from mer_jax.errors import UserError
from mer_jax.models.contract import ModelSpec

MODELS = {
    "micro_attention": "mer_jax.models.micro_attention",  # seed 000
    "dense_mixed_attention": "mer_jax.models.dense_mixed_attention",  # seed 001
    "feature_refinement": "mer_jax.models.feature_refinement",  # seed 002
    "aman": "mer_jax.models.aman",  # seed 003
    "stanet": "mer_jax.models.stanet",  # seed 004
    "ststnet": "mer_jax.models.ststnet",  # MEGC 2019 baseline
    "off_apexnet": "mer_jax.models.off_apexnet",  # MEGC 2019 baseline
}


def spec(name: str) -> ModelSpec:
    """The contract of the model registered under `name`."""
    if name not in MODELS:
        raise UserError(f"config key 'model': unknown model {name!r}; known: {sorted(MODELS)}")
    return importlib.import_module(MODELS[name]).SPEC


def build(name: str, num_classes: int, **kwargs):
    """The registered model `name` with `num_classes` outputs and `kwargs` (its fields)."""
    return spec(name).build(num_classes, **kwargs)


def variable_shapes(model, input_shape) -> dict:
    """Shapes and dtypes of `model`'s variables for one example of `input_shape` (..., H, W, C),
    without allocating weights."""
    x = jnp.zeros((1, *input_shape), jnp.float32)
    return jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))


def count_params(model, input_shape) -> int:
    """Trainable parameter count at `input_shape` (H, W, C), without allocating weights."""
    params = variable_shapes(model, input_shape)["params"]
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(params))


def catalogue() -> list[dict]:
    """Every registered model and ablation with its parameter count at the paper's input."""
    rows = []
    for name in MODELS:
        s = spec(name)
        for ablation, kwargs in s.ablations.items():
            model = s.build(s.num_classes, **kwargs)
            rows.append(
                {
                    "model": name,
                    "seed": s.seed,
                    "ablation": ablation,
                    "kwargs": dict(kwargs),
                    "input_shape": list(s.input_shape),
                    "num_classes": s.num_classes,
                    "params": count_params(model, s.input_shape),
                }
            )
    return rows


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `mer-jax models` to `subparsers`."""
    from mer_jax import cli

    p = subparsers.add_parser("models", help=cli.help_of("models"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_models)
    return p


def cmd_models(args) -> int:
    """`mer-jax models [--json]`: every model and ablation with its parameter count."""
    rows = catalogue()
    print(json.dumps(rows, indent=2) if args.json else "\n".join(_table(rows)))
    return 0


def _table(rows: list[dict]) -> list[str]:
    lines = [f"{'model':<22} {'ablation':<16} {'input':<15} {'classes':>7} {'params':>12}"]
    for r in rows:
        shape = "x".join(str(s) for s in r["input_shape"])
        lines.append(
            f"{r['model']:<22} {r['ablation']:<16} {shape:<15} {r['num_classes']:>7} {r['params']:>12,}"
        )
    return lines
