"""Fold-parallel training engine: every fold of a sweep trained by one compiled program.

Built the PureJaxRL way: Python computes the static schedule (steps per epoch,
padded sizes); `make_fold_fns` returns pure functions that train and evaluate
ONE fold; `lift_over_folds` maps them over a leading fold axis (`jax.vmap`,
`lax.map` in groups, or a Python loop over a one-fold program). Per-fold
differences are arrays (masks, keys, indices), never Python branches.

Keys (layout independent, so a fold gives the same result alone or among
others): fold_key = fold_in(key(seed), fold_id); init from fold_in(fold_key, 0);
epoch_key = fold_in(fold_in(fold_key, 1), epoch); step_key = fold_in(., step).

Leakage guard, twice: the host checks the fold table (protocols.check_no_leakage)
and the program counts, in every training batch, samples whose subject the
fold holds out; a non-zero count raises LeakageError after the call.

No model selection: held-out predictions after each call are recorded for
learning curves only; the reported ones are those of the final epoch.

Auxiliary outputs (the models' attention maps, for reports): with
`maps_per_class` > 0, `train_folds` also returns the `out` dict of the final
weights for a few held-out examples per class (`select_heldout`), laid out
like the held-out logits (fold, test position) so they pool the same way.

Devices and memory (train_folds): the fold axis is split over every visible
device (and host, after jax.distributed.initialize) by shard_map, padded to
a multiple of the device count; folds that do not fit a device at once run
in equal groups sized by the memory rule (max_folds_per_call, fold_groups).
"""

import dataclasses
import math
import re
import time
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from mer_jax.models import weights
from mer_jax.models.layers import CONV_IMPLS
from mer_jax.protocols import FoldTable, LeakageError, check_no_leakage

FOLD_STRATEGIES = ("auto", "vmap", "map", "loop")
STEP_LOOPS = ("auto", "scan", "python")


class Data(NamedTuple):
    """The whole dataset, on device, shared by every fold."""

    images: jax.Array  # (N, ..., H, W, C): uint8 pixels, or float (e.g. optical flow)
    labels: jax.Array  # (N,) int32
    subjects: jax.Array  # (N,) int32 codes into the sweep's subject list


class Folds(NamedTuple):
    """Per-fold arrays with a leading fold axis F."""

    key: jax.Array  # (F,) typed PRNG keys, fold_in(key(seed), fold_id)
    train_mask: jax.Array  # (F, N) bool
    heldout_subjects: jax.Array  # (F, num_subjects) bool: subjects the fold tests on
    test_idx: jax.Array  # (F, T) int32, padded
    test_valid: jax.Array  # (F, T) bool


