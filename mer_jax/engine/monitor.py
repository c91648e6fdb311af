"""What each fold watches at the end of every epoch: plateau scheduling, early stopping and
the best weights on its validation split.

Seed 001 (Sec. 4.1.1, 4.2) divides the learning rate by 10 when the validation loss
stops improving (ReduceLROnPlateau, patience 20) and stops a fold after 20 epochs
without improvement (early stopping), keeping its best-on-validation weights.
Here every fold does this on its own, inside the one compiled program: the
monitor is a few scalars in each fold's `TrainState`, updated by
`FoldFns.end_epoch` with arrays, never a Python branch, so a fold that stops
keeps its weights while the others go on.

The value watched is the fold's validation loss (mean softmax cross-entropy of its
validation samples, evaluated like the held-out ones) when it has a validation
split, else the epoch's mean training loss (plateau scheduling only). The
held-out (test) subject is never looked at.

An epoch improves when its value is below the best so far by more than
`threshold` x |best| (PyTorch ReduceLROnPlateau's default rule, relative 1e-4).
Plateau: after more than `plateau_patience` epochs in a row without
improvement the learning-rate scale is multiplied by `plateau_factor` and the
count starts again (PyTorch's rule; the scale multiplies each step's update,
which is a learning-rate change for SGD, momentum, Adam and RMSprop alike).
Early stopping: after `early_stopping` epochs without improvement since the
best one the fold stops (Keras EarlyStopping with restore_best_weights).
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Monitoring:
    """Static settings of the epoch-end monitor (part of `Schedule`, so of the program)."""

    validation: bool = False  # folds have validation splits: watch them, keep the best
    plateau_factor: float = 0.0  # learning-rate factor on a plateau; 0: no plateau schedule
    plateau_patience: int = 0
    early_stopping: int = 0  # epochs without improvement before a fold stops; 0: never
    threshold: float = 1e-4

    @property
    def active(self) -> bool:
        """Whether `end_epoch` does anything (else the programs skip it)."""
        return self.validation or self.plateau_factor > 0


class Monitor(NamedTuple):
    """One fold's monitor state (scalars)."""

    best_value: jax.Array  # lowest watched value so far (inf before the first epoch)
    best_epoch: jax.Array  # int32: the epoch of `best_value`, -1 before the first
    bad_epochs: jax.Array  # int32: epochs without improvement since the last plateau reset
    lr_scale: jax.Array  # the learning-rate factor plateaus have applied so far
    stopped_epoch: jax.Array  # int32: the epoch after which the fold stopped, -1 while training


def initial_monitor(dtype) -> Monitor:
    return Monitor(
        jnp.asarray(jnp.inf, dtype), jnp.int32(-1), jnp.int32(0), jnp.asarray(1.0, dtype),
        jnp.int32(-1),
    )  # fmt: skip


def update(
    settings: Monitoring, monitor: Monitor, value, epoch, training
) -> tuple[Monitor, jax.Array]:
    """The monitor after an epoch whose watched value is `value`: (monitor, improved).

    `training` (bool): the fold still trains (not diverged, not stopped); otherwise
    the monitor does not change and nothing counts as improved.
    """
    value = jnp.asarray(value, monitor.best_value.dtype)
    best = monitor.best_value
    bar = jnp.where(jnp.isfinite(best), best - settings.threshold * jnp.abs(best), jnp.inf)
    improved = training & jnp.isfinite(value) & (value < bar)
    epoch = jnp.asarray(epoch, jnp.int32)
    bad = jnp.where(improved, 0, monitor.bad_epochs + 1)
    scale = monitor.lr_scale
    if settings.plateau_factor > 0:
        reduce = bad > settings.plateau_patience
        scale = jnp.where(reduce, scale * settings.plateau_factor, scale)
        bad = jnp.where(reduce, 0, bad)
    best_epoch = jnp.where(improved, epoch, monitor.best_epoch)
    stopped = monitor.stopped_epoch
    if settings.early_stopping > 0:
        stop = training & (epoch - best_epoch >= settings.early_stopping)
        stopped = jnp.where(stop & (stopped < 0), epoch, stopped)
    new = Monitor(jnp.where(improved, value, monitor.best_value), best_epoch, bad, scale, stopped)
    new = jax.tree_util.tree_map(lambda n, o: jnp.where(training, n, o), new, monitor)
    return new, improved
