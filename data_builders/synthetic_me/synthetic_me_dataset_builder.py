"""synthetic_me: a procedural micro-expression corpus, no input files.

Faces, action-unit deformations and cameras come from `faces.py`; this file
only fixes the corpus shapes (configs) and writes the examples. Build with
`file_format='array_record'` (no TensorFlow needed).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from data_builders.synthetic_me import faces

Source = faces.Source


@dataclasses.dataclass(eq=False, kw_only=True)
class SyntheticMEConfig(tfds.core.BuilderConfig, faces.CorpusSpec):
    """A corpus shape. Every generator knob is a field, from `faces.CorpusSpec`:
    class_names, sources, image_size, amplitude_px, subject_gain, clip_gain,
    head_motion_px, seed."""


# Cameras: CASME II clean colour; SMIC lower resolution, noisier, warmer and
# shorter (100 fps); SAMM grey-scale with its own gamma and contrast (200 fps).
_CASME2_CAMERA = dict(num_frames=(16, 28), noise_std=1.5)
_SMIC_CAMERA = dict(
    num_frames=(10, 18), render_scale=0.5, noise_std=3.0, white_balance=(1.06, 1.0, 0.88)
)
_SAMM_CAMERA = dict(num_frames=(18, 30), grey=True, gamma=0.8, contrast=1.25, noise_std=2.0)

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
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.image_size
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "frames": tfds.features.Tensor(
                        shape=(None, size, size, 3), dtype=np.uint8, encoding="zlib"
                    ),
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
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Nothing to download.
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        config = self.builder_config
        for clip in faces.plan_corpus(config).clips:
            yield (
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