class TrainState(NamedTuple):
    params: Any
    model_state: Any  # mutable collections, e.g. {'batch_stats': ...}
    opt_state: Any


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Static numbers of a sweep, computed once in Python."""

    epochs: int
    batch_size: int
    steps_per_epoch: int
    num_classes: int
    balance: bool
    epochs_per_call: int = 1
    eval_batch_size: int = 64


@dataclasses.dataclass(frozen=True)
class Augment:
    """On-device augmentation of a training batch (Sec. 4 of the seeds).

    `crop_size` None keeps the stored size; 'random' crops anywhere, 'corners'
    takes one of the four corners or the centre (seed 000's CDE). Evaluation
    always takes the centre crop. Colour shift and rotation fire with
    probability `prob` each; colour shift is in 0..255 pixel units.
    """

    crop_size: int | None = None
    crop_mode: str = "random"
    flip: bool = False
    # Per-channel factor applied on a horizontal flip: (-1.0, 1.0) for (u, v) optical flow,
    # whose horizontal component changes sign when the image is mirrored.
    flip_sign: tuple[float, ...] | None = None
    color_shift: float = 0.0
    rotate_deg: float = 0.0
    prob: float = 0.5


def device_info() -> dict:
    """The accelerator this process trains on (results.json and `mer-jax bench` `device`)."""
    devices = jax.devices()
    return {
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "num_devices": len(devices),
    }


# ---------------------------------------------------------------------------
# Epoch order: every training sample at least once per epoch, batches always full.
# ---------------------------------------------------------------------------
def epoch_length(
    train_mask: np.ndarray, labels: np.ndarray, num_classes: int, balance: bool
) -> int:
    """Slots one epoch needs for the largest fold: n_f, or (present classes x largest class)."""
    lengths = []
    for mask in np.asarray(train_mask, bool):
        if balance:
            counts = np.bincount(labels[mask], minlength=num_classes)
            lengths.append(int((counts > 0).sum() * counts.max()))
        else:
            lengths.append(int(mask.sum()))
    return max(lengths)


def epoch_order(key, train_mask, labels, num_classes: int, length: int, balance: bool):
    """Indices of one fold's epoch: `length` training samples in random order.

    Unbalanced: a random permutation of the fold's training samples, tiled to
    `length`. Balanced (class resampling to the largest class, as the seeds
    do): each present class's samples in random order, tiled to the largest
    class's count, then all slots shuffled. Only indices where `train_mask` is
    True can come out: non-training samples sort behind every training one and
    the slot arithmetic never reaches past a class's count.
    """
    order_key, shuffle_key = jax.random.split(key)
    group = labels if balance else jnp.zeros_like(labels)
    groups = num_classes if balance else 1
    counts = jnp.zeros((groups,), jnp.int32).at[group].add(train_mask.astype(jnp.int32))
    u = jax.random.uniform(order_key, labels.shape, maxval=0.5)
    perm = jnp.argsort(jnp.where(train_mask, group + u, groups + u))
    starts = jnp.cumsum(counts) - counts
    present = counts > 0
    per_group = jnp.max(counts)
    total = jnp.sum(present) * per_group
    slots = jnp.arange(length) % total
    present_groups = jnp.argsort(~present, stable=True)
    g = present_groups[slots // per_group]
    idx = perm[starts[g] + (slots % per_group) % counts[g]]
    return idx[jax.random.permutation(shuffle_key, length)]


# ---------------------------------------------------------------------------
# Augmentation (per image, vmapped over the batch).
# ---------------------------------------------------------------------------
def _rotate(image, angle_rad):
    """Rotate (H, W, C) about its centre, bilinear, edges repeated."""
    h, w = image.shape[:2]
    yy, xx = jnp.meshgrid(
        jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij"
    )
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    cos, sin = jnp.cos(angle_rad), jnp.sin(angle_rad)
    src_y = cos * (yy - cy) - sin * (xx - cx) + cy
    src_x = sin * (yy - cy) + cos * (xx - cx) + cx
    channels = [
        jax.scipy.ndimage.map_coordinates(image[..., c], [src_y, src_x], order=1, mode="nearest")
        for c in range(image.shape[-1])
    ]
    return jnp.stack(channels, axis=-1)


def to_float(image):
    """uint8 pixels -> float32 in [0, 1]; float inputs (optical flow, features) unchanged."""
    if image.dtype == jnp.uint8:
        return image.astype(jnp.float32) / 255.0
    return image.astype(jnp.float32)


def augment_image(key, image, aug: Augment, train: bool):
    """One example (..., H, W, C) -> float32 (..., h, w, C).

    Leading axes (frames of a sequence, magnification factors) get the same
    crop, flip, rotation and colour shift. uint8 pixels are scaled to [0, 1];
    float inputs keep their values (colour shift and clipping apply to pixels only).
    """
    x = to_float(image)
    pixels = image.dtype == jnp.uint8
    h, w = image.shape[-3:-1]
    lead = (0,) * (image.ndim - 3)
    size = aug.crop_size or min(h, w)
    if size > min(h, w):
        raise ValueError(f"config key 'augment.crop_size' {size} exceeds the stored image {h}x{w}")
    crop = (*image.shape[:-3], size, size, image.shape[-1])
    centre = ((h - size) // 2, (w - size) // 2)
    if not train:
        return lax.dynamic_slice(x, (*lead, *centre, 0), crop)
    k_rot, k_rot_p, k_crop, k_flip, k_col, k_col_p = jax.random.split(key, 6)
    if aug.rotate_deg > 0:
        angle = jnp.deg2rad(
            jax.random.uniform(k_rot, minval=-aug.rotate_deg, maxval=aug.rotate_deg)
        )
        frames = x.reshape(-1, h, w, x.shape[-1])
        rotated = jax.vmap(lambda f: _rotate(f, angle))(frames).reshape(x.shape)
        x = jnp.where(jax.random.bernoulli(k_rot_p, aug.prob), rotated, x)
    if aug.crop_mode == "random":
        oy = jax.random.randint(k_crop, (), 0, h - size + 1)
        ox = jax.random.randint(jax.random.fold_in(k_crop, 1), (), 0, w - size + 1)
    elif aug.crop_mode == "corners":
        choices = jnp.array([(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), centre])
        oy, ox = choices[jax.random.randint(k_crop, (), 0, 5)]
    else:
        raise ValueError(
            f"config key 'augment.crop_mode': {aug.crop_mode!r} is not 'random' or 'corners'"
        )
    x = lax.dynamic_slice(x, (*lead, oy, ox, 0), crop)
    if aug.flip:
        flipped = jnp.flip(x, axis=-2)
        if aug.flip_sign is not None:
            if len(aug.flip_sign) != x.shape[-1]:
                raise ValueError(
                    f"config key 'augment.flip_sign' has {len(aug.flip_sign)} entries for "
                    f"{x.shape[-1]} input channels"
                )
            flipped = flipped * jnp.asarray(aug.flip_sign, jnp.float32)
        x = jnp.where(jax.random.bernoulli(k_flip), flipped, x)
    if aug.color_shift > 0 and pixels:
        shift = jax.random.uniform(k_col, (x.shape[-1],), minval=-1.0, maxval=1.0)
        shift = shift * aug.color_shift / 255.0
        fire = jax.random.bernoulli(k_col_p, aug.prob)
        x = jnp.clip(x + jnp.where(fire, shift, 0.0), 0.0, 1.0)
    return x


def augment_batch(key, images, aug: Augment, train: bool):
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(lambda k, im: augment_image(k, im, aug, train))(keys, images)


# ---------------------------------------------------------------------------
# Optimizers (optax), as the seeds use them.
# ---------------------------------------------------------------------------
OPTIMIZERS = ("sgd", "adam", "rmsprop")
SCHEDULES = ("constant", "step", "plateau")


def make_optimizer(cfg, steps_per_epoch: int, frozen: Callable | None = None):
    """The seeds' optimizers in optax.

    cfg keys: name ('sgd' | 'adam' | 'rmsprop'), lr, momentum, weight_decay,
    schedule ('constant' | 'step': x decay_rate every decay_every_epochs |
    'plateau': x decay_rate when the mean TRAINING loss of an epoch has not
    improved for `patience` epochs; the held-out subject is never looked at),
    decay_every_epochs, decay_rate, patience.
    `frozen(path) -> bool` marks parameters that never change (e.g. AMAN's
    frozen ResNet trunk): their updates are zero and they get no optimizer state.
    The returned transformation takes `value=loss` in `update` (plateau needs it).
    """
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"config key 'optimizer.schedule': {cfg.schedule!r} not in {SCHEDULES}")
    if cfg.name not in OPTIMIZERS:
        raise ValueError(f"config key 'optimizer.name': {cfg.name!r} not in {OPTIMIZERS}")
    lr = cfg.lr
    if cfg.schedule == "step":
        lr = optax.exponential_decay(
            cfg.lr,
            transition_steps=max(1, cfg.decay_every_epochs * steps_per_epoch),
            decay_rate=cfg.decay_rate,
            staircase=True,
        )
    if cfg.name == "sgd":
        opt = optax.sgd(lr, momentum=cfg.momentum or None)
    elif cfg.name == "adam":
        opt = optax.adam(lr)
    else:  # PyTorch's RMSprop defaults (alpha 0.99, eps 1e-8), as AMAN's code uses.
        opt = optax.rmsprop(lr, decay=0.99, eps=1e-8, momentum=cfg.momentum or None)
    parts = []
    if cfg.weight_decay:
        # L2 on the loss as in Caffe/PyTorch: decay added to the gradient before the update.
        parts.append(optax.add_decayed_weights(cfg.weight_decay))
    parts.append(opt)
    if cfg.schedule == "plateau":
        parts.append(
            optax.contrib.reduce_on_plateau(
                factor=cfg.decay_rate,
                patience=cfg.get("patience", 20),
                accumulation_size=steps_per_epoch,
            )
        )
    tx = optax.chain(*parts)
    if frozen is not None:

        def labels(params):
            return jax.tree_util.tree_map_with_path(
                lambda path, _: "frozen" if frozen(_path_names(path)) else "train", params
            )

        tx = optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)
    return optax.with_extra_args_support(tx)


def _path_names(path) -> tuple[str, ...]:
    return tuple(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


# ---------------------------------------------------------------------------
# One fold: pure functions.
# ---------------------------------------------------------------------------
def make_fold_fns(
    model,
    tx,
    schedule: Schedule,
    aug: Augment,
    image_shape,
    aux_loss: Callable | None = None,
    initial_variables=None,
) -> "FoldFns":
    """The pure one-fold functions of a sweep (see FoldFns).

    `image_shape` is one stored example's shape (..., H, W, C); the model sees
    it cropped to `aug.crop_size`. The training loss is the mean over the batch
    of softmax cross-entropy plus `aux_loss(out, labels)` (per example) when the
    model defines extra terms (FR's proposal loss, STANet's mask L1).
    `initial_variables` (e.g. pretrained weights) replace the matching leaves of
    every fold's random initialisation.
    """
    tx = optax.with_extra_args_support(tx)  # update(..., value=loss) for every optimizer
    size = aug.crop_size or min(image_shape[-3:-1])
    input_shape = (1, *image_shape[:-3], size, size, image_shape[-1])
    length = schedule.steps_per_epoch * schedule.batch_size

    def init(fold_key) -> TrainState:
        variables = model.init(jax.random.fold_in(fold_key, 0), jnp.zeros(input_shape), train=False)
        if initial_variables is not None:
            variables = weights.merge_variables(variables, initial_variables)
        variables = dict(variables)
        params = variables.pop("params")
        return TrainState(params, variables, tx.init(params))

    def apply(params, model_state, x, train, rng=None):
        """(logits, out, new model_state)."""
        variables = {"params": params, **model_state}
        if train and model_state:
            (logits, out), new_state = model.apply(
                variables, x, train=True, rngs={"dropout": rng}, mutable=list(model_state)
            )
            return logits, out, new_state
        rngs = {"dropout": rng} if rng is not None else None
        logits, out = model.apply(variables, x, train=train, rngs=rngs)
        return logits, out, model_state

    def epoch_keys(fold, epoch):
        epoch_key = jax.random.fold_in(jax.random.fold_in(fold.key, 1), epoch)
        return jax.random.split(epoch_key)  # (order key, steps key)

    def epoch_batches(fold, data, epoch):
        """(S, B) sample indices of one fold's epoch."""
        order_key, _ = epoch_keys(fold, epoch)
        idx = epoch_order(
            order_key, fold.train_mask, data.labels, schedule.num_classes, length, schedule.balance
        )
        return idx.reshape(schedule.steps_per_epoch, schedule.batch_size)

    def train_step(state, fold, batch_idx, data, epoch, step):
        """One SGD step on samples `batch_idx`; returns (state, (loss, leaked))."""
        images, labels = data.images[batch_idx], data.labels[batch_idx]
        leaked = jnp.sum(fold.heldout_subjects[data.subjects[batch_idx]])
        step_key = jax.random.fold_in(epoch_keys(fold, epoch)[1], step)
        aug_key, dropout_key = jax.random.split(step_key)
        x = augment_batch(aug_key, images, aug, train=True)

        def loss_fn(params):
            logits, out, new_state = apply(params, state.model_state, x, True, dropout_key)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
            if aux_loss is not None:
                loss = loss + aux_loss(out, labels)
            return loss.mean(), new_state

        (loss, model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params, value=loss)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, model_state, opt_state), (loss, leaked)

    def evaluate(state, fold, data):
        """Held-out logits (T, K), centre crops, BatchNorm running statistics."""
        width = fold.test_idx.shape[0]
        chunk = min(schedule.eval_batch_size, width)
        padded = math.ceil(width / chunk) * chunk
        idx = jnp.pad(fold.test_idx, (0, padded - width)).reshape(-1, chunk)

        def logits_of(batch_idx):
            x = augment_batch(jax.random.key(0), data.images[batch_idx], aug, train=False)
            return apply(state.params, state.model_state, x, False)[0]

        return lax.map(logits_of, idx).reshape(padded, -1)[:width]

    def run_epoch(state, fold, data, epoch):
        batches = epoch_batches(fold, data, epoch)

        def body(state, xs):
            step, batch_idx = xs
            return train_step(state, fold, batch_idx, data, epoch, step)

        steps = jnp.arange(schedule.steps_per_epoch)
        state, (losses, leaked) = lax.scan(body, state, (steps, batches))
        return state, (losses.mean(), leaked.sum())

    def run(state, fold, data, first_epoch):
        """`epochs_per_call` epochs in lax.scan, then the held-out evaluation, in one program."""

        def body(state, epoch):
            return run_epoch(state, fold, data, epoch)

        epochs = first_epoch + jnp.arange(schedule.epochs_per_call)
        state, (losses, leaked) = lax.scan(body, state, epochs)
        return state, losses, leaked.sum(), evaluate(state, fold, data)

    def heldout_out(state, fold, pos, data):
        """The model's `out` dict for held-out test positions `pos` (J,): centre crops, eval mode."""
        x = augment_batch(jax.random.key(0), data.images[fold.test_idx[pos]], aug, train=False)
        return apply(state.params, state.model_state, x, False)[1]

    return FoldFns(init, epoch_batches, train_step, evaluate, run, heldout_out)


