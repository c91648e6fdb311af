"""Learning-based motion magnifier (Oh, Jaroensri, Kim, Elgharib, Durand, Freeman, Matusik,
"Learning-based Video Motion Magnification", ECCV 2018): the magnifier seed 003 (AMAN) applies
to every frame against the onset at factors 1..9.

Two frames and a factor in, the second frame with its motion relative to the first magnified
out (Sec. 3.1, Fig. 2). Layer names are those of the authors' TensorFlow graph (repository
12dmodel/deep_motion_mag, `magnet.py` / `modules.py` / `ops.py`, config
`o3f_hmhm2_bg_qnoise_mix4_nl_n_t_ds3`), so a converted checkpoint loads by name:

  encoder  (shared by both frames)
    enc_conv1_c      reflect-pad 3, 7x7 conv width/2, ReLU
    enc_conv2_c      3x3 conv width, stride 2, 'SAME' zero padding (TF), ReLU
    encoder_resblk0..2
    texture: enc_texture_conv 3x3/2 'SAME' + ReLU, residual blocks texture_enc, texture_enc_1
    shape:   enc_shape_conv 3x3/1 'SAME' + ReLU (paper Fig. 2; see `shape_conv`),
             residual blocks shape_enc, shape_enc_1
  manipulator  M = M_b + h((amp - 1) g(M_b - M_a))
    g: mani_conv0c  reflect-pad 3, 7x7 conv, ReLU
    h: mani_aft_conv0c reflect-pad 1, 3x3 conv (linear), then residual block mani_resblk0
  decoder
    texture_upsample nearest x2, reflect-pad 1, 3x3 conv, ReLU
    concat [texture, shape] (2 width channels), decoder_resblk0..8,
    nearest x2, dec_conv2_c reflect-pad 1, 3x3 conv width, ReLU,
    pred_conv reflect-pad 3, 7x7 conv -> channels (linear)

A residual block is reflect-pad, 3x3 conv, ReLU, reflect-pad, 3x3 conv, + input (no
activation after the sum). No convolution has a bias (`slim.conv2d(biases_initializer=None)`);
weights start truncated-normal with stddev 0.02, as `ops.conv2d`.

Conventions (the authors' code):
- Images in [-1, 1] (x / 127.5 - 1). `__call__` returns the decoder output unclipped (the
  training loss sees it so); the authors clip it to [-1, 1] at inference, as
  `magnify_against_onset` does.
- `amplification` is the total motion factor: the output's motion relative to frame_a is amp
  times frame_b's, so amp = 1 returns frame_b's own shape representation (exactly: the
  manipulator branch is then zero) and frame_b reconstructed. The paper writes the
  manipulator as M_b + h(alpha g(M_b - M_a)) with alpha the magnification beyond the input
  motion; its code multiplies by (amp - 1). AMAN's factors 1..9 follow the code.
- H and W must be multiples of 4 (two stride-2 stages, undone by two nearest x2 upsamplings).

Paper vs released code: Fig. 2 draws a 3x3 conv + ReLU at the head of the shape branch; the
released config leaves `use_shape_conv` at its default False, so its checkpoint has no
`enc_shape_conv`. `shape_conv=True` (paper) is the default; `shape_conv=False` builds the
released model, and `config_from_params` reads which one a set of weights is.

Parameter counts (no biases, hand arithmetic in tests/magnifier/test_magnifier.py): 928,144 for the
paper's network, 918,928 for the released one (no enc_shape_conv: 9,216 fewer).

Converting the authors' checkpoint (TF1, `data/training/o3f_hmhm2_bg_qnoise_mix4_nl_n_t_ds3/
checkpoint/...`; its weights are not fetched by this project) to the .npz `load_npz` reads,
with TensorFlow installed elsewhere::

  python -c "import sys, numpy as np, tensorflow as tf; r = tf.train.load_checkpoint(sys.argv[1]); np.savez(sys.argv[2], **{k: r.get_tensor(k) for k in r.get_variable_to_shape_map() if k.startswith('ynet_3frames/') and k.endswith('/weights')})" CKPT_PREFIX magnet.npz

Variable-name mapping (TF kernels are HWIO, as Flax's; no transposition):

  | TF variable                                              | Flax parameter                       |
  |----------------------------------------------------------|--------------------------------------|
  | ynet_3frames/encoder/enc_conv1_c/Conv/weights            | encoder/enc_conv1_c/kernel           |
  | ynet_3frames/encoder/enc_conv2_c/Conv/weights            | encoder/enc_conv2_c/kernel           |
  | ynet_3frames/encoder/encoder_resblk{i}_c{1,2}/Conv/weights | encoder/encoder_resblk{i}_c{1,2}/kernel |
  | ynet_3frames/encoder/enc_texture_conv/Conv/weights       | encoder/enc_texture_conv/kernel      |
  | ynet_3frames/encoder/texture_enc{,_1}_c{1,2}/Conv/weights | encoder/texture_enc{,_1}_c{1,2}/kernel |
  | ynet_3frames/encoder/enc_shape_conv/Conv/weights (paper) | encoder/enc_shape_conv/kernel        |
  | ynet_3frames/encoder/shape_enc{,_1}_c{1,2}/Conv/weights  | encoder/shape_enc{,_1}_c{1,2}/kernel |
  | ynet_3frames/manipulator/mani_conv0c/Conv/weights        | manipulator/mani_conv0c/kernel       |
  | ynet_3frames/manipulator/mani_aft_conv0c/Conv/weights    | manipulator/mani_aft_conv0c/kernel   |
  | ynet_3frames/manipulator/mani_resblk0_c{1,2}/Conv/weights | manipulator/mani_resblk0_c{1,2}/kernel |
  | ynet_3frames/decoder/texture_upsample/Conv/weights       | decoder/texture_upsample/kernel      |
  | ynet_3frames/decoder/decoder_resblk{i}_c{1,2}/Conv/weights | decoder/decoder_resblk{i}_c{1,2}/kernel |
  | ynet_3frames/decoder/dec_conv2_c/Conv/weights            | decoder/dec_conv2_c/kernel           |
  | ynet_3frames/decoder/pred_conv/Conv/weights              | decoder/pred_conv/kernel             |

i.e. TF name = "ynet_3frames/" + Flax path with "/kernel" -> "/Conv/weights" (`tf_name`).
`save_npz` writes the same names, so trained and converted weights share one format.
"""

