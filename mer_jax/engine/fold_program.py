"""One fold's training as pure functions, and how they are lifted over the fold axis.

`FoldFns` holds everything that defines a fold's program (model, optimizer,
schedule, augmentation, input shape, extra loss terms); its methods train and
evaluate ONE fold. It is a hashable value: equal FoldFns trace to the same
program, which is what the driver's program cache keys on. Per-fold
differences are arrays (masks, keys, indices), never Python branches.

Keys (layout independent, so a fold gives the same result alone or among
others): fold_key = fold_in(key(seed), fold_id); init from fold_in(fold_key, 0);
epoch_key = fold_in(fold_in(fold_key, 1), epoch); step_key = fold_in(., step).
"""

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import lax

from mer_jax.engine.augment import Augment, augment_batch, default_float
from mer_jax.engine.folds import Schedule, TrainState, epoch_order
from mer_jax.engine.monitor import initial_monitor
from mer_jax.engine.monitor import update as monitor_update
from mer_jax.engine.optim import path_names
from mer_jax.models import weights
from mer_jax.models.layers import CONV_IMPLS

FOLD_STRATEGIES = ("auto", "vmap", "map", "loop")
STEP_LOOPS = ("auto", "scan", "python")
# Compute dtypes of the models (`train.dtype`, `mer-jax bench --dtype`).
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class FoldFns:
    """Pure functions of ONE fold; the host lifts them over the fold axis.

    init(fold_key, initial_variables=None) -> TrainState
    epoch_batches(fold, data, epoch) -> (S, B) indices
    train_step(state, fold, batch_idx, data, epoch, step) -> (state, (loss, leaked))
    evaluate(state, fold, data) -> (T, K) held-out logits
    end_epoch(state, fold, data, epoch, train_loss) -> (state, (val loss, val acc, leaked)):
        the epoch-end monitor (monitor.py; a few scalar updates without a validation split).
    run(state, fold, data, first_epoch) -> (state, losses (E,), leaked, logits (T, K),
        val losses (E,), val accuracies (E,)): `epochs_per_call` epochs with the steps in
        lax.scan, each followed by `end_epoch`, then `evaluate`.
    heldout_out(state, fold, pos, data) -> the model's `out` dict for test positions
        `pos` (J,) of the fold (attention maps for reports), evaluated like `evaluate`.

    `image_shape` is one stored example's shape (..., H, W, C); the model sees
    it cropped to `aug.crop_size`. The training loss is the mean over the batch
    of softmax cross-entropy plus `aux_loss(out, labels)` (per example) when the
    model defines extra terms (FR's proposal loss, STANet's mask L1).
    """

    model: Any  # a Flax module (a hashable dataclass)
    tx: optax.GradientTransformation
    schedule: Schedule
    aug: Augment
    image_shape: tuple[int, ...]
    aux_loss: Callable | None = None

    def init(self, fold_key, initial_variables=None) -> TrainState:
        """A fold's initial state; `initial_variables` (e.g. pretrained weights) replace the
        matching leaves of its random initialisation.

        Under `jax.enable_x64` every floating variable is kept in float64 (the
        models declare float32 parameters), so nothing rounds to float32 between steps.
        """
        size = self.aug.crop_size or min(self.image_shape[-3:-1])
        shape = (1, *self.image_shape[:-3], size, size, self.image_shape[-1])
        variables = self.model.init(
            jax.random.fold_in(fold_key, 0), jnp.zeros(shape, default_float()), train=False
        )
        if initial_variables is not None:
            variables = weights.merge_variables(variables, initial_variables)
        if default_float() == jnp.float64:
            variables = jax.tree_util.tree_map(_widen, variables)
        variables = dict(variables)
        params = variables.pop("params")
        best = (params, variables) if self.schedule.monitoring.validation else None
        monitor = initial_monitor(default_float())
        return TrainState(params, variables, self.tx.init(params), jnp.int32(-1), monitor, best)

    def selected(self, state: TrainState):
        """(params, model_state) a fold predicts with: its best epoch on the validation split
        when it has one (`monitor.py`), else its current weights."""
        if self.schedule.monitoring.validation:
            return state.best
        return state.params, state.model_state

    def apply(self, params, model_state, x, train, rng=None):
        """(logits, out, new model_state)."""
        variables = {"params": params, **model_state}
        if train and model_state:
            (logits, out), new_state = self.model.apply(
                variables, x, train=True, rngs={"dropout": rng}, mutable=list(model_state)
            )
            return logits, out, new_state
        rngs = {"dropout": rng} if rng is not None else None
        logits, out = self.model.apply(variables, x, train=train, rngs=rngs)
        return logits, out, model_state

    def _epoch_keys(self, fold, epoch):
        epoch_key = jax.random.fold_in(jax.random.fold_in(fold.key, 1), epoch)
        return jax.random.split(epoch_key)  # (order key, steps key)

    def epoch_batches(self, fold, data, epoch):
        """(S, B) sample indices of one fold's epoch."""
        s = self.schedule
        order_key, _ = self._epoch_keys(fold, epoch)
        length = s.steps_per_epoch * s.batch_size
        idx = epoch_order(order_key, fold.train_mask, data.labels, s.num_classes, length, s.balance)
        return idx.reshape(s.steps_per_epoch, s.batch_size).astype(jnp.int32)

    def train_step(self, state, fold, batch_idx, data, epoch, step):
        """One SGD step on samples `batch_idx`; returns (state, (loss, leaked)).

        A fold whose loss or new weights are not finite keeps its previous state
        from then on (`diverged_epoch` records the epoch), so one diverging fold
        never stops the others: the mask is per fold, inside the program.
        """
        images, labels = data.images[batch_idx], data.labels[batch_idx]
        excluded = fold.heldout_subjects | fold.val_subjects  # never trained on
        leaked = jnp.sum(excluded[data.subjects[batch_idx]])
        step_key = jax.random.fold_in(self._epoch_keys(fold, epoch)[1], step)
        aug_key, dropout_key = jax.random.split(step_key)
        x = augment_batch(aug_key, images, self.aug, train=True)

        def loss_fn(params):
            logits, out, new_state = self.apply(params, state.model_state, x, True, dropout_key)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
            if self.aux_loss is not None:
                loss = loss + self.aux_loss(out, labels)
            return loss.mean(), new_state

        (loss, model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        if self.schedule.monitoring.plateau_factor > 0:  # the plateaus' learning-rate factor
            scale = state.monitor.lr_scale
            updates = jax.tree_util.tree_map(lambda u: u * scale.astype(u.dtype), updates)
        params = optax.apply_updates(state.params, updates)
        new = state._replace(params=params, model_state=model_state, opt_state=opt_state)
        return _keep_finite(state, new, loss, epoch), (loss, leaked)

    def validate(self, state, fold, data):
        """(mean loss, accuracy, leaked count) of the fold's current weights on its validation
        split, evaluated like the held-out samples; leaked counts validation samples of a
        subject the fold tests on (none may be, unless the split is the test set: holdout)."""
        logits = self._logits(state.params, state.model_state, fold.val_idx, data)
        labels = data.labels[fold.val_idx]
        valid = fold.val_valid
        count = jnp.maximum(valid.sum(), 1)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        mean = jnp.where(valid, loss, 0).sum() / count
        accuracy = jnp.where(valid, logits.argmax(-1) == labels, False).sum() / count
        tested = fold.heldout_subjects[data.subjects[fold.val_idx]] & valid & ~fold.val_is_test
        return mean, accuracy, tested.sum()

    def end_epoch(self, state, fold, data, epoch, train_loss):
        """The epoch-end monitor (monitor.py): validation, plateau, early stopping, best weights.
        Returns (state, (validation loss, validation accuracy, leaked)); NaN without a split."""
        settings = self.schedule.monitoring
        nan = jnp.asarray(jnp.nan, default_float())
        val_loss, val_acc, leaked = nan, nan, jnp.int32(0)
        if settings.validation:
            val_loss, val_acc, leaked = self.validate(state, fold, data)
        value = val_loss if settings.validation else train_loss
        training = (state.diverged_epoch < 0) & (state.monitor.stopped_epoch < 0)
        monitor, improved = monitor_update(settings, state.monitor, value, epoch, training)
        best = state.best
        if settings.validation:
            current = (state.params, state.model_state)
            best = jax.tree_util.tree_map(lambda n, o: jnp.where(improved, n, o), current, best)
        return state._replace(monitor=monitor, best=best), (val_loss, val_acc, leaked)

    def evaluate(self, state, fold, data):
        """Held-out logits (T, K) of the selected weights, centre crops, BatchNorm running
        statistics."""
        return self._logits(*self.selected(state), fold.test_idx, data)

    def _logits(self, params, model_state, indices, data):
        """Logits (W, K) of samples `indices` (W,), centre crops, in chunks of eval_batch_size."""
        width = indices.shape[0]
        chunk = min(self.schedule.eval_batch_size, width)
        padded = math.ceil(width / chunk) * chunk
        idx = jnp.pad(indices, (0, padded - width)).reshape(-1, chunk)

        def logits_of(batch_idx):
            x = augment_batch(jax.random.key(0), data.images[batch_idx], self.aug, train=False)
            return self.apply(params, model_state, x, False)[0]

        return lax.map(logits_of, idx).reshape(padded, -1)[:width]

    def run_epoch(self, state, fold, data, epoch):
        """One epoch, its steps in lax.scan, then the epoch-end monitor:
        (state, (mean loss, leaked count, validation loss, validation accuracy))."""
        batches = self.epoch_batches(fold, data, epoch)

        def body(state, xs):
            step, batch_idx = xs
            return self.train_step(state, fold, batch_idx, data, epoch, step)

        steps = jnp.arange(self.schedule.steps_per_epoch)
        state, (losses, leaked) = lax.scan(body, state, (steps, batches))
        state, (val_loss, val_acc, val_leaked) = self.end_epoch(
            state, fold, data, epoch, losses.mean()
        )
        return state, (losses.mean(), leaked.sum() + val_leaked, val_loss, val_acc)

    def run(self, state, fold, data, first_epoch):
        """`epochs_per_call` epochs in lax.scan, then the held-out evaluation, in one program:
        (state, losses (E,), leaked, logits (T, K), validation losses (E,), accuracies (E,))."""

        def body(state, epoch):
            return self.run_epoch(state, fold, data, epoch)

        epochs = first_epoch + jnp.arange(self.schedule.epochs_per_call)
        state, (losses, leaked, val_loss, val_acc) = lax.scan(body, state, epochs)
        logits = self.evaluate(state, fold, data)
        return state, losses, leaked.sum(), logits, val_loss, val_acc

    def heldout_out(self, state, fold, pos, data):
        """The model's `out` dict for held-out test positions `pos` (J,), centre crops, eval."""
        images = data.images[fold.test_idx[pos]]
        x = augment_batch(jax.random.key(0), images, self.aug, train=False)
        return self.apply(*self.selected(state), x, False)[1]


def make_fold_fns(model, tx, schedule: Schedule, aug: Augment, image_shape, aux_loss=None):
    """The pure one-fold functions of a sweep (see FoldFns).

    The programs never read `schedule.epochs` (the host counts the calls): it
    is set to `epochs_per_call`, so sweeps that differ only in their length
    share the same FoldFns and compiled programs.
    """
    schedule = dataclasses.replace(schedule, epochs=schedule.epochs_per_call)
    return FoldFns(model, tx, schedule, aug, tuple(int(n) for n in image_shape), aux_loss)


def _keep_finite(old: TrainState, new: TrainState, loss, epoch) -> TrainState:
    """`new` while the fold trains (healthy, not stopped early) and `loss` and `new`'s floating
    leaves are finite; else `old`, with the epoch of the first non-finite step recorded."""
    healthy = old.diverged_epoch < 0
    leaves = [
        x for x in jax.tree_util.tree_leaves(new[:3]) if jnp.issubdtype(x.dtype, jnp.floating)
    ]
    finite = jnp.isfinite(loss) & jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves]))
    keep = healthy & finite & (old.monitor.stopped_epoch < 0)
    state = jax.tree_util.tree_map(lambda n, o: jnp.where(keep, n, o), new[:3], old[:3])
    diverged = jnp.where(healthy & ~finite, jnp.asarray(epoch, jnp.int32), old.diverged_epoch)
    return old._replace(params=state[0], model_state=state[1], opt_state=state[2],
                        diverged_epoch=diverged)  # fmt: skip


