"""The builder base and configs shared by the micro-expression builders (CASME, CASME II,
SAMM, SMIC, CAS(ME)^3, 4DME).

A builder turns each row of its official coding sheet (for SMIC, each clip
folder) into a `clips.Record`, checks every record against the frame folders
before anything is written (`clips.plan_clip`), then stores per clip the frames
onset..offset (config `frames='onset_offset'`) or the whole clip folder
(`frames='all'`), each resized to S x S with cv2.INTER_AREA, as RGB uint8; grey
frames come back replicated to 3 channels. `onset`, `apex`, `offset` index the
stored frames; `onset_frame`, `apex_frame`, `offset_frame` keep the sheet's
frame numbers (-1 where the sheet has none). No `label`: label_schemes maps the
stored `emotion` (or `objective_class`) to the classes of a protocol.

Action units: `action_units` keeps the sheet's string; `action_unit_vector` is
its multi-hot over `sheets.ACTION_UNITS` (FACS AU1..AU46, 44 codes, uint8) and
`action_units_coded` says whether the clip has AU coding at all (False: SMIC,
which codes none, or an empty / '/' cell; the vector is then all zeros, meaning
unknown, not 'no AU'). A cell `sheets.action_unit_codes` cannot read stops the
build naming the file and row (fix it with rule R4).

View configs (`data_builders/views.py`) read the frames the same way and
store, instead of `frames`, one model input per clip in an `input` feature
(e.g. `cropped_flow_28`: the onset->apex flow at 28x28 of the cropped release),
computed with `mer_jax.preprocess`; `view_configs` makes them.

Sheet defects that these rules repair, each repair written to the example's
`repairs` text:
  R1 apex missing ('/', '-', empty, or a negative number such as SAMM's -1):
     apex := the middle frame of onset..offset, (onset + offset) // 2.
  R2 apex outside onset..offset: apex := the middle frame, as R1.
  R3 onset or offset missing: the first / last frame of the clip folder.
  R4 a row of `corrections.csv` in manual_dir (columns clip, column, value,
     note) replaces a cell of that clip before it is read; see `sheets.Corrections`.
One rule for gaps, in every config (onset..offset or `_all`, frames or view,
every dataset):
  G  a clip is stored whole or not at all: every frame number from the first to
     the last frame the config stores (onset..offset; `_all` and SMIC: the
     folder's first..last) must have its file. A gap stops the build naming the
     sheet row (SMIC: the clip folder), the clip folder and the missing frame's
     file (`clips.check_no_gap`); frames are never skipped or interpolated.
  G' CAS(ME)^3 only (its colour stream drops frames, so G would refuse most clips): the
     frames present are stored, the numbers of the missing ones between the first and
     last stored frame go to the `missing_frames` feature (empty under G), an onset /
     apex / offset whose file was dropped moves to the nearest present frame of
     onset..offset (recorded in `repairs`); nothing is interpolated (`clips._plan_with_gaps`).
Anything else stops the build with an `AnnotationError` naming the file and
row: a missing column, a duplicate clip, onset > offset, a cell that is not a
frame number, a missing clip folder or frame file, an unreadable image.

Modules: `sheets` finds the user's files and reads the coding sheets and
corrections; `clips` holds the records and applies R1-R3; this module holds the
configs, the features and `MEBuilder`.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from data_builders import clips, sheets, views
from data_builders.clips import FRAME_MODES, Plan, Record
from data_builders.sheets import AnnotationError


@dataclasses.dataclass(eq=False, kw_only=True)
class MEConfig(tfds.core.BuilderConfig):
    """Which unpacked release to read, the frame size S frames are read at, and which
    frames; with a `view`, the model input computed from them is stored instead.
    `face_crop`: crop every frame to the face box found on the clip's onset frame
    (`mer_jax.preprocess.face`, OpenCV's packaged Haar cascade) before resizing to S; a clip
    whose onset frame shows no face stops the build with its sheet row. `face_align`:
    instead, align every frame by one transform from the onset frame's 68 landmarks
    (`mer_jax.preprocess.face.aligned_clip`; the `landmarks` extra), with the dlib shape predictor
    `landmark_model` ('' = the extra's packaged model)."""

    release: str = "raw"
    image_size: int = 112
    frames: str = "onset_offset"
    view: views.View | None = None
    face_crop: bool = False
    face_align: bool = False
    landmark_model: str = ""


FACE_NOTE = ", face cropped (Haar box of the onset frame)"
ALIGN_NOTE = ", face aligned (eyes levelled by the onset frame's 68 landmarks)"


def release_configs(
    releases,
    sizes,
    *,
    named_release: bool = True,
    note: str = "",
    face_crop: bool = False,
    face_align: bool = False,
) -> list[MEConfig]:
    """One config per release x frame size x frame mode, named
    '<release>[_face|_aligned]_<size>[_all]' ('_all': every frame of the clip folder, else
    onset..offset; '_face': `face_crop`, '_aligned': `face_align`). `named_release=False`
    leaves the release out of the description (datasets that ship one release)."""
    out = []
    face = "_face" if face_crop else "_aligned" if face_align else ""
    cropped = FACE_NOTE if face_crop else ALIGN_NOTE if face_align else ""
    for release in releases:
        for size in sizes:
            for frames in FRAME_MODES:
                suffix = "" if frames == "onset_offset" else "_all"
                span = "onset..offset" if frames == "onset_offset" else "every frame of the folder"
                where = f"{release} release, " if named_release else ""
                out.append(
                    MEConfig(
                        name=f"{release}{face}_{size}{suffix}",
                        description=f"{where}{span}{cropped}, frames {size}x{size}{note}.",
                        release=release,
                        image_size=size,
                        frames=frames,
                        face_crop=face_crop,
                        face_align=face_align,
                    )
                )
    return out


def view_configs(
    base: MEConfig, prefix: str, view_list: Sequence[views.View], *, note: str = ""
) -> list[MEConfig]:
    """One config per view, named '<prefix>_<view name>', reading frames as `base` does (its
    release, frame mode and any other field) at the view's `frames_size`."""
    out = []
    for view in view_list:
        span = "onset..offset" if base.frames == "onset_offset" else "every frame of the folder"
        size = view.frames_size
        out.append(
            dataclasses.replace(
                base,
                name=f"{prefix}_{view.name}",
                description=(
                    f"{base.description or ''}{view.describe()}; from {span} read at "
                    f"{size}x{size}{note}."
                ),
                image_size=size,
                view=view,
            )
        )
    return out


def whole_frame_configs(sizes, *, note: str = "") -> list[MEConfig]:
    """The configs of a dataset that ships whole frames of one release 'raw' (SAMM, CAS(ME)^3,
    4DME): 'raw_<S>[_all]', the face-cropped 'raw_face_<S>[_all]' and aligned
    'raw_aligned_<S>[_all]', and the seed views of each ('raw_flow_28', 'raw_face_flow_28', ...)."""
    out = []
    for face in ("", "_face", "_aligned"):
        crop, align = face == "_face", face == "_aligned"
        out += release_configs(
            ("raw",), sizes, named_release=False, note=note, face_crop=crop, face_align=align
        )
        base = MEConfig(
            name=f"raw{face}",
            release="raw",
            face_crop=crop,
            face_align=align,
            description=(FACE_NOTE if crop else ALIGN_NOTE if align else "")[2:]
            + (", " if face else ""),
        )
        out += view_configs(base, base.name, views.SEED_VIEWS, note=note)
    return out


def features(image_size: int, view: views.View | None = None) -> tfds.features.FeaturesDict:
    """The features every micro-expression builder writes: `frames`, or a view's `input`."""
    text = tfds.features.Text
    scalar = lambda: tfds.features.Scalar(dtype=np.int32)
    pixels = {
        "frames": tfds.features.Tensor(
            shape=(None, image_size, image_size, 3), dtype=np.uint8, encoding="zlib"
        )
    }
    return tfds.features.FeaturesDict(
        {
            **(pixels if view is None else {"input": view.feature()}),
            "dataset": text(),
            "source": text(),
            "subject": text(),
            "clip": text(),
            "emotion": text(),
            "action_units": text(),
            "action_unit_vector": tfds.features.Tensor(
                shape=(len(sheets.ACTION_UNITS),), dtype=np.uint8
            ),
            "action_units_coded": tfds.features.Scalar(dtype=np.bool_),
            "objective_class": text(),
            "onset": scalar(),
            "apex": scalar(),
            "offset": scalar(),
            "onset_frame": scalar(),
            "apex_frame": scalar(),
            "offset_frame": scalar(),
            "repairs": text(),
            "missing_frames": tfds.features.Tensor(shape=(None,), dtype=np.int32),
        }
    )


def example(plan: Plan, config: MEConfig) -> dict:
    record = plan.record
    size = config.image_size
    sheet = lambda n: -1 if n is None else n
    face = config.face_crop or config.face_align
    return {
        "frames": (
            clips.face_cropped_frames(
                plan, size, align=config.face_align, landmark_model=config.landmark_model
            )
            if face
            else clips.load_frames(plan.paths, size, record.at)
        ),
        "dataset": record.dataset,
        "source": record.source,
        "subject": record.subject,
        "clip": record.clip,
        "emotion": record.emotion,
        "action_units": record.action_units,
        "action_unit_vector": sheets.action_unit_vector(record.au_codes),
        "action_units_coded": record.au_codes is not None,
        "objective_class": record.objective_class,
        "onset": plan.onset,
        "apex": plan.apex,
        "offset": plan.offset,
        "onset_frame": sheet(record.onset_frame),
        "apex_frame": sheet(record.apex_frame),
        "offset_frame": sheet(record.offset_frame),
        "repairs": "; ".join(plan.repairs),
        "missing_frames": np.asarray(plan.missing, np.int32),
    }


# ----------------------------------------------------------------------------
# The builder all micro-expression datasets share.


def check_config(
    config: MEConfig, builder: str, releases: Sequence[str], *, has_apex: bool = True
) -> None:
    if config.release not in releases:
        raise ValueError(
            f"{builder} config {config.name!r}: release {config.release!r} not one of {releases}"
        )
    if config.frames not in FRAME_MODES:
        raise ValueError(
            f"{builder} config {config.name!r}: frames {config.frames!r} not one of {FRAME_MODES}"
        )
    if not isinstance(config.image_size, int) or config.image_size < 1:
        raise ValueError(
            f"{builder} config {config.name!r}: image_size {config.image_size!r} is not a "
            "positive int"
        )
    if config.face_crop and config.face_align:
        raise ValueError(
            f"{builder} config {config.name!r}: face_crop and face_align exclude each other"
        )
    if config.landmark_model and not config.face_align:
        raise ValueError(
            f"{builder} config {config.name!r}: landmark_model is only read with face_align"
        )
    if config.view is not None:
        config.view.check(f"{builder} config {config.name!r}", has_apex=has_apex)


def landmark_model_info(config: MEConfig) -> dict:
    """The landmark model an aligned config uses ({} when not aligned): path and sha256."""
    if not config.face_align:
        return {}
    from mer_jax.preprocess import face

    try:
        path = face.landmark_model_path(config.landmark_model or None)
    except ImportError as e:  # the build itself stops with this message
        return {"landmark_model": f"unavailable: {e}"}
    return {"landmark_model": path, "landmark_model_sha256": views.file_sha256(path)}


def with_landmark_model(config: MEConfig, model: str) -> MEConfig:
    """An aligned config (`face_align`) using the dlib 68-point shape predictor `model`:
    named `<name>_lm_<sha256[:8]>`, its description naming the file."""
    if not getattr(config, "face_align", False):
        raise ValueError(
            f"config {config.name!r}: --landmark-model applies to aligned configs only"
        )
    path = os.path.abspath(os.fspath(model))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"landmark model {path} not found")
    sha = views.file_sha256(path)
    return dataclasses.replace(
        config,
        name=f"{config.name}_lm_{sha[:8]}",
        landmark_model=path,
        description=f"{config.description or ''} Landmarks: {os.path.basename(path)}.",
    )


class MEBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Reads a manual_dir with `_records`, checks every clip, writes one `train` split.

    Subclasses set pkg_dir_path, BUILDER_CONFIGS, MANUAL_DOWNLOAD_INSTRUCTIONS,
    RELEASES and implement `_records(manual_dir)`.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    RELEASES: tuple[str, ...] = ("raw",)
    HAS_APEX = True  # False: no apex annotation (SMIC); views must pick an apex rule.
    HOMEPAGE: str = ""

    def _info(self) -> tfds.core.DatasetInfo:
        config = self.builder_config
        check_config(config, self.name, self.RELEASES, has_apex=self.HAS_APEX)
        metadata = None
        if config.view is not None:
            frames = {
                "release": config.release,
                "mode": config.frames,
                "size": config.image_size,
                "face_crop": config.face_crop,
                "face_align": config.face_align,
                **landmark_model_info(config),
            }
            metadata = views.metadata_dict(config.view, frames)
        return self.dataset_info_from_configs(
            features=features(config.image_size, config.view),
            homepage=self.HOMEPAGE or None,
            disable_shuffling=True,  # Keep the sheet's order.
            metadata=metadata,
        )

    @abc.abstractmethod
    def _records(self, root: Path) -> list[Record]:
        """One Record per clip, in the order to store them."""

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = sheets.manual_dir(dl_manager)
        records = self._records(root)
        if not records:
            raise AnnotationError(f"{self.name}: no clips found in {root}")
        plans = clips.plan_all(records, self.builder_config.frames, name=self.name)
        return {"train": self._generate_examples(plans)}

    def _generate_examples(self, plans: Sequence[Plan]):
        config = self.builder_config
        examples = ((plan.record.clip, example(plan, config)) for plan in plans)
        if config.view is None:
            yield from examples
        else:  # The frames config's examples, mapped to its view a batch of clips at a time.
            yield from views.with_inputs(config.view, examples)
