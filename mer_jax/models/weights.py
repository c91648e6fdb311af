"""Pretrained weights: the one place that reads weight files and merges them into a model.

`merge_variables` puts each leaf of a pretrained tree in its place in a model's
initialised variables (used for every fold's initialisation and for AMAN's
frozen trunk); `read_npz_state_dict` reads a PyTorch state_dict saved as .npz
(how torchvision weights travel without torch: see models/aman.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np

from mer_jax.errors import UserError


def merge_variables(variables, pretrained, *, source: str = "pretrained"):
    """`variables` with every leaf of `pretrained` put in its place.

    Paths must exist in the model and shapes must match (errors name the leaf);
    leaves `pretrained` lacks keep their initial values (e.g. a new classifier).
    Leaves take the model's dtype.
    """

    def merge(into, new, where: tuple[str, ...]):
        if not isinstance(new, Mapping):
            if not hasattr(into, "shape") or tuple(into.shape) != tuple(np.shape(new)):
                raise ValueError(
                    f"{source} leaf {'/'.join(where)} has shape {tuple(np.shape(new))}, "
                    f"the model expects {tuple(getattr(into, 'shape', ()))}"
                )
            return jnp.asarray(new, dtype=into.dtype)
        if not isinstance(into, Mapping):
            raise ValueError(f"{source} {'/'.join(where)} is a tree, the model's is a leaf")
        out = dict(into)
        for name, value in new.items():
            if name not in into:
                raise UserError(f"{source} leaf {'/'.join((*where, name))} is not in the model")
            out[name] = merge(into[name], value, (*where, name))
        return out

    return merge(variables, pretrained, ())


def read_npz_state_dict(path: str | os.PathLike, *, what: str) -> dict[str, np.ndarray]:
    """A PyTorch state_dict saved with `np.savez` -> {key: array}.

    A common 'module.' prefix (DataParallel) is stripped. `what` names the
    expected weights in the error of a missing file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} weights file {path} does not exist")
    with np.load(path) as npz:
        state = {k: npz[k] for k in npz.files}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state
