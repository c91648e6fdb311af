"""The XLA flags every test process compiles with (conftest sets them; subprocesses get them too).

The suite is bound by compile time, not run time (tiny shapes): without LLVM's
optimisation passes a float64 training program compiles in about half the time
(2 CPU cores). The machine code differs from the default level's, and so can float64
rounding (by ~1e-8 relative after an epoch of training), so a test that compares a
subprocess's results with its own passes these same flags to the subprocess
(`subprocess_env`). Flags the caller already set in XLA_FLAGS come later and win.
"""

import os

FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def with_fast_compile(flags: str = "") -> str:
    return f"{FAST_COMPILE} {flags}".strip()


def subprocess_env(devices: int = 0) -> dict:
    """os.environ for a CPU subprocess with this session's flags (and `devices` host devices)."""
    flags = with_fast_compile(f"--xla_force_host_platform_device_count={devices}" * bool(devices))
    return dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
