"""What training all folds produces: per call (`CallOutput`), per run (`Trained`) and in
the end (`FoldsOutput`, host arrays with a leading fold axis, and the final state)."""

import dataclasses
from typing import Any, NamedTuple

import jax
import numpy as np

from mer_jax.engine.folds import TrainState


class CallOutput(NamedTuple):
    """Host arrays of one call, padding folds dropped."""

    loss: np.ndarray  # (F, epochs_per_call) mean training loss per epoch
    logits: np.ndarray  # (F, T, K) held-out logits after the call
    val_loss: np.ndarray  # (F, epochs_per_call) validation loss (NaN without a split)
    val_accuracy: np.ndarray  # (F, epochs_per_call)


class Trained(NamedTuple):
    """What the run phase returns: per-call host outputs, gathered."""

    train_loss: np.ndarray  # (epochs, F)
    heldout_pred_history: np.ndarray  # (calls, F, T)
    logits: np.ndarray  # (F, T, K) after the final call
    train_s: float
    val_loss: np.ndarray  # (epochs, F), NaN without validation splits
    val_accuracy: np.ndarray  # (epochs, F)


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
    # Held-out auxiliary outputs of the final weights (`maps` given, else None):
    # maps[name][f, j] is the `out` leaf `name` of fold f's test position maps_pos[f, j]
    # (sample test_idx[f, maps_pos[f, j]]) where maps_valid[f, j].
    maps: dict[str, np.ndarray] | None = None  # name -> (F, J, ...)
    maps_pos: np.ndarray | None = None  # (F, J) int
    maps_valid: np.ndarray | None = None  # (F, J) bool
    # (F,) int: the epoch in which each fold's training turned non-finite (its weights are
    # those of the step before), -1 for the folds that trained to the end.
    diverged_epoch: np.ndarray | None = None
    # The epoch-end monitor (monitor.py): (epochs, F) validation loss and accuracy (None
    # without validation splits); (F,) the epoch whose weights each fold kept (its best on
    # validation; -1 without), the epoch after which it stopped early (-1: it did not) and
    # its final learning-rate factor (plateaus).
    val_loss: np.ndarray | None = None
    val_accuracy: np.ndarray | None = None
    best_epoch: np.ndarray | None = None
    stopped_epoch: np.ndarray | None = None
    lr_scale: np.ndarray | None = None

    def select(self, rows) -> "FoldsOutput":
        """The outputs of folds `rows` only (a seed's block, the protocol's folds), in order."""
        rows = np.asarray(rows)
        by_fold = lambda x: None if x is None else np.asarray(x)[rows]
        by_epoch = lambda x: None if x is None else np.asarray(x)[:, rows]
        return dataclasses.replace(
            self,
            logits=by_fold(self.logits),
            test_idx=by_fold(self.test_idx),
            test_valid=by_fold(self.test_valid),
            train_loss=by_epoch(self.train_loss),
            heldout_pred_history=by_epoch(self.heldout_pred_history),
            state=jax.tree_util.tree_map(lambda x: x[rows], self.state),
            maps=None if self.maps is None else {k: v[rows] for k, v in self.maps.items()},
            maps_pos=by_fold(self.maps_pos),
            maps_valid=by_fold(self.maps_valid),
            diverged_epoch=by_fold(self.diverged_epoch),
            val_loss=by_epoch(self.val_loss),
            val_accuracy=by_epoch(self.val_accuracy),
            best_epoch=by_fold(self.best_epoch),
            stopped_epoch=by_fold(self.stopped_epoch),
            lr_scale=by_fold(self.lr_scale),
        )
