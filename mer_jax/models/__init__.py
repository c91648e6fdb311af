"""Model registry: one module per architecture, looked up by `config.model`.

Each model module exports `Model` (a Flax module whose `__call__(image, *,
train)` returns `(logits, out)`), `ABLATIONS` (name -> keyword arguments of
`Model`), `DEFAULT_INPUT_SHAPE` and `DEFAULT_NUM_CLASSES`.
"""

import dataclasses
import importlib
from types import ModuleType

import jax
import jax.numpy as jnp

MODELS = {
    "micro_attention": "mer_jax.models.micro_attention",  # seed 000
    "dense_mixed_attention": "mer_jax.models.dense_mixed_attention",  # seed 001
    "feature_refinement": "mer_jax.models.feature_refinement",  # seed 002
    "aman": "mer_jax.models.aman",  # seed 003
    "stanet": "mer_jax.models.stanet",  # seed 004
}


def get_module(name: str) -> ModuleType:
    """The model file registered under `name`."""
    if name not in MODELS:
        raise KeyError(f"config key 'model': unknown model {name!r}; known: {sorted(MODELS)}")
    return importlib.import_module(MODELS[name])


def build(name: str, num_classes: int, **kwargs):
    """`Model(num_classes=..., **kwargs)` of the registered model `name`."""
    model_cls = get_module(name).Model
    known = {f.name for f in dataclasses.fields(model_cls)} - {"parent", "name", "num_classes"}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise KeyError(
            f"config key 'model_kwargs.{unknown[0]}': {name}.Model has no field {unknown[0]!r}; "
            f"its fields: {sorted(known)}"
        )
    return model_cls(num_classes=num_classes, **kwargs)


def count_params(model, input_shape) -> int:
    """Trainable parameter count at `input_shape` (H, W, C), without allocating weights."""
    variables = jax.eval_shape(
        lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, *input_shape)), train=False)
    )
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(variables["params"]))


def catalogue() -> list[dict]:
    """Every registered model and ablation with its parameter count at its default shape."""
    rows = []
    for name in MODELS:
        module = get_module(name)
        for ablation, kwargs in module.ABLATIONS.items():
            model = module.Model(num_classes=module.DEFAULT_NUM_CLASSES, **kwargs)
            rows.append(
                {
                    "model": name,
                    "ablation": ablation,
                    "kwargs": kwargs,
                    "input_shape": list(module.DEFAULT_INPUT_SHAPE),
                    "num_classes": module.DEFAULT_NUM_CLASSES,
                    "params": count_params(model, module.DEFAULT_INPUT_SHAPE),
                }
            )
    return rows
