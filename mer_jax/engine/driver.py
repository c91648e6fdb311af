"""`train_folds`: every fold of a sweep trained by compiled programs, in four phases.

  plan     validate the options, resolve the strategy, the mesh, the one-fold functions;
  compile  compile the programs (from the program cache when the same ones were compiled
           before in this process) and choose the folds per call (the memory rule);
  run      initialise every fold (`start_run`), then each call (`run_call`) trains
           `epochs_per_call` epochs of every unit of folds and returns host arrays, checked
           for leakage and non-finite loss (`run_epochs`: every call of a sweep);
  collect  the final state and held-out maps from the devices, with the host outputs.

`mer-jax bench` times these same phases, so what it measures is what a sweep runs.

The program cache (`cache.PROGRAMS`, an LRU) keys a compiled program on
everything its trace depends on: the one-fold functions (`FoldFns`:
model, optimizer, schedule, augmentation, input shape, extra loss terms), the
program's name and lifting (strategy, fold group), the abstract shapes and
dtypes of every argument, the mesh, the map settings and the JAX options that
change a trace (x64, matmul precision, promotion rules, PRNG). Values never live
in a program: data, fold arrays, states and initial weights are arguments.
"""

import dataclasses
import time
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from mer_jax.engine import cache
from mer_jax.engine import checkpoint as checkpoint_lib
from mer_jax.engine import layout as layout_lib
from mer_jax.engine.fold_program import (
    FoldFns,
    lift_over_folds,
    make_fold_fns,
    out_leaves,
    resolve_strategy,
)
from mer_jax.engine.folds import Data, Folds, TrainState
from mer_jax.engine.layout import FOLD_AXIS
from mer_jax.engine.outputs import CallOutput, FoldsOutput, Trained
from mer_jax.protocols import LeakageError


@dataclasses.dataclass(frozen=True)
class Layout:
    """How folds map onto programs, calls and devices (`train.*` config keys).

    strategy, step_loop: see `resolve_strategy`; fold_group: folds per `lax.map`
    group ('map'); folds_per_call: > 0 forces the folds per compiled call
    (rounded up to the device count), 0 lets the memory rule decide; devices:
    the mesh's devices (None: every visible device; one device: no mesh).
    """

    strategy: str = "auto"
    step_loop: str = "auto"
    fold_group: int = 1
    folds_per_call: int = 0
    devices: tuple | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class Maps:
    """Held-out auxiliary outputs to return after the final epoch (attention maps for reports).

    pos (F, J): each fold's test positions to evaluate (chosen by the caller, e.g.
    `heldout_maps.select_heldout`); valid (F, J): which of them are real (returned as
    is); keys: regex on the '/'-joined `out` leaf names ('' = all; leaves without
    a leading example axis are dropped); dtype: floating leaves are cast to it.
    """

    pos: np.ndarray
    valid: np.ndarray
    keys: str = ""
    dtype: Any = jnp.float16


# ---------------------------------------------------------------------------
# Phase 1: plan.
# ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Plan:
    """Resolved, static decisions of a training run (everything but the folds per call)."""

    fns: FoldFns
    strategy: str
    step_loop: str
    fold_group: int
    folds_per_call: int
    mesh: Any  # jax.sharding.Mesh | None
    num_folds: int
    maps: tuple | None  # (rows J, keys regex, dtype) of the held-out maps, or None

    @property
    def num_devices(self) -> int:
        return 1 if self.mesh is None else self.mesh.size


