"""The held-out examples a report draws: which ones (`select_heldout`, fixed before training
from labels and the fold table), their maps as the engine kept them (`pooled_maps`), and the
arrays and record of attention_maps.npz with Grad-CAM by the fold that holds each example
out (`attention_maps`; drawn by `report.plot_attention_maps`)."""

import jax
import jax.numpy as jnp
import numpy as np

from mer_jax import data, engine, gradcam, report


def select_heldout(test_idx, test_valid, labels, per_class: int):
    """Held-out entries whose attention maps a report keeps: (pos (F, J), valid (F, J)).

    Entries are (fold, test position) pairs in fold-major order, the order of the
    pooled predictions (a sample tested by several folds is several entries). For
    each class, `per_class` of its entries (all if fewer) evenly spaced over that
    order, so they come from different folds (subjects), at an offset that differs
    by class (class c of C present: entries floor((i + (c + 1/2) / C) L / n), i < n,
    of its L), so classes do not all come from the same folds. Row f lists fold f's kept
    test positions, padded with position 0, `valid` False; J >= 1 is the most any
    fold keeps. Depends on labels and the fold table only, never on predictions.
    The engine evaluates these positions after the final epoch (`engine.Maps`);
    the report draws them (`report.plot_attention_maps`).
    """
    test_idx, test_valid = np.asarray(test_idx), np.asarray(test_valid, bool)
    fold, position = np.nonzero(test_valid)
    classes = np.asarray(labels)[test_idx[fold, position]]
    keep, present = [], np.unique(classes)
    for rank, c in enumerate(present):
        mine = np.flatnonzero(classes == c)
        n = min(int(per_class), len(mine))
        offset = (rank + 0.5) / len(present)
        keep += mine[((np.arange(n) + offset) * len(mine) / n).astype(int)].tolist()
    keep = np.unique(np.asarray(keep, int))
    counts = np.bincount(fold[keep], minlength=test_idx.shape[0])
    pos = np.zeros((test_idx.shape[0], max(1, int(counts.max(initial=0)))), np.int32)
    valid = np.zeros(pos.shape, bool)
    for f in range(test_idx.shape[0]):
        mine = position[keep[fold[keep] == f]]
        pos[f, : len(mine)], valid[f, : len(mine)] = mine, True
    return pos, valid


def pooled_maps(out: engine.FoldsOutput):
    """(sample index, fold, test position, {name: (M, ...)}) of the kept held-out maps.

    Fold by fold, like `pooled_predictions`: entry m is fold[m]'s test position
    pos[m], whose logits are `out.logits[fold[m], pos[m]]`.
    """
    fold, slot = np.nonzero(out.maps_valid & (out.diverged_epoch[:, None] < 0))  # as scored
    pos = out.maps_pos[fold, slot]
    maps = {name: value[fold, slot] for name, value in out.maps.items()}
    return out.test_idx[fold, pos], fold, pos, maps


def attention_maps(config, dataset: data.Dataset, out, aug, setup, trunk=None, log=print):
    """(arrays for attention_maps.npz, results.json record) of the kept held-out maps.

    (None, {}) when `report.attention_maps` is 0. Arrays: each map by name (M, ...),
    `gradcam` (M, H, W, 1) by the same folds (mer_jax.gradcam), and `index`, `fold`, `clip`,
    `subject`, `label`, `prediction` (final epoch) and `input` (M, H, W[, 3]): the example
    as the model saw it (centre crop) drawn as one picture (report.display_input). With a
    cached frozen trunk (`trunk`) the model read trunk features; `input` is the clip's view.
    """
    if out.maps is None:
        return None, {}
    index, fold, pos, maps = pooled_maps(out)
    views = engine.augment_batch(
        jax.random.key(0), jnp.asarray(dataset.images[index]), aug, train=False
    )
    flow = dataset.images.dtype != np.uint8  # float inputs are optical flow (mer_jax.data)
    cams, cam_record = gradcam.heldout(setup.spec, setup.model, out.state, fold, views, trunk, log)
    maps = {**maps, **cams}
    arrays = {
        **maps,
        "index": index,
        "fold": fold,
        "clip": np.asarray(dataset.clips[index]).astype(str),
        "subject": np.asarray(dataset.subjects[index]).astype(str),
        "label": np.asarray(dataset.labels[index]),
        "prediction": out.logits[fold, pos].argmax(-1),
        "input": np.stack([report.display_input(v, flow=flow) for v in np.asarray(views)]),
    }
    record = {
        "file": "attention_maps.npz",
        "figure": "attention_maps.png",
        "per_class": int(config.report.attention_maps),
        "keys": config.report.attention_keys,
        "num_examples": len(index),
        "maps": {
            name: {"shape": list(value.shape[1:]), "dtype": str(value.dtype)}
            for name, value in maps.items()
        },
        **cam_record,
    }
    return arrays, record
