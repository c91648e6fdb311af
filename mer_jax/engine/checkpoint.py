"""Checkpoints of a training run in progress (orbax), and exact resume from them.

A checkpoint is written at the end of a call of `epochs_per_call` epochs (the
only points where every fold's state is at an epoch boundary): every unit's
`TrainState` as trained (sharded states save and restore sharded: the freshly
initialised states are the restore target, so each array comes back with the
sharding it was trained under), and the host outputs so far (training loss per
epoch, held-out predictions per call, the last held-out logits, the validation loss
and accuracy per epoch). Nothing else is
needed to continue exactly: every random stream is `fold_in(fold key, epoch,
step)` (`fold_program`), so the epoch number is the position in all of them.

orbax writes each checkpoint into a temporary directory and renames it when
complete, so a run killed while saving resumes from the previous checkpoint.
"""

import contextlib
import dataclasses
import pathlib
import signal
import sys
import threading
from typing import NamedTuple

import jax
import numpy as np


class Progress(NamedTuple):
    """The host outputs of the epochs trained so far (see `driver.run_epochs`)."""

    epochs_done: int
    losses: list  # per call: (epochs_per_call, F)
    history: list  # per call: (F, T) held-out argmax
    logits: np.ndarray | None  # (F, T, K) after the last call
    val_losses: list  # per call: (epochs_per_call, F) validation loss (NaN without a split)
    val_accuracies: list  # per call: (epochs_per_call, F)


@dataclasses.dataclass
class Checkpointer:
    """Saves a run every `every` epochs (at the first call boundary at or after each
    multiple), at the end, and when asked (an interrupt); keeps the last `keep`."""

    directory: pathlib.Path
    every: int = 10
    keep: int = 2
    log: object = print

    def __post_init__(self):
        import orbax.checkpoint as ocp

        self.directory = pathlib.Path(self.directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=self.keep, enable_async_checkpointing=False, create=True
        )
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "host")
        )
        self._saved = self._manager.latest_step() or 0

    def due(self, epochs_done: int, epochs: int) -> bool:
        """Whether the call that ended at `epochs_done` should save."""
        if epochs_done >= epochs:
            return True
        return self.every > 0 and epochs_done // self.every > self._saved // self.every

    def save(self, states: list, progress: Progress) -> None:
        import orbax.checkpoint as ocp

        host = {
            "loss": np.concatenate(progress.losses),
            "history": np.stack(progress.history),
            "logits": progress.logits,
            "val_loss": np.concatenate(progress.val_losses),
            "val_accuracy": np.concatenate(progress.val_accuracies),
        }
        self._manager.save(
            progress.epochs_done,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(states), host=ocp.args.StandardSave(host)
            ),
            force=True,
        )
        self._manager.wait_until_finished()
        self._saved = progress.epochs_done
        self.log(f"checkpoint: epoch {progress.epochs_done} saved in {self.directory}")

    def restore(self, states: list, per_call: int) -> tuple[list, Progress] | None:
        """The latest checkpoint as (states like `states`, Progress), or None if there is none."""
        import orbax.checkpoint as ocp

        step = self._manager.latest_step()
        if step is None:
            return None
        target = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, states)
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), host=ocp.args.StandardRestore()
            ),
        )
        host = restored.host
        if host["loss"].shape[0] != step or step % per_call:
            raise ValueError(
                f"checkpoint {self.directory / str(step)} holds {host['loss'].shape[0]} epochs "
                f"of losses for step {step} (epochs_per_call {per_call}): not this run's"
            )
        calls = step // per_call
        split = lambda key: list(np.split(host[key], calls))
        progress = Progress(
            step, split("loss"), list(host["history"]), host["logits"],
            split("val_loss"), split("val_accuracy"),
        )  # fmt: skip
        self.log(f"checkpoint: resuming after epoch {step} from {self.directory}")
        return list(restored.state), progress

    def close(self) -> None:
        self._manager.close()


class Interrupted(Exception):
    """Ctrl-C during training: the run stopped at an epoch boundary, its checkpoint saved."""

    def __init__(self, epochs_done: int, directory):
        super().__init__(
            f"interrupted after epoch {epochs_done}; checkpoint saved in {directory}: "
            "run the same command again to resume"
        )
        self.epochs_done = epochs_done


@contextlib.contextmanager
def deferred_interrupts(enabled: bool):
    """Within: the first Ctrl-C only sets a flag (the yielded function reads it), so training
    stops at the next epoch boundary with a checkpoint; a second Ctrl-C stops at once.

    Disabled (no checkpointer) or off the main thread: Ctrl-C behaves as usual.
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    requested = []

    def handler(signum, frame):
        if requested:
            raise KeyboardInterrupt
        requested.append(signum)
        print(
            "\ninterrupt: saving a checkpoint after the current call (Ctrl-C again: stop now)",
            file=sys.stderr,
            flush=True,
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(requested)
    finally:
        signal.signal(signal.SIGINT, previous)