class FoldFns(NamedTuple):
    """Pure functions of ONE fold; the host lifts them over the fold axis.

    init(fold_key) -> TrainState
    epoch_batches(fold, data, epoch) -> (S, B) indices
    train_step(state, fold, batch_idx, data, epoch, step) -> (state, (loss, leaked))
    evaluate(state, fold, data) -> (T, K) held-out logits
    run(state, fold, data, first_epoch) -> (state, losses (E,), leaked, logits (T, K)):
        `epochs_per_call` epochs with the steps in lax.scan, then `evaluate`.
    heldout_out(state, fold, pos, data) -> the model's `out` dict for test positions
        `pos` (J,) of the fold (attention maps for reports), evaluated like `evaluate`.
    """

    init: Callable
    epoch_batches: Callable
    train_step: Callable
    evaluate: Callable
    run: Callable
    heldout_out: Callable


def resolve_strategy(strategy: str, step_loop: str) -> tuple[str, str]:
    """Pick how folds and steps run: (fold strategy, step loop).

    Fold strategies: 'vmap' (every fold in one batched program, the fold axis
    leading every array), 'map' (`lax.map` over folds in groups of
    `fold_group`, vmapped inside a group: scratch memory does not grow with F),
    'loop' (one compiled one-fold program run for each fold in turn).
    Step loops: 'scan' (an epoch's steps in `lax.scan` and the held-out
    evaluation in the same program) or 'python' (one compiled step, called per
    step; same keys, batches and results).
    'auto' is vmap + scan on GPU/TPU and loop + python on CPU: there vmapped
    convolutions become slow grouped convolutions and a convolution inside
    XLA control flow runs about 3x slower than the same step called from
    Python (jax#12868; measured in docs/benchmarks.md).
    """
    if strategy not in FOLD_STRATEGIES:
        raise ValueError(f"config key 'train.fold_strategy': {strategy!r} not in {FOLD_STRATEGIES}")
    if step_loop not in STEP_LOOPS:
        raise ValueError(f"config key 'train.step_loop': {step_loop!r} not in {STEP_LOOPS}")
    cpu = jax.default_backend() == "cpu"
    if strategy == "auto":
        strategy = "loop" if cpu else "vmap"
    if step_loop == "auto":
        step_loop = "python" if cpu else "scan"
    if strategy == "map" and step_loop == "python":
        raise ValueError(
            "config keys 'train.fold_strategy' = 'map' needs 'train.step_loop' = 'scan'"
        )
    return strategy, step_loop


