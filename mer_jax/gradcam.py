"""Grad-CAM (Selvaraju et al., ICCV 2017) of any registered model, on held-out examples.

For class c with logit y^c and the feature map A (h, w, K) of the module its spec
names (`ModelSpec.gradcam_layer`, the '/'-joined module path under 'params'):

  alpha_k^c = mean_ij dy^c / dA^k_ij        Eq. (1)
  L^c = ReLU(sum_k alpha_k^c A^k)           Eq. (2)

upsampled (bilinear) to the input's H x W for display. c is the class the model
predicts (argmax of its logits) unless `classes` are given. No model edits:
`flax.linen.intercept_methods` adds a zero perturbation to the module's output, and
dy^c / dA is the gradient with respect to that perturbation (one forward, one backward).

Inputs with leading axes (AMAN (n, k, H, W, C), STANet (t, H, W, C)) reach the layer as
n k or t images per example, in example-major order: Eq. (1)-(2) apply to each image
(alpha over that image's positions, ReLU per image), then the maps are averaged over the
example's images. Several comma-separated paths (FR's two flow streams) form one feature
map: their channels together are the k of Eq. (2) (same h x w required).
"""

from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mer_jax import models

# Examples per vmapped step of the held-out Grad-CAM program (memory: that many models).
BATCH = 8


def layer_paths(layer: str) -> tuple[str, ...]:
    """The module paths of a spec's `gradcam_layer` ('' -> none)."""
    return tuple(p.strip() for p in layer.split(",") if p.strip())


def _forward(model, variables, x, paths, deltas=None):
    """(logits, {path: the module's output (+ deltas[path])}) of the model in eval mode."""
    captured = {}

    def interceptor(next_fun, args, kwargs, context):
        y = next_fun(*args, **kwargs)
        name = "/".join(context.module.path)
        if context.method_name != "__call__" or name not in paths:
            return y
        if name in captured:
            raise ValueError(f"gradcam_layer {name!r}: the module is called more than once")
        if not isinstance(y, jax.Array) or y.ndim < 4:
            raise ValueError(
                f"gradcam_layer {name!r}: its output must be one feature map (..., h, w, C) "
                f"with an example axis, got {jax.tree_util.tree_map(jnp.shape, y)}"
            )
        if deltas is not None:
            y = y + deltas[name]
        captured[name] = y
        return y

    with nn.intercept_methods(interceptor):
        logits, _ = model.apply(variables, x, train=False)
    return logits, captured


def found_layers(model, variables, x, layer: str) -> tuple[str, ...]:
    """The paths of `layer` that `model` calls on `x` (traced only, nothing computed)."""
    paths = layer_paths(layer)
    shapes = jax.eval_shape(lambda v, x: _forward(model, v, x, paths)[1], variables, x)
    return tuple(p for p in paths if p in shapes)


def gradcam(model, variables, x, layer: str, classes=None):
    """(L^c (N, h, w), c (N,)) of examples x (N, ..., H, W, C); Eq. (1)-(2), in float32
    (float64 for float64 models).

    `classes` None: each example's predicted class. Examples are independent in eval
    mode, so one backward pass of sum_n y_n^{c_n} gives every example's gradients.
    """
    paths = layer_paths(layer)
    shapes = jax.eval_shape(lambda v, x: _forward(model, v, x, paths)[1], variables, x)
    missing = [p for p in paths if p not in shapes]
    if missing:
        raise ValueError(f"gradcam_layer {missing[0]!r}: the model never calls that module")
    zeros = {p: jnp.zeros(s.shape, s.dtype) for p, s in shapes.items()}
    logits, vjp, acts = jax.vjp(
        lambda d: _forward(model, variables, x, paths, d), zeros, has_aux=True
    )
    if classes is None:
        classes = jnp.argmax(logits, axis=-1)
    (grads,) = vjp(jax.nn.one_hot(classes, logits.shape[-1], dtype=logits.dtype))
    n = x.shape[0]
    weighted = 0.0
    for p in paths:
        dtype = jnp.promote_types(acts[p].dtype, jnp.float32)  # float64 under x64
        a, g = acts[p].astype(dtype), grads[p].astype(dtype)
        a, g = a.reshape(-1, *a.shape[-3:]), g.reshape(-1, *g.shape[-3:])
        if a.shape[0] % n:
            raise ValueError(f"gradcam_layer {p!r}: {a.shape[0]} maps for {n} examples")
        alpha = g.mean(axis=(1, 2))  # Eq. (1), per image
        weighted = weighted + jnp.einsum("phwk,pk->phw", a, alpha)
    cams = nn.relu(weighted)  # Eq. (2), per image
    return cams.reshape(n, -1, *cams.shape[1:]).mean(axis=1), classes