import functools
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

TF_SCOPE = "ynet_3frames"
# Checkpoint entries that are not weights (optimizer slots, counters): skipped by `load_npz`.
_NOT_WEIGHTS = re.compile(r"(/Adam(_\d+)?$|(^|/)beta[12]_power$|(^|/)global_step$)")
_INIT = nn.initializers.truncated_normal(stddev=0.02)


def _reflect(x, p: int):
    """tf.pad(..., 'REFLECT') on H and W (mirror without repeating the edge)."""
    return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")


def _upsample2(x):
    """tf.image.resize_nearest_neighbor to 2x (TF1, no half-pixel centres): repeat each pixel."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _conv(features: int, kernel: int, name: str, dtype, strides: int = 1, padding="VALID"):
    return nn.Conv(
        features,
        (kernel, kernel),
        (strides, strides),
        padding=padding,
        use_bias=False,
        kernel_init=_INIT,
        dtype=dtype,
        name=name,
    )


def _resblock(x, features: int, name: str, dtype):
    """`ops.residual_block`: x + conv(relu(conv(x))), reflect padding, no final activation."""
    y = _conv(features, 3, f"{name}_c1", dtype)(_reflect(x, 1))
    y = _conv(features, 3, f"{name}_c2", dtype)(_reflect(nn.relu(y), 1))
    return x + y


class Encoder(nn.Module):
    """Sec. 3.1 encoder G_e: shared trunk, then texture (V, half resolution) and shape (M)."""

    width: int = 32
    num_resblk: int = 3
    num_texture_resblk: int = 2
    num_shape_resblk: int = 2
    texture_downsample: bool = True
    shape_conv: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, image):
        x = image.astype(self.dtype)
        x = nn.relu(_conv(self.width // 2, 7, "enc_conv1_c", self.dtype)(_reflect(x, 3)))
        x = nn.relu(_conv(self.width, 3, "enc_conv2_c", self.dtype, 2, "SAME")(x))
        for i in range(self.num_resblk):
            x = _resblock(x, self.width, f"encoder_resblk{i}", self.dtype)
        stride = 2 if self.texture_downsample else 1
        texture = nn.relu(_conv(self.width, 3, "enc_texture_conv", self.dtype, stride, "SAME")(x))
        shape = x
        if self.shape_conv:
            shape = nn.relu(_conv(self.width, 3, "enc_shape_conv", self.dtype, 1, "SAME")(x))
        for i in range(self.num_texture_resblk):
            # The authors' names: the first block has no index ("backward compatibility").
            texture = _resblock(texture, self.width, _block_name("texture_enc", i), self.dtype)
        for i in range(self.num_shape_resblk):
            shape = _resblock(shape, self.width, _block_name("shape_enc", i), self.dtype)
        return texture, shape


def _block_name(stem: str, i: int) -> str:
    return stem if i == 0 else f"{stem}_{i}"


class Manipulator(nn.Module):
    """Sec. 3.1 manipulator G_m: M_b + h((amp - 1) g(M_b - M_a)), g = 7x7 conv + ReLU,
    h = 3x3 conv + residual block (`modules.res_manipulator`)."""

    width: int = 32
    num_conv: int = 1
    num_aft_conv: int = 1
    num_resblk: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, shape_a, shape_b, amplification):
        diff = (shape_b - shape_a).astype(self.dtype)
        for i in range(self.num_conv):
            diff = nn.relu(_conv(self.width, 7, f"mani_conv{i}c", self.dtype)(_reflect(diff, 3)))
        amp = jnp.asarray(amplification, self.dtype)
        amp = jnp.broadcast_to(amp, diff.shape[:1]).reshape(-1, 1, 1, 1)
        diff = diff * (amp - 1.0)
        for i in range(self.num_aft_conv):
            diff = _conv(self.width, 3, f"mani_aft_conv{i}c", self.dtype)(_reflect(diff, 1))
        for i in range(self.num_resblk):
            diff = _resblock(diff, self.width, f"mani_resblk{i}", self.dtype)
        return shape_b + diff


class Decoder(nn.Module):
    """Sec. 3.1 decoder G_d: texture upsampled, concatenated with shape, residual blocks,
    nearest x2, 3x3 conv, 7x7 conv to the image (`modules.res_decoder`)."""

    width: int = 32
    channels: int = 3
    num_resblk: int = 9
    texture_downsample: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, texture, shape):
        texture = texture.astype(self.dtype)
        if self.texture_downsample:
            texture = _conv(self.width, 3, "texture_upsample", self.dtype)(
                _reflect(_upsample2(texture), 1)
            )
            texture = nn.relu(texture)
        x = jnp.concatenate([texture, shape.astype(self.dtype)], axis=-1)
        for i in range(self.num_resblk):
            x = _resblock(x, 2 * self.width, f"decoder_resblk{i}", self.dtype)
        x = _upsample2(x)
        x = nn.relu(_conv(self.width, 3, "dec_conv2_c", self.dtype)(_reflect(x, 1)))
        return _conv(self.channels, 7, "pred_conv", self.dtype)(_reflect(x, 3))


class Magnifier(nn.Module):
    """Oh et al. 2018 two-frame magnifier (Fig. 2): `__call__(frame_a, frame_b, amplification)`
    -> frame_b with its motion relative to frame_a times `amplification`.

    Frames (N, H, W, channels) in [-1, 1], H and W multiples of 4; `amplification` a scalar or
    (N,). `encode`, `manipulate` and `decode` are the three stages. Defaults are the paper's
    network; `shape_conv=False` is the authors' released checkpoint; a small `width` and fewer
    blocks give CPU-sized variants.
    """

    width: int = 32
    channels: int = 3
    num_enc_resblk: int = 3
    num_texture_resblk: int = 2
    num_shape_resblk: int = 2
    num_man_conv: int = 1
    num_man_aft_conv: int = 1
    num_man_resblk: int = 1
    num_dec_resblk: int = 9
    texture_downsample: bool = True
    shape_conv: bool = True
    dtype: Any = jnp.float32

    def setup(self):
        if self.width < 2 or self.width % 2:
            raise ValueError(f"Magnifier: width={self.width} must be an even number >= 2")
        self.encoder = Encoder(
            self.width,
            self.num_enc_resblk,
            self.num_texture_resblk,
            self.num_shape_resblk,
            self.texture_downsample,
            self.shape_conv,
            self.dtype,
        )
        self.manipulator = Manipulator(
            self.width, self.num_man_conv, self.num_man_aft_conv, self.num_man_resblk, self.dtype
        )
        self.decoder = Decoder(
            self.width, self.channels, self.num_dec_resblk, self.texture_downsample, self.dtype
        )

    def _check(self, image, name):
        if image.ndim != 4 or image.shape[-1] != self.channels:
            raise ValueError(
                f"Magnifier: {name} must be (N, H, W, {self.channels}), got {image.shape}"
            )
        if image.shape[1] % 4 or image.shape[2] % 4:
            raise ValueError(
                f"Magnifier: {name} is {image.shape[1]}x{image.shape[2]}; H and W must be "
                "multiples of 4 (pad, e.g. as magnify_against_onset does)"
            )

    def encode(self, image):
        """(N, H, W, C) in [-1, 1] -> texture (N, H/4, W/4, width), shape (N, H/2, W/2, width)."""
        self._check(image, "image")
        return self.encoder(image)

    def manipulate(self, shape_a, shape_b, amplification):
        """Shape representation of frame_b with its motion from frame_a times `amplification`."""
        return self.manipulator(shape_a, shape_b, amplification)

    def decode(self, texture, shape):
        """Texture and shape representations -> image (N, H, W, C), unclipped."""
        return self.decoder(texture, shape).astype(jnp.float32)

    def __call__(self, frame_a, frame_b, amplification):
        self._check(frame_a, "frame_a")
        self._check(frame_b, "frame_b")
        if frame_a.shape != frame_b.shape:
            raise ValueError(f"Magnifier: frame_a {frame_a.shape} != frame_b {frame_b.shape}")
        _, shape_a = self.encoder(frame_a)
        texture_b, shape_b = self.encoder(frame_b)
        return self.decode(texture_b, self.manipulate(shape_a, shape_b, amplification))


# ---------------------------------------------------------------- weights


def tf_name(flax_path: str) -> str:
    """'encoder/enc_conv1_c/kernel' -> 'ynet_3frames/encoder/enc_conv1_c/Conv/weights'."""
    if not flax_path.endswith("/kernel"):
        raise ValueError(f"tf_name: {flax_path!r} is not a kernel path")
    return f"{TF_SCOPE}/{flax_path[: -len('/kernel')]}/Conv/weights"


def _flat(params) -> dict[str, Any]:
    tree = params.get("params", params) if isinstance(params, Mapping) else params
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        out["/".join(str(getattr(k, "key", k)) for k in path)] = leaf
    return out


def _unflat(flat: Mapping[str, Any]) -> dict:
    tree: dict = {}
    for path, leaf in flat.items():
        *scopes, last = path.split("/")
        node = tree
        for s in scopes:
            node = node.setdefault(s, {})
        node[last] = leaf
    return {"params": tree}


class Config(NamedTuple):
    """The architecture a set of weights implies (hashable: a jit static argument)."""

    width: int
    channels: int
    num_enc_resblk: int
    num_texture_resblk: int
    num_shape_resblk: int
    num_man_conv: int
    num_man_aft_conv: int
    num_man_resblk: int
    num_dec_resblk: int
    texture_downsample: bool
    shape_conv: bool


def config_of(model: Magnifier) -> Config:
    return Config(*(getattr(model, f) for f in Config._fields))


def config_from_params(params) -> Config:
    """Read the architecture off the weights (names and kernel shapes); raises if they do not
    form a Magnifier."""
    flat = _flat(params)

    def count(pattern):
        rx = re.compile(pattern)
        return len({m.group(1) for p in flat if (m := rx.fullmatch(p))})

    for required in ("encoder/enc_conv1_c/kernel", "encoder/enc_conv2_c/kernel"):
        if required not in flat:
            raise ValueError(f"config_from_params: no {required!r} ({tf_name(required)})")
    if "decoder/pred_conv/kernel" not in flat:
        raise ValueError("config_from_params: no 'decoder/pred_conv/kernel'")
    stem = np.shape(flat["encoder/enc_conv1_c/kernel"])
    config = Config(
        width=int(np.shape(flat["encoder/enc_conv2_c/kernel"])[-1]),
        channels=int(stem[2]),
        num_enc_resblk=count(r"encoder/encoder_resblk(\d+)_c1/kernel"),
        num_texture_resblk=count(r"encoder/texture_enc((?:_\d+)?)_c1/kernel"),
        num_shape_resblk=count(r"encoder/shape_enc((?:_\d+)?)_c1/kernel"),
        num_man_conv=count(r"manipulator/mani_conv(\d+)c/kernel"),
        num_man_aft_conv=count(r"manipulator/mani_aft_conv(\d+)c/kernel"),
        num_man_resblk=count(r"manipulator/mani_resblk(\d+)_c1/kernel"),
        num_dec_resblk=count(r"decoder/decoder_resblk(\d+)_c1/kernel"),
        texture_downsample="decoder/texture_upsample/kernel" in flat,
        shape_conv="encoder/enc_shape_conv/kernel" in flat,
    )
    out = int(np.shape(flat["decoder/pred_conv/kernel"])[-1])
    if out != config.channels:
        raise ValueError(
            f"config_from_params: pred_conv writes {out} channels, enc_conv1_c reads "
            f"{config.channels}"
        )
    return config


def expected_shapes(model: Magnifier) -> dict[str, tuple[int, ...]]:
    """Flax path -> kernel shape of `model`'s parameters (no allocation)."""
    x = jax.ShapeDtypeStruct((1, 16, 16, model.channels), jnp.float32)
    shapes = jax.eval_shape(lambda a: model.init(jax.random.key(0), a, a, 1.0), x)
    return {k: tuple(v.shape) for k, v in _flat(shapes).items()}