def _widen(x):
    """Floating leaves as float64 (x64 runs); others unchanged."""
    if jnp.issubdtype(x.dtype, jnp.floating):
        return x.astype(jnp.float64)
    return x


def out_leaves(out, keys: str, rows: int, dtype) -> dict:
    """`out` flattened to {'a/b': leaf}: leaves named by regex `keys` ('' = all) with a leading
    example axis of `rows`; floating leaves cast to `dtype`."""
    leaves = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(out):
        name = "/".join(path_names(path))
        if keys and not re.search(keys, name):
            continue
        if leaf.ndim < 1 or leaf.shape[0] != rows:
            continue
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            leaf = leaf.astype(dtype)
        leaves[name] = leaf
    return leaves


def resolve_strategy(strategy: str, step_loop: str) -> tuple[str, str]:
    """Pick how folds and steps run: (fold strategy, step loop).

    Fold strategies: 'vmap' (every fold in one batched program, the fold axis
    leading every array), 'map' (`lax.map` over folds in groups of
    `fold_group`, vmapped inside a group: scratch memory does not grow with F),
    'loop' (one compiled one-fold program run for each fold in turn).
    Step loops: 'scan' (an epoch's steps in `lax.scan` and the held-out
    evaluation in the same program) or 'python' (one compiled step, called per
    step; same keys, batches and results).
    'auto' is vmap + scan on GPU/TPU and loop + python on CPU (vmap + python with
    several processes, `mer_jax.distributed`): there vmapped
    convolutions become slow grouped convolutions and a convolution inside
    XLA control flow runs about 3x slower than the same step called from
    Python (jax#12868; measured in docs/benchmarks.md).
    """
    if strategy not in FOLD_STRATEGIES:
        raise ValueError(f"config key 'train.fold_strategy': {strategy!r} not in {FOLD_STRATEGIES}")
    if step_loop not in STEP_LOOPS:
        raise ValueError(f"config key 'train.step_loop': {step_loop!r} not in {STEP_LOOPS}")
    cpu = jax.default_backend() == "cpu"
    if strategy == "auto":  # several processes: the fold axis must spread over them
        strategy = "loop" if cpu and jax.process_count() == 1 else "vmap"
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
