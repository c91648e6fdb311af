"""Dual TV-L1 optical flow in JAX: OpenCV's algorithm, jit-able on (N, H, W) batches.

Zach, Pock, Bischof, "A Duality Based Approach for Realtime TV-L1 Optical
Flow", DAGM 2007; as detailed by Sanchez, Meinhardt-Llopis, Facciolo, "TV-L1
Optical Flow Estimation", IPOL 2013, and as OpenCV's contrib
`DualTVL1OpticalFlow` implements it (`mer_jax.preprocess.flow.tvl1_opencv`), so
a whole clip (or dataset shard) of pairs runs as one program on an accelerator.
`mer_jax.preprocess.flow` re-exports `tvl1` beside the OpenCV flows.

Flow convention (OpenCV's): `flow[y, x] = (dx, dy)` with
`prev(x, y) ~ next(x + dx, y + dy)`.

Precision: float32, or float64 while `jax_enable_x64` is on (e.g. inside
`with jax.enable_x64(True):`), for comparisons that must not depend on how a
CPU rounds float32 over thousands of iterations.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

# Every pyramid level runs through the same traced body (one lax.scan over the
# levels), so the program compiles once, not once per level: each level is
# zero-padded to the finest size and its true size (h, w) travels as data. The
# boundary rules of the level (replicated edges, Neumann gradients) are applied
# at (h, w), and the flow is kept at 0 outside it.


def _linear_resize_matrix(n_in: int, n_out: int, scale: float) -> np.ndarray:
    """(n_out, n_in) weights of cv2.resize INTER_LINEAR along one axis.

    Source coordinate (i + 0.5) * scale - 0.5, clamped to the edge pixels, as
    OpenCV's float path; `scale` is 1/fx when the size came from fx.
    """
    src = (np.arange(n_out) + 0.5) * scale - 0.5
    left = np.floor(src).astype(int)
    frac = src - left
    frac = np.where(left < 0, 0.0, frac)
    left = np.clip(left, 0, n_in - 1)
    frac = np.where(left >= n_in - 1, 0.0, frac)
    right = np.minimum(left + 1, n_in - 1)
    m = np.zeros((n_out, n_in), np.float64)
    np.add.at(m, (np.arange(n_out), left), 1.0 - frac)
    np.add.at(m, (np.arange(n_out), right), frac)
    return m.astype(np.float32)


def _pyramid_shapes(h: int, w: int, scales: int, scale_step: float) -> list[tuple[int, int]]:
    """Level sizes as OpenCV: round(size * scale_step) per level, stop below 16 px."""
    shapes = [(h, w)]
    for _ in range(1, scales):
        ph, pw = shapes[-1]
        nh, nw = int(round(ph * scale_step)), int(round(pw * scale_step))
        if nh < 16 or nw < 16:
            break
        shapes.append((nh, nw))
    return shapes


def _pyramid_plan(h: int, w: int, scales: int, scale_step: float) -> dict[str, np.ndarray]:
    """Static per-level data, padded to (h, w): sizes, the down-sampling matrices that make
    level s from level s - 1 (cv2.resize with fx = scale_step), and the up-sampling ones that
    bring the flow of level s + 1 to level s (cv2.resize to a given size) with its factor."""
    shapes = _pyramid_shapes(h, w, scales, scale_step)
    n = len(shapes)
    plan = {
        "size": np.array(shapes, np.int32),
        "down_y": np.zeros((n, h, h), np.float32),
        "down_x": np.zeros((n, w, w), np.float32),
        "up_y": np.zeros((n, h, h), np.float32),
        "up_x": np.zeros((n, w, w), np.float32),
        "up_factor": np.zeros(n, np.float32),
    }
    for s in range(n):
        (sh, sw) = shapes[s]
        if s > 0:
            (ph, pw) = shapes[s - 1]
            plan["down_y"][s, :sh, :ph] = _linear_resize_matrix(ph, sh, 1 / scale_step)
            plan["down_x"][s, :sw, :pw] = _linear_resize_matrix(pw, sw, 1 / scale_step)
        if s < n - 1:
            (ch, cw) = shapes[s + 1]
            plan["up_y"][s, :sh, :ch] = _linear_resize_matrix(ch, sh, ch / sh)
            plan["up_x"][s, :sw, :cw] = _linear_resize_matrix(cw, sw, cw / sw)
            plan["up_factor"][s] = 1 / scale_step
    return plan


def _resize(ry: jax.Array, image: jax.Array, rx: jax.Array) -> jax.Array:
    """Separable resize of (..., H, W) as two small matmuls with (P, H) and (Q, W) weights."""
    hi = jax.lax.Precision.HIGHEST
    return jnp.einsum("ph,...hw,qw->...pq", ry, image, rx, precision=hi)


def _extend(f: jax.Array, r: int, h: jax.Array, w: jax.Array) -> jax.Array:
    """(H, W) -> (H + 2r, W + 2r), indices clamped to the level's valid (h, w) region."""
    rows = jnp.clip(jnp.arange(-r, f.shape[0] + r), 0, h - 1)
    cols = jnp.clip(jnp.arange(-r, f.shape[1] + r), 0, w - 1)
    return f[rows][:, cols]


