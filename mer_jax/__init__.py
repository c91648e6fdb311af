"""mer_jax: micro-expression recognition, every LOSO fold trained as one JAX program."""

import os
import sys

__version__ = "0.1.0"

# The classic (non-partitionable) threefry: with jax 0.10 on CPU the
# partitionable one made every random op compile for seconds (3-7 s per
# jax.random.uniform) and, in our equivalence test, made one fold's random
# stream differ between vmap and a one-fold program. Fold keys never need
# partitioning: each fold draws its own numbers. Set through the environment
# when JAX is not imported yet, so that `import mer_jax` (the CLI) stays light.
if "jax" in sys.modules:
    sys.modules["jax"].config.update("jax_threefry_partitionable", False)
else:
    os.environ["JAX_THREEFRY_PARTITIONABLE"] = "false"
