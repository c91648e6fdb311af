"""One sweep over many processes and hosts: `jax.distributed` from the command line.

`mer-jax sweep ... --distributed` starts JAX's distributed runtime before
anything else touches a device: with the cluster's own detection (SLURM, TPU
pod slices, Kubernetes, Open MPI, as `jax.distributed.initialize()` supports
them), or, for anything else (several processes on one machine, say),
`--coordinator HOST:PORT --num-processes N --process-id I` on every process.
On CPU the cross-process collectives use gloo, chosen here.

The engine then lays the fold axis over every process's devices (`vmap` /
`map` strategies; 'auto' picks `vmap` when there are several processes); each
process holds its own copy of the data and fold table and trains its shard of
the folds. Process 0 writes (results, reports, exported weights, the work
dir's manifest; checkpoints are written by every process into the shared work
dir, orbax's multi-host checkpointing) and shows progress; the others say who
they are once. A process that dies ends the others: JAX's coordination service
misses its heartbeats for `--heartbeat-timeout` seconds (default 100) and stops
every other process with an error naming the missing task.
"""

import argparse

from mer_jax.errors import UserError

HEARTBEAT_TIMEOUT_S = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a command that can run over several processes."""
    group = parser.add_argument_group("several processes (docs/cluster.md)")
    group.add_argument(
        "--distributed", action="store_true",
        help="start jax.distributed (the cluster's detection, or the options below)",
    )  # fmt: skip
    group.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address")
    group.add_argument("--num-processes", type=int, metavar="N")
    group.add_argument("--process-id", type=int, metavar="I")
    group.add_argument(
        "--heartbeat-timeout", type=int, default=HEARTBEAT_TIMEOUT_S, metavar="S",
        help=f"seconds before a silent process stops the others (default {HEARTBEAT_TIMEOUT_S})",
    )  # fmt: skip


def requested(args) -> bool:
    return bool(getattr(args, "distributed", False) or getattr(args, "coordinator", None))


def initialize(args) -> None:
    """`jax.distributed.initialize` as `args` ask (nothing without --distributed/--coordinator).

    Must run before any device is used (the CLI calls it first)."""
    if not requested(args):
        return
    explicit = (args.coordinator, args.num_processes, args.process_id)
    if any(v is not None for v in explicit) and not all(v is not None for v in explicit):
        raise UserError(
            "--coordinator, --num-processes and --process-id go together (or give --distributed "
            "alone on a cluster JAX detects: SLURM, TPU pod slices, Kubernetes, Open MPI)"
        )
    if args.num_processes is not None and not 0 <= args.process_id < args.num_processes:
        raise UserError(
            f"--process-id {args.process_id}: not in [0, --num-processes {args.num_processes})"
        )
    if args.heartbeat_timeout < 1:
        raise UserError(f"--heartbeat-timeout {args.heartbeat_timeout}: give seconds >= 1")
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU: across processes
    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
        heartbeat_timeout_seconds=args.heartbeat_timeout,
    )


def process_count() -> int:
    import jax

    return jax.process_count()


def is_main() -> bool:
    """Whether this process writes and reports (process 0; always, with one process)."""
    import jax

    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process got here (no-op with one process)."""
    if process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def quiet(message) -> None:
    """The log of a process other than 0: nothing (process 0 reports for all)."""
    del message