def init_params(model: Magnifier, key) -> dict:
    """Fresh weights: i.i.d. truncated normal, stddev 0.02, cut at 2 stddev (`ops.conv2d`'s
    initializer), drawn as one vector and cut into kernels: the same distribution as
    `model.init`, one random op to compile instead of one per kernel."""
    shapes = expected_shapes(model)
    sizes = [int(np.prod(s)) for s in shapes.values()]
    flat = 0.02 * jax.random.truncated_normal(key, -2.0, 2.0, (sum(sizes),), jnp.float32)
    parts = jnp.split(flat, np.cumsum(sizes)[:-1])
    return _unflat({k: v.reshape(s) for (k, s), v in zip(shapes.items(), parts)})


def num_params(model: Magnifier) -> int:
    return int(sum(np.prod(s) for s in expected_shapes(model).values()))


def save_npz(path, params) -> None:
    """Write `params` as an .npz with the authors' TF variable names (the `load_npz` format)."""
    path = os.fspath(path)
    arrays = {tf_name(k): np.asarray(v, np.float32) for k, v in _flat(params).items()}
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_npz(path, model: Magnifier | None = None) -> dict:
    """Weights from an .npz of TF-named kernels (a converted authors' checkpoint or `save_npz`)
    -> Flax params {'params': ...}.

    The architecture is read off the file (`config_from_params`) unless `model` is given, in
    which case the file must match it. Raises FileNotFoundError, or ValueError naming the file
    and every missing, unexpected or mis-shaped variable. Optimizer slots and step counters
    (…/Adam, …/Adam_1, beta1_power, global_step) are skipped.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_npz: no such file {path!r}")
    try:
        with np.load(path, allow_pickle=False) as z:
            stored = {k: z[k] for k in z.files if not _NOT_WEIGHTS.search(k)}
    except (OSError, ValueError) as err:
        raise ValueError(f"load_npz: {path} is not a readable .npz ({err})") from err
    flat, foreign = {}, []
    prefix, suffix = f"{TF_SCOPE}/", "/Conv/weights"
    for key, value in stored.items():
        if key.startswith(prefix) and key.endswith(suffix):
            flat[key[len(prefix) : -len(suffix)] + "/kernel"] = value
        else:
            foreign.append(key)
    if foreign:
        raise ValueError(
            f"load_npz: {path}: variables not of the form '{prefix}<layer>{suffix}': "
            f"{sorted(foreign)[:10]}{' ...' if len(foreign) > 10 else ''}"
        )
    if model is None:
        try:
            model = Magnifier(**config_from_params(flat)._asdict())
        except ValueError as err:
            raise ValueError(f"load_npz: {path}: {err}") from err
    want = expected_shapes(model)
    missing = sorted(set(want) - set(flat))
    extra = sorted(set(flat) - set(want))
    wrong = [
        f"{tf_name(k)}: file {tuple(flat[k].shape)}, model {want[k]}"
        for k in sorted(set(want) & set(flat))
        if tuple(flat[k].shape) != want[k]
    ]
    problems = []
    if missing:
        problems.append("missing " + ", ".join(tf_name(k) for k in missing))
    if extra:
        problems.append("unexpected " + ", ".join(tf_name(k) for k in extra))
    if wrong:
        problems.append("shape mismatch " + "; ".join(wrong))
    if problems:
        raise ValueError(
            f"load_npz: {path} does not fit {config_of(model)}: " + " | ".join(problems)
        )
    bad = [tf_name(k) for k, v in flat.items() if not np.all(np.isfinite(v))]
    if bad:
        raise ValueError(f"load_npz: {path}: non-finite values in {bad}")
    return _unflat({k: jnp.asarray(v, jnp.float32) for k, v in flat.items()})


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float):
    return load_npz(path)


def load_cached(path) -> dict:
    """`load_npz`, reusing the result while the file is unchanged (per-clip preprocessing)."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_cached: no such file {path!r}")
    return _load_cached(path, os.path.getmtime(path))