def make_plan(
    model, tx, schedule, aug, data: Data, folds: Folds, layout: Layout, aux_loss=None, maps=None
) -> Plan:
    """Check the options and resolve them (see `train_folds`)."""
    strategy, step_loop = resolve_strategy(layout.strategy, layout.step_loop)
    if schedule.epochs % schedule.epochs_per_call:
        raise ValueError(
            f"config key 'train.epochs_per_call': {schedule.epochs_per_call} does not divide "
            f"train.epochs {schedule.epochs}"
        )
    per_call = layout.folds_per_call
    if not isinstance(per_call, int | np.integer) or per_call < 0:
        raise ValueError(f"config key 'train.folds_per_call': {per_call!r} is not an integer >= 0")
    num_folds = folds.train_mask.shape[0]
    maps_spec = None
    if maps is not None:
        if np.shape(maps.pos)[0] != num_folds or np.shape(maps.valid) != np.shape(maps.pos):
            raise ValueError(
                f"maps.pos {np.shape(maps.pos)} and maps.valid {np.shape(maps.valid)} "
                f"must both be (folds {num_folds}, J)"
            )
        maps_spec = (int(np.shape(maps.pos)[1]), maps.keys, maps.dtype)
    return Plan(
        fns=make_fold_fns(model, tx, schedule, aug, data.images.shape[1:], aux_loss),
        strategy=strategy,
        step_loop=step_loop,
        fold_group=layout.fold_group,
        folds_per_call=int(per_call),
        mesh=None if strategy == "loop" else layout_lib.fold_mesh(layout.devices),
        num_folds=num_folds,
        maps=maps_spec,
    )


# ---------------------------------------------------------------------------
# Phase 2: compile.
# ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Compiled:
    """The compiled programs of a plan for calls of `size` folds, `calls` calls."""

    plan: Plan
    programs: dict  # name -> compiled: 'run' (scan) or 'batches', 'train_step', 'evaluate'
    init: Any  # compiled: (fold keys, [initial variables]) -> TrainState
    size: int
    calls: int
    layout: str
    compile_s: float


class _Shapes(NamedTuple):
    """Abstract arguments of one fold (no fold axis) and of the shared ones."""

    state: Any
    fold: Any
    data: Any
    initial: Any  # None: no initial variables


def _compile(plan: Plan, name: str, fn, batched: int, donate: bool, args, lifted=None):
    """`layout.compile_lifted`, through the program cache (see the module docstring).

    `lifted` (strategy, fold group) defaults to the plan's; `fn` must depend on
    nothing but `name`, `plan.fns`, `lifted` and `plan.maps`.
    """
    if lifted is None:  # 'loop' lifts like 'vmap' (a vmap over its one fold)
        lifted = ("map", plan.fold_group) if plan.strategy == "map" else ("vmap", 1)
    key = (name, plan.fns, lifted, plan.maps if name == "maps" else None, plan.mesh)
    key += (batched, donate, cache.signature(args), cache.trace_context())
    return cache.PROGRAMS.get(
        key, lambda: layout_lib.compile_lifted(fn, plan.mesh, batched, donate, args)
    )


def _step_at(fns: FoldFns):
    """train_step on step `step` of an epoch's (S, B) indices (no per-step slicing on the host)."""

    def step_at(state, fold, epoch_idx, data, epoch, step):
        return fns.train_step(state, fold, epoch_idx[step], data, epoch, step)

    return step_at


def _end_epoch_at(fns: FoldFns):
    """end_epoch with the per-fold training loss third (lifted with the fold's arguments)."""

    def end_epoch_at(state, fold, train_loss, data, epoch):
        return fns.end_epoch(state, fold, data, epoch, train_loss)

    return end_epoch_at


def _maps_fn(fns: FoldFns, maps: tuple):
    rows, keys, dtype = maps

    def maps_of(state, fold, pos, data):
        return out_leaves(fns.heldout_out(state, fold, pos, data), keys, rows, dtype)

    return maps_of


