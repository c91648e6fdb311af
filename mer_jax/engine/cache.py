"""The driver's program cache: compiled programs reused within a process.

A compiled program is keyed on everything its trace depends on (the driver
builds the keys: the one-fold functions, the program's name and lifting, the
mesh, the map settings, the abstract arguments and the JAX options below);
values never live in a program, so a key that matches can only mean the same
program. An LRU of `CACHE_SIZE` entries; a key that cannot be hashed (e.g. a
model with a list field) is compiled every time.
"""

import collections
from collections.abc import Callable

import jax

CACHE_SIZE = 32


class ProgramCache:
    """An LRU of compiled programs (and abstract states) by hashable key."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self.hits = self.misses = 0
        self._entries = collections.OrderedDict()

    def get(self, key, build: Callable):
        """The entry for `key`, built by `build()` (and kept) if absent."""
        try:
            hash(key)
        except TypeError:
            self.misses += 1
            return build()
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            return self._entries[key]
        self.misses += 1
        value = self._entries[key] = build()
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


PROGRAMS = ProgramCache()


def signature(tree):
    """The tree structure and every leaf's shape and dtype (what a program is compiled for)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((tuple(x.shape), str(x.dtype)) for x in leaves)


def trace_context() -> tuple:
    """JAX options that change what a function traces to, and where it runs."""
    c = jax.config
    return (
        c.jax_enable_x64,
        c.jax_default_matmul_precision,
        c.jax_numpy_dtype_promotion,
        c.jax_numpy_rank_promotion,
        c.jax_default_prng_impl,
        c.jax_threefry_partitionable,
        str(c.jax_default_device),
        jax.default_backend(),
    )