# ---------------------------------------------------------------- AMAN view


@functools.partial(jax.jit, static_argnames=("config", "factors", "pad"))
def _against_onset(params, x, onset, *, config: Config, factors, pad):
    model = Magnifier(**config._asdict())
    (pt, pb), (pl, pr) = pad
    amps = jnp.asarray(factors, jnp.float32)

    def one_clip(args):
        clip, on = args  # (T, H, W, C) in [0, 1], ()
        t, h, w, _ = clip.shape
        z = jnp.pad(clip * 2.0 - 1.0, ((0, 0), (pt, pb), (pl, pr), (0, 0)), mode="reflect")
        texture, shape = model.apply(params, z, method=Magnifier.encode)
        shape_a = jnp.broadcast_to(shape[on], shape.shape)

        def one_factor(amp):
            out = model.apply(
                params,
                texture,
                model.apply(params, shape_a, shape, amp, method=Magnifier.manipulate),
                method=Magnifier.decode,
            )
            return out[:, pt : pt + h, pl : pl + w]

        out = jax.lax.map(one_factor, amps)  # (K, T, H, W, C)
        return (jnp.clip(out, -1.0, 1.0) + 1.0) / 2.0

    return jax.lax.map(one_clip, (x, onset))


def magnify_against_onset(params, frames, factors: Sequence[float], onset=0):
    """Each frame magnified against its clip's onset frame by the learned magnifier, at every
    factor: the layout of `mer_jax.preprocess.evm.magnify_against_onset` (AMAN, seed 003, Sec. 2.1:
    I_mag^i = f(I_on, I_sel, amp_i)).

    params: Magnifier weights (`load_npz`; the architecture is read off them). frames
    (N, T, H, W, C) uint8 or float in [0, 1], C the weights' channels (or 1 with 3-channel
    weights: grey in, grey out); onset int or (N,). Frames are reflect-padded to multiples of
    4 and cropped back. Returns (N, K, T, H, W, C) float32 in [0, 1]; factor 1 is each frame
    passed through the network.
    """
    config = config_from_params(params)
    x = jnp.asarray(frames)
    if x.ndim != 5 or x.shape[-1] not in (1, config.channels):
        raise ValueError(
            f"magnify_against_onset: frames must be (N, T, H, W, {config.channels}), got {x.shape}"
        )
    if x.dtype == jnp.uint8:
        x = x.astype(jnp.float32) / 255.0
    elif not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"magnify_against_onset: frames must be uint8 or float, got {x.dtype}")
    x = x.astype(jnp.float32)
    grey = x.shape[-1] != config.channels
    if grey:
        x = jnp.repeat(x, config.channels, axis=-1)
    n, t, h, w, _ = x.shape
    factors = tuple(float(a) for a in factors)
    if not factors:
        raise ValueError("magnify_against_onset: factors is empty")
    if min(factors) < 0:
        raise ValueError(f"magnify_against_onset: factors {factors} must be >= 0")
    onset_np = np.broadcast_to(np.asarray(onset), (n,))
    if not np.issubdtype(onset_np.dtype, np.integer):
        raise TypeError(f"magnify_against_onset: onset must be integer, got {onset_np.dtype}")
    if ((onset_np < 0) | (onset_np >= t)).any():
        b = int(np.flatnonzero((onset_np < 0) | (onset_np >= t))[0])
        raise ValueError(f"magnify_against_onset: onset[{b}]={onset_np[b]} outside [0, {t})")
    if min(h, w) < 4:
        raise ValueError(f"magnify_against_onset: frames are {h}x{w}; need at least 4x4")
    ph, pw = -h % 4, -w % 4
    pad = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
    out = _against_onset(
        params, x, jnp.asarray(onset_np, jnp.int32), config=config, factors=factors, pad=pad
    )
    return out.mean(axis=-1, keepdims=True) if grey else out
