"""synthetic_me: a procedural micro-expression corpus, no input files.

Faces, action-unit deformations and cameras come from `faces.py`; this file
only fixes the corpus shapes (configs) and writes the examples. Build with
`file_format='array_record'` (no TensorFlow needed).

View configs `<corpus>_<view>` (`data_builders/views.py`) render the same clips
and store one model input per clip in `input` instead of `frames`: the five
seed views of `casme2`, the views the experiments' `:quick` variants read
(`casme2_apex_56`, `casme2_evm_apex_32`, `casme2_aman_5x3_32`,
`casme2_flowseq_8x32_dis`; `flow_28` is shared), seed 000's 240 px apex
(resized to 240 and randomly cropped to 224 by the sweep, as the authors'
Caffe net) of `casme2` and `casme2_subtle`, and the composite views of
`megc2019` (seeds 001 and 002 run CDE on it; `flow_28_strain` for the STSTNet
baseline). Views are computed from the frames as rendered (at the corpus size),
apex = the generator's apex.

`macro5` and `macro3` stand in for the macro-expression pre-training sets of
seeds 000 (CK+, Oulu-CASIA, JAFFE, MUG) and 001 (CK+, RAF-DB, FER-2013): the
classes of `casme2` / `megc2019` in the same order (the same action units per
class), one `Source` per dataset with its own camera, larger motion, other
people. Their views pair with the subtle corpora's for pre-training ->
fine-tuning: `macro5_apex_56` / `casme2_subtle_apex_56` (micro-attention) and
`macro3_evm_apex_32` / `megc2019_subtle_evm_apex_32` (dense-mixed-attention).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from data_builders import views
from data_builders.synthetic_me import faces

Source = faces.Source


@dataclasses.dataclass(eq=False, kw_only=True)
class SyntheticMEConfig(tfds.core.BuilderConfig, faces.CorpusSpec):
    """A corpus shape. Every generator knob is a field, from `faces.CorpusSpec`:
    class_names, sources, image_size, amplitude_px, subject_gain, clip_gain,
    head_motion_px, seed. With a `view`, that model input is stored instead of frames."""

    view: views.View | None = None


# Cameras: CASME II clean colour; SMIC lower resolution, noisier, warmer and
# shorter (100 fps); SAMM grey-scale with its own gamma and contrast (200 fps).
_CASME2_CAMERA = dict(num_frames=(16, 28), noise_std=1.5)
_SMIC_CAMERA = dict(
    num_frames=(10, 18), render_scale=0.5, noise_std=3.0, white_balance=(1.06, 1.0, 0.88)
)
_SAMM_CAMERA = dict(num_frames=(18, 30), grey=True, gamma=0.8, contrast=1.25, noise_std=2.0)

# Macro-expression cameras, stand-ins for the pre-training sets: posed, short clips. CK+
# mostly grey frames; Oulu-CASIA VIS a noisy low-resolution webcam; JAFFE grey scans, low
# contrast; MUG clean colour; RAF-DB in-the-wild colour of middling quality; FER-2013 grey
# 48x48 (rendered at 48 and upsampled).
_MACRO_FRAMES = dict(num_frames=(8, 12))
_CK_CAMERA = dict(**_MACRO_FRAMES, grey=True, contrast=1.15, noise_std=2.0)
_OULU_CAMERA = dict(
    **_MACRO_FRAMES, render_scale=0.6, noise_std=3.5, white_balance=(1.08, 1.0, 0.9)
)
_JAFFE_CAMERA = dict(
    **_MACRO_FRAMES, grey=True, render_scale=0.8, gamma=1.2, contrast=0.85, noise_std=1.0
)
_MUG_CAMERA = dict(**_MACRO_FRAMES, gamma=0.9, noise_std=1.0)
_RAF_CAMERA = dict(
    **_MACRO_FRAMES,
    render_scale=0.75,
    gamma=1.1,
    contrast=0.9,
    noise_std=2.5,
    white_balance=(0.95, 1.0, 1.08),
)
_FER_CAMERA = dict(**_MACRO_FRAMES, grey=True, render_scale=48 / 112, contrast=1.1, noise_std=3.0)
_MACRO_AMPLITUDE_PX = 8.0  # Macro-expressions are big: twice `casme2`, 8x `casme2_subtle`.

_CASME2_CLASSES = ("happiness", "surprise", "disgust", "repression", "others")
_MEGC_CLASSES = ("negative", "positive", "surprise")


def _subtle(config: SyntheticMEConfig) -> SyntheticMEConfig:
    return dataclasses.replace(
        config,
        name=f"{config.name}_subtle",
        amplitude_px=1.0,
        description=f"{config.description} Subtle: 1 px peak displacement at 112x112.",
    )


_CASME2 = SyntheticMEConfig(
    name="casme2",
    description=(
        "Shaped like CASME II (5 classes): 26 subjects, 246 clips, colour, "
        "112x112, 16-28 frames, 4 px peak displacement."
    ),
    class_names=_CASME2_CLASSES,
    sources=(Source("casme2", 26, (32, 25, 63, 27, 99), 19, **_CASME2_CAMERA),),
)
_MEGC2019 = SyntheticMEConfig(
    name="megc2019",
    description=(
        "Shaped like the MEGC 2019 composite (3 classes): SMIC 16 subjects / 164 "
        "clips, CASME II 24 / 145, SAMM 28 / 133 (grey); 112x112, 4 px peak "
        "displacement."
    ),
    class_names=_MEGC_CLASSES,
    sources=(
        Source("smic", 16, (70, 51, 43), 25, **_SMIC_CAMERA),
        Source("casme2", 24, (88, 32, 25), 19, **_CASME2_CAMERA),
        Source("samm", 28, (92, 26, 15), 16, **_SAMM_CAMERA),
    ),
)
# The paper tables' `:synthetic` stand-ins (mer_jax/recipes): a composite as small as a 2-core
# CPU trains LOSO in about a minute, with the three sources of the pooled protocols.
_MEGC2019_MINI = SyntheticMEConfig(
    name="megc2019_mini",
    description=(
        "The MEGC 2019 composite in miniature (3 classes): SMIC, CASME II and SAMM (grey) 4 "
        "subjects / 20 clips each; 112x112, 4 px peak displacement."
    ),
    class_names=_MEGC_CLASSES,
    seed=2019,
    sources=(
        Source("smic", 4, (8, 6, 6), 7, **_SMIC_CAMERA),
        Source("casme2", 4, (8, 6, 6), 7, **_CASME2_CAMERA),
        Source("samm", 4, (8, 6, 6), 7, **_SAMM_CAMERA),
    ),
)
# Seed 002's CDMER tables' `:synthetic` stand-in (mer_jax/recipes/feature_refinement.py): the
# four CDMER databases in miniature, SMIC-HS / -VIS / -NIR cameras and CASME II, 5 subjects each
# (the five-fold protocol needs five target subjects).
_CDMER_MINI = SyntheticMEConfig(
    name="cdmer_mini",
    description=(
        "The four CDMER databases in miniature (3 classes): SMIC-HS, SMIC-VIS (25 fps: short "
        "clips), SMIC-NIR (grey) and CASME II, 5 subjects / 15-16 clips each; 112x112, 4 px "
        "peak displacement."
    ),
    class_names=_MEGC_CLASSES,
    seed=2002,
    sources=(
        Source("smic", 5, (6, 5, 5), 5, **_SMIC_CAMERA),
        Source("smic_vis", 5, (5, 5, 5), 5, **{**_SMIC_CAMERA, "num_frames": (5, 8)}),
        Source(
            "smic_nir",
            5,
            (5, 5, 5),
            5,
            **{**_SMIC_CAMERA, "num_frames": (10, 18), "grey": True, "noise_std": 3.5},
        ),  # fmt: skip
        Source("casme2", 5, (6, 5, 5), 5, **_CASME2_CAMERA),
    ),
)
# Pre-training corpora: the classes (and so the action units) of the fine-tuning corpus,
# several "datasets" with their own cameras, larger motion, other people (their own seed:
# no identity is shared with `casme2` / `megc2019`).
_MACRO5 = SyntheticMEConfig(
    name="macro5",
    description=(
        "Macro-expression pre-training stand-in for seed 000 (CK+, Oulu-CASIA, JAFFE, MUG), "
        "in the 5 classes of `casme2`: 34 subjects, 348 clips, 112x112, 8-12 frames, 8 px "
        "peak displacement; grey CK+-like, noisy low-resolution Oulu-like, grey low-contrast "
        "JAFFE-like, clean colour MUG-like cameras."
    ),
    class_names=_CASME2_CLASSES,
    amplitude_px=_MACRO_AMPLITUDE_PX,
    seed=1000,
    sources=(
        Source("macro_ck", 10, (18, 18, 14, 12, 18), 12, **_CK_CAMERA),
        Source("macro_oulu", 8, (20, 20, 20, 20, 20), 15, **_OULU_CAMERA),
        Source("macro_jaffe", 6, (12, 12, 12, 12, 12), 12, **_JAFFE_CAMERA),
        Source("macro_mug", 10, (24, 24, 20, 16, 24), 14, **_MUG_CAMERA),
    ),
)
_MACRO3 = SyntheticMEConfig(
    name="macro3",
    description=(
        "Macro-expression pre-training stand-in for seed 001 (CK+, RAF-DB, FER-2013), in the "
        "3 classes of `megc2019`: 34 subjects, 350 clips, 112x112, 8-12 frames, 8 px peak "
        "displacement; grey CK+-like, in-the-wild colour RAF-like, grey 48x48 FER-like "
        "cameras."
    ),
    class_names=_MEGC_CLASSES,
    amplitude_px=_MACRO_AMPLITUDE_PX,
    seed=1001,
    sources=(
        Source("macro_ck", 12, (50, 30, 30), 12, **_CK_CAMERA),
        Source("macro_raf", 12, (50, 40, 30), 14, **_RAF_CAMERA),
        Source("macro_fer", 10, (50, 40, 30), 16, **_FER_CAMERA),
    ),
)
_TINY = SyntheticMEConfig(
    name="tiny",
    description="For tests: SMIC-like and grey SAMM-like, 2 subjects each, 24 clips, 32x32.",
    class_names=_MEGC_CLASSES,
    image_size=32,
    sources=(
        Source(
            "smic", 2, (3, 3, 3), 8, **{**_SMIC_CAMERA, "num_frames": (8, 10), "render_scale": 0.75}
        ),
        Source("samm", 2, (5, 5, 5), 10, **{**_SAMM_CAMERA, "num_frames": (8, 10)}),
    ),
)


def _views(corpus: SyntheticMEConfig, view_list) -> list[SyntheticMEConfig]:
    return [
        dataclasses.replace(
            corpus,
            name=f"{corpus.name}_{view.name}",
            description=f"{view.describe()}; of the {corpus.name} corpus: {corpus.description}",
            view=view,
        )
        for view in view_list
    ]


_APEX_56 = views.apex_view(56)  # experiments/quickstart.py
_EVM_APEX_32 = views.evm_apex_view(32)  # dense_mixed_attention_synthetic.py:quick
_QUICK_VIEWS = (
    _APEX_56,
    _EVM_APEX_32,
    views.aman_view(5, (1.0, 4.0, 8.0), size=32),  # aman_synthetic.py:quick
    views.flowseq_view(8, 32, flow_method="dis"),  # stanet_synthetic.py:quick
)
_APEX_240 = views.apex_view(240)  # micro_attention_synthetic.py (crops of 224)


class Builder(tfds.core.GeneratorBasedBuilder):
    """Procedural micro-expression clips; one `train` split (LOSO makes the folds)."""

    # README.md sits here. Set explicitly: inferring it resolves the top-level
    # package by name, which a test package named `data_builders` can shadow.
    pkg_dir_path = epath.Path(__file__).parent
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        _CASME2,
        _subtle(_CASME2),
        _MEGC2019,
        _subtle(_MEGC2019),
        _TINY,
        *_views(_CASME2, (*views.SEED_VIEWS, _APEX_240, *_QUICK_VIEWS)),
        *_views(_subtle(_CASME2), (_APEX_240, _APEX_56)),
        *_views(_MEGC2019, (views.evm_apex_view(112), views.flow_view(28))),
        # STSTNet (experiments/baselines/ststnet_megc2019.py): flow + optical strain.
        *_views(_MEGC2019, (views.flow_view(28, channels=3),)),
        *_views(_subtle(_MEGC2019), (_EVM_APEX_32,)),
        # The tables' :synthetic runs: seed 000 (apex 56) and seed 001 (EVM apex 32).
        *_views(_MEGC2019_MINI, (_APEX_56, _EVM_APEX_32)),
        # Frames of the mini composite: seeds 002-004's tables compute their inputs at load time.
        _MEGC2019_MINI,
        _CDMER_MINI,  # seed 002's CDMER tables, :synthetic
        _MACRO5,
        _MACRO3,
        # Pre-training -> fine-tuning at the quick inputs: micro-attention (apex 56) and
        # dense-mixed-attention (EVM apex 32).
        *_views(_MACRO5, (_APEX_56,)),
        *_views(_MACRO3, (_EVM_APEX_32,)),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        config = self.builder_config
        size, view = config.image_size, config.view
        pixels = {
            "frames": tfds.features.Tensor(
                shape=(None, size, size, 3), dtype=np.uint8, encoding="zlib"
            )
        }
        metadata = None
        if view is not None:
            view.check(f"synthetic_me config {config.name!r}")
            metadata = views.metadata_dict(view, {"corpus_size": size, "rendered": True})
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    **(pixels if view is None else {"input": view.feature()}),
                    "label": tfds.features.ClassLabel(names=self.builder_config.class_names),
                    "emotion": tfds.features.Text(),
                    "action_units": tfds.features.Text(),
                    "subject": tfds.features.Text(),
                    "clip": tfds.features.Text(),
                    "source": tfds.features.Text(),
                    "onset": tfds.features.Scalar(dtype=np.int32),
                    "apex": tfds.features.Scalar(dtype=np.int32),
                    "offset": tfds.features.Scalar(dtype=np.int32),
                }
            ),
            disable_shuffling=True,
            metadata=metadata,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Nothing to download.
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        config = self.builder_config
        examples = (
            (
                clip.index,
                {
                    "frames": faces.render_clip(config, clip),
                    "label": clip.label,
                    "emotion": clip.emotion,
                    "action_units": clip.action_units,
                    "subject": clip.subject.id,
                    "clip": clip.id,
                    "source": clip.subject.source.name,
                    "onset": clip.onset,
                    "apex": clip.apex,
                    "offset": clip.offset,
                },
            )
            for clip in faces.plan_corpus(config).clips
        )
        if config.view is None:
            yield from examples
        else:  # The rendered clips mapped to the view, a batch of clips at a time.
            yield from views.with_inputs(config.view, examples)
