"""The model contract: everything the sweep, the engine, `mer-jax bench` and the tests know
about a model, written once per model file as `SPEC = ModelSpec(...)`.

A model is a Flax module whose `__call__(x, *, train)` returns `(logits, out)`:
`logits` (N, num_classes) float32 and `out` a dict of named intermediate
arrays (attention maps, features) that reports draw. The spec adds what is
not in the module itself: the paper's input and classes, the ablations of the
paper's tables, the CPU-sized preset, and the optional parts (extra loss
terms, frozen parameters, pretrained weights, a trunk computed once per clip).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax

from mer_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class SmallPreset:
    """A CPU-sized variant (`mer-jax bench --preset small`): input side, leading axes, kwargs."""

    size: int
    frames: tuple[int, ...] = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TrunkHead:
    """A model whose frozen trunk is the same for every fold, so its features can be computed
    once per clip and only the head trained per fold (AMAN, seed 003).

    `active(model)` says whether this instance freezes a trunk at all;
    `split_variables(variables) -> (trunk variables, head variables)`;
    `trunk_of(model)` / `head_of(model)` are standalone modules applied to each part.
    """

    active: Callable[[nn.Module], bool]
    split_variables: Callable[[Mapping], tuple[dict, dict]]
    trunk_of: Callable[[nn.Module], nn.Module]
    head_of: Callable[[nn.Module], nn.Module]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One registered model (see the module docstring).

    `aux_loss(out, labels) -> (N,)`: extra loss terms per example, added to the
    cross-entropy (FR's proposal loss, STANet's mask L1). `frozen(path) -> bool`:
    parameters that never change (no updates, no optimizer state).
    `load_pretrained(model, path) -> variables`: leaves to merge into every
    fold's initialisation (`config.init.pretrained` naming a file).
    """

    name: str
    seed: str  # the paper's number in docs/papers.md
    module: type[nn.Module]
    input_shape: tuple[int, ...]  # one example at the paper's input, (..., H, W, C)
    num_classes: int  # the paper's main protocol
    ablations: Mapping[str, Mapping[str, Any]]  # first = the paper's full model
    width_kwarg: str  # the keyword that scales the model's width (`mer-jax bench --width`)
    small: SmallPreset
    aux_loss: Callable[[dict, jax.Array], jax.Array] | None = None
    frozen: Callable[[tuple[str, ...]], bool] | None = None
    load_pretrained: Callable[[nn.Module, str | os.PathLike], dict] | None = None
    trunk_head: TrunkHead | None = None
    # Module paths ('/'-joined, under 'params') whose shapes follow num_classes: the classifier
    # that fine-tuning replaces when the classes differ (mer_jax/finetune.py).
    classifier: tuple[str, ...] = ("head",)
    # Module path ('/'-joined, under 'params') whose output feature map (..., h, w, C) Grad-CAM
    # weighs by its gradients (Selvaraju et al. 2017, Eq. 1-2): the last spatial stage before
    # pooling. Named in each model file; '' = the model has none. Several, ','-joined, form
    # one map (their channels together; FR's two streams): mer_jax/gradcam.py.
    gradcam_layer: str = ""

    @property
    def fields(self) -> frozenset[str]:
        """Keyword arguments the model takes besides `num_classes` (config `model_kwargs`)."""
        names = {f.name for f in dataclasses.fields(self.module)}
        return frozenset(names - {"parent", "name", "num_classes"})

    def build(self, num_classes: int, **kwargs) -> nn.Module:
        """The model with `num_classes` outputs; an unknown keyword names its config key."""
        unknown = sorted(set(kwargs) - self.fields)
        if unknown:
            raise UserError(
                f"config key 'model_kwargs.{unknown[0]}': {self.name}.Model has no field "
                f"{unknown[0]!r}; its fields: {sorted(self.fields)}"
            )
        return self.module(num_classes=num_classes, **kwargs)

    def input_shape_at(self, size: int, frames: tuple[int, ...] | None = None) -> tuple:
        """The paper's input shape with H = W = `size` and leading axes `frames`."""
        lead = self.input_shape[:-3]
        if frames is not None:
            frames = tuple(int(t) for t in frames)
            if len(frames) != len(lead):
                raise ValueError(
                    f"--frames: {self.name} inputs have {len(lead)} leading axes "
                    f"{lead} of {self.input_shape}, got {len(frames)} values {list(frames)}"
                )
            lead = frames
        if size < 1 or any(t < 1 for t in lead):
            raise ValueError(f"--input-size {size} and --frames {list(lead)} must be >= 1")
        return (*lead, size, size, self.input_shape[-1])

    def trains_head_only(self, model: nn.Module) -> bool:
        """True where `model`'s trunk is frozen and can be computed once per clip."""
        return self.trunk_head is not None and self.trunk_head.active(model)
