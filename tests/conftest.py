"""Shared fixtures: a session-wide persistent XLA cache (identical programs compile once), a
TFDS data dir, and a real face photograph."""

import cv2
import jax
import pytest

from mer_jax import config


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("xla_cache")
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield path


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
    """One TFDS data dir per test session (synthetic corpora build once)."""
    return str(tmp_path_factory.mktemp("tensorflow_datasets"))


@pytest.fixture(scope="session")
def grace_hopper():
    """Grace Hopper's portrait (matplotlib's sample data), RGB 600x512: a real face."""
    cbook = pytest.importorskip("matplotlib.cbook")
    try:
        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    except (OSError, ValueError):
        pytest.skip("matplotlib sample data grace_hopper.jpg not installed")
    image = cv2.imread(str(path))
    assert image is not None and image.shape == (600, 512, 3)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def input_spec(**overrides):
    """The base config's `input` section with `overrides` (a sweep's representation spec)."""
    spec = config.base().input
    for key, value in overrides.items():
        spec[key] = value
    return spec
