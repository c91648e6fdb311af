"""Model-input views stored as builder configs: each clip's input computed once, at build time.

Each seed feeds its network its own view of a clip (`mer_jax/preprocess/representations.py`
computes it). A view config of a micro-expression builder stores that view in
an `input` feature (a Tensor of fixed shape and dtype) instead of `frames`,
beside the same metadata (subject, clip, emotion or label, onset/apex/offset,
source, ...), so a sweep just names its input:

    mer-jax data build casme2/cropped_flow_28 --manual-dir DIR
    mer-jax sweep experiments/feature_refinement_synthetic.py \
        --set dataset=casme2/cropped_flow_28 --set input.label_scheme=casme2_5class

Naming: a view config is a frames config's name with the frame size replaced by
the view's name: `casme2/cropped_112` holds frames of the cropped release,
`casme2/cropped_flow_28` the flow view of the same release; SMIC
`hs_cropped_112` -> `hs_cropped_evm_apex_112`; the synthetic corpus
`casme2` -> `casme2_flow_28`. The five seed views (`SEED_VIEWS`):

| view             | seed | input                                   | frames read at |
|------------------|------|-----------------------------------------|----------------|
| `apex_224`       | 000  | (224, 224, 1) uint8 grey apex frame     | 224            |
| `evm_apex_112`   | 001  | (112, 112, 3) uint8 EVM-magnified apex  | 112            |
| `flow_28`        | 002  | (28, 28, 2) float32 onset->apex TV-L1   | 112            |
| `aman_11x9`      | 003  | (11, 9, 224, 224, 3) uint8              | 224            |
| `flowseq_20x192` | 004  | (20, 192, 192, 2) float32               | 192            |

Other names follow the same pattern: `apex_<S>`, `evm_apex_<S>`, `flow_<S>`,
`apex_<S>[_rgb]` (grey unless `_rgb`), `flow_<S>[_strain]` (+ optical strain),
`aman_<n>x<k>[_<S>][_tim<L>]` (S = 224 unless given; TIM to L = 20 frames,
then n of them at the largest interval that fits unless `_tim<L>`: seed 003
Sec. 2.1, `mer_jax.preprocess.tim.sample_indices`), `flowseq_<T>x<S>[_<method>]`
(TV-L1 in JAX unless given).

Apex rule: the annotation where the dataset has one (`ground_truth`; sheet
repairs as in `me_common`); SMIC has none, so its apex views follow the seeds'
papers: `mid_clip` for `apex_*` (seed 000) and `evm_apex_*` (seed 001 does not
say; the mid-clip frame, as seed 000), `interframe_diff` for `flow_*` (seed
002). The AMAN and STANet views use onset..offset and no apex.

Flow: `flow_*` uses OpenCV's TV-L1 (one pair per clip, the paper's method);
`flowseq_*` uses the JAX TV-L1 (`mer_jax/preprocess/flow.py`, same algorithm and defaults,
agreeing to a fraction of a pixel), which runs the 20 pairs of `BATCH_CLIPS`
clips as one batched program on the accelerator (`with_inputs`; AMAN's stacks
are batched the same way). EVM (`evm_apex_*`): `mer_jax/preprocess/evm.py` with the band
read as fractions of Nyquist (see `EVM`), `BATCH_CLIPS` clips per call, each
filtered at its own length, only the apex frame reconstructed (`evm.magnify_frame`). AMAN's magnifier: Eulerian
magnification against the onset unless the config names a learned-magnifier
checkpoint (`with_magnifier`, or `mer-jax data build ... --magnifier-checkpoint
W.npz`), which gives the config a `_learned_<sha256[:8]>` suffix. Every setting,
the magnifier included, is written into the dataset info: the config's
description and `metadata.json` (`info.metadata['view']`). `mer_jax.data`
loads the stored input as it is; the sweep's view keys (`input.image_size`,
...) are not used for it, and each that differs from the stored setting is
named in a log line.

The view is computed per clip with the very functions a sweep's on-the-fly path
uses, from frames read exactly as the frames config reads them; `mer_jax.data`
loads the stored `input` directly. What each representation reads, and the
shape and dtype of its input, come from the one table
`mer_jax.preprocess.representations.REPRESENTATIONS`; a view adds its name, its
settings and how its frames are read.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds

from data_builders.fingerprint import file_sha256
from mer_jax.preprocess import flow, representations, tim

EULERIAN = "eulerian"
# SMIC (no apex annotation): the rule each seed uses; representations absent here read no apex.
UNANNOTATED_APEX = {"apex": "mid_clip", "evm_apex": "mid_clip", "flow": "interframe_diff"}


@dataclasses.dataclass(frozen=True)
class EVM:
    """Eulerian magnification of seed 001 (`mer_jax.preprocess.evm.magnify`, the `input.evm` keys):
    alpha 15 in the 0.1-0.4 band read as fractions of Nyquist (seed 001's "0.1-0.4 Hz"
    selects no FFT bin of a 30-70 frame clip), ideal filter, lambda_c 16."""

    alpha: float = 15.0
    low: float = 0.1
    high: float = 0.4
    fps: float = 200.0
    filter: str = "ideal"
    lambda_c: float = 16.0


@dataclasses.dataclass(frozen=True)
class View:
    """One model input: the `preprocess` representation and every setting it reads.

    `read_size`: real datasets read (resize) their frames to this size first, as
    the frames config of that size does (None: `size`); synthetic corpora render
    at their own size and ignore it.
    """

    name: str
    representation: str
    size: int
    read_size: int | None = None
    channels: int = 3
    apex: str = "ground_truth"
    flow_method: str = "tvl1"
    num_frames: int = 0
    factors: tuple[float, ...] = ()
    magnifier_checkpoint: str = ""  # '' = Eulerian; else a learned-magnifier .npz
    magnifier_sha256: str = ""
    evm: EVM = EVM()
    # aman_stack (seed 003 Sec. 2.1): TIM to this many frames, then num_frames of them at
    # frame_interval from the first (0: the largest that fits; tim.sample_indices).
    tim_length: int = tim.AMAN_TIM_LENGTH
    frame_interval: int = 0

    @property
    def frames_size(self) -> int:
        return self.read_size or self.size

    @property
    def magnifier(self) -> str:
        return "learned" if self.magnifier_checkpoint else EULERIAN

    def spec(self) -> dict:
        """The sweep config's `input` keys this view fixes (what preprocess reads)."""
        return {
            "representation": self.representation,
            "image_size": self.size,
            "channels": self.channels,
            "apex": self.apex,
            "flow_method": self.flow_method,
            "num_frames": self.num_frames,
            "factors": list(self.factors),
            "magnifier_checkpoint": self.magnifier_checkpoint,
            "evm": dataclasses.asdict(self.evm),
            "tim_length": self.tim_length,
            "frame_interval": self.frame_interval,
        }

    @property
    def table(self) -> representations.Representation:
        """Its row of `representations.REPRESENTATIONS` (what it reads, shape and dtype)."""
        return representations.REPRESENTATIONS[self.representation]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.table.shape(self.spec()))

    @property
    def dtype(self) -> type:
        return self.table.dtype

    def feature(self) -> tfds.features.Tensor:
        return tfds.features.Tensor(
            shape=self.shape, dtype=self.dtype, encoding="zlib", doc=self.describe()
        )

    def describe(self) -> str:
        """One line with every setting, for the config description and error messages."""
        shape = "x".join(str(d) for d in self.shape)
        dtype = np.dtype(self.dtype).name
        apex = f", apex {self.apex}" if self.table.reads_apex else ""
        what = _WHAT[self.representation](self)
        return f"view {self.name}: {what}{apex}; input {shape} {dtype}"

    def metadata(self) -> dict:
        """JSON for `info.metadata['view']` (mer_jax.data reads it back)."""
        return {
            "name": self.name,
            "description": self.describe(),
            "shape": list(self.shape),
            "dtype": np.dtype(self.dtype).name,
            "magnifier": self.magnifier,
            "magnifier_sha256": self.magnifier_sha256,
            "input": self.spec(),
        }

    def check(self, where: str, *, has_apex: bool = True) -> None:
        """ValueError naming `where` (the builder config) and the field for a bad setting."""
        bad = _problem(self, has_apex)
        if bad:
            raise ValueError(f"{where}: view {self.name!r}: {bad}")

    def compute(self, frames: np.ndarray, onset: int, apex: int, offset: int, clip: str):
        """This view of one clip: `representations.REPRESENTATIONS[representation]`, shape-checked."""
        return self.compute_many([(frames, onset, apex, offset, clip)])[0]

    def compute_many(self, clips: Sequence[tuple]) -> np.ndarray:
        """This view of several clips `(frames, onset, apex, offset, clip id)`, (N, ...):
        one batched call where the representation has one (`Representation.batch`)."""
        batch = [
            representations.Clip(frames, int(onset), int(apex), int(offset), clip)
            for frames, onset, apex, offset, clip in clips
        ]
        x = np.asarray(representations.compute_batch(self.representation, batch, self.spec()))
        if x.shape[1:] != self.shape or x.dtype != self.dtype:
            names = ", ".join(c.id for c in batch)
            raise ValueError(
                f"clip(s) {names}: view {self.name} gave {x.shape[1:]} {x.dtype}, expected "
                f"{self.shape} {np.dtype(self.dtype).name}"
            )
        return x


