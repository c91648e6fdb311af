"""Shared fixtures: a TFDS data dir, a real face photograph, synthetic faces with known 68
landmarks and a tiny landmark model trained on them.

No persistent XLA compilation cache: the engine's in-process program cache already
compiles each program once per session, and a session-wide persistent cache measured no
faster (tests/engine 320 s with it, 310 s without; the attention-map, CLI and report tests
115 s either way, on 2 shared CPU cores).

Every test process compiles with `tests.xla_flags` (no LLVM optimisation, XLA:CPU's
older loop emitters: the suite is bound by compile time)."""

import os

from tests.xla_flags import with_fast_compile

os.environ["XLA_FLAGS"] = with_fast_compile(os.environ.get("XLA_FLAGS", ""))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mer_jax import config  # noqa: E402

# The test files that compile the most (seconds of compile per file, 2 CPU cores), heaviest
# first: xdist hands out whole files in collection order, so starting with these keeps
# the two processes busy to the end instead of one waiting on a late heavy file.
COMPILE_HEAVY = (
    "tests/engine/test_engine_models.py",
    "tests/test_distributed.py",
    "tests/test_resume.py",
    "tests/test_attention_maps.py",
    "tests/test_experiments.py",
    "tests/test_gradcam.py",
    "tests/models/test_layers.py",
    "tests/engine/test_engine.py",
    "tests/engine/test_sharding.py",
    "tests/engine/test_bench.py",
    "tests/models/test_aman.py",
    "tests/data_builders/test_representation_configs.py",
    "tests/test_predict.py",
    "tests/test_cli.py",
    "tests/test_finetune.py",
    "tests/engine/test_monitor.py",
    "tests/engine/test_augment.py",
)


def pytest_collection_modifyitems(config, items):
    """Heavy files first, in COMPILE_HEAVY's order; the rest keep theirs."""
    rank = {path: i for i, path in enumerate(COMPILE_HEAVY)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))


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


# ---------------------------------------------------------------- synthetic faces, 68 points


def face_template() -> np.ndarray:
    """68 iBUG 300-W points of a frontal cartoon face in a unit box, (68, 2) (x, y):
    jaw 0-16, brows 17-26, nose 27-35, eyes 36-41 / 42-47, mouth 48-67."""
    t = np.linspace(np.pi * 0.05, np.pi * 0.95, 17)
    jaw = np.stack([0.5 - 0.42 * np.cos(t), 0.35 + 0.55 * np.sin(t)], 1)
    arc = np.linspace(0, np.pi, 5)
    brow_left = np.stack([np.linspace(0.18, 0.42, 5), 0.30 - 0.04 * np.sin(arc)], 1)
    brow_right = (brow_left * [-1, 1] + [1, 0])[::-1]
    bridge = np.stack([np.full(4, 0.5), np.linspace(0.38, 0.58, 4)], 1)
    nostrils = np.stack([np.linspace(0.42, 0.58, 5), 0.64 + 0.02 * np.sin(arc)], 1)
    a = np.linspace(0, 2 * np.pi, 7)[:-1]
    eye = lambda cx: np.stack([cx - 0.08 * np.cos(a), 0.40 - 0.035 * np.sin(a)], 1)
    b = np.linspace(0, 2 * np.pi, 13)[:-1]
    outer = np.stack([0.5 - 0.15 * np.cos(b), 0.77 - 0.05 * np.sin(b)], 1)
    c = np.linspace(0, 2 * np.pi, 9)[:-1]
    inner = np.stack([0.5 - 0.10 * np.cos(c), 0.77 - 0.02 * np.sin(c)], 1)
    parts = [jaw, brow_left, brow_right, bridge, nostrils, eye(0.32), eye(0.68), outer, inner]
    return np.concatenate(parts)


_FACE_PARTS = [(0, 17, False), (17, 22, False), (22, 27, False), (27, 31, False)]
_FACE_PARTS += [(31, 36, False), (36, 42, True), (42, 48, True), (48, 60, True), (60, 68, True)]


def render_face(points: np.ndarray, size: int) -> np.ndarray:
    """A grey (size, size) uint8 cartoon face drawn through its 68 `points` (pixels)."""
    image = np.full((size, size), 90, np.uint8)
    fixed = lambda p: np.round(np.asarray(p) * 16).astype(np.int32)  # 4 fractional bits
    cv2.fillPoly(image, [fixed(points[:17])], 170, cv2.LINE_AA, shift=4)
    for start, stop, closed in _FACE_PARTS:
        if closed:
            cv2.fillPoly(image, [fixed(points[start:stop])], 30, cv2.LINE_AA, shift=4)
        else:
            cv2.polylines(image, [fixed(points[start:stop])], False, 30, 2, cv2.LINE_AA, shift=4)
    return image


def place_face(angle_deg: float, scale: float, centre) -> np.ndarray:
    """The template rotated by `angle_deg` about its centre, `scale` px wide, at `centre`."""
    angle = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (face_template() - 0.5) @ rotation.T * scale + np.asarray(centre, float)


def points_box(points) -> tuple[int, int, int, int]:
    """(x, y, w, h) around `points`: the face box the tiny model is trained with."""
    x0, y0 = np.floor(points.min(0)).astype(int)
    x1, y1 = np.ceil(points.max(0)).astype(int)
    return int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)


def train_landmark_model(path, num_parts: int = 68, images: int = 50, size: int = 96) -> str:
    """A tiny dlib shape predictor (~2 MB, under a second) trained on cartoon faces at
    random angles (-20..20 deg), sizes and places; written to `path`."""
    import dlib  # the `test` extra installs it: no skip

    rng = np.random.default_rng(0)
    pictures, shapes = [], []
    for _ in range(images):
        centre = size / 2 + rng.uniform(-0.08, 0.08, 2) * size
        points = place_face(rng.uniform(-20, 20), rng.uniform(0.5, 0.7) * size, centre)
        x, y, w, h = points_box(points)
        parts = [dlib.point(int(round(px)), int(round(py))) for px, py in points[:num_parts]]
        rect = dlib.rectangle(x, y, x + w - 1, y + h - 1)
        pictures.append(render_face(points, size))
        shapes.append([dlib.full_object_detection(rect, parts)])
    options = dlib.shape_predictor_training_options()
    options.tree_depth, options.cascade_depth, options.num_trees_per_cascade_level = 3, 8, 40
    options.oversampling_amount, options.nu, options.feature_pool_size = 10, 0.2, 200
    options.num_test_splits, options.num_threads = 20, 1
    dlib.train_shape_predictor(pictures, shapes, options).save(str(path))
    return str(path)


@pytest.fixture(scope="session")
def landmark_model(tmp_path_factory):
    """A 68-point dlib shape predictor the tests train themselves (see `train_landmark_model`)."""
    return train_landmark_model(tmp_path_factory.mktemp("landmarks") / "tiny_68.dat")
