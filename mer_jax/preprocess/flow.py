"""Dense optical flow between frames and the optical strain derived from it.

Seed 002 (Feature Refinement) reads TV-L1 flow from onset to apex;
seed 004 (STANet) reads flow between adjacent frames (FlowNet 2.0 in the paper,
whose weights are not available here: a classical flow stands in).

Two TV-L1 implementations:

- `tvl1_opencv`: OpenCV's `cv2.optflow.DualTVL1OpticalFlow` (contrib wheel);
  Farneback and DIS flows come from OpenCV too (this module).
- `tvl1`: the same algorithm in JAX (`mer_jax.preprocess.tvl1_jax`, re-exported
  here), jit-able on (N, H, W) batches, so a whole clip (or dataset shard) of
  pairs runs as one program on an accelerator.

Flow convention (OpenCV's): `flow[y, x] = (dx, dy)` with
`prev(x, y) ~ next(x + dx, y + dy)`.
"""

from collections.abc import Callable

import cv2
import jax.numpy as jnp
import numpy as np

from mer_jax.errors import UserError
from mer_jax.preprocess.tvl1_jax import tvl1

# ---------------------------------------------------------------------------
# Grey-scale inputs
# ---------------------------------------------------------------------------


def to_grey(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """(H, W), (H, W, 1) or RGB (H, W, 3) -> (H, W); uint8 stays uint8, anything else float32.

    RGB -> grey uses ITU-R 601 luma (cv2.COLOR_RGB2GRAY), as `preprocess.to_channels`.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    elif image.ndim == 3 and image.shape[-1] == 3:
        if image.dtype not in (np.uint8, np.float32):
            image = image.astype(np.float32)
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    elif image.ndim != 2:
        raise ValueError(
            f"{name}: expected (H, W), (H, W, 1) or (H, W, 3), got shape {image.shape}"
        )
    return image if image.dtype == np.uint8 else image.astype(np.float32)


def _grey_u8(image: np.ndarray, name: str) -> np.ndarray:
    """Grey uint8; float input is read as [0, 1] (the convention of OpenCV's TV-L1)."""
    grey = to_grey(image, name=name)
    if grey.dtype == np.uint8:
        return grey
    return np.clip(np.rint(grey * 255.0), 0, 255).astype(np.uint8)


def _pair(prev, next_, *, u8: bool) -> tuple[np.ndarray, np.ndarray]:
    convert = _grey_u8 if u8 else (lambda im, name: to_grey(im, name=name))
    a, b = convert(prev, "prev"), convert(next_, "next")
    if a.shape != b.shape:
        raise ValueError(f"prev and next differ in size: {a.shape} vs {b.shape}")
    if a.dtype != b.dtype:
        raise ValueError(
            f"prev ({a.dtype}) and next ({b.dtype}): both uint8 or both float in [0, 1]"
        )
    if min(a.shape) < 16:
        raise ValueError(f"images of {a.shape} are too small for a flow pyramid (need >= 16 px)")
    return a, b


# ---------------------------------------------------------------------------
# OpenCV flows
# ---------------------------------------------------------------------------

# Our keyword -> OpenCV DualTVL1OpticalFlow setter. The defaults are OpenCV's.
TVL1_DEFAULTS = {
    "tau": 0.25,  # setTau: time step of the dual (Chambolle) update
    "lambda_": 0.15,  # setLambda: weight of the data term (intensities in [0, 255])
    "theta": 0.3,  # setTheta: coupling of u and v (tightness)
    "scales": 5,  # setScalesNumber: pyramid levels
    "warps": 5,  # setWarpingsNumber: re-linearisations per level
    "epsilon": 0.01,  # setEpsilon: stop when mean |u_k - u_{k-1}|^2 <= epsilon^2
    "iterations": 30,  # setInnerIterations
    "outer_iterations": 10,  # setOuterIterations (a median filter before each)
    "scale_step": 0.8,  # setScaleStep: zoom factor between levels
    "median": 5,  # setMedianFiltering: median kernel on the flow (<= 1: off)
}
_TVL1_SETTERS = {
    "tau": "setTau",
    "lambda_": "setLambda",
    "theta": "setTheta",
    "scales": "setScalesNumber",
    "warps": "setWarpingsNumber",
    "epsilon": "setEpsilon",
    "iterations": "setInnerIterations",
    "outer_iterations": "setOuterIterations",
    "scale_step": "setScaleStep",
    "median": "setMedianFiltering",
}


def _optflow():
    if not hasattr(cv2, "optflow"):
        raise ImportError(
            "cv2.optflow is missing (OpenCV's TV-L1 lives in the contrib modules): "
            "install opencv-contrib-python-headless instead of opencv-python(-headless)"
        )
    return cv2.optflow


def _check_keys(params: dict, known, fn: str):
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise TypeError(f"{fn}: unknown parameter(s) {unknown}; known: {sorted(known)}")


def tvl1_opencv(prev: np.ndarray, next: np.ndarray, **params) -> np.ndarray:  # noqa: A002
    """OpenCV's dual TV-L1 flow from `prev` to `next` -> (H, W, 2) float32 (dx, dy).

    Images: (H, W), (H, W, 1) or RGB (H, W, 3); uint8 in [0, 255] or float in
    [0, 1] (OpenCV multiplies float input by 255). `params` take the names of
    `TVL1_DEFAULTS` (the same keywords as `tvl1`); unset ones keep OpenCV's defaults.
    """
    _check_keys(params, _TVL1_SETTERS, "tvl1_opencv")
    a, b = _pair(prev, next, u8=False)
    algo = _optflow().DualTVL1OpticalFlow_create()
    for key, value in params.items():
        getattr(algo, _TVL1_SETTERS[key])(value)
    return algo.calc(a, b, None).astype(np.float32)


FARNEBACK_DEFAULTS = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}


def farneback_opencv(prev: np.ndarray, next: np.ndarray, **params) -> np.ndarray:  # noqa: A002
    """Farneback (2003) polynomial-expansion flow, cv2.calcOpticalFlowFarneback -> (H, W, 2)."""
    _check_keys(params, FARNEBACK_DEFAULTS, "farneback_opencv")
    a, b = _pair(prev, next, u8=True)
    kw = {**FARNEBACK_DEFAULTS, **params}
    return cv2.calcOpticalFlowFarneback(a, b, None, **kw).astype(np.float32)


_DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def dis_opencv(prev: np.ndarray, next: np.ndarray, *, preset: str = "medium") -> np.ndarray:  # noqa: A002
    """Dense Inverse Search (Kroeger et al. 2016), cv2.DISOpticalFlow -> (H, W, 2); the fastest."""
    if preset not in _DIS_PRESETS:
        raise ValueError(f"dis_opencv: preset {preset!r} not in {sorted(_DIS_PRESETS)}")
    a, b = _pair(prev, next, u8=True)
    algo = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
    return algo.calc(a, b, None).astype(np.float32)


# ---------------------------------------------------------------------------
# Optical strain
# ---------------------------------------------------------------------------


def _central_diff(f: np.ndarray, axis: int) -> np.ndarray:
    """Central differences inside, one-sided (first order) at the two borders."""
    f = np.moveaxis(f, axis, -1)
    d = np.empty_like(f)
    d[..., 1:-1] = 0.5 * (f[..., 2:] - f[..., :-2])
    d[..., 0] = f[..., 1] - f[..., 0]
    d[..., -1] = f[..., -1] - f[..., -2]
    return np.moveaxis(d, -1, axis)


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Magnitude of the infinitesimal strain tensor of a flow field (..., H, W, 2) -> (..., H, W).

    With u = flow[..., 0] (dx) and v = flow[..., 1] (dy), the strain tensor is
    eps = 1/2 (grad w + grad w^T):  e_xx = du/dx, e_yy = dv/dy,
    e_xy = e_yx = 1/2 (du/dy + dv/dx), and its magnitude (Frobenius norm)
    |eps| = sqrt(e_xx^2 + e_yy^2 + 2 e_xy^2), the "optical strain" of the MER
    literature (Shreve et al. 2011; Liong et al., Off-ApexNet / STSTNet).
    Derivatives are central differences (one-sided on the border pixels).
    """
    flow = np.asarray(flow, np.float32)
    if flow.ndim < 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow: expected (..., H, W, 2), got shape {flow.shape}")
    if min(flow.shape[-3:-1]) < 2:
        raise ValueError(f"flow: needs at least 2x2 pixels, got {flow.shape[-3:-1]}")
    u, v = flow[..., 0], flow[..., 1]
    e_xx = _central_diff(u, -1)
    e_yy = _central_diff(v, -2)
    e_xy = 0.5 * (_central_diff(u, -2) + _central_diff(v, -1))
    return np.sqrt(e_xx**2 + e_yy**2 + 2.0 * e_xy**2)


# ---------------------------------------------------------------------------
# Flows of a clip
# ---------------------------------------------------------------------------


def _tvl1_jax_pairs(prevs: np.ndarray, nexts: np.ndarray, **params) -> np.ndarray:
    return np.asarray(tvl1(jnp.asarray(prevs), jnp.asarray(nexts), **params))


METHODS: dict[str, Callable[..., np.ndarray]] = {
    "tvl1": tvl1_opencv,
    "farneback": farneback_opencv,
    "dis": dis_opencv,
    "tvl1_jax": lambda a, b, **kw: _tvl1_jax_pairs(a[None], b[None], **kw)[0],
}


def _check_method(method: str):
    if method not in METHODS:
        raise ValueError(f"flow method {method!r} unknown; known: {sorted(METHODS)}")


def _frame(frames, index: int, name: str, clip: str) -> np.ndarray:
    if not -len(frames) <= index < len(frames):
        raise UserError(f"clip {clip}: {name}={index} outside its {len(frames)} frames")
    return frames[index]


def flow_between(
    frames: np.ndarray, i: int, j: int, *, method: str = "tvl1", clip: str = "?", **params
) -> np.ndarray:
    """Flow from frames[i] to frames[j] of a (T, H, W[, C]) clip -> (H, W, 2) float32.

    The onset -> apex flow of seeds 002 / 003 is `flow_between(frames, onset, apex)`.
    """
    _check_method(method)
    a = to_grey(_frame(frames, i, "i", clip), name=f"clip {clip} frame {i}")
    b = to_grey(_frame(frames, j, "j", clip), name=f"clip {clip} frame {j}")
    return METHODS[method](a, b, **params)


def flow_sequences(
    clips_frames: np.ndarray, *, method: str = "tvl1", clips=None, **params
) -> np.ndarray:
    """Flows between adjacent frames (seed 004) of N clips of equal length:
    (N, T, H, W[, C]) -> (N, T - 1, H, W, 2) float32. `clips`: N names for errors.

    With method='tvl1_jax' all N (T - 1) pairs run as one batched program.
    """
    _check_method(method)
    n, t = len(clips_frames), (len(clips_frames[0]) if len(clips_frames) else 0)
    clips = list(clips) if clips is not None else ["?"] * n
    if t < 2:
        raise ValueError(f"clip {clips[0]}: flow_sequence needs >= 2 frames, got {t}")
    grey = np.stack(
        [
            np.stack([to_grey(f, name=f"clip {clip} frame {i}") for i, f in enumerate(frames)])
            for clip, frames in zip(clips, clips_frames)
        ]
    )  # (N, T, H, W)
    if method == "tvl1_jax":
        pairs = _tvl1_jax_pairs(
            grey[:, :-1].reshape(-1, *grey.shape[2:]),
            grey[:, 1:].reshape(-1, *grey.shape[2:]),
            **params,
        )
        return pairs.reshape(n, t - 1, *pairs.shape[1:])
    return np.stack(
        [np.stack([METHODS[method](g[i], g[i + 1], **params) for i in range(t - 1)]) for g in grey]
    )


def flow_sequence(
    frames: np.ndarray, *, method: str = "tvl1", clip: str = "?", **params
) -> np.ndarray:
    """Flows between adjacent frames (seed 004): (T, H, W[, C]) -> (T - 1, H, W, 2) float32.

    With method='tvl1_jax' the T - 1 pairs run as one batched program.
    """
    if len(frames) < 2:
        raise ValueError(f"clip {clip}: flow_sequence needs >= 2 frames, got {len(frames)}")
    return flow_sequences(np.asarray(frames)[None], method=method, clips=[clip], **params)[0]