def _what_evm(view: View) -> str:
    e = view.evm
    return (
        f"EVM-magnified apex frame (alpha {e.alpha:g}, band {e.low:g}-{e.high:g} of "
        f"Nyquist, {e.filter} filter, lambda_c {e.lambda_c:g})"
    )


def _what_aman(view: View) -> str:
    factors = ",".join(f"{a:g}" for a in view.factors)
    magnifier = (
        f"learned magnifier {os.path.basename(view.magnifier_checkpoint)} "
        f"(sha256 {view.magnifier_sha256[:12]})"
        if view.magnifier_checkpoint
        else "Eulerian magnification"
    )
    index = tim.sample_indices(view.num_frames, view.tim_length, view.frame_interval)
    step = int(index[1] - index[0]) if len(index) > 1 else 1
    return (
        f"onset..offset TIM-normalised to {view.tim_length} frames, {view.num_frames} of them "
        f"every {step} from the first, each magnified "
        f"against the onset at factors {factors} by {magnifier}"
    )


# Representation -> what a view of it holds, in words (`View.describe`).
_WHAT = {
    "apex": lambda v: "apex frame" + (" (grey)" if v.channels == 1 else ""),
    "evm_apex": _what_evm,
    "flow": lambda v: (
        f"onset->apex {v.flow_method} optical flow"
        + (" + optical strain" if v.channels == 3 else "")
    ),
    "aman_stack": _what_aman,
    "flow_sequence": lambda v: (
        f"onset..offset linearly interpolated to {v.num_frames + 1} frames, "
        f"{v.flow_method} flow between adjacent frames"
    ),
}