def _programs(plan: Plan, shapes: _Shapes, size: int) -> dict:
    """The training (and maps) programs for calls of `size` folds."""
    fns, data = plan.fns, shapes.data
    state, unit = layout_lib.abstract(shapes.state, size), layout_lib.abstract(shapes.fold, size)
    scalar = jax.ShapeDtypeStruct((), jnp.int32)
    lift = partial(lift_over_folds, strategy=plan.strategy, fold_group=plan.fold_group)
    if plan.step_loop == "scan":
        run = _compile(plan, "run", lift(fns.run, batched=2), 2, True, (state, unit, data, scalar))
        programs = {"run": run}
    else:
        s = fns.schedule
        idx = jax.ShapeDtypeStruct((size, s.steps_per_epoch, s.batch_size), jnp.int32)
        step_args = (state, unit, idx, data, scalar, scalar)
        programs = {
            "batches": _compile(
                plan, "batches", lift(fns.epoch_batches, batched=1), 1, False, (unit, data, scalar)
            ),
            "train_step": _compile(
                plan, "train_step", lift(_step_at(fns), batched=3), 3, True, step_args
            ),
            "end_epoch": _compile(
                plan,
                "end_epoch",
                lift(_end_epoch_at(fns), batched=3),
                3,
                True,
                (
                    state,
                    unit,
                    layout_lib.abstract(shapes.state.monitor.best_value, size),
                    data,
                    scalar,
                ),
            ),  # fmt: skip
            "evaluate": _compile(
                plan, "evaluate", lift(fns.evaluate, batched=2), 2, False, (state, unit, data)
            ),
        }
    if plan.maps is not None:
        pos = jax.ShapeDtypeStruct((size, plan.maps[0]), jnp.int32)
        maps_fn = lift(_maps_fn(fns, plan.maps), batched=3)
        programs["maps"] = _compile(plan, "maps", maps_fn, 3, False, (state, unit, pos, data))
    return programs


def _init_program(plan: Plan, shapes: _Shapes, size: int):
    keys = layout_lib.abstract(shapes.fold.key, size)
    args = (keys,) if shapes.initial is None else (keys, shapes.initial)
    init = lift_over_folds(plan.fns.init, "vmap", batched=1)
    return _compile(plan, "init", init, 1, False, args, lifted=("vmap", 1))


def _shapes(plan: Plan, data: Data, folds: Folds, initial_variables) -> _Shapes:
    fold = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), folds)
    initial = None if initial_variables is None else layout_lib.abstract(initial_variables)
    args = (fold.key,) if initial is None else (fold.key, initial)
    key = ("state_shapes", plan.fns, cache.signature(args), cache.trace_context())
    state = cache.PROGRAMS.get(key, lambda: jax.eval_shape(plan.fns.init, *args))
    return _Shapes(state, fold, layout_lib.abstract(data), initial)


def compile_plan(plan: Plan, data: Data, folds: Folds, initial_variables=None) -> Compiled:
    """Compile `plan`'s programs and choose the folds per call.

    1 ('loop'), else all folds (padded to the device count), the forced
    `folds_per_call`, or the memory rule's choice (`layout.fit_memory`).
    """
    start = time.perf_counter()
    shapes = _shapes(plan, data, folds, initial_variables)
    num_folds, num_devices = plan.num_folds, plan.num_devices
    if plan.strategy == "loop":
        size, calls = 1, num_folds
    else:
        size, calls = layout_lib.fold_groups(
            num_folds, plan.folds_per_call or num_folds, num_devices
        )
    programs = _programs(plan, shapes, size)
    if plan.strategy == "loop":
        layout = f"{num_folds} folds, one at a time"
    else:
        size, calls, programs, layout = layout_lib.fit_memory(
            layout_lib.MemoryProblem(
                num_folds=num_folds,
                mesh=plan.mesh,
                folds_per_call=plan.folds_per_call,
                resident=layout_lib.nbytes(shapes.state) + layout_lib.nbytes(shapes.fold),
                devices=_budget_devices(plan, data),
            ),
            size,
            calls,
            programs,
            lambda size: _programs(plan, shapes, size),
        )
    init = _init_program(plan, shapes, size)
    return Compiled(plan, programs, init, size, calls, layout, time.perf_counter() - start)


def _budget_devices(plan: Plan, data: Data) -> list:
    if plan.mesh is not None:
        return list(plan.mesh.devices.flat)
    return list(getattr(data.images, "devices", lambda: jax.devices()[:1])())