def resolve_conv_impl(conv_impl: str, strategy: str) -> str:
    """How the model's convolutions compute: 'xla' or 'gemm' (`mer_jax.models.layers`).

    'auto' is 'gemm' where the fold strategy vmaps per-fold weights ('vmap',
    'map') on GPU/TPU: there a vmapped `lax.conv_general_dilated` becomes a
    grouped convolution, slow in cuDNN (jax#13800), and patches x batched GEMM
    is faster (docs/benchmarks.md). Elsewhere 'xla'. Both give the same results
    to float rounding (tests/models/test_layers.py).
    """
    if conv_impl not in ("auto", *CONV_IMPLS):
        raise ValueError(
            f"config key 'train.conv_impl': {conv_impl!r} not in {('auto', *CONV_IMPLS)}"
        )
    if conv_impl != "auto":
        return conv_impl
    strategy, _ = resolve_strategy(strategy, "auto" if strategy != "map" else "scan")
    vmapped = strategy in ("vmap", "map")
    return "gemm" if vmapped and jax.default_backend() != "cpu" else "xla"


def lift_over_folds(fn: Callable, strategy: str, batched: int, fold_group: int = 1) -> Callable:
    """`fn` of one fold -> the same over a leading fold axis of its first `batched` arguments.

    The remaining arguments (the dataset, epoch and step numbers) are shared.
    """
    if strategy in ("vmap", "loop"):
        return lambda *args: jax.vmap(fn, in_axes=(0,) * batched + (None,) * (len(args) - batched))(
            *args
        )
    if strategy == "map":
        return lambda *args: lax.map(
            lambda per_fold: fn(*per_fold, *args[batched:]),
            tuple(args[:batched]),
            batch_size=fold_group if fold_group > 1 else None,
        )
    raise ValueError(f"config key 'train.fold_strategy': unknown strategy {strategy!r}")


# ---------------------------------------------------------------------------
# Devices and memory: the fold axis over a mesh, folds in groups that fit.
# ---------------------------------------------------------------------------
FOLD_AXIS = "folds"
MEMORY_HEADROOM = 0.9  # share of a device's free memory the memory rule plans to use
# Per-fold bytes while training, as a multiple of the fold's resident state, where the
# compiler reports no memory analysis (a guess: state, gradients, updates, activations).
FALLBACK_TRANSIENT_FACTOR = 8
COLLECTIVES = r"all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter"


def fold_mesh(devices=None):
    """A 1-D `Mesh` named 'folds' over `devices`; None (no sharding) when one device is visible.

    `devices` None takes `jax.devices()`: every device of every process once
    `jax.distributed.initialize()` has run, so the same call spans hosts. A
    `devices` given explicitly always gives a mesh, even of one device.
    """
    if devices is None:
        devices = jax.devices()
        if len(devices) == 1:
            return None
    devices = list(devices)
    if not devices:
        raise ValueError("argument 'devices' is empty: give at least one jax device")
    if len({d.id for d in devices}) != len(devices):
        raise ValueError(f"argument 'devices' lists a device twice: {devices}")
    return jax.sharding.Mesh(np.array(devices), (FOLD_AXIS,))


