"""Pretrained weights: the one place that reads weight files and merges them into a model.

`merge_variables` puts each leaf of a pretrained tree in its place in a model's
initialised variables (used for every fold's initialisation and for AMAN's
frozen trunk); `read_state_dict` reads a PyTorch state_dict: a .pth/.pt file
(with torch installed) or one saved as .npz (how torchvision weights travel
without torch: `NPZ_COMMAND`, see models/aman.py).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np

from mer_jax.errors import UserError

TORCH_SUFFIXES = (".pth", ".pt")
# Converts a .pth (plain, or wrapping its weights under 'state_dict' / 'model') to .npz; run it
# where torch is installed, with the .pth and .npz paths as its two arguments.
NPZ_COMMAND = (
    "python -c \"import sys, numpy as np, torch; s = torch.load(sys.argv[1], map_location='cpu'); "
    "s = s.get('state_dict', s.get('model', s)); "
    "np.savez(sys.argv[2], **{k: v.float().numpy() if v.is_floating_point() else v.numpy() "
    'for k, v in s.items()})"'
)


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


def read_state_dict(path: str | os.PathLike, *, what: str) -> dict[str, np.ndarray]:
    """A PyTorch state_dict file -> {key: array}, by suffix: .npz (saved with `np.savez`) or
    .pth/.pt (`torch.load(..., weights_only=True)`, float tensors as float32; needs torch).

    A checkpoint holding its weights under 'state_dict' or 'model' is unwrapped; a common
    'module.' prefix (DataParallel) is stripped. `what` names the expected weights in
    errors: FileNotFoundError for a missing file, UserError for another suffix, a .pth
    without torch (install torch, or convert with `NPZ_COMMAND`) or a file that is no
    state_dict.
    """
    path = os.fspath(path)
    suffix = pathlib.Path(path).suffix.lower()
    if suffix not in (".npz", *TORCH_SUFFIXES):
        raise UserError(
            f"{what} weights file {path}: unknown suffix {suffix!r}; expected a PyTorch "
            f"state_dict as .npz, {' or '.join(TORCH_SUFFIXES)}"
        )
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} weights file {path} does not exist")
    if suffix == ".npz":
        with np.load(path) as npz:
            state = {k: npz[k] for k in npz.files}
    else:
        state = _read_torch(path, what)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _read_torch(path: str, what: str) -> dict[str, np.ndarray]:
    """A .pth/.pt state_dict (or a checkpoint wrapping one) as NumPy arrays."""
    try:
        import torch
    except ImportError:
        stem = os.path.splitext(path)[0]
        raise UserError(
            f"{what} weights file {path} is a PyTorch file and torch is not installed: "
            f"install torch (pip install torch), or convert it to .npz where torch is: "
            f"{NPZ_COMMAND} {path} {stem}.npz"
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a file it cannot read
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"{what} weights file {path}: torch.load failed: {first}") from err
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{what} weights file {path} holds no state_dict of tensors")
    return {
        str(k): (v.detach().cpu().float() if v.is_floating_point() else v.detach().cpu()).numpy()
        for k, v in state.items()
    }