# ---------------------------------------------------------------------------
# Phase 3: run.
# ---------------------------------------------------------------------------
@dataclasses.dataclass
class Run:
    """Training in progress: the units of folds (one per call) and their states, on device."""

    compiled: Compiled
    data: Data
    units: list  # Folds of `size` folds each
    states: list  # TrainState per unit
    maps_pos: list | None  # (size, J) test positions per unit


def start_run(
    compiled: Compiled, data: Data, folds: Folds, initial_variables=None, maps_pos=None
) -> Run:
    """Lay the data and folds out as the programs expect and initialise every fold."""
    plan, size, calls = compiled.plan, compiled.size, compiled.calls
    units = list(layout_lib.split_units(folds, size=size, calls=calls))
    initial = () if initial_variables is None else (initial_variables,)
    put_folds = jnp.asarray
    if plan.mesh is not None:
        folds_sharding = NamedSharding(plan.mesh, P(FOLD_AXIS))
        replicated = NamedSharding(plan.mesh, P())
        data, initial = jax.tree_util.tree_map(
            lambda x: layout_lib.put(x, replicated), (data, initial)
        )
        units = [
            jax.tree_util.tree_map(lambda x: layout_lib.put(x, folds_sharding), u) for u in units
        ]
        put_folds = partial(layout_lib.put, sharding=folds_sharding)
    states = [compiled.init(u.key, *initial) for u in units]
    units_pos = None
    if maps_pos is not None:  # padding folds' rows: position 0, never valid
        padded = np.zeros((size * calls, np.shape(maps_pos)[1]), np.int32)
        padded[: plan.num_folds] = np.asarray(maps_pos)
        units_pos = [put_folds(padded[u * size : (u + 1) * size]) for u in range(calls)]
    return Run(compiled, data, units, states, units_pos)


def _number(plan: Plan):
    """Epoch and step numbers: host scalars with a mesh (jit replicates them everywhere)."""
    return jnp.int32 if plan.mesh is None else np.int32


def _python_epochs(run: Run, u: int, first_epoch: int):
    """Unit `u`'s `epochs_per_call` epochs, one compiled step per step: like `FoldFns.run`."""
    programs, schedule = run.compiled.programs, run.compiled.plan.fns.schedule
    number = _number(run.compiled.plan)
    losses, val_losses, val_accs, leaked = [], [], [], 0
    for e in range(first_epoch, first_epoch + schedule.epochs_per_call):
        epoch = number(e)
        idx = programs["batches"](run.units[u], run.data, epoch)
        total = 0.0
        for s in range(schedule.steps_per_epoch):
            run.states[u], (loss, leak) = programs["train_step"](
                run.states[u], run.units[u], idx, run.data, epoch, number(s)
            )
            total, leaked = total + loss, leaked + leak
        mean = (total / schedule.steps_per_epoch).astype(run.states[u].monitor.best_value.dtype)
        run.states[u], (val_loss, val_acc, leak) = programs["end_epoch"](
            run.states[u], run.units[u], mean, run.data, epoch
        )
        losses.append(mean)
        val_losses.append(val_loss)
        val_accs.append(val_acc)
        leaked = leaked + leak
    logits = programs["evaluate"](run.states[u], run.units[u], run.data)
    stack = lambda xs: jnp.stack(xs, axis=1)
    return stack(losses), leaked, logits, stack(val_losses), stack(val_accs)


def run_call(run: Run, first_epoch: int) -> CallOutput:
    """Epochs `first_epoch` .. + `epochs_per_call` of every fold, then its held-out logits.

    Raises LeakageError if a training batch held a sample of a subject its fold
    holds out or validates on, or a validation split a sample of a subject it
    tests on. A diverged fold's losses are not finite; its state stopped
    changing (`TrainState.diverged_epoch`) and the other folds train on.
    """
    plan, programs = run.compiled.plan, run.compiled.programs
    outs = []
    for u in range(len(run.units)):
        if plan.step_loop == "scan":
            epoch = _number(plan)(first_epoch)
            run.states[u], *rest = programs["run"](run.states[u], run.units[u], run.data, epoch)
        else:
            rest = _python_epochs(run, u, first_epoch)
        outs.append(rest)
    loss, leaked, logits, val_loss, val_acc = (
        np.concatenate([layout_lib.to_host(x) for x in part])[: plan.num_folds]
        for part in zip(*outs)
    )
    if np.sum(leaked):
        raise LeakageError(
            f"{int(np.sum(leaked))} training or validation samples belonged to subjects their "
            f"fold holds out (folds {np.flatnonzero(leaked).tolist()})"
        )
    return CallOutput(loss, logits, val_loss, val_acc)


