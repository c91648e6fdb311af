"""TIM (Zhou et al. 2011) against a port of the authors' graph-embedding algorithm; linear vs np.interp."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax.preprocess import tim


def _tim_reference(x, n_out):
    """The authors' tim_getAniModel + tim_genAnimationData, frames as columns of x (D, N).

    Path graph P_N, Laplacian L; PCA coordinates Y of the centred frames; the
    generalised eigenproblem (Y Y') \\ (Y L Y'); scales m_j from the first frame;
    new points y_k(pos) = sin(pos k pi + pi (N - k) / (2N)), pos = linspace(1/N, 1, n_out).
    """
    d, n = x.shape
    mu = x.mean(axis=1, keepdims=True)
    u, s, vt = np.linalg.svd(x - mu, full_matrices=False)
    u, s, v = u[:, : n - 1], np.diag(s[: n - 1]), vt[: n - 1].T
    assert np.linalg.matrix_rank(s) == n - 1  # the authors add 0.01 to S otherwise
    y = s @ v.T
    w = np.zeros((n, n))
    for i in range(n - 1):
        w[i, i + 1] = w[i + 1, i] = 1.0
    lap = np.diag(w.sum(axis=0)) - w
    evals, t = np.linalg.eig(np.linalg.solve(y @ y.T, y @ lap @ y.T))
    order = np.argsort(evals.real)
    t = t[:, order].real
    m = np.array(
        [
            y[:, 0] @ t[:, j - 1] / np.sin(j * np.pi / n + np.pi * (n - j) / (2 * n))
            for j in range(1, n)
        ]
    )
    out = np.zeros((d, n_out))
    positions = np.linspace(1.0 / n, 1.0, n_out) if n_out > 1 else np.array([1.0 / n])
    for col, pos in enumerate(positions):
        vk = np.array([np.sin(pos * k * np.pi + np.pi * (n - k) / (2 * n)) for k in range(1, n)])
        out[:, col] = u @ np.linalg.solve(t.T, vk * m) + mu[:, 0]
    return out


@pytest.mark.parametrize("n_in,n_out", [(5, 11), (8, 3), (13, 11), (11, 11), (6, 1), (2, 7)])
def test_tim_matrix_matches_graph_embedding(n_in, n_out):
    rng = np.random.default_rng(n_in * 100 + n_out)
    x = rng.random((4 * 4 * 3, n_in))
    expected = _tim_reference(x, n_out)
    np.testing.assert_allclose(tim.tim_matrix(n_in, n_out) @ x.T, expected.T, atol=1e-8)


def test_tim_matrix_identity_endpoints_and_constants():
    for n in (1, 2, 7, 30):
        np.testing.assert_allclose(tim.tim_matrix(n, n), np.eye(n), atol=1e-12)
    m = tim.tim_matrix(9, 11)
    np.testing.assert_allclose(m[0], np.eye(9)[0], atol=1e-12)
    np.testing.assert_allclose(m[-1], np.eye(9)[-1], atol=1e-12)
    np.testing.assert_allclose(m.sum(axis=1), np.ones(11), atol=1e-12)  # constant clip stays
    # Interior points interpolate a cosine of the path-graph spectrum exactly.
    n, k = 9, 3
    wave = np.cos(np.pi * k * (np.arange(1, n + 1) - 0.5) / n)
    t = np.linspace(1, n, 11)
    np.testing.assert_allclose(m @ wave, np.cos(np.pi * k * (t - 0.5) / n), atol=1e-12)


def test_tim_batched_padded_and_jitted():
    rng = np.random.default_rng(0)
    lengths = np.array([9, 6, 1])
    x = rng.random((3, 9, 4, 5, 3)).astype(np.float32)
    x[1, 6:] = 7.0  # padding must not leak
    x[2, 1:] = 7.0
    out = jax.jit(lambda f, n: tim.tim(f, 11, lengths=n))(x, lengths)
    assert out.shape == (3, 11, 4, 5, 3)
    for b, n in enumerate(lengths):
        expected = np.einsum("st,thwc->shwc", tim.tim_matrix(n, 11), x[b, :n])
        np.testing.assert_allclose(out[b], expected, atol=2e-5)
    whole = tim.tim(x[:1], 11)
    np.testing.assert_allclose(whole[0], out[0], atol=2e-5)
    # Single clip with time on axis 0.
    np.testing.assert_allclose(tim.tim(x[0], 11, axis=0), out[0], atol=2e-5)


def test_linear_matches_np_interp_per_pixel():
    rng = np.random.default_rng(1)
    lengths = np.array([7, 12])
    x = rng.random((2, 12, 3, 2, 3)).astype(np.float32)
    out = np.asarray(tim.linear(x, 20, lengths=lengths))
    for b, n in enumerate(lengths):
        grid = np.linspace(0, n - 1, 20)
        for idx in np.ndindex(*x.shape[2:]):
            expected = np.interp(grid, np.arange(n), x[(b, slice(0, n), *idx)])
            np.testing.assert_allclose(out[(b, slice(None), *idx)], expected, atol=1e-6)
    np.testing.assert_allclose(tim.linear(x[1:], 20)[0], out[1], atol=1e-6)
    np.testing.assert_allclose(tim.linear_matrix(5, 5), np.eye(5), atol=1e-12)


def test_bad_input_errors():
    x = jnp.ones((2, 5, 3))
    with pytest.raises(ValueError, match="n_out"):
        tim.tim(x, 0)
    with pytest.raises(ValueError, match=r"lengths\[1\]=6"):
        tim.tim(x, 4, lengths=np.array([5, 6]))
    with pytest.raises(ValueError, match="lengths shape"):
        tim.linear(x, 4, lengths=np.array([5]))
    with pytest.raises(TypeError, match="floating"):
        tim.tim(jnp.ones((2, 5, 3), jnp.uint8), 4)
    with pytest.raises(ValueError, match="n_in=0"):
        tim.tim_matrix(0, 3)


@pytest.mark.parametrize(
    "n,length,interval,expected",
    [
        (11, 20, 0, list(range(11))),  # seed 003: n = 11 of 20 -> every frame, 0..10
        (7, 20, 0, [0, 3, 6, 9, 12, 15, 18]),  # (20 - 1) // (7 - 1) = 3
        (15, 20, 0, list(range(15))),
        (20, 20, 0, list(range(20))),  # the paper's largest n
        (1, 20, 0, [0]),
        (5, 20, 2, [0, 2, 4, 6, 8]),
        (11, 11, 0, list(range(11))),  # TIM straight to n
    ],
)
def test_sample_indices_start_at_the_first_frame_at_one_interval(n, length, interval, expected):
    assert tim.sample_indices(n, length, interval).tolist() == expected


def test_sample_indices_refuse_what_does_not_fit():
    with pytest.raises(ValueError, match="need 1 <= num_frames <= tim_length"):
        tim.sample_indices(21, 20)
    with pytest.raises(ValueError, match="11 frames every 2 need 21 of the 20 TIM frames"):
        tim.sample_indices(11, 20, 2)


def test_tim_then_sample_on_a_ramp_clip():
    """A clip whose frame t is filled with t. TIM of 39 frames to 20 puts node j at t = 1 + 2j
    (1-based), an input frame, which TIM returns exactly: sampled frame i is input frame
    2 * i * step. Any other length: the NumPy matrix rows of the sampled frames."""
    ramp = np.broadcast_to(np.arange(39.0)[:, None, None, None], (39, 3, 2, 1))
    out = np.asarray(tim.tim_then_sample(jnp.asarray(ramp[None]), 7, length=20))[0]
    assert out.shape == (7, 3, 2, 1)
    np.testing.assert_allclose(out[:, 0, 0, 0], 2.0 * 3 * np.arange(7), atol=1e-4)
    clip = np.random.default_rng(0).random((13, 4, 4, 3))
    for n, length, interval in [(11, 20, 0), (5, 9, 2), (6, 6, 0)]:
        index = tim.sample_indices(n, length, interval)
        expected = np.einsum("st,thwc->shwc", tim.tim_matrix(13, length)[index], clip)
        got = tim.tim_then_sample(clip[None], n, length=length, interval=interval)[0]
        np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)
    np.testing.assert_allclose(  # length n, interval 1: TIM straight to n frames
        np.asarray(tim.tim_then_sample(clip[None], 6, length=6)), np.asarray(tim.tim(clip[None], 6))
    )