def pad_folds(folds: Folds, total: int) -> Folds:
    """`folds` followed by `total - F` padding folds: copies of fold 0 with no test samples.

    A padding fold keeps fold 0's key, training mask and held-out subjects (a
    fold with no training sample would make the epoch arithmetic divide by
    zero), so it trains a duplicate of fold 0 that never touches its own
    held-out subject; `test_valid` is all False, and `train_folds` drops
    everything a padding fold produces before any check or output.
    """
    num_folds = folds.train_mask.shape[0]
    if total < num_folds:
        raise ValueError(f"cannot pad {num_folds} folds down to {total}")
    if total == num_folds:
        return folds
    extra = total - num_folds

    def pad(x):
        return jnp.concatenate([x, jnp.repeat(x[:1], extra, axis=0)])

    padded = jax.tree_util.tree_map(pad, folds)
    return padded._replace(test_valid=padded.test_valid.at[num_folds:].set(False))


def max_folds_per_call(
    free_bytes: float,
    num_folds: int,
    num_devices: int,
    resident_per_fold: float,
    transient_per_fold: float,
    headroom: float = MEMORY_HEADROOM,
) -> int:
    """The memory rule: most folds one compiled call can train, a multiple of `num_devices`.

    Per device, every fold's state and fold arrays stay resident for the whole
    sweep (ceil(F / D) folds x `resident_per_fold`), and a call of G folds
    needs G / D x `transient_per_fold` more while it runs (scratch:
    activations, gradients, outputs not aliased to inputs; it grows linearly
    with the folds vmapped, see JAX_ENGINE_NOTES). The largest g = G / D with
        ceil(F / D) * resident + g * transient <= headroom * free
    is taken, clipped to [1, ceil(F / D)]: one fold per device is the floor,
    tried even when the estimate says it does not fit.
    """
    if num_folds < 1 or num_devices < 1:
        raise ValueError(f"need folds >= 1 and devices >= 1, got {num_folds} and {num_devices}")
    per_device = math.ceil(num_folds / num_devices)
    room = headroom * free_bytes - per_device * resident_per_fold
    g = int(room // transient_per_fold) if transient_per_fold > 0 else per_device
    return max(1, min(per_device, g)) * num_devices


def fold_groups(num_folds: int, max_group: int, num_devices: int) -> tuple[int, int]:
    """(folds per call G, number of calls n): the fewest calls of at most `max_group` folds.

    G is the smallest multiple of `num_devices` that holds ceil(F / n) folds, so
    the n calls share one compiled program and the padding, n * G - F folds,
    stays below n * D.
    """
    if max_group < 1:
        raise ValueError(f"config key 'train.folds_per_call': {max_group} is not >= 1")
    calls = math.ceil(num_folds / max_group)
    size = num_devices * math.ceil(math.ceil(num_folds / calls) / num_devices)
    return size, calls


def device_free_bytes(devices) -> int | None:
    """Smallest free memory (bytes_limit - bytes_in_use) over this process's `devices`.

    None where a device keeps no statistics (the CPU backend). With several
    processes the smallest over all of them, so every process plans the same groups.
    """
    free = []
    for device in devices:
        if device.process_index != jax.process_index():
            continue
        try:
            stats = device.memory_stats()
        except (AttributeError, NotImplementedError, RuntimeError):
            stats = None
        if not stats or "bytes_limit" not in stats:
            return None
        free.append(int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)))
    if not free:
        return None
    smallest = min(free)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        smallest = int(np.min(multihost_utils.process_allgather(np.int64(smallest))))
    return smallest


def _transient_bytes(compiled) -> int | None:
    """Bytes a compiled program needs per device beyond its inputs (None if not reported)."""
    try:
        stats = compiled.memory_analysis()
    except (AttributeError, NotImplementedError, RuntimeError):
        return None
    if stats is None:
        return None
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes)


def _nbytes(tree) -> int:
    return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree_util.tree_leaves(tree))


def _put(x, sharding):
    """`x` laid out as `sharding`; with several processes built from each one's full copy."""
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = _put(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _to_host(x) -> np.ndarray:
    """A (possibly multi-process, sharded) array as one host array."""
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(jax.device_get(x))
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def _abstract(tree, rows: int):
    """Shapes of `tree` (one fold, no fold axis) with a leading fold axis of `rows`."""
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct((rows, *x.shape), x.dtype), tree)


def _collectives(compiled) -> set[str]:
    """Cross-device collectives in a compiled program (none when folds split cleanly)."""
    try:
        return set(re.findall(COLLECTIVES, compiled.as_text()))
    except (AttributeError, NotImplementedError, RuntimeError):
        return set()


def _shard_map(fn, mesh, in_specs):
    """`fn` on each device's block of folds; every output keeps a leading fold axis.

    `check_vma` is off: the body has no collectives to check, and optax's
    `lax.cond`s (e.g. reduce_on_plateau) return a replicated constant in one
    branch and a fold-varying value in the other, which the checker rejects.
    """
    return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=P(FOLD_AXIS), check_vma=False)


def _compile(fn, mesh, batched: int, donate: bool, args):
    """jit(`fn` over a leading fold axis of its first `batched` args), compiled for `args`.

    With a mesh the fold axis is split over its 'folds' axis by `shard_map`:
    each device runs the vmapped program on its own block of folds, the shared
    arguments replicated; nothing crosses devices (no collective in the program).
    """
    donate_argnums = (0,) if donate else ()
    if mesh is None:
        return jax.jit(fn, donate_argnums=donate_argnums).lower(*args).compile()
    folds_spec, shared_spec = P(FOLD_AXIS), P()
    specs = (folds_spec,) * batched + (shared_spec,) * (len(args) - batched)
    sharded = _shard_map(fn, mesh, specs)
    shardings = tuple(NamedSharding(mesh, spec) for spec in specs)
    program = jax.jit(
        sharded,
        in_shardings=shardings,
        out_shardings=NamedSharding(mesh, folds_spec),
        donate_argnums=donate_argnums,
    )
    return program.lower(*args).compile()


