"""The XLA flags every test process compiles with (conftest sets them; subprocesses get them too).

The suite is bound by compile time, not run time (tiny shapes). Without LLVM's
optimisation passes and with XLA:CPU's older loop emitters instead of its MLIR
fusion emitters, a float64 training program compiles in about a fifth of the time
(2 CPU cores, jax 0.10). The machine code differs from the default's, and so can
float64 rounding (by ~1e-8 relative after an epoch of training), so a test that
compares a subprocess's results with its own passes these same flags to the
subprocess (`subprocess_env`). Flags the caller already set in XLA_FLAGS come later
and win.

XLA aborts on a flag it does not know, and flags come and go between versions:
they are tried once in a subprocess (`_supported`; all at once, else one by one), and
what XLA accepts is kept in
MER_JAX_TEST_XLA_FLAGS for every process this one starts.
"""

import os
import subprocess
import sys

CANDIDATES = (
    "--xla_backend_optimization_level=0",
    "--xla_llvm_disable_expensive_passes=true",
    "--xla_cpu_use_fusion_emitters=false",
)
_KEPT = "MER_JAX_TEST_XLA_FLAGS"


def _supported(flag: str) -> bool:
    probe = (
        "import jax, jax.numpy as jnp; jax.jit(lambda x: x + 1)(jnp.zeros(2)).block_until_ready()"
    )
    env = dict(os.environ, XLA_FLAGS=flag, JAX_PLATFORMS="cpu")
    return (
        subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True).returncode == 0
    )


def fast_compile() -> str:
    """The candidate flags this XLA accepts (probed once per test session)."""
    if _KEPT not in os.environ:
        together = " ".join(CANDIDATES)
        kept = [together] if _supported(together) else [f for f in CANDIDATES if _supported(f)]
        os.environ[_KEPT] = " ".join(kept)
    return os.environ[_KEPT]


def with_fast_compile(flags: str = "") -> str:
    return f"{fast_compile()} {flags}".strip()


def subprocess_env(devices: int = 0) -> dict:
    """os.environ for a CPU subprocess with this session's flags (and `devices` host devices)."""
    flags = with_fast_compile(f"--xla_force_host_platform_device_count={devices}" * bool(devices))
    return dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