def upsample(cams, size: tuple[int, int]):
    """(N, h, w) -> (N, H, W), bilinear (half-pixel centres, as cv2.INTER_LINEAR)."""
    return jax.image.resize(cams, (cams.shape[0], *size), "linear", antialias=False)


def _join(parts, template, trunk, head):
    """The full model's variables from a frozen trunk's and one fold's head (`TrunkHead`): the
    positions of each part's leaves come from splitting a tree of leaf numbers."""
    leaves, treedef = jax.tree_util.tree_flatten(template)
    numbers = jax.tree_util.tree_unflatten(treedef, list(range(len(leaves))))
    out = [None] * len(leaves)
    for numbered, values in zip(parts.split_variables(numbers), (trunk, head)):
        for i, v in zip(jax.tree_util.tree_leaves(numbered), jax.tree_util.tree_leaves(values)):
            out[i] = v
    return jax.tree_util.tree_unflatten(treedef, out)


def _variables_of(stacked, trunk, f, model, parts, example_shape):
    """Fold `f`'s variables (`stacked`: leading fold axis), joined to the frozen trunk's."""
    head = jax.tree_util.tree_map(lambda v: v[f], stacked)
    if trunk is None:
        return head
    return _join(parts, models.variable_shapes(model, example_shape), trunk, head)


@partial(jax.jit, static_argnames=("model", "layer", "parts", "batch"))
def _heldout_program(stacked, trunk, fold, views, *, model, layer, parts, batch):
    """(upsampled L^c (M, H, W), c (M,)) of example m by fold fold[m], `batch` per step."""

    def one(entry):
        f, x = entry
        variables = _variables_of(stacked, trunk, f, model, parts, views.shape[1:])
        cam, c = gradcam(model, variables, x[None], layer)
        return upsample(cam, views.shape[-3:-1])[0], c[0]

    return jax.lax.map(one, (fold, views), batch_size=batch)


def heldout(spec, model, state, fold, views, trunk=None, log=print):
    """({'gradcam': (M, H, W, 1) float32}, {'gradcam': what results.json says}) of held-out
    examples `views` (M, ..., H, W, C), example m by the weights fold `fold[m]` predicts with
    (`state`: leading fold axis; its best epoch's with a validation split). `trunk`: the
    frozen trunk's variables when only the head trained (`train.cache_frozen_trunk`).
    ({}, {}) with a log line when the model names no layer, or does not call it once with
    one feature map.
    """
    layer = spec.gradcam_layer
    if not layer_paths(layer):
        log(f"grad-cam: {spec.name} names no gradcam_layer in its SPEC: no Grad-CAM maps")
        return {}, {}
    params, model_state = (state.params, state.model_state) if state.best is None else state.best
    stacked, parts = {"params": params, **model_state}, spec.trunk_head
    first = _variables_of(stacked, trunk, 0, model, parts, views.shape[1:])
    try:  # an ablation may drop or reshape the layer: no Grad-CAM, the results are kept
        found = found_layers(model, first, views[:1], layer)
        if found != layer_paths(layer):
            raise ValueError(f"gradcam_layer {layer!r}: the model never calls it here")
    except ValueError as err:
        log(f"grad-cam: {spec.name}: {err}: skipped")
        return {}, {}
    m = len(fold)
    batch = max(1, min(BATCH, m))
    pad = -m % batch  # whole steps: one traced body
    fold = np.concatenate([np.asarray(fold), np.zeros(pad, int)]).astype(np.int32)
    views = jnp.concatenate([jnp.asarray(views), jnp.repeat(views[:1], pad, axis=0)])
    cams, classes = _heldout_program(
        stacked, trunk, fold, views, model=model, layer=layer, parts=parts, batch=batch
    )
    record = {
        "layer": layer,
        "class": "predicted",
        "classes": np.asarray(classes)[:m].tolist(),
        "reduction": "per image, then the mean over the example's images (frames, factors)",
    }
    return {"gradcam": np.asarray(cams, np.float32)[:m, ..., None]}, {"gradcam": record}