# ---------------------------------------------------------------------------
# Host side: fold tables in, held-out predictions out.
# ---------------------------------------------------------------------------
@dataclasses.dataclass
class FoldsOutput:
    """What training all folds produced (host arrays unless noted)."""

    logits: np.ndarray  # (F, T, K) held-out logits after the final epoch
    test_idx: np.ndarray  # (F, T)
    test_valid: np.ndarray  # (F, T)
    train_loss: np.ndarray  # (epochs, F) mean training loss per epoch
    heldout_pred_history: np.ndarray  # (evaluations, F, T) held-out argmax (curves only)
    state: TrainState  # final per-fold state, on device, leading fold axis F
    compile_s: float
    train_s: float
    images_seen: int
    strategy: str
    step_loop: str
    # Layout: folds per compiled call (padding included), one entry per call;
    # the sharding the per-fold arrays were trained under (None: one device,
    # unsharded); and the layout and memory rule's decision in words.
    fold_groups: tuple[int, ...] = ()
    fold_sharding: Any = None
    layout: str = ""
    # Held-out auxiliary outputs of the final weights (maps_per_class > 0, else None):
    # maps[name][f, j] is the `out` leaf `name` of fold f's test position maps_pos[f, j]
    # (sample test_idx[f, maps_pos[f, j]]) where maps_valid[f, j]; see select_heldout.
    maps: dict[str, np.ndarray] | None = None  # name -> (F, J, ...)
    maps_pos: np.ndarray | None = None  # (F, J) int
    maps_valid: np.ndarray | None = None  # (F, J) bool


def make_folds_arrays(
    table: FoldTable, subject_codes: np.ndarray, num_subjects: int, seed: int, fold_ids=None
) -> Folds:
    """Device arrays of a fold table; `fold_ids` default 0..F-1 (keys depend on them only)."""
    test_idx, test_valid = table.test_indices()
    heldout = np.zeros((table.num_folds, num_subjects), bool)
    for f in range(table.num_folds):
        heldout[f, np.unique(subject_codes[table.test_mask[f]])] = True
    ids = np.arange(table.num_folds) if fold_ids is None else np.asarray(fold_ids)
    base = jax.random.key(seed)
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(ids, jnp.uint32))
    return Folds(
        keys,
        jnp.asarray(table.train_mask),
        jnp.asarray(heldout),
        jnp.asarray(test_idx),
        jnp.asarray(test_valid),
    )