def run_epochs(
    run: Run, epochs: int, progress: Callable | None = None, checkpointer=None
) -> Trained:
    """Every call of `epochs_per_call` epochs up to `epochs`; `progress(epochs_done, last loss
    per fold, last validation loss per fold (NaN without a split))` after each.

    With a `checkpoint.Checkpointer`: resumes from its latest checkpoint, saves
    when due, and on Ctrl-C saves at the end of the current call and raises
    `checkpoint.Interrupted`.
    """
    per_call = run.compiled.plan.fns.schedule.epochs_per_call
    done = checkpoint_lib.Progress(0, [], [], None, [], [])
    if checkpointer is not None and (restored := checkpointer.restore(run.states, per_call)):
        run.states, done = restored
    start = time.perf_counter()
    with checkpoint_lib.deferred_interrupts(checkpointer is not None) as interrupted:
        for first in range(done.epochs_done, epochs, per_call):
            out = run_call(run, first)
            done = checkpoint_lib.Progress(
                first + per_call,
                [*done.losses, out.loss.T],
                [*done.history, out.logits.argmax(-1)],
                out.logits,
                [*done.val_losses, out.val_loss.T],
                [*done.val_accuracies, out.val_accuracy.T],
            )
            if progress is not None:
                progress(done.epochs_done, out.loss[:, -1], out.val_loss[:, -1])
            stop = interrupted() and done.epochs_done < epochs
            if checkpointer is not None and (stop or checkpointer.due(done.epochs_done, epochs)):
                checkpointer.save(run.states, done)
            if stop:
                raise checkpoint_lib.Interrupted(done.epochs_done, checkpointer.directory)
    train_s = time.perf_counter() - start
    return Trained(
        np.concatenate(done.losses), np.stack(done.history), done.logits, train_s,
        np.concatenate(done.val_losses), np.concatenate(done.val_accuracies),
    )  # fmt: skip


# ---------------------------------------------------------------------------
# Phase 4: collect.
# ---------------------------------------------------------------------------
def collect_maps(run: Run) -> dict[str, np.ndarray] | None:
    """The final weights' held-out maps, to the host like the logits (None without maps)."""
    if run.maps_pos is None:
        return None
    program = run.compiled.programs["maps"]
    parts = [program(s, u, p, run.data) for s, u, p in zip(run.states, run.units, run.maps_pos)]
    num_folds = run.compiled.plan.num_folds
    return {
        name: np.concatenate([layout_lib.to_host(part[name]) for part in parts])[:num_folds]
        for name in parts[0]
    }


def collect_state(run: Run) -> tuple[TrainState, Any]:
    """(every fold's final state with a leading axis F, the sharding it was trained under).

    Without padding a single unit keeps its layout. F rows do not split evenly
    over D devices: each device then holds all F folds' final state, as one device would.
    """
    compiled = run.compiled
    trained = None
    if compiled.plan.mesh is not None:
        trained = jax.tree_util.tree_leaves(run.states[0])[0].sharding
    state = run.states[0]
    if len(run.states) > 1 or compiled.size * compiled.calls != compiled.plan.num_folds:
        state = layout_lib.join_units(run.states, rows=compiled.plan.num_folds)
    return state, trained


