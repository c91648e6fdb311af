"""Fold-parallel training engine: every fold of a sweep trained by one compiled program.

Built the PureJaxRL way: Python computes the static schedule (steps per epoch,
padded sizes); `make_fold_fns` gives pure functions that train and evaluate
ONE fold; `lift_over_folds` maps them over a leading fold axis (`jax.vmap`,
`lax.map` in groups, or a loop over a one-fold program), and `train_folds`
runs them: plan -> compile (cached per process) -> run -> collect. Per-fold
differences are arrays (masks, keys, indices), never Python branches, and
every key depends on the fold id only, so a fold trains the same alone or
among others, in any group, on any number of devices.

Leakage guard, twice: the host checks the fold table (protocols.check_no_leakage)
and the program counts, in every training batch, samples whose subject the
fold holds out; a non-zero count raises LeakageError after the call. No model
selection: held-out predictions after each call feed learning curves only; the
reported ones are those of the final epoch.

Modules: folds (data, fold arrays, schedule, epoch order), augment, optim
(optimizers), fold_program (one fold's functions, strategies), layout (mesh,
padding, the memory rule), cache (compiled programs reused in a process),
monitor (validation, plateaus, early stopping, best weights), driver (`train_folds` in
phases), checkpoint (orbax checkpoints, exact resume), bench (`mer-jax bench`, which times the driver's own phases).
"""

from mer_jax.engine.augment import Augment, augment_batch, augment_image, default_float, to_float
from mer_jax.engine.cache import PROGRAMS, ProgramCache
from mer_jax.engine.checkpoint import Checkpointer, Interrupted
from mer_jax.engine.driver import (
    Compiled,
    Layout,
    Maps,
    Plan,
    Run,
    collect,
    compile_plan,
    make_plan,
    run_call,
    run_epochs,
    start_run,
    train_folds,
)
from mer_jax.engine.fold_program import (
    DTYPES,
    FOLD_STRATEGIES,
    STEP_LOOPS,
    FoldFns,
    lift_over_folds,
    make_fold_fns,
    resolve_conv_impl,
    resolve_strategy,
)
from mer_jax.engine.folds import (
    Data,
    Folds,
    Schedule,
    TrainState,
    concatenate,
    epoch_length,
    epoch_order,
    make_folds_arrays,
    prepare,
    seed_tables,
    with_final_model,
)
from mer_jax.engine.layout import (
    FOLD_AXIS,
    device_free_bytes,
    device_info,
    fold_groups,
    fold_mesh,
    max_folds_per_call,
    pad_folds,
    to_host_tree,
)
from mer_jax.engine.monitor import Monitor, Monitoring
from mer_jax.engine.optim import OPTIMIZERS, SCHEDULES, make_optimizer, monitoring
from mer_jax.engine.outputs import CallOutput, FoldsOutput, Trained
from mer_jax.protocols import LeakageError

__all__ = [
    "CallOutput",
    "Monitor",
    "Monitoring",
    "concatenate",
    "monitoring",
    "seed_tables",
    "to_host_tree",
    "Checkpointer",
    "Interrupted",
    "DTYPES",
    "FOLD_AXIS",
    "FOLD_STRATEGIES",
    "OPTIMIZERS",
    "PROGRAMS",
    "SCHEDULES",
    "STEP_LOOPS",
    "Augment",
    "Compiled",
    "Data",
    "FoldFns",
    "Folds",
    "FoldsOutput",
    "Layout",
    "LeakageError",
    "Maps",
    "Plan",
    "ProgramCache",
    "Run",
    "Schedule",
    "TrainState",
    "Trained",
    "augment_batch",
    "augment_image",
    "collect",
    "compile_plan",
    "default_float",
    "device_free_bytes",
    "device_info",
    "epoch_length",
    "epoch_order",
    "fold_groups",
    "fold_mesh",
    "lift_over_folds",
    "make_fold_fns",
    "make_folds_arrays",
    "make_optimizer",
    "make_plan",
    "max_folds_per_call",
    "pad_folds",
    "prepare",
    "with_final_model",
    "resolve_conv_impl",
    "resolve_strategy",
    "run_call",
    "run_epochs",
    "start_run",
    "to_float",
    "train_folds",
]
