"""The learned magnifier (Oh et al. 2018) against a NumPy port of the authors' TF graph, hand
parameter arithmetic, the synthetic data's known motions, a few training steps."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from mer_jax.magnifier import data as md
from mer_jax.magnifier import model as mg
from mer_jax.magnifier import train as mt

TINY = {"width": 4, "num_dec_resblk": 2}


def conv_params(k, cin, cout):
    return k * k * cin * cout


def hand_count(width=32, channels=3, enc=3, tex=2, shp=2, man_res=1, dec=9, shape_conv=True):
    """Parameters of the authors' graph, layer by layer (no biases)."""
    w, resblock = width, lambda c: 2 * conv_params(3, c, c)
    encoder = (
        conv_params(7, channels, w // 2)  # enc_conv1_c
        + conv_params(3, w // 2, w)  # enc_conv2_c
        + enc * resblock(w)
        + conv_params(3, w, w)  # enc_texture_conv
        + tex * resblock(w)
        + (conv_params(3, w, w) if shape_conv else 0)  # enc_shape_conv
        + shp * resblock(w)
    )
    manipulator = conv_params(7, w, w) + conv_params(3, w, w) + man_res * resblock(w)
    decoder = (
        conv_params(3, w, w)  # texture_upsample
        + dec * resblock(2 * w)
        + conv_params(3, 2 * w, w)  # dec_conv2_c
        + conv_params(7, w, channels)  # pred_conv
    )
    return encoder + manipulator + decoder


def test_parameter_counts_match_hand_arithmetic():
    assert hand_count() == 928_144  # the paper's network (Fig. 2)
    assert hand_count(shape_conv=False) == 918_928  # the released checkpoint's
    assert mg.num_params(mg.Magnifier()) == 928_144
    assert mg.num_params(mg.Magnifier(shape_conv=False)) == 918_928
    small = dict(width=6, num_enc_resblk=1, num_man_resblk=2, num_dec_resblk=3)
    assert mg.num_params(mg.Magnifier(**small)) == hand_count(6, enc=1, man_res=2, dec=3)


# ---------------------------------------------------------------- NumPy reference


def np_conv(x, w, stride=1, tf_same=False):
    """x (N, H, W, Ci), w (k, k, Ci, Co): VALID correlation, or TF 'SAME' zero padding."""
    k = w.shape[0]
    if tf_same:
        pads = []
        for n in x.shape[1:3]:
            total = max((math.ceil(n / stride) - 1) * stride + k - n, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, ((0, 0), *pads, (0, 0)))
    win = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("nhwcij,ijco->nhwo", win, w)


def np_reflect(x, p):
    return np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")


def np_magnifier(weights, xa, xb, amp, num_dec_resblk):
    """The authors' `image_transformer` (modules.py / ops.py / magnet.py) in NumPy;
    `weights` maps their variable scope ('encoder/enc_conv1_c', ...) to the kernel."""
    relu = lambda v: np.maximum(v, 0.0)
    W = lambda name: weights[name]

    def resblock(x, name):
        y = np_conv(np_reflect(x, 1), W(name + "_c1"))
        return x + np_conv(np_reflect(relu(y), 1), W(name + "_c2"))

    def encoder(x):
        x = relu(np_conv(np_reflect(x, 3), W("encoder/enc_conv1_c")))
        x = relu(np_conv(x, W("encoder/enc_conv2_c"), 2, tf_same=True))
        for i in range(3):
            x = resblock(x, f"encoder/encoder_resblk{i}")
        t = relu(np_conv(x, W("encoder/enc_texture_conv"), 2, tf_same=True))
        s = relu(np_conv(x, W("encoder/enc_shape_conv"), 1, tf_same=True))
        for name in ("texture_enc", "texture_enc_1"):
            t = resblock(t, f"encoder/{name}")
        for name in ("shape_enc", "shape_enc_1"):
            s = resblock(s, f"encoder/{name}")
        return t, s

    _, sa = encoder(xa)
    tb, sb = encoder(xb)
    d = relu(np_conv(np_reflect(sb - sa, 3), W("manipulator/mani_conv0c")))
    d = d * (np.asarray(amp).reshape(-1, 1, 1, 1) - 1.0)
    d = np_conv(np_reflect(d, 1), W("manipulator/mani_aft_conv0c"))
    d = resblock(d, "manipulator/mani_resblk0")
    shape = sb + d
    up = lambda v: v.repeat(2, axis=1).repeat(2, axis=2)
    t = relu(np_conv(np_reflect(up(tb), 1), W("decoder/texture_upsample")))
    x = np.concatenate([t, shape], axis=-1)
    for i in range(num_dec_resblk):
        x = resblock(x, f"decoder/decoder_resblk{i}")
    x = relu(np_conv(np_reflect(up(x), 1), W("decoder/dec_conv2_c")))
    return np_conv(np_reflect(x, 3), W("decoder/pred_conv"))


@pytest.fixture(scope="module")
def tiny():
    """A tiny magnifier with O(1) random weights (the 0.02 init would hide wiring errors)."""
    model = mg.Magnifier(**TINY)
    return model, random_params(model, 0.25)


def random_params(model, std, seed=1, fan_in=False):
    """Normal kernels of stddev `std` (/ sqrt(fan in) with `fan_in`)."""
    rng = np.random.default_rng(seed)
    shapes = mg.expected_shapes(model)
    scale = lambda v: std / np.sqrt(np.prod(v[:3])) if fan_in else std
    return mg._unflat(
        {k: jnp.asarray(scale(v) * rng.standard_normal(v), jnp.float32) for k, v in shapes.items()}
    )


def test_forward_matches_numpy_port_of_authors_graph(tiny):
    model, params = tiny
    rng = np.random.default_rng(0)
    xa = rng.uniform(-1, 1, (2, 16, 20, 3))
    xb = xa + 0.1 * rng.standard_normal(xa.shape)
    amp = np.array([2.0, 7.0])
    weights = {k[: -len("/kernel")]: np.asarray(v, np.float64) for k, v in mg._flat(params).items()}
    want = np_magnifier(weights, xa, xb, amp, TINY["num_dec_resblk"])
    got = np.asarray(
        model.apply(
            params, jnp.asarray(xa, jnp.float32), jnp.asarray(xb, jnp.float32), jnp.asarray(amp)
        )
    )
    assert got.shape == (2, 16, 20, 3)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # amp = 1: the manipulator returns frame_b's shape exactly, the output is frame_b decoded.
    texture_b, shape_b = model.apply(
        params, jnp.asarray(xb, jnp.float32), method=mg.Magnifier.encode
    )
    _, shape_a = model.apply(params, jnp.asarray(xa, jnp.float32), method=mg.Magnifier.encode)
    same = model.apply(params, shape_a, shape_b, 1.0, method=mg.Magnifier.manipulate)
    np.testing.assert_array_equal(np.asarray(same), np.asarray(shape_b))
    one = np_magnifier(weights, xa, xb, np.ones(2), TINY["num_dec_resblk"])
    recon = model.apply(params, texture_b, shape_b, method=mg.Magnifier.decode)
    np.testing.assert_allclose(np.asarray(recon), one, rtol=1e-4, atol=1e-4 * np.abs(one).max())


def test_bad_frames_are_named(tiny):
    model, params = tiny
    x = jnp.zeros((1, 18, 16, 3))
    with pytest.raises(ValueError, match="frame_a is 18x16; H and W must be multiples of 4"):
        model.apply(params, x, x, 2.0)
    with pytest.raises(ValueError, match=r"frame_a must be \(N, H, W, 3\)"):
        model.apply(params, jnp.zeros((1, 16, 16, 1)), jnp.zeros((1, 16, 16, 1)), 2.0)


# ---------------------------------------------------------------- weights


def write_tf_npz(path, params, **extra):
    # The mapping of the authors' checkpoint: scope/layer/Conv/weights, HWIO kernels.
    arrays = {}
    for k, v in mg._flat(params).items():
        layer = k.removesuffix("/kernel")
        arrays[f"ynet_3frames/{layer}/Conv/weights"] = np.asarray(v)
    arrays.update(extra)
    np.savez(path, **arrays)
    return arrays


def test_load_npz_reads_tf_names_and_infers_architecture(tiny, tmp_path):
    _, params = tiny
    path = tmp_path / "magnet.npz"
    write_tf_npz(
        path,
        params,
        **{
            "ynet_3frames/encoder/enc_conv1_c/Conv/weights/Adam": np.zeros(1),
            "ynet_3frames/encoder/enc_conv1_c/Conv/weights/Adam_1": np.zeros(1),
            "beta1_power": np.zeros(()),
            "global_step": np.zeros((), np.int64),
        },
    )
    loaded = mg.load_npz(path)
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, jax.device_get(params))
    assert mg.config_from_params(loaded) == mg.config_of(mg.Magnifier(**TINY))
    # save_npz writes the same names back.
    again = tmp_path / "again.npz"
    mg.save_npz(again, loaded)
    with np.load(again) as z, np.load(path) as ref:
        assert set(z.files) == {k for k in ref.files if k.endswith("/Conv/weights")}
    # The released architecture (no enc_shape_conv) is recognised as such.
    released = mg.Magnifier(width=4, num_dec_resblk=1, shape_conv=False)
    path2 = tmp_path / "released.npz"
    write_tf_npz(path2, random_params(released, 0.1))
    assert mg.config_from_params(mg.load_npz(path2)) == mg.config_of(released)


def test_load_npz_names_missing_unexpected_and_misshaped_variables(tiny, tmp_path):
    _, params = tiny
    arrays = write_tf_npz(tmp_path / "ok.npz", params)
    name = "ynet_3frames/manipulator/mani_aft_conv0c/Conv/weights"

    missing = {k: v for k, v in arrays.items() if k != name}
    np.savez(tmp_path / "missing.npz", **missing)
    model = mg.Magnifier(**TINY)
    with pytest.raises(ValueError, match=rf"missing.npz.*missing {name}"):
        mg.load_npz(tmp_path / "missing.npz", model)

    wrong = dict(arrays)
    wrong[name] = np.zeros((3, 3, 4, 5), np.float32)
    np.savez(tmp_path / "wrong.npz", **wrong)
    with pytest.raises(
        ValueError, match=rf"wrong.npz.*{name}: file \(3, 3, 4, 5\), model \(3, 3, 4, 4\)"
    ):
        mg.load_npz(tmp_path / "wrong.npz")

    extra = dict(arrays)
    extra["ynet_3frames/decoder/bogus/Conv/weights"] = np.zeros((1,), np.float32)
    np.savez(tmp_path / "extra.npz", **extra)
    with pytest.raises(ValueError, match="unexpected ynet_3frames/decoder/bogus/Conv/weights"):
        mg.load_npz(tmp_path / "extra.npz", model)

    foreign = dict(arrays)
    foreign["resnet/conv1/kernel"] = np.zeros((1,), np.float32)
    np.savez(tmp_path / "foreign.npz", **foreign)
    with pytest.raises(ValueError, match=r"foreign.npz.*resnet/conv1/kernel"):
        mg.load_npz(tmp_path / "foreign.npz")

    with pytest.raises(ValueError, match="does not fit"):
        mg.load_npz(tmp_path / "ok.npz", mg.Magnifier(width=8, num_dec_resblk=2))
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        mg.load_npz(tmp_path / "nope.npz")


# ---------------------------------------------------------------- AMAN view


def test_magnify_against_onset_layout_and_padding(tiny):
    model, params = tiny
    rng = np.random.default_rng(1)
    frames = rng.uniform(0.2, 0.8, (2, 3, 15, 18, 3)).astype(np.float32)
    factors, onset = (1.0, 3.0), np.array([0, 2])
    out = np.asarray(mg.magnify_against_onset(params, frames, factors, onset))
    assert out.shape == (2, 2, 3, 15, 18, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    # Reference: the network on each (onset, frame) pair, reflect-padded to 16 x 20, cropped.
    padded = np.pad(frames, ((0, 0), (0, 0), (0, 1), (1, 1), (0, 0)), mode="reflect") * 2 - 1
    apply = jax.jit(model.apply)
    for n in range(2):
        for k, a in enumerate(factors):
            on = np.repeat(padded[n, onset[n]][None], 3, axis=0)
            direct = np.asarray(apply(params, on, padded[n], a))[:, :15, 1:19]
            want = (np.clip(direct, -1, 1) + 1) / 2
            np.testing.assert_allclose(out[n, k], want, atol=3e-4)
    # uint8 grey frames: replicated to RGB, the output averaged back to one channel.
    grey = np.rint(frames.mean(-1, keepdims=True) * 255).astype(np.uint8)
    out_grey = np.asarray(mg.magnify_against_onset(params, grey, factors, onset))
    rgb = np.repeat(grey.astype(np.float32) / 255, 3, axis=-1)
    want = np.asarray(mg.magnify_against_onset(params, rgb, factors, onset)).mean(-1, keepdims=True)
    np.testing.assert_allclose(out_grey, want, atol=3e-4)
    with pytest.raises(ValueError, match=r"onset\[1\]=3 outside \[0, 3\)"):
        mg.magnify_against_onset(params, frames, factors, [0, 3])
    with pytest.raises(ValueError, match=r"frames must be \(N, T, H, W, 3\)"):
        mg.magnify_against_onset(params, frames[0], factors)


# ---------------------------------------------------------------- synthetic data


def grey(x):
    return np.asarray(x, np.float64).mean(axis=-1)


def phase_shift(a, b, max_bin=2):
    """Global translation a -> b (dx, dy) px: least-squares slope of the cross-spectrum phase
    over the lowest frequencies (exact for a circular shift, no peak interpolation)."""
    n = a.shape[0]
    fa, fb = np.fft.fft2(grey(a)), np.fft.fft2(grey(b))
    f = np.fft.fftfreq(n)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    sel = (np.abs(fx) <= max_bin / n + 1e-9) & (np.abs(fy) <= max_bin / n + 1e-9)
    sel &= (fx != 0) | (fy != 0)
    phase = np.angle(fb[sel] * np.conj(fa[sel]))
    weight = np.sqrt(np.abs(fa[sel]) * np.abs(fb[sel]))
    design = np.stack([-2 * np.pi * fx[sel], -2 * np.pi * fy[sel]], axis=-1)
    return np.linalg.lstsq(design * weight[:, None], phase * weight, rcond=None)[0]


def centroid(alpha):
    yy, xx = np.mgrid[: alpha.shape[0], : alpha.shape[1]]
    return np.array([(alpha * xx).sum(), (alpha * yy).sum()]) / alpha.sum()


@pytest.mark.parametrize("amp, d", [(5.0, (0.37, -0.21)), (9.0, (-0.13, 0.29)), (2.5, (1.6, 0.7))])
def test_target_motion_is_amp_times_input_motion(amp, d):
    s = md.render_sample(
        np.random.default_rng(7), 64, amplification=amp, num_objects=0, background_motion=d
    )
    assert all(s[k].dtype == np.uint8 and s[k].shape == (64, 64, 3) for k in md.FRAMES)
    np.testing.assert_allclose(phase_shift(s["frame_a"], s["frame_b"]), d, atol=0.025)
    np.testing.assert_allclose(
        phase_shift(s["frame_a"], s["target"]), np.multiply(amp, d), atol=0.025
    )
    # The colour-perturbed pair carries the same motions.
    moved = phase_shift(s["frame_b_perturbed"], s["target_perturbed"])
    np.testing.assert_allclose(moved, (amp - 1) * np.asarray(d), atol=0.025)


def test_objects_move_by_amp_times_their_displacement():
    d, amp = np.array([[0.45, -0.3], [-0.2, 0.15], [0.05, 0.6]]), 6.0
    s = md.render_sample(
        np.random.default_rng(3), 64, amplification=amp, num_objects=3, object_motion=d
    )
    np.testing.assert_array_equal(s["object_motion"], d)
    assert s["masks_a"].shape == (3, 64, 64)
    for i in range(3):
        ca = centroid(s["masks_a"][i])
        np.testing.assert_allclose(centroid(s["masks_b"][i]) - ca, d[i], atol=0.02)
        np.testing.assert_allclose(centroid(s["masks_target"][i]) - ca, amp * d[i], atol=0.02)
    # amp = 1 renders frame_b again, amp = 0 frame_a: the target is the same scene.
    for a, ref in ((1.0, "frame_b"), (0.0, "frame_a")):
        u = md.render_sample(
            np.random.default_rng(3), 64, amplification=a, num_objects=3, object_motion=d
        )
        np.testing.assert_array_equal(u["target"], u[ref])


def test_colour_perturbation_is_one_affine_map_for_both_frames():
    s = md.render_sample(np.random.default_rng(11), 64, amplification=4.0)
    b, bp = s["frame_b"].astype(float), s["frame_b_perturbed"].astype(float)
    y, yp = s["target"].astype(float), s["target_perturbed"].astype(float)
    assert np.abs(bp - b).mean() > 3  # a visible change
    for c in range(3):
        ok = (bp[..., c] > 2) & (bp[..., c] < 253)  # unclipped pixels
        gain, offset = np.polyfit(b[..., c][ok], bp[..., c][ok], 1)
        pred = gain * y[..., c] + offset
        ok_y = (yp[..., c] > 2) & (yp[..., c] < 253)
        assert np.abs(pred[ok_y] - yp[..., c][ok_y]).max() < 2.0


def test_make_batch_is_deterministic_noisy_inputs_clean_targets():
    a = md.make_batch(5, 3, 32, noise=0.2, max_amplification=10)
    b = md.make_batch([5], 2, 32, noise=0.2, max_amplification=10)
    for k in a:
        np.testing.assert_array_equal(a[k][:2], b[k])  # sample i independent of batch size
    assert a["frame_a"].dtype == np.float32 and a["amplification"].shape == (3,)
    assert ((a["amplification"] >= 1) & (a["amplification"] <= 10)).all()
    levels = lambda x: np.abs((x + 1) * 127.5 - np.rint((x + 1) * 127.5)).max()
    assert levels(a["target_perturbed"]) < 1e-4  # 8-bit levels
    assert levels(a["frame_a"]) > 0.05  # noise on the inputs
    clean = md.make_batch(5, 3, 32, noise=0.0, max_amplification=10)
    assert levels(clean["frame_a"]) < 1e-4
    with pytest.raises(ValueError, match="batch_size=0"):
        md.make_batch(0, 0, 32)


def test_magnified_motion_respects_the_bound():
    rng = np.random.default_rng(0)
    for _ in range(10):
        s = md.render_sample(rng, 32, max_magnified_motion=3.0, max_amplification=50)
        moves = np.vstack([s["background_motion"], s["object_motion"]])
        assert (np.hypot(*moves.T) * s["amplification"] <= 3.0 + 1e-9).all()


# ---------------------------------------------------------------- training


def small_config(**kw):
    return mt.make_config("cpu", model=TINY, image_size=32, batch_size=2, learning_rate=3e-3, **kw)


def test_loss_is_the_papers_sum_and_training_reduces_it(tiny):
    config = small_config()
    model = mg.Magnifier(**config["model"])
    batch = {k: jnp.asarray(v) for k, v in md.make_batch(0, 2, 32, max_amplification=10).items()}
    _, params = tiny
    total, parts = jax.jit(lambda p, b: mt.loss_fn(p, model, b, config))(params, batch)

    @jax.jit
    def independent(params, batch):
        # Each frame encoded on its own, the forward pass through __call__.
        enc = lambda x: model.apply(params, x, method=mg.Magnifier.encode)
        (ta, _), (tb, sb) = enc(batch["frame_a"]), enc(batch["frame_b"])
        (tbp, sbp), (typ, _) = enc(batch["frame_b_perturbed"]), enc(batch["target_perturbed"])
        out = model.apply(
            params, batch["frame_a"], batch["frame_b_perturbed"], batch["amplification"]
        )
        l1 = lambda u, v: jnp.mean(jnp.abs(u - v))
        return l1(out, batch["target_perturbed"]), l1(ta, tb), l1(tbp, typ), l1(sb, sbp)

    l1_y, tex_ab, tex_by, shape_bb = map(float, independent(params, batch))
    assert float(total) == pytest.approx(l1_y + 0.1 * (tex_ab + tex_by + shape_bb), rel=1e-4)
    assert float(parts["shape_bb"]) == pytest.approx(shape_bb, rel=1e-4)
    assert float(parts["texture_by"]) == pytest.approx(tex_by, rel=1e-4)

    # LeCun-scaled weights: the width-4 net's 0.02 init barely moves in a dozen steps.
    state = mt.init_state(model, config, random_params(model, 1.0, fan_in=True))
    update = mt.make_update_fn(model, config)
    losses = []
    for _ in range(12):
        state, metrics = update(state, batch)
        losses.append(float(metrics["loss"]))
    assert int(state.step) == 12
    assert all(map(math.isfinite, losses))
    assert losses[-1] < 0.5 * losses[0], losses
    assert np.mean(losses[-3:]) < np.mean(losses[1:4]), losses


def test_train_writes_a_checkpoint_that_loads(tmp_path):
    config = small_config()
    log = mt.train(config, 3, tmp_path / "run", save_every=2, progress=False)
    params = mg.load_npz(tmp_path / "run" / "magnifier.npz")
    assert mg.config_from_params(params) == mg.config_of(mg.Magnifier(**TINY))
    saved = json.loads((tmp_path / "run" / "train_log.json").read_text())
    assert saved["step"] == 3 and saved["history"][-1]["step"] == 3
    assert saved["num_params"] == hand_count(4, dec=2) == log["num_params"]
    # --init resumes from it (fine-tuning a converted checkpoint goes the same way).
    mt.train(
        config, 1, tmp_path / "run2", init=str(tmp_path / "run" / "magnifier.npz"), progress=False
    )
    assert (tmp_path / "run2" / "magnifier.npz").is_file()


def test_cli_parser_maps_flags_to_config():
    import argparse

    parser = argparse.ArgumentParser()
    mt.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["train-magnifier", "--steps", "5", "--out", "x", "--preset", "paper", "--width", "16"]
    )
    assert args.fn is mt.cmd_train_magnifier and args.steps == 5
    config = mt.make_config("paper", model={"width": 16}, image_size=None)
    assert config["model"] == {"width": 16} and config["image_size"] == 384
    assert config["learning_rate"] == 1e-4 and (config["b1"], config["b2"]) == (0.9, 0.999)
    with pytest.raises(ValueError, match="image_size=30"):
        mt.make_config("cpu", image_size=30)