def collect(run: Run, trained: Trained, folds: Folds, maps: Maps | None = None) -> FoldsOutput:
    """The run's outputs: final state and maps from the devices, with the host arrays."""
    compiled, plan = run.compiled, run.compiled.plan
    schedule = plan.fns.schedule
    state, trained_sharding = collect_state(run)
    params, model_state = plan.fns.selected(state)  # the best epoch's, with validation
    monitor = jax.tree_util.tree_map(
        lambda x: layout_lib.to_host(x)[: plan.num_folds], state.monitor
    )
    state = state._replace(params=params, model_state=model_state, best=None)
    validation = schedule.monitoring.validation
    per_fold_epoch = schedule.steps_per_epoch * schedule.batch_size
    return FoldsOutput(
        logits=trained.logits,
        test_idx=np.asarray(folds.test_idx),
        test_valid=np.asarray(folds.test_valid),
        train_loss=trained.train_loss,
        heldout_pred_history=trained.heldout_pred_history,
        state=state,
        compile_s=compiled.compile_s,
        train_s=trained.train_s,
        images_seen=plan.num_folds * trained.train_loss.shape[0] * per_fold_epoch,
        strategy=plan.strategy,
        step_loop=plan.step_loop,
        fold_groups=(compiled.size,) * compiled.calls,
        fold_sharding=trained_sharding,
        layout=compiled.layout,
        maps=collect_maps(run),
        maps_pos=None if maps is None else np.asarray(maps.pos),
        maps_valid=None if maps is None else np.asarray(maps.valid, bool),
        diverged_epoch=layout_lib.to_host(state.diverged_epoch)[: plan.num_folds],
        val_loss=trained.val_loss if validation else None,
        val_accuracy=trained.val_accuracy if validation else None,
        best_epoch=monitor.best_epoch if validation else np.full(plan.num_folds, -1),
        stopped_epoch=monitor.stopped_epoch,
        lr_scale=monitor.lr_scale,
    )


def train_folds(
    model,
    tx,
    schedule,
    aug,
    data: Data,
    folds: Folds,
    layout: Layout | None = None,
    *,
    aux_loss: Callable | None = None,
    initial_variables=None,
    maps: Maps | None = None,
    progress: Callable[[int, np.ndarray], None] | None = None,
    on_compiled: Callable[[float], None] | None = None,
    log: Callable[[str], None] | None = None,
    checkpointer=None,
) -> FoldsOutput:
    """Train every fold of `folds` for `schedule.epochs` epochs and predict its held-out samples.

    `layout` (`Layout`, default all 'auto'): fold strategy, step loop, groups,
    folds per call, devices. `aux_loss(out, labels)`: the model's extra loss terms per example;
    `initial_variables`: pretrained leaves merged into every fold's
    initialisation; `maps`: held-out `out` leaves to return (`Maps`, one more
    small program). `on_compiled(seconds)` is called once the programs are
    compiled, `progress(epochs_done, mean_loss_per_fold)` after each call of
    `epochs_per_call` epochs and `log(message)` with the layout chosen. Raises
    LeakageError if a training batch ever held a sample of a subject its fold
    holds out.

    Devices ('vmap' and 'map'; 'loop' runs one fold at a time on the default
    device): the fold axis is split over a 1-D mesh (`layout.fold_mesh`). With
    several hosts, call `jax.distributed.initialize()` first on every process
    and then this same function with the same arguments: each process feeds
    its shards from its own full copy of `data` and `folds`, and the host
    outputs are gathered from all. Every group of folds gets the same results
    as one call would (keys depend on the fold id only). `checkpointer`
    (`checkpoint.Checkpointer`): resume from, and save, checkpoints (`run_epochs`).
    """
    plan = make_plan(model, tx, schedule, aug, data, folds, layout or Layout(), aux_loss, maps)
    compiled = compile_plan(plan, data, folds, initial_variables)
    (log or (lambda message: None))(f"fold layout: {compiled.layout}")
    if on_compiled is not None:
        on_compiled(compiled.compile_s)
    run = start_run(compiled, data, folds, initial_variables, None if maps is None else maps.pos)
    trained = run_epochs(run, schedule.epochs, progress, checkpointer)
    return collect(run, trained, folds, maps)