def select_heldout(test_idx, test_valid, labels, per_class: int):
    """Held-out entries whose auxiliary outputs a report keeps: (pos (F, J), valid (F, J)).

    Entries are (fold, test position) pairs in fold-major order, the order of the
    pooled predictions (a sample tested by several folds is several entries). For
    each class, `per_class` of its entries (all if fewer) evenly spaced over that
    order, so they come from different folds (subjects), at an offset that differs
    by class (class c of C present: entries floor((i + (c + 1/2) / C) L / n), i < n,
    of its L), so classes do not all come from the same folds. Row f lists fold f's kept
    test positions, padded with position 0, `valid` False; J >= 1 is the most any
    fold keeps. Depends on labels and the fold table only, never on predictions.
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


def _out_leaves(out, keys: str, rows: int, dtype) -> dict:
    """`out` flattened to {'a/b': leaf}: leaves named by regex `keys` ('' = all) with a leading
    example axis of `rows`; floating leaves cast to `dtype`."""
    leaves = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(out):
        name = "/".join(_path_names(path))
        if keys and not re.search(keys, name):
            continue
        if leaf.ndim < 1 or leaf.shape[0] != rows:
            continue
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            leaf = leaf.astype(dtype)
        leaves[name] = leaf
    return leaves


def _slice(tree, start: int, stop: int):
    return jax.tree_util.tree_map(lambda x: x[start:stop], tree)


def train_folds(
    model,
    tx: optax.GradientTransformation,
    schedule: Schedule,
    aug: Augment,
    data: Data,
    folds: Folds,
    *,
    strategy: str = "auto",
    step_loop: str = "auto",
    fold_group: int = 1,
    progress: Callable[[int, np.ndarray], None] | None = None,
    on_compiled: Callable[[float], None] | None = None,
    aux_loss: Callable | None = None,
    initial_variables=None,
    devices=None,
    folds_per_call: int = 0,
    log: Callable[[str], None] | None = None,
    maps_per_class: int = 0,
    maps_keys: str = "",
    maps_dtype=jnp.float16,
) -> FoldsOutput:
    """Train every fold of `folds` for `schedule.epochs` epochs and predict its held-out samples.

    `on_compiled(seconds)` is called once the programs are compiled and
    `progress(epochs_done, mean_loss_per_fold)` after each epoch (or each call
    of `epochs_per_call` epochs). `aux_loss(out, labels)`: the model's extra
    loss terms per example; `initial_variables`: pretrained leaves (see
    make_fold_fns). Raises LeakageError if a training batch ever held a sample
    of a subject its fold holds out.

    Devices ('vmap' and 'map'; 'loop' runs one fold at a time on the default
    device): with more than one device visible, or `devices` given, the fold
    axis is split over a 1-D mesh 'folds' (`fold_mesh`) by `shard_map`, the
    dataset replicated on every device. F is padded to a multiple of the
    device count with copies of fold 0 (`pad_folds`) whose outputs are dropped.
    With several hosts, call `jax.distributed.initialize()` first on every
    process and then this same function with the same arguments: the mesh
    takes every process's devices, each process feeds its shards from its own
    full copy of `data` and `folds`, and the host outputs are gathered from all.

    Memory: `folds_per_call` > 0 forces the folds per compiled call (rounded up
    to the device count). 0 lets the memory rule decide: the program for all
    folds at once is compiled, its per-device scratch read from
    `memory_analysis()` and set against the devices' free memory
    (`device.memory_stats()`); if it does not fit, folds run in the fewest
    equal groups that do (`max_folds_per_call`, `fold_groups`). A device that
    reports no memory (CPU) runs all folds at once. Every group gets the same
    results as one call would (keys depend on the fold id only). The decision
    goes to `log(message)` and `FoldsOutput.layout`.

    Auxiliary outputs: `maps_per_class` > 0 also returns, after the final epoch,
    the model's `out` leaves whose '/'-joined names match the regex `maps_keys`
    ('' = all; leaves without a leading example axis are dropped), floating ones
    cast to `maps_dtype`, for the held-out entries `select_heldout` keeps
    (`FoldsOutput.maps`). One more small program per call layout, lifted,
    sharded and padded like the others; memory is bounded by the kept entries.
    """
    strategy, step_loop = resolve_strategy(strategy, step_loop)
    if schedule.epochs % schedule.epochs_per_call:
        raise ValueError(
            f"config key 'train.epochs_per_call': {schedule.epochs_per_call} does not divide "
            f"train.epochs {schedule.epochs}"
        )
    if not isinstance(folds_per_call, int | np.integer) or folds_per_call < 0:
        raise ValueError(
            f"config key 'train.folds_per_call': {folds_per_call!r} is not an integer >= 0"
        )
    say = log or (lambda message: None)
    fns = make_fold_fns(
        model, tx, schedule, aug, data.images.shape[1:], aux_loss, initial_variables
    )
    num_folds = folds.train_mask.shape[0]
    maps_fn = maps_pos = maps_valid = None
    if maps_per_class > 0:
        maps_pos, maps_valid = select_heldout(
            folds.test_idx, folds.test_valid, _to_host(data.labels), maps_per_class
        )
        rows = maps_pos.shape[1]

        def maps_fn(state, fold, pos, data):
            out = fns.heldout_out(state, fold, pos, data)
            return _out_leaves(out, maps_keys, rows, maps_dtype)

    lift = partial(lift_over_folds, strategy=strategy, fold_group=fold_group)
    mesh = None if strategy == "loop" else fold_mesh(devices)
    num_devices = 1 if mesh is None else mesh.size
    fold_sharding = None if mesh is None else NamedSharding(mesh, P(FOLD_AXIS))
    if mesh is not None:
        data = jax.tree_util.tree_map(lambda x: _put(x, NamedSharding(mesh, P())), data)

    # Programs for calls of `size` folds, compiled up front (timed apart from training).
    one_state = jax.eval_shape(fns.init, folds.key[0])
    one_fold = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), folds)
    scalar = jax.ShapeDtypeStruct((), jnp.int32)

    def compile_programs(size):
        state, unit = _abstract(one_state, size), _abstract(one_fold, size)
        if step_loop == "scan":
            run = _compile(lift(fns.run, batched=2), mesh, 2, True, (state, unit, data, scalar))
            programs = {"run": run}
        else:
            example_idx = jax.ShapeDtypeStruct((size, schedule.batch_size), jnp.int32)
            step_args = (state, unit, example_idx, data, scalar, scalar)
            programs = {
                "batches": _compile(
                    lift(fns.epoch_batches, batched=1), mesh, 1, False, (unit, data, scalar)
                ),
                "train_step": _compile(lift(fns.train_step, batched=3), mesh, 3, True, step_args),
                "evaluate": _compile(
                    lift(fns.evaluate, batched=2), mesh, 2, False, (state, unit, data)
                ),
            }
        if maps_fn is not None:
            pos = jax.ShapeDtypeStruct((size, maps_pos.shape[1]), jnp.int32)
            programs["maps"] = _compile(
                lift(maps_fn, batched=3), mesh, 3, False, (state, unit, pos, data)
            )
        return programs

    # Folds per call: 1 ('loop'), else all (padded to the device count), forced, or the memory rule.
    start = time.perf_counter()
    if strategy == "loop":
        size, calls = 1, num_folds
    else:
        size, calls = fold_groups(num_folds, folds_per_call or num_folds, num_devices)
    programs = compile_programs(size)
    if strategy == "loop":
        layout = f"{num_folds} folds, one at a time"
    else:
        layout = f"{num_folds} folds"
        if mesh is not None:
            layout += f" over {num_devices} devices (shard_map, mesh axis '{FOLD_AXIS}')"
            budget_devices = list(mesh.devices.flat)
        else:
            budget_devices = list(getattr(data.images, "devices", lambda: jax.devices()[:1])())
        free = None if folds_per_call else device_free_bytes(budget_devices)
        if folds_per_call:
            layout += f"; {folds_per_call} folds per call forced (train.folds_per_call)"
        elif free is None:
            layout += "; the device reports no free memory: all folds in one call"
        else:
            resident = _nbytes(one_state) + _nbytes(one_fold)
            while True:  # `size` only shrinks, so this ends
                transients = [_transient_bytes(p) for p in programs.values()]
                if None in transients:
                    transient = FALLBACK_TRANSIENT_FACTOR * resident
                    source = f"{FALLBACK_TRANSIENT_FACTOR} x the state, no memory analysis"
                else:
                    transient = max(transients) / (size // num_devices)
                    source = "memory_analysis"
                most = max_folds_per_call(free, num_folds, num_devices, resident, transient)
                new_size, new_calls = fold_groups(num_folds, most, num_devices)
                if new_size >= size:
                    break
                size, calls = new_size, new_calls
                programs = compile_programs(size)
            layout += (
                f"; memory rule: {free / 2**20:.0f} MiB free per device, per fold "
                f"{resident / 2**20:.2f} MiB resident + {transient / 2**20:.2f} MiB while "
                f"training ({source}) -> at most {most} folds per call"
            )
            if math.ceil(num_folds / num_devices) * resident + transient > MEMORY_HEADROOM * free:
                layout += " (even one fold per device is estimated not to fit; trying anyway)"
        padding = size * calls - num_folds
        layout += f"; {calls} call(s) of {size} folds"
        layout += f" ({padding} padding)" if padding else ""
        if mesh is not None:
            found = set().union(*(_collectives(p) for p in programs.values()))
            layout += f"; collectives: {sorted(found)}" if found else "; no collectives"
    compile_s = time.perf_counter() - start
    say(f"fold layout: {layout}")
    if on_compiled is not None:
        on_compiled(compile_s)

    # Units of work: `calls` groups of `size` folds, each with its own state.
    # (One jitted program per tree: eager ops would compile one small program per leaf.)
    units = jax.jit(
        lambda folds: [
            _slice(pad_folds(folds, size * calls), u * size, (u + 1) * size) for u in range(calls)
        ]
    )(folds)
    if mesh is None:
        init = jax.jit(jax.vmap(fns.init))
        number = jnp.int32
        step_slice = lambda idx, s: idx[:, s]
    else:
        init = jax.jit(
            _shard_map(jax.vmap(fns.init), mesh, P(FOLD_AXIS)),
            in_shardings=fold_sharding,
            out_shardings=fold_sharding,
        )
        number = np.int32  # host scalars: jit replicates them on every device (and process)
        step_slice = jax.jit(lambda idx, s: idx[:, s], out_shardings=fold_sharding)
        units = [jax.tree_util.tree_map(lambda x: _put(x, fold_sharding), u) for u in units]
    states = [init(u.key) for u in units]
    if maps_fn is not None:  # kept test positions per unit, padding folds' rows never valid
        padded = np.zeros((size * calls, maps_pos.shape[1]), np.int32)
        padded[:num_folds] = maps_pos
        maps_units = [padded[u * size : (u + 1) * size] for u in range(calls)]
        put = jnp.asarray if mesh is None else (lambda x: _put(x, fold_sharding))
        maps_units = [put(x) for x in maps_units]

    def epochs_python(u, first_epoch):
        batches, train_step = programs["batches"], programs["train_step"]
        losses, leaked = [], 0
        for e in range(first_epoch, first_epoch + schedule.epochs_per_call):
            epoch = number(e)
            idx = batches(units[u], data, epoch)
            total = 0.0
            for s in range(schedule.steps_per_epoch):
                states[u], (loss, leak) = train_step(
                    states[u], units[u], step_slice(idx, s), data, epoch, number(s)
                )
                total, leaked = total + loss, leaked + leak
            losses.append(total / schedule.steps_per_epoch)
        return jnp.stack(losses, axis=1), leaked, programs["evaluate"](states[u], units[u], data)

    losses, history, leaked_total = [], [], 0
    start = time.perf_counter()
    for call in range(schedule.epochs // schedule.epochs_per_call):
        first_epoch = call * schedule.epochs_per_call
        outs = []
        for u in range(len(units)):
            if step_loop == "scan":
                states[u], *rest = programs["run"](states[u], units[u], data, number(first_epoch))
            else:
                rest = epochs_python(u, first_epoch)
            outs.append(rest)
        # To the host; padding folds' outputs are dropped here, before any check.
        loss, leaked, logits = (
            np.concatenate([_to_host(x) for x in part])[:num_folds] for part in zip(*outs)
        )
        leaked_total += int(np.sum(leaked))
        if leaked_total:
            raise LeakageError(
                f"{leaked_total} training samples belonged to their fold's held-out subjects "
                f"(folds {np.flatnonzero(leaked).tolist()})"
            )
        if not np.all(np.isfinite(loss)):
            bad = np.flatnonzero(~np.all(np.isfinite(loss), axis=-1)).tolist()
            raise FloatingPointError(
                f"training loss is not finite in folds {bad} (epoch {first_epoch})"
            )
        losses.append(loss.T)  # (epochs_per_call, F)
        history.append(logits.argmax(-1))
        if progress is not None:
            progress(first_epoch + schedule.epochs_per_call, loss[:, -1])
    train_s = time.perf_counter() - start

    maps = None
    if maps_fn is not None:  # the final weights' maps, to the host like the logits
        parts = [programs["maps"](states[u], units[u], maps_units[u], data) for u in range(calls)]
        maps = {
            name: np.concatenate([_to_host(part[name]) for part in parts])[:num_folds]
            for name in parts[0]
        }

    trained_sharding = None
    if mesh is not None:
        trained_sharding = jax.tree_util.tree_leaves(states[0])[0].sharding
    state = states[0]
    if len(states) > 1 or size * calls != num_folds:
        # Without padding a single unit keeps its layout. F rows do not split evenly over D
        # devices: each device then holds all F folds' final state, as one device would.
        state = jax.jit(
            lambda states: _slice(
                jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *states), 0, num_folds
            )
        )(states)
    return FoldsOutput(
        logits=logits,
        test_idx=np.asarray(folds.test_idx),
        test_valid=np.asarray(folds.test_valid),
        train_loss=np.concatenate(losses),
        heldout_pred_history=np.stack(history),
        state=state,
        compile_s=compile_s,
        train_s=train_s,
        images_seen=num_folds * schedule.epochs * schedule.steps_per_epoch * schedule.batch_size,
        strategy=strategy,
        step_loop=step_loop,
        fold_groups=(size,) * calls,
        fold_sharding=trained_sharding,
        layout=layout,
        maps=maps,
        maps_pos=maps_pos,
        maps_valid=maps_valid,
    )


def prepare(
    table: FoldTable,
    subjects,
    labels: np.ndarray,
    num_classes: int,
    *,
    batch_size: int,
    balance: bool,
    epochs: int,
    seed: int,
    epochs_per_call: int = 1,
    fold_ids=None,
):
    """Checks and static numbers for `train_folds`: (Schedule, Folds, subject codes)."""
    subjects = np.asarray(subjects)
    check_no_leakage(table, subjects)
    names, codes = np.unique(subjects, return_inverse=True)
    length = epoch_length(table.train_mask, labels, num_classes, balance)
    schedule = Schedule(
        epochs=epochs,
        batch_size=batch_size,
        steps_per_epoch=math.ceil(length / batch_size),
        num_classes=num_classes,
        balance=balance,
        epochs_per_call=epochs_per_call,
    )
    folds = make_folds_arrays(table, codes, len(names), seed, fold_ids)
    return schedule, folds, codes.astype(np.int32)
