"""mer_jax: micro-expression recognition, every LOSO fold trained as one JAX program."""

import jax

__version__ = "0.1.0"

# The classic (non-partitionable) threefry: with jax 0.10 on CPU the
# partitionable one made every random op compile for seconds (3-7 s per
# jax.random.uniform) and, in our equivalence test, made one fold's random
# stream differ between vmap and a one-fold program. Fold keys never need
# partitioning: each fold draws its own numbers.
jax.config.update("jax_threefry_partitionable", False)
