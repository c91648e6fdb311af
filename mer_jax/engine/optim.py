"""The seeds' optimizers and learning-rate schedules in optax.

`make_optimizer` is memoised: the same optimizer config, steps per epoch and
frozen-parameter rule give the very same transformation object, so the
driver's program cache (which keys on it) reuses compiled programs.
"""

import functools
from collections.abc import Callable, Mapping

import jax
import optax

from mer_jax.engine.monitor import Monitoring

OPTIMIZERS = ("sgd", "adam", "rmsprop")
SCHEDULES = ("constant", "step", "plateau")


def monitoring(cfg, *, validation: bool, early_stopping: int = 0) -> Monitoring:
    """The epoch-end monitor of optimizer config `cfg` (engine/monitor.py): a plateau schedule
    when cfg.schedule is 'plateau' (factor decay_rate, patience), on the validation loss
    when the folds have `validation` splits, which early stopping needs."""
    plateau = cfg.schedule == "plateau"
    return Monitoring(
        validation=validation,
        plateau_factor=float(cfg.decay_rate) if plateau else 0.0,
        plateau_patience=int(cfg.patience) if plateau else 0,
        early_stopping=int(early_stopping),
    )


def path_names(path) -> tuple[str, ...]:
    """A pytree key path as plain names ('params', 'conv', 'kernel')."""
    return tuple(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def make_optimizer(cfg, steps_per_epoch: int, frozen: Callable | None = None):
    """The seeds' optimizers in optax.

    cfg keys: name ('sgd' | 'adam' | 'rmsprop'), lr, momentum, weight_decay,
    schedule ('constant' | 'step': x decay_rate every decay_every_epochs |
    'plateau': constant here; the engine's epoch-end monitor scales the updates
    by decay_rate after `patience` epochs without improvement of the validation
    loss, or of the training loss without a validation split: `monitoring`),
    decay_every_epochs, decay_rate, patience.
    `frozen(path) -> bool` marks parameters that never change (e.g. AMAN's
    frozen ResNet trunk): their updates are zero and they get no optimizer state.
    """
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"config key 'optimizer.schedule': {cfg.schedule!r} not in {SCHEDULES}")
    if cfg.name not in OPTIMIZERS:
        raise ValueError(f"config key 'optimizer.name': {cfg.name!r} not in {OPTIMIZERS}")
    items = _frozen_items(cfg)
    try:
        hash((items, steps_per_epoch, frozen))
    except TypeError:  # an unhashable value: build it afresh
        return _build(items, steps_per_epoch, frozen)
    return _memoised(items, steps_per_epoch, frozen)


def _frozen_items(value):
    """A config (mapping, sequences) as nested sorted tuples: a hashable memo key."""
    if isinstance(value, Mapping) or hasattr(value, "items"):
        return tuple(sorted((str(k), _frozen_items(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen_items(v) for v in value)
    return value


@functools.lru_cache(maxsize=64)
def _memoised(items, steps_per_epoch: int, frozen):
    return _build(items, steps_per_epoch, frozen)


def _build(items, steps_per_epoch: int, frozen):
    cfg = dict(items)
    lr = cfg["lr"]
    if cfg["schedule"] == "step":
        lr = optax.exponential_decay(
            cfg["lr"],
            transition_steps=max(1, cfg["decay_every_epochs"] * steps_per_epoch),
            decay_rate=cfg["decay_rate"],
            staircase=True,
        )
    momentum = cfg.get("momentum") or None
    if cfg["name"] == "sgd":
        opt = optax.sgd(lr, momentum=momentum)
    elif cfg["name"] == "adam":
        opt = optax.adam(lr)
    else:  # PyTorch's RMSprop defaults (alpha 0.99, eps 1e-8), as AMAN's code uses.
        opt = optax.rmsprop(lr, decay=0.99, eps=1e-8, momentum=momentum)
    parts = []
    if cfg.get("weight_decay"):
        # L2 on the loss as in Caffe/PyTorch: decay added to the gradient before the update.
        parts.append(optax.add_decayed_weights(cfg["weight_decay"]))
    parts.append(opt)
    tx = optax.chain(*parts)
    if frozen is not None:

        def labels(params):
            return jax.tree_util.tree_map_with_path(
                lambda path, _: "frozen" if frozen(path_names(path)) else "train", params
            )

        tx = optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)
    return tx
