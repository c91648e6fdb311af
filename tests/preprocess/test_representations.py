"""Clip -> model input: every representation on a synthetic clip, and the apex rules."""

import jax
import numpy as np
import pytest

from data_builders.synthetic_me import faces
from data_builders.synthetic_me.synthetic_me_dataset_builder import Builder
from mer_jax.preprocess import flow, representations
from tests.conftest import input_spec

CASME2 = next(c for c in Builder.BUILDER_CONFIGS if c.name == "casme2")


@pytest.fixture(scope="module")
def clip():
    """A synthetic clip at 112x112 whose apex is far from its middle frame."""
    plan = faces.plan_corpus(CASME2)
    c = next(c for c in plan.clips if abs(c.apex - (c.onset + c.offset) // 2) >= 2)
    frames = faces.render_clip(CASME2, c)
    return representations.Clip(frames, c.onset, c.apex, c.offset, c.id)


def test_apex_rules(clip):
    assert representations.apex_index(clip, "ground_truth") == clip.apex
    assert (
        representations.apex_index(clip, "mid_clip") == clip.onset + (clip.offset - clip.onset) // 2
    )
    # Interframe-Diff on this clip: the frame furthest from the onset, by a NumPy loop.
    f = clip.frames.astype(np.float64)
    diffs = [np.abs(f[t] - f[clip.onset]).mean() for t in range(clip.onset, clip.offset + 1)]
    assert representations.apex_index(clip, "interframe_diff") == clip.onset + int(np.argmax(diffs))
    no_apex = clip._replace(apex=-1, id="smic/s1/s1_ne_01")
    with pytest.raises(ValueError, match="smic/s1/s1_ne_01.*mid_clip"):
        representations.apex_index(no_apex, "ground_truth")
    assert representations.apex_index(clip, "ground_truth_else_mid_clip") == clip.apex
    mid = clip.onset + (clip.offset - clip.onset) // 2
    assert representations.apex_index(no_apex, "ground_truth_else_mid_clip") == mid
    with pytest.raises(ValueError, match="input.apex"):
        representations.apex_index(clip, "middle")


def test_apex_representation(clip):
    spec = input_spec(image_size=48, channels=1)
    out = representations.apex_input(clip, spec)
    assert out.shape == (48, 48, 1) and out.dtype == np.uint8
    table = representations.REPRESENTATIONS["apex"]
    assert table.shape(spec) == out.shape and table.dtype == out.dtype and table.reads_apex
    grey = representations.to_channels(representations.resize(clip.frames[clip.apex], 48), 1)
    np.testing.assert_array_equal(out, grey)


def test_flow_representation_is_scaled_to_the_output_grid(clip):
    out = representations.flow_input(
        clip, input_spec(image_size=28, channels=2, flow_method="farneback")
    )
    assert out.shape == (28, 28, 2) and out.dtype == np.float32
    full = flow.flow_between(clip.frames, clip.onset, clip.apex, method="farneback")
    # Mean displacement in output pixels = mean displacement in stored pixels x 28 / 112.
    np.testing.assert_allclose(out.mean((0, 1)), full.mean((0, 1)) * 28 / 112, atol=2e-3)
    assert np.abs(out).max() > 0.1  # The clip moves at its apex.
    strain = representations.flow_input(
        clip, input_spec(image_size=28, channels=3, flow_method="farneback")
    )
    assert strain.shape == (28, 28, 3) and (strain[..., 2] >= 0).all()


def test_sequence_and_stack_representations(clip):
    seq = representations.flow_sequence_input(
        clip, input_spec(image_size=32, num_frames=6, flow_method="dis")
    )
    assert seq.shape == (6, 32, 32, 2) and seq.dtype == np.float32 and np.isfinite(seq).all()
    stack = representations.aman_stack_input(
        clip, input_spec(image_size=32, num_frames=5, factors=(1, 5))
    )
    assert stack.shape == (5, 2, 32, 32, 3) and stack.dtype == np.uint8
    # Factor 1 is the (TIM-resampled) frame itself; the first TIM frame is the onset.
    onset = representations.resize(clip.frames[clip.onset], 32).astype(int)
    assert np.abs(stack[0, 0].astype(int) - onset).max() <= 1
    # A larger factor moves the later frames further from the onset.
    moved = [np.abs(stack[-3, k].astype(int) - stack[0, k]).mean() for k in range(2)]
    assert moved[1] > 1.5 * moved[0]


def test_aman_stack_samples_frames_of_the_tim_clip(clip):
    """Seed 003: TIM to tim_length frames, then num_frames of them at the interval; factor 1
    is the frame itself, so the stack's first factor is those frames (NumPy: tim_matrix)."""
    from mer_jax.preprocess import tim

    frames = np.stack(
        [representations.resize(f, 16) for f in clip.frames[clip.onset : clip.offset + 1]]
    ).astype(np.float64)
    for extra, index in [({}, [0, 4, 8, 12, 16]), ({"tim_length": 5}, [0, 1, 2, 3, 4]),
                         ({"tim_length": 12, "frame_interval": 2}, [0, 2, 4, 6, 8])]:  # fmt: skip
        spec = input_spec(image_size=16, num_frames=5, factors=(1,), **extra)
        stack = representations.aman_stack_input(clip, spec)
        matrix = tim.tim_matrix(len(frames), extra.get("tim_length", 20))[index]
        expected = np.einsum("st,thwc->shwc", matrix, frames)
        assert np.abs(stack[:, 0].astype(float) - np.clip(np.rint(expected), 0, 255)).max() <= 1
    with pytest.raises(ValueError, match="5 frames every 4 need 17 of the 12 TIM frames"):
        representations.aman_stack_input(
            clip, input_spec(image_size=16, num_frames=5, factors=(1,), tim_length=12,
                             frame_interval=4)
        )  # fmt: skip


def test_evm_apex_representation_magnifies(clip):
    spec = input_spec(image_size=32, channels=3)
    out = representations.evm_apex_input(clip, spec)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    spec.evm.alpha = 0.0
    plain = representations.evm_apex_input(clip, spec)
    apex = representations.resize(clip.frames[clip.apex], 32)
    # alpha 0: the apex frame itself, up to the reference's YIQ round trip (ntsc2rgb rescaling).
    assert np.abs(plain.astype(int) - apex).mean() < 0.5
    assert np.abs(plain.astype(int) - apex).max() <= 4
    assert np.abs(out.astype(int) - apex).mean() > 4 * np.abs(plain.astype(int) - apex).mean()


def test_aman_stack_with_a_learned_magnifier_checkpoint(clip, tmp_path):
    """`magnifier_checkpoint` switches the AMAN view from Eulerian to the learned magnifier."""
    import jax
    import jax.numpy as jnp

    from mer_jax.magnifier import model as magnifier

    net = magnifier.Magnifier(width=4, num_dec_resblk=1)
    x = jnp.zeros((1, 16, 16, 3))
    params = net.init(jax.random.key(0), x, x, jnp.ones((1,)))["params"]
    path = tmp_path / "magnifier.npz"
    magnifier.save_npz(path, params)
    spec = input_spec(image_size=16, num_frames=3, factors=(1, 4), magnifier_checkpoint=str(path))
    stack = representations.aman_stack_input(clip, spec)
    assert stack.shape == (3, 2, 16, 16, 3) and stack.dtype == np.uint8
    # The network applied directly to the sampled frames gives the stack: onset..offset TIM'd
    # to 20 frames, 3 of them every (20 - 1) // (3 - 1) = 9 from the first (seed 003 Sec. 2.1).
    from mer_jax.preprocess import tim

    frames = np.stack(
        [representations.resize(f, 16) for f in clip.frames[clip.onset : clip.offset + 1]]
    )
    frames = np.asarray(tim.tim(frames[None] / 255.0, 20))[:, [0, 9, 18]]
    frames = np.clip(frames, 0.0, 1.0).astype(np.float32)
    loaded = magnifier.load_npz(path)
    direct = np.asarray(magnifier.magnify_against_onset(loaded, frames, (1, 4), onset=0))[0]
    direct = np.clip(np.rint(np.moveaxis(direct, 0, 1) * 255.0), 0, 255)
    assert np.abs(stack.astype(int) - direct).max() <= 1
    eulerian = representations.aman_stack_input(
        clip, input_spec(image_size=16, num_frames=3, factors=(1, 4))
    )
    assert not np.array_equal(stack, eulerian)


def test_batched_views_equal_one_clip_at_a_time(clip):
    """Clips of different lengths: one batched call (TIM / interpolation to a fixed length,
    then one magnification or one JAX TV-L1 program; EVM padded, each clip filtered at its
    own length) == each clip alone.

    The batched and the single-clip programs differ in shape, so another CPU may round
    them differently. uint8 views (EVM, magnification: no iterations) then differ by at
    most one step of the final rounding. The TV-L1 solver amplifies float32 rounding to
    pixels (tests/preprocess/test_flow.py), so the flow sequences run in float64, where
    the two programs agree to < 1e-7 px; the stored float32 then differs by at most one
    float32 ulp (< 2e-6 for flows under 16 px): bound 1e-5.
    """
    short = clip._replace(frames=clip.frames[: clip.offset - 2], offset=clip.offset - 3, id="short")
    shifted = clip._replace(frames=np.roll(clip.frames, 2, axis=2), id="shifted")
    clips = [clip, short, shifted]
    cases = {
        "aman_stack": (input_spec(image_size=16, num_frames=4, factors=(1, 6)), False),
        "flow_sequence": (input_spec(image_size=16, num_frames=3, flow_method="tvl1_jax"), True),
        "evm_apex": (input_spec(image_size=16, channels=3), False),
    }
    for name, (spec, x64) in cases.items():
        with jax.enable_x64(x64):
            batched = representations.compute_batch(name, clips, spec)
            alone = np.stack([representations.REPRESENTATIONS[name](c, spec) for c in clips])
        assert batched.shape == alone.shape and batched.dtype == alone.dtype
        table = representations.REPRESENTATIONS[name]  # the table's shape and dtype rule
        assert batched.shape[1:] == table.shape(spec) and batched.dtype == table.dtype
        tol = 1 if batched.dtype == np.uint8 else 1e-5
        np.testing.assert_allclose(batched.astype(float), alone.astype(float), rtol=0, atol=tol)
        assert np.abs(batched[0].astype(float) - batched[1]).max() > 0  # different clips


def test_views_built_a_batch_at_a_time_keep_order_and_metadata(clip):
    from data_builders import views

    view = views.aman_view(3, (1.0, 4.0), size=16)
    examples = [
        (
            i,
            {
                "frames": clip.frames,
                "onset": clip.onset,
                "apex": clip.apex,
                "offset": clip.offset - i,
                "clip": f"c{i}",
            },
        )
        for i in range(5)
    ]
    out = list(views.with_inputs(view, iter(examples), batch=2))
    assert [k for k, _ in out] == list(range(5))
    for i, ex in out:
        assert "frames" not in ex and ex["clip"] == f"c{i}" and ex["input"].shape == view.shape
        c = clip._replace(offset=clip.offset - i)
        np.testing.assert_allclose(
            ex["input"].astype(int), view.compute(c.frames, c.onset, c.apex, c.offset, "x"), atol=1
        )