def _centered_gradient(f: jax.Array, h, w) -> tuple[jax.Array, jax.Array]:
    """1/2 (f[x+1] - f[x-1]) with replicated borders (OpenCV centeredGradient)."""
    e = _extend(f, 1, h, w)
    return 0.5 * (e[1:-1, 2:] - e[1:-1, :-2]), 0.5 * (e[2:, 1:-1] - e[:-2, 1:-1])


def _forward_gradient(f: jax.Array, h, w) -> tuple[jax.Array, jax.Array]:
    """Forward differences, 0 on the level's last column / row (IPOL Sec. 2.3: Neumann)."""
    r = jnp.arange(f.shape[0])[:, None]
    c = jnp.arange(f.shape[1])[None, :]
    dx = jnp.pad(f[:, 1:] - f[:, :-1], ((0, 0), (0, 1)))
    dy = jnp.pad(f[1:, :] - f[:-1, :], ((0, 1), (0, 0)))
    return jnp.where((c < w - 1) & (r < h), dx, 0.0), jnp.where((r < h - 1) & (c < w), dy, 0.0)


def _divergence(p1: jax.Array, p2: jax.Array) -> jax.Array:
    """Backward differences, the negative adjoint of `_forward_gradient` (p = 0 on the edges)."""
    return (p1 - jnp.pad(p1[:, :-1], ((0, 0), (1, 0)))) + (
        p2 - jnp.pad(p2[:-1, :], ((1, 0), (0, 0)))
    )


def _cubic_weights(t: jax.Array) -> list[jax.Array]:
    """Keys cubic convolution weights with a = -0.75 (cv2 INTER_CUBIC) for taps -1, 0, 1, 2."""
    a = -0.75
    w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    s = 1 - t
    w2 = ((a + 2) * s - (a + 3)) * s * s + 1
    return [w0, w1, w2, 1 - w0 - w1 - w2]


def _warp_cubic(images: jax.Array, u1: jax.Array, u2: jax.Array, h, w, border: str) -> jax.Array:
    """images (C, H, W) sampled at (x + u1, y + u2): cv2.remap INTER_CUBIC on the (h, w) region.

    border 'constant': taps outside the region read 0 (cv2.remap's default, which
    OpenCV's TV-L1 uses); 'replicate': they read the nearest edge pixel. The 16
    taps are one gather (16 separate ones compile several times slower).
    """
    c, big_h, big_w = images.shape
    gy, gx = jnp.meshgrid(
        jnp.arange(big_h, dtype=u1.dtype), jnp.arange(big_w, dtype=u1.dtype), indexing="ij"
    )
    x, y = gx + u1, gy + u2
    x0, y0 = jnp.floor(x), jnp.floor(y)
    wx, wy = jnp.stack(_cubic_weights(x - x0)), jnp.stack(_cubic_weights(y - y0))
    taps = jnp.arange(-1, 3)[:, None, None]
    xx, yy = x0.astype(jnp.int32) + taps, y0.astype(jnp.int32) + taps  # (4, H, W)
    if border != "replicate":
        wx = jnp.where((xx >= 0) & (xx < w), wx, 0.0)
        wy = jnp.where((yy >= 0) & (yy < h), wy, 0.0)
    idx = jnp.clip(yy, 0, h - 1)[:, None] * big_w + jnp.clip(xx, 0, w - 1)[None, :]
    weight = wy[:, None] * wx[None, :]  # (4, 4, H, W)
    values = images.reshape(c, big_h * big_w)[:, idx.reshape(-1)].reshape(c, 4, 4, big_h, big_w)
    return jnp.sum(values * weight, axis=(1, 2))