def _positive_int(value) -> bool:
    return isinstance(value, int) and value >= 1


def _problem(view: View, has_apex: bool) -> str | None:
    """What is wrong with `view`'s settings, in words; None when nothing is."""
    known = tuple(representations.REPRESENTATIONS)
    if view.representation not in known:
        return f"representation {view.representation!r} not one of {known}"
    table = view.table
    if not _positive_int(view.size):
        return f"size {view.size!r} is not a positive int"
    if view.read_size is not None and not _positive_int(view.read_size):
        return f"read_size {view.read_size!r} is not a positive int"
    if view.apex not in representations.APEX_RULES:
        return f"apex {view.apex!r} not one of {representations.APEX_RULES}"
    if not has_apex and view.apex == "ground_truth" and table.reads_apex:
        return (
            "apex 'ground_truth', but this dataset has no apex annotation "
            "(use 'mid_clip' or 'interframe_diff')"
        )
    if view.flow_method not in flow.METHODS:
        return f"flow_method {view.flow_method!r} not one of {sorted(flow.METHODS)}"
    if table.channels and view.channels not in table.channels:
        return f"channels {view.channels!r}: {view.representation} views have {table.channels}"
    if "num_frames" in table.reads and view.num_frames < 1:
        return f"num_frames {view.num_frames!r} must be >= 1"
    if "factors" in table.reads and not view.factors:
        return "factors is empty"
    if "tim_length" in table.reads:
        try:
            tim.sample_indices(view.num_frames, view.tim_length, view.frame_interval)
        except ValueError as e:
            return f"tim_length {view.tim_length!r}, frame_interval {view.frame_interval!r}: {e}"
    if view.magnifier_checkpoint and "magnifier_checkpoint" not in table.reads:
        return "magnifier_checkpoint is only read by aman_stack views"
    return None


# Clips per view call while building: batched representations (aman_stack, flow_sequence)
# run this many clips as one accelerator program. Results do not depend on it.
BATCH_CLIPS = 8


def with_inputs(view: View, keyed_examples, batch: int = BATCH_CLIPS):
    """(key, example) pairs whose `frames` are replaced by the view's `input`, in order,
    computed `batch` clips at a time (the examples carry onset, apex, offset and clip)."""
    pending = []

    def flush():
        inputs = view.compute_many(
            [
                (ex.pop("frames"), ex["onset"], ex["apex"], ex["offset"], ex["clip"])
                for _, ex in pending
            ]
        )
        for (key, ex), x in zip(pending, inputs):
            ex["input"] = x
            yield key, ex
        pending.clear()

    for key, ex in keyed_examples:
        pending.append((key, ex))
        if len(pending) == batch:
            yield from flush()
    if pending:
        yield from flush()


