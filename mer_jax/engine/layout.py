"""Devices and memory: the fold axis over a mesh, padding folds, and folds in groups that fit.

With more than one device (or `devices` given) the fold axis is split over a
1-D mesh 'folds' by `shard_map`, the dataset replicated on every device; F is
padded to a multiple of the device count with copies of fold 0 whose outputs
are dropped. Folds that do not fit a device at once run in equal groups sized
by the memory rule (`max_folds_per_call`, `fold_groups`).
"""

import dataclasses
import functools
import math
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from mer_jax.engine.folds import Folds

FOLD_AXIS = "folds"
MEMORY_HEADROOM = 0.9  # share of a device's free memory the memory rule plans to use
# Per-fold bytes while training, as a multiple of the fold's resident state, where the
# compiler reports no memory analysis (a guess: state, gradients, updates, activations).
FALLBACK_TRANSIENT_FACTOR = 8
COLLECTIVES = r"all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter"


def device_info() -> dict:
    """The accelerator this process trains on (results.json and `mer-jax bench` `device`)."""
    devices = jax.devices()
    return {
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "num_devices": len(devices),
    }


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


@functools.partial(jax.jit, static_argnames=("size", "calls"))
def split_units(folds: Folds, size: int, calls: int) -> list[Folds]:
    """`folds` padded to `size * calls` and cut into `calls` units of `size` folds (one program:
    eager ops would compile one small program per leaf)."""
    padded = pad_folds(folds, size * calls)
    return [take(padded, u * size, (u + 1) * size) for u in range(calls)]


@functools.partial(jax.jit, static_argnames=("rows",))
def join_units(units, rows: int):
    """Units' trees concatenated along the fold axis, cut to the first `rows` (padding dropped)."""
    return take(jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *units), 0, rows)


def take(tree, start: int, stop: int):
    """Folds `start:stop` of a tree with a leading fold axis."""
    return jax.tree_util.tree_map(lambda x: x[start:stop], tree)


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
    with the folds vmapped, as XLA's memory analysis of vmapped steps shows). The
    largest g = G / D with
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


def transient_bytes(compiled) -> int | None:
    """Bytes a compiled program needs per device beyond its inputs (None if not reported)."""
    try:
        stats = compiled.memory_analysis()
    except (AttributeError, NotImplementedError, RuntimeError):
        return None
    if stats is None:
        return None
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes)


def nbytes(tree) -> int:
    return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree_util.tree_leaves(tree))


def collectives(compiled) -> set[str]:
    """Cross-device collectives in a compiled program (none when folds split cleanly)."""
    try:
        return set(re.findall(COLLECTIVES, compiled.as_text()))
    except (AttributeError, NotImplementedError, RuntimeError):
        return set()


def put(x, sharding):
    """`x` laid out as `sharding`; with several processes built from each one's full copy."""
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = put(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def to_host(x) -> np.ndarray:
    """A (possibly multi-process, sharded) array as one host array."""
    if getattr(x, "is_fully_addressable", True):
        return np.asarray(jax.device_get(x))
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def to_host_tree(tree):
    """Every leaf of `tree` as a host NumPy array (`to_host`: gathered from every process)."""
    return jax.tree_util.tree_map(to_host, tree)


def shard_map(fn, mesh, in_specs):
    """`fn` on each device's block of folds; every output keeps a leading fold axis.

    `check_vma` is off: the body has no collectives to check, and optax's
    `lax.cond`s (e.g. reduce_on_plateau) return a replicated constant in one
    branch and a fold-varying value in the other, which the checker rejects.
    """
    return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=P(FOLD_AXIS), check_vma=False)


def compile_lifted(fn, mesh, batched: int, donate: bool, args):
    """jit(`fn` over a leading fold axis of its first `batched` args), compiled for `args`
    (arrays or `jax.ShapeDtypeStruct`s).

    With a mesh the fold axis is split over its 'folds' axis by `shard_map`:
    each device runs the vmapped program on its own block of folds, the shared
    arguments replicated; nothing crosses devices (no collective in the program).
    """
    donate_argnums = (0,) if donate else ()
    if mesh is None:
        return jax.jit(fn, donate_argnums=donate_argnums).lower(*args).compile()
    folds_spec, shared_spec = P(FOLD_AXIS), P()
    specs = (folds_spec,) * batched + (shared_spec,) * (len(args) - batched)
    sharded = shard_map(fn, mesh, specs)
    shardings = tuple(NamedSharding(mesh, spec) for spec in specs)
    program = jax.jit(
        sharded,
        in_shardings=shardings,
        out_shardings=NamedSharding(mesh, folds_spec),
        donate_argnums=donate_argnums,
    )
    return program.lower(*args).compile()


def abstract(tree, rows: int | None = None):
    """Shapes and dtypes of `tree`, with a leading fold axis of `rows` added if given."""
    lead = () if rows is None else (rows,)
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct((*lead, *x.shape), x.dtype), tree)


@dataclasses.dataclass(frozen=True)
class MemoryProblem:
    """What the memory rule weighs: F folds over a mesh (None: one device), the forced folds
    per call (0: none), one fold's resident bytes, and the devices whose memory counts."""

    num_folds: int
    mesh: Any
    folds_per_call: int
    resident: int
    devices: list


def fit_memory(
    problem: MemoryProblem, size: int, calls: int, programs: dict, compile_for: Callable
):
    """The memory rule: shrink the folds per call until a call's scratch fits the devices.

    `programs` are compiled for calls of `size` folds; their per-device scratch
    (`memory_analysis()`) is set against the devices' free memory
    (`device.memory_stats()`); if it does not fit, folds run in the fewest
    equal groups that do, `compile_for(size)` compiling the programs for a new
    size. A forced `folds_per_call`, or a device that reports no memory (CPU),
    keeps `size`. Returns (size, calls, programs, the layout in words).
    """
    num_folds = problem.num_folds
    num_devices = 1 if problem.mesh is None else problem.mesh.size
    note = f"{num_folds} folds"
    if problem.mesh is not None:
        note += f" over {num_devices} devices (shard_map, mesh axis '{FOLD_AXIS}')"
    free = None if problem.folds_per_call else device_free_bytes(problem.devices)
    if problem.folds_per_call:
        note += f"; {problem.folds_per_call} folds per call forced (train.folds_per_call)"
    elif free is None:
        note += "; the device reports no free memory: all folds in one call"
    else:
        resident = problem.resident
        while True:  # `size` only shrinks, so this ends
            transients = [transient_bytes(p) for p in programs.values()]
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
            programs = compile_for(size)
        note += (
            f"; memory rule: {free / 2**20:.0f} MiB free per device, per fold "
            f"{resident / 2**20:.2f} MiB resident + {transient / 2**20:.2f} MiB while "
            f"training ({source}) -> at most {most} folds per call"
        )
        if math.ceil(num_folds / num_devices) * resident + transient > MEMORY_HEADROOM * free:
            note += " (even one fold per device is estimated not to fit; trying anyway)"
    return size, calls, programs, _describe(problem, size, calls, programs, note)


def _describe(problem: MemoryProblem, size: int, calls: int, programs: dict, note: str) -> str:
    padding = size * calls - problem.num_folds
    text = f"{note}; {calls} call(s) of {size} folds" + (f" ({padding} padding)" if padding else "")
    if problem.mesh is not None:
        found = set().union(*(collectives(p) for p in programs.values()))
        text += f"; collectives: {sorted(found)}" if found else "; no collectives"
    return text