def _median_network(n: int) -> list[tuple[int, int]]:
    """Compare-exchanges (lo, hi) that leave the median of n wires on wire n // 2.

    Batcher's odd-even merge sort on the next power of two, with the padding
    wires (+inf, they never move) and every exchange the median does not depend
    on removed: min/max arithmetic that compiles much faster than a sort.
    """
    m = 1 << (n - 1).bit_length()
    pairs = []
    p = 1
    while p < m:
        k = p
        while k >= 1:
            for j in range(k % p, m - k, 2 * k):
                for i in range(min(k, m - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    needed, kept = {n // 2}, []
    for lo, hi in reversed(pairs):
        if lo in needed or hi in needed:
            kept.append((lo, hi))
            needed |= {lo, hi}
    return kept[::-1]


def _median(f: jax.Array, k: int, h, w) -> jax.Array:
    """k x k median filter with replicated borders (cv2.medianBlur) on the (h, w) region."""
    r = k // 2
    e = _extend(f, r, h, w)
    big_h, big_w = f.shape
    wires = [e[i : i + big_h, j : j + big_w] for i in range(k) for j in range(k)]
    for lo, hi in _median_network(k * k):
        wires[lo], wires[hi] = jnp.minimum(wires[lo], wires[hi]), jnp.maximum(wires[lo], wires[hi])
    return wires[(k * k) // 2]


def _threshold(u1, u2, ix, iy, grad, rho_c, l_t):
    """TH operator, Zach et al. Prop. 3 / IPOL Eq. (21): v = u + d, pointwise."""
    rho = rho_c + ix * u1 + iy * u2
    tiny = np.finfo(np.float32).eps
    fi = -rho / jnp.where(grad > tiny, grad, 1.0)
    fi = jnp.where(grad > tiny, fi, 0.0)
    coef = jnp.where(rho < -l_t * grad, l_t, jnp.where(rho > l_t * grad, -l_t, fi))
    return u1 + coef * ix, u2 + coef * iy


def _one_level(i0, i1, u, h, w, p):
    """Warps x (outer x inner) iterations on one level (IPOL Alg. 1; OpenCV procOneScale).

    The loops stop when sum |u_k - u_{k-1}|^2 <= epsilon^2 h w, as OpenCV's; the
    counts are static upper bounds (while_loops: jit- and vmap-safe; under vmap
    a converged pair stays frozen while the others go on).
    """
    l_t = p["lambda_"] * p["theta"]
    taut = p["tau"] / p["theta"]
    theta = p["theta"]
    stop = p["epsilon"] ** 2 * (h * w).astype(i0.dtype)
    r = jnp.arange(i0.shape[0])[:, None]
    c = jnp.arange(i0.shape[1])[None, :]
    inside = (r < h) & (c < w)
    ix, iy = _centered_gradient(i1, h, w)
    stack = jnp.stack([i1, ix, iy])

    def warp_body(_, carry):
        u1, u2, duals = carry
        # Linearise the data term around the current flow, IPOL Eq. (17).
        i1w, wix, wiy = jnp.where(inside, _warp_cubic(stack, u1, u2, h, w, p["border"]), 0.0)
        grad = wix**2 + wiy**2
        rho_c = i1w - wix * u1 - wiy * u2 - i0

        def inner_body(state):
            u1, u2, (p11, p12, p21, p22), _, k = state
            v1, v2 = _threshold(u1, u2, wix, wiy, grad, rho_c, l_t)
            n1 = v1 + theta * _divergence(p11, p12)
            n2 = v2 + theta * _divergence(p21, p22)
            err = jnp.sum((n1 - u1) ** 2 + (n2 - u2) ** 2)
            # Chambolle's fixed point for the dual variables, IPOL Eq. (27).
            u1x, u1y = _forward_gradient(n1, h, w)
            u2x, u2y = _forward_gradient(n2, h, w)
            ng1 = 1.0 + taut * jnp.sqrt(u1x**2 + u1y**2)
            ng2 = 1.0 + taut * jnp.sqrt(u2x**2 + u2y**2)
            duals = (
                (p11 + taut * u1x) / ng1,
                (p12 + taut * u1y) / ng1,
                (p21 + taut * u2x) / ng2,
                (p22 + taut * u2y) / ng2,
            )
            return n1, n2, duals, err, k + 1

        def outer_body(state):
            u1, u2, duals, err, k = state
            if p["median"] > 1:
                u1 = jnp.where(inside, _median(u1, p["median"], h, w), 0.0)
                u2 = jnp.where(inside, _median(u2, p["median"], h, w), 0.0)
            inner_cond = lambda s: (s[3] > stop) & (s[4] < p["iterations"])
            u1, u2, duals, err, _ = jax.lax.while_loop(
                inner_cond, inner_body, (u1, u2, duals, err, 0)
            )
            return u1, u2, duals, err, k + 1

        outer_cond = lambda s: (s[3] > stop) & (s[4] < p["outer_iterations"])
        big = jnp.asarray(np.finfo(np.float32).max, i0.dtype)
        u1, u2, duals, _, _ = jax.lax.while_loop(outer_cond, outer_body, (u1, u2, duals, big, 0))
        return u1, u2, duals

    # The dual variables start at 0 on each level and carry over its warps (as OpenCV).
    zeros = jnp.zeros_like(i0)
    u1, u2, _ = jax.lax.fori_loop(0, p["warps"], warp_body, (u[0], u[1], (zeros,) * 4))
    return jnp.stack([u1, u2])


def _tvl1_pair(i0: jax.Array, i1: jax.Array, plan: dict, p: dict) -> jax.Array:
    """Coarse-to-fine TV-L1 for one (H, W) pair -> (2, H, W), OpenCV's calc()."""
    n = len(plan["size"])
    pyr0, pyr1 = [i0], [i1]
    down_y, down_x = (jnp.asarray(plan[k], i0.dtype) for k in ("down_y", "down_x"))
    for s in range(1, n):
        pyr0.append(_resize(down_y[s], pyr0[-1], down_x[s]))
        pyr1.append(_resize(down_y[s], pyr1[-1], down_x[s]))

    def level(u, xs):
        i0, i1, size, up_y, up_x, up_factor = xs
        # Flow of the coarser level, zoomed and scaled (0 on the coarsest).
        u = _resize(up_y, u, up_x) * up_factor
        return _one_level(i0, i1, u, size[0], size[1], p), None

    xs = (jnp.stack(pyr0), jnp.stack(pyr1), jnp.asarray(plan["size"])) + tuple(
        jnp.asarray(plan[k], i0.dtype) for k in ("up_y", "up_x", "up_factor")
    )
    u, _ = jax.lax.scan(level, jnp.zeros((2, *i0.shape), i0.dtype), xs, reverse=True)
    return u


_TVL1_STATIC = (
    "tau",
    "lambda_",
    "theta",
    "scales",
    "warps",
    "epsilon",
    "iterations",
    "outer_iterations",
    "scale_step",
    "median",
    "border",
)


@partial(jax.jit, static_argnames=_TVL1_STATIC)
def tvl1(
    prev: jax.Array,
    next: jax.Array,  # noqa: A002
    *,
    tau: float = 0.25,
    lambda_: float = 0.15,
    theta: float = 0.3,
    scales: int = 5,
    warps: int = 5,
    epsilon: float = 0.01,
    iterations: int = 30,
    outer_iterations: int = 10,
    scale_step: float = 0.8,
    median: int = 5,
    border: str = "constant",
) -> jax.Array:
    """Dual TV-L1 optical flow in JAX: (N, H, W) x 2 -> (N, H, W, 2) float32 (dx, dy);
    float64 while `jax_enable_x64` is on.

    Minimises  sum |grad u1| + |grad u2| + lambda |I1(x + u) - I0(x)|  (Zach et
    al. 2007, Eq. 3) by alternating the TH step on v and Chambolle's dual
    projection on u (IPOL 2013, Alg. 1), coarse to fine with `warps`
    re-linearisations per level. Same steps and defaults as OpenCV's
    DualTVL1OpticalFlow (contrib `optflow/src/tvl1flow.cpp`):

      tau               setTau             0.25  dual time step (< 1/4 for convergence)
      lambda_           setLambda          0.15  data weight, intensities in [0, 255]
      theta             setTheta           0.3   u-v coupling
      scales            setScalesNumber    5     pyramid levels (fewer if a level < 16 px)
      warps             setWarpingsNumber  5     re-linearisations per level
      epsilon           setEpsilon         0.01  stop: sum|du|^2 <= epsilon^2 h w per level
      iterations        setInnerIterations 30    inner iterations (upper bound)
      outer_iterations  setOuterIterations 10    outer iterations, each after a median
      scale_step        setScaleStep       0.8   zoom between levels (bilinear, no blur)
      median            setMedianFiltering 5     median kernel on the flow; <= 1 disables
      border            (cv2.remap)        'constant' (OpenCV: 0 outside) or 'replicate'

    `gamma` (illumination term, OpenCV default 0) is not implemented. Inputs:
    uint8 in [0, 255], or float in [0, 1] (multiplied by 255, like OpenCV).
    A single (H, W) pair gives (H, W, 2). Iteration counts are static; with
    epsilon=0 every level runs exactly warps x outer x inner iterations, else
    each pair stops as OpenCV's would; pairs in a batch are independent. All
    levels share one compiled body (padded to H x W), so compilation costs one
    level, and the coarse levels cost as much compute as the finest.
    Differences to OpenCV: remap coordinates are not quantised to 1/32 px and
    float32 sums run in another order, so results agree to a fraction of a pixel.
    """
    prev, next_ = jnp.asarray(prev), jnp.asarray(next)
    if prev.shape != next_.shape or prev.ndim not in (2, 3):
        raise ValueError(
            f"tvl1: prev and next must both be (N, H, W) or (H, W); got {prev.shape} and {next_.shape}"
        )
    if min(prev.shape[-2:]) < 16:
        raise ValueError(f"tvl1: images of {prev.shape[-2:]} are too small (need >= 16 px)")
    if border not in ("constant", "replicate"):
        raise ValueError(f"tvl1: border {border!r} not in ('constant', 'replicate')")
    if not 0 < scale_step < 1:
        raise ValueError(f"tvl1: scale_step must be in (0, 1), got {scale_step}")
    if median > 1 and median % 2 == 0:
        raise ValueError(f"tvl1: median must be odd (or <= 1: off), got {median}")

    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)  # float32 unless x64 is on

    def as_float(x):
        if jnp.issubdtype(x.dtype, jnp.integer):
            return x.astype(dtype)
        return x.astype(dtype) * 255.0

    params = dict(
        tau=tau,
        lambda_=lambda_,
        theta=theta,
        warps=warps,
        epsilon=epsilon,
        iterations=iterations,
        outer_iterations=outer_iterations,
        median=median,
        border=border,
    )
    single = prev.ndim == 2
    a, b = as_float(prev), as_float(next_)
    if single:
        a, b = a[None], b[None]
    plan = _pyramid_plan(*a.shape[1:], scales, scale_step)
    flow = jax.vmap(lambda x, y: _tvl1_pair(x, y, plan, params))(a, b)
    flow = jnp.moveaxis(flow, 1, -1)
    return flow[0] if single else flow