def apex_view(size: int, channels: int = 1, **kw) -> View:
    name = f"apex_{size}" + ("_rgb" if channels == 3 else "")
    return View(name, "apex", size, channels=channels, **kw)


def evm_apex_view(size: int, **kw) -> View:
    return View(f"evm_apex_{size}", "evm_apex", size, **kw)


def flow_view(size: int, read_size: int = 112, channels: int = 2, **kw) -> View:
    name = f"flow_{size}" + ("_strain" if channels == 3 else "")
    return View(name, "flow", size, read_size=read_size, channels=channels, **kw)


def aman_view(num_frames: int, factors: Sequence[float], size: int = 224, **kw) -> View:
    """`aman_<n>x<k>[_<S>][_tim<L>][_every<s>]`: the last two only where TIM length L and the
    interval s are not seed 003's defaults (tim.AMAN_TIM_LENGTH; the largest that fits);
    tim_length=n is TIM straight to n frames."""
    tag = "" if size == 224 else f"_{size}"
    length = kw.get("tim_length", tim.AMAN_TIM_LENGTH)
    tag += "" if length == tim.AMAN_TIM_LENGTH else f"_tim{length}"
    tag += f"_every{kw['frame_interval']}" if kw.get("frame_interval") else ""
    name = f"aman_{num_frames}x{len(factors)}{tag}"
    return View(name, "aman_stack", size, num_frames=num_frames, factors=tuple(factors), **kw)


def flowseq_view(num_frames: int, size: int, flow_method: str = "tvl1_jax", **kw) -> View:
    tag = "" if flow_method == "tvl1_jax" else f"_{flow_method}"
    name = f"flowseq_{num_frames}x{size}{tag}"
    return View(
        name,
        "flow_sequence",
        size,
        channels=2,
        num_frames=num_frames,
        flow_method=flow_method,
        **kw,
    )


SEED_VIEWS: tuple[View, ...] = (
    apex_view(224),  # 000 Micro-Attention
    evm_apex_view(112),  # 001 Dense + mixed attention
    flow_view(28),  # 002 Feature Refinement
    aman_view(11, tuple(float(a) for a in range(1, 10))),  # 003 AMAN
    flowseq_view(20, 192),  # 004 STANet
)


def without_apex_annotation(view: View) -> View:
    """The view for a dataset with no apex annotation (SMIC): the seeds' apex rule."""
    rule = UNANNOTATED_APEX.get(view.representation)
    return dataclasses.replace(view, apex=rule) if rule else view


def with_magnifier(config, checkpoint: str):
    """`config` (an AMAN view config) using the learned magnifier `checkpoint` (.npz, see
    `mer_jax.magnifier.model`): named `<name>_learned_<sha256[:8]>`, its description and
    metadata recording the checkpoint's path and sha256."""
    view = getattr(config, "view", None)
    if view is None or view.representation != "aman_stack":
        raise ValueError(
            f"config {config.name!r}: --magnifier-checkpoint applies to AMAN views (aman_*) only"
        )
    path = os.path.abspath(os.fspath(checkpoint))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"magnifier checkpoint {path} not found")
    sha = file_sha256(path)
    view = dataclasses.replace(view, magnifier_checkpoint=path, magnifier_sha256=sha)
    return dataclasses.replace(
        config,
        name=f"{config.name}_learned_{sha[:8]}",
        view=view,
        description=(config.description or "").replace(config.view.describe(), view.describe()),
    )


def builder_with(name: str, changes, data_dir: str | None = None):
    """The builder of config `name` ('casme2/cropped_aman_11x9') with each of `changes`
    (config -> config, e.g. `with_magnifier`) applied in turn, to build into `data_dir`."""
    import data_builders

    dataset, _, config_name = name.partition("/")
    builder_cls = data_builders.import_builder(name).Builder
    configs = {c.name: c for c in builder_cls.BUILDER_CONFIGS}
    if config_name not in configs:
        raise ValueError(f"{dataset} has no config {config_name!r}; its configs: {sorted(configs)}")
    config = configs[config_name]
    for change in changes:
        config = change(config)
    return builder_cls(config=config, data_dir=data_dir)


def metadata_dict(view: View, frames: Mapping) -> tfds.core.MetadataDict:
    """`info.metadata` of a view config: the view's settings and how its frames were read."""
    return tfds.core.MetadataDict(view=view.metadata(), frames=dict(frames))
