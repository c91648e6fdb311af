"""synthetic_me: the built dataset (read back without TensorFlow) and its generator."""

import dataclasses

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

import data_builders.synthetic_me  # noqa: F401  (registers `synthetic_me`)
from data_builders import views
from data_builders.synthetic_me import faces
from data_builders.synthetic_me.synthetic_me_dataset_builder import Builder

CONFIGS = {c.name: c for c in Builder.BUILDER_CONFIGS}
TINY = CONFIGS["tiny"]


def _build(data_dir, config=None):
    """Builds `tiny` (or a custom config) and returns (builder, all examples in order)."""
    if config is None:
        builder = tfds.builder("synthetic_me/tiny", data_dir=data_dir)
    else:
        builder = Builder(config=config, data_dir=data_dir)
    builder.download_and_prepare(file_format="array_record")
    name = f"synthetic_me/{builder.builder_config.name}"
    source = tfds.data_source(name, data_dir=data_dir, split="train")
    return builder, [source[i] for i in range(len(source))]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("tiny"))


def _au_region(subject, action_units, size, radius=2.5):
    """Discs of `radius` sigmas around the anchors of `action_units`."""
    centres, _, sigmas = faces.action_unit_gaussians(subject, action_units, size)
    y, x = np.mgrid[0:size, 0:size]
    mask = np.zeros((size, size), bool)
    for (cx, cy), s in zip(centres, sigmas):
        mask |= (x - cx) ** 2 + (y - cy) ** 2 <= (radius * s) ** 2
    return mask


def _clips_per_class(plan, per_class):
    out = []
    for label in sorted({c.label for c in plan.clips}):
        out += [c for c in plan.clips if c.label == label][:per_class]
    return out


# ----------------------------------------------------------------------------
# Built dataset.


def test_registered_name():
    assert Builder.name == "synthetic_me"
    assert Builder.BUILDER_CONFIGS[0].name == "casme2"


def test_tiny_reads_back_as_planned(tiny):
    builder, examples = tiny
    plan = faces.plan_corpus(TINY)
    assert len(examples) == len(plan.clips) == 24
    assert builder.info.features["label"].names == list(TINY.class_names)
    for ex, clip in zip(examples, plan.clips):
        frames = ex["frames"]
        assert frames.dtype == np.uint8
        t = frames.shape[0]
        assert frames.shape == (t, 32, 32, 3)
        lo, hi = clip.subject.source.num_frames
        assert lo <= t <= hi
        assert 0 <= ex["onset"] < ex["apex"] < ex["offset"] <= t - 1
        assert 0 <= ex["label"] < len(TINY.class_names)
        emotion = ex["emotion"].decode()
        assert emotion == TINY.class_names[ex["label"]]
        assert ex["action_units"].decode() == faces.CLASS_ACTION_UNITS[emotion]
        source, subject, clip_id = (ex[k].decode() for k in ("source", "subject", "clip"))
        assert subject.startswith(f"{source}/s") and clip_id.startswith(f"{subject}/ep")
        # Generation order is kept, and stored pixels are the generator's.
        assert clip_id == clip.id
        np.testing.assert_array_equal(frames, faces.render_clip(TINY, clip))


def test_tiny_subjects_and_sources(tiny):
    _, examples = tiny
    sources = {s.name: s for s in TINY.sources}
    subjects = {}
    for ex in examples:
        subjects.setdefault(ex["source"].decode(), set()).add(ex["subject"].decode())
    assert set(subjects) == {"smic", "samm"}
    for name, ids in subjects.items():
        assert len(ids) == sources[name].num_subjects
        assert all(i.startswith(f"{name}/") for i in ids)
    # Labels per source match the configured class counts.
    for name, source in sources.items():
        labels = [ex["label"] for ex in examples if ex["source"] == name.encode()]
        assert tuple(np.bincount(labels, minlength=3)) == source.class_counts


def test_tiny_grey_source_has_identical_channels(tiny):
    _, examples = tiny
    for ex in examples:
        f = ex["frames"].astype(np.int16)
        same = (f[..., 0] == f[..., 1]).all() and (f[..., 1] == f[..., 2]).all()
        assert same == (ex["source"] == b"samm"), ex["clip"]


def test_build_is_deterministic_by_seed(tmp_path, tiny):
    _, first = tiny
    _, again = _build(tmp_path / "again")
    _, other = _build(tmp_path / "other", dataclasses.replace(TINY, name="tiny_seed1", seed=1))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["frames"], b["frames"])
        assert a["clip"] == b["clip"] and a["apex"] == b["apex"]
    differ = [
        a["frames"].shape != b["frames"].shape or not np.array_equal(a["frames"], b["frames"])
        for a, b in zip(first, other)
    ]
    assert all(differ)


# ----------------------------------------------------------------------------
# Generator.


def test_config_shapes():
    casme2 = faces.plan_corpus(CONFIGS["casme2"])
    assert len(casme2.subjects) == 26 and len(casme2.clips) == 246
    assert tuple(np.bincount([c.label for c in casme2.clips])) == (32, 25, 63, 27, 99)
    per_subject = np.bincount([c.subject.index for c in casme2.clips])
    assert per_subject.min() >= 1 and per_subject.max() <= 19 and per_subject.std() > 2

    megc = faces.plan_corpus(CONFIGS["megc2019"])
    assert len(megc.subjects) == 68 and len(megc.clips) == 442
    assert len({s.id for s in megc.subjects}) == 68
    for name, counts in {
        "smic": (70, 51, 43),
        "casme2": (88, 32, 25),
        "samm": (92, 26, 15),
    }.items():
        labels = [c.label for c in megc.clips if c.subject.source.name == name]
        assert tuple(np.bincount(labels)) == counts
    for name in ("casme2_subtle", "megc2019_subtle"):
        assert CONFIGS[name].amplitude_px == pytest.approx(CONFIGS[name[:-7]].amplitude_px / 4)


def test_subset_render_matches_full_clip():
    clip = faces.plan_corpus(TINY).clips[5]
    full = faces.render_clip(TINY, clip)
    some = faces.render_clip(TINY, clip, frames=[0, clip.apex, clip.num_frames - 1])
    np.testing.assert_array_equal(some, full[[0, clip.apex, clip.num_frames - 1]])


def test_intensity_is_zero_outside_onset_offset():
    config = CONFIGS["casme2"]
    for clip in faces.plan_corpus(config).clips[:12]:
        neutral = faces.render_neutral(config, clip.subject).astype(np.int16)
        frames = faces.render_clip(config, clip, noise=False, head_motion=False).astype(np.int16)
        diff = np.abs(frames - neutral).max(axis=(1, 2, 3))
        rest = np.r_[: clip.onset + 1, clip.offset : clip.num_frames]
        assert diff[rest].max() <= 1, clip.id
        assert diff[clip.apex] > 30, clip.id
        assert diff[clip.onset + 1 : clip.offset].min() > 0, clip.id
        # With sensor noise the onset frame is still the neutral face.
        noisy = faces.render_clip(config, clip, head_motion=False, frames=[clip.onset, clip.apex])
        noisy = noisy.astype(np.float32) - neutral
        region = _au_region(clip.subject, clip.action_units, config.image_size)
        sigma = clip.subject.source.noise_std
        assert noisy[0][region].std() < 1.2 * sigma
        assert np.abs(noisy[0].mean()) < 0.2
        assert noisy[1][region].std() > 3 * sigma


def test_head_motion_is_small_smooth_and_present():
    config = CONFIGS["casme2"]
    for clip in faces.plan_corpus(config).clips[:20]:
        motion = faces.head_trajectory(config, clip)
        shift = np.linalg.norm(motion[:, :2], axis=1)
        assert 0.3 < shift.max() <= config.head_motion_px + 1e-5
        assert np.abs(np.diff(motion[:, :2], axis=0)).max() < 0.5
        edge_px = np.abs(motion[:, 2]).max() * 0.5 * config.image_size
        assert edge_px < 0.5
        # Frames before the onset differ only by head motion, and do differ.
        frames = faces.render_clip(config, clip, noise=False, frames=[0, clip.onset])
        assert np.abs(frames[0].astype(np.int16) - frames[1]).max() > 0


def test_motion_is_inside_the_class_action_units():
    config = CONFIGS["casme2"]
    clips = _clips_per_class(faces.plan_corpus(config), per_class=4)
    assert len({c.label for c in clips}) == 5
    for clip in clips:
        onset, apex = faces.render_clip(
            config, clip, noise=False, head_motion=False, frames=[clip.onset, clip.apex]
        ).astype(np.float32)
        energy = ((apex - onset) ** 2).sum(-1)
        own = _au_region(clip.subject, clip.action_units, config.image_size)
        assert energy[own].sum() > 0.9 * energy.sum(), clip.id
        # Far from the class' AUs (outside 4 sigma) there is almost nothing.
        far = ~_au_region(clip.subject, clip.action_units, config.image_size, radius=4.0)
        assert energy[far].sum() < 0.01 * energy.sum(), clip.id


def test_amplitude_scales_to_subtle_and_with_image_size():
    subject = faces.plan_corpus(CONFIGS["casme2"]).subjects[0]
    for aus in sorted(set(faces.CLASS_ACTION_UNITS.values())):
        strong = faces.displacement_field(subject, aus, 112, CONFIGS["casme2"].amplitude_px)
        subtle = faces.displacement_field(subject, aus, 112, CONFIGS["casme2_subtle"].amplitude_px)
        small = faces.displacement_field(subject, aus, 32, CONFIGS["casme2"].amplitude_px)
        peak = lambda d: np.linalg.norm(d, axis=-1).max()  # noqa: E731
        assert peak(strong) == pytest.approx(4.0, rel=0.03)
        assert peak(subtle) / peak(strong) == pytest.approx(0.25, rel=0.03)
        assert peak(small) / peak(strong) == pytest.approx(32 / 112, rel=0.1)


def test_rendered_motion_matches_the_field():
    """Optical flow from onset to apex recovers the field; subtle moves ~1/4 as far."""
    plans = {name: faces.plan_corpus(CONFIGS[name]) for name in ("casme2", "casme2_subtle")}
    clips = {name: _clips_per_class(plan, per_class=2) for name, plan in plans.items()}
    moved = {}
    for name, config in ((n, CONFIGS[n]) for n in plans):
        moved[name] = []
        for clip in clips[name]:
            onset, apex = faces.render_clip(
                config, clip, noise=False, head_motion=False, frames=[clip.onset, clip.apex]
            )
            field = faces.displacement_field(
                clip.subject, clip.action_units, 112, config.amplitude_px
            )
            field *= clip.subject.gain * clip.gain
            size = np.linalg.norm(field, axis=-1)
            core = size > 0.7 * size.max()
            grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (onset, apex)]
            flow = cv2.calcOpticalFlowFarneback(*grey, None, 0.5, 3, 9, 5, 5, 1.1, 0)
            along = np.median((flow[core] * field[core]).sum(-1) / size[core])  # px
            assert 0.6 < along / np.median(size[core]) < 1.2, (name, clip.id)
            moved[name].append(along)
    # Same seed, same plan: the subtle clip is the default clip at 1/4 amplitude.
    ratio = np.array(moved["casme2_subtle"]) / np.array(moved["casme2"])
    assert 0.15 < np.median(ratio) < 0.4
    assert 2.5 < np.median(moved["casme2"]) and np.median(moved["casme2_subtle"]) < 1.5


def test_classes_are_separable_across_subjects():
    """Nearest class centroid on (apex - onset), trained on half the subjects."""
    config = CONFIGS["casme2"]
    plan = faces.plan_corpus(config)
    feats, labels, subjects = [], [], []
    for clip in plan.clips:
        onset, apex = faces.render_clip(config, clip, noise=False, frames=[clip.onset, clip.apex])
        diff = apex.astype(np.float32).mean(-1) - onset.astype(np.float32).mean(-1)
        diff = cv2.resize(cv2.GaussianBlur(diff, (0, 0), 2), (28, 28), interpolation=cv2.INTER_AREA)
        feats.append(diff.ravel() / np.linalg.norm(diff))
        labels.append(clip.label)
        subjects.append(clip.subject.index)
    feats, labels, subjects = map(np.array, (feats, labels, subjects))
    train = subjects % 2 == 0
    centroids = np.stack([feats[train & (labels == k)].mean(0) for k in range(5)])
    pred = (feats[~train] @ centroids.T).argmax(1)
    truth = labels[~train]
    recall = [np.mean(pred[truth == k] == k) for k in range(5)]
    assert np.mean(pred == truth) > 0.7
    assert np.mean(recall) > 0.6 and min(recall) > 0.3


def _apex_only_uar(config):
    """Ridge on HOG of the apex frame alone, trained on even subjects, tested on odd."""
    plan = faces.plan_corpus(config)
    hog = cv2.HOGDescriptor((112, 112), (16, 16), (8, 8), (8, 8), 9)
    grey = lambda c: cv2.cvtColor(
        faces.render_clip(config, c, frames=[c.apex])[0], cv2.COLOR_RGB2GRAY
    )  # noqa: E731
    feats = np.stack([hog.compute(grey(c)) for c in plan.clips])
    labels = np.array([c.label for c in plan.clips])
    train = np.array([c.subject.index % 2 == 0 for c in plan.clips])
    feats = (feats - feats[train].mean(0)) / (feats[train].std(0) + 1e-6)
    targets = np.eye(len(config.class_names))[labels[train]]
    targets = targets / targets.sum(0)  # Class-balanced.
    x = feats[train]
    w = x.T @ np.linalg.solve(x @ x.T + 100.0 * np.eye(len(x)), targets - targets.mean(0))
    pred, truth = (feats[~train] @ w).argmax(1), labels[~train]
    return np.mean([np.mean(pred[truth == k] == k) for k in range(len(config.class_names))])


def test_apex_frame_alone_is_learnable_at_default_amplitude():
    """Evidence that a model seeing only the apex frame can learn the classes."""
    default = _apex_only_uar(CONFIGS["casme2"])
    subtle = _apex_only_uar(CONFIGS["casme2_subtle"])
    assert default > 0.6  # Chance is 0.2.
    assert subtle < default - 0.2


# ----------------------------------------------------------------------------
# Macro-expression pre-training corpora.

# Each pre-training corpus and the fine-tuning corpora it lines up with.
MACRO = {"macro5": ("casme2", "casme2_subtle"), "macro3": ("megc2019", "megc2019_subtle")}


def _corpus_fields(config):
    """The generator knobs of a config (`faces.CorpusSpec`): equal ones render equal clips."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(faces.CorpusSpec)}


def _camera(source):
    """Everything of a source but its name and its shape (subjects, clips)."""
    fields = dataclasses.asdict(source)
    for key in ("name", "num_subjects", "class_counts", "max_clips_per_subject"):
        del fields[key]
    return fields


@pytest.mark.parametrize("name", list(MACRO))
def test_macro_classes_line_up_with_fine_tuning(name):
    """Same class names in the same order, so the same action units per class index."""
    macro = CONFIGS[name]
    for target in MACRO[name]:
        assert macro.class_names == CONFIGS[target].class_names
    plans = {n: faces.plan_corpus(CONFIGS[n]) for n in (name, MACRO[name][0])}
    units = {n: {c.label: c.action_units for c in plan.clips} for n, plan in plans.items()}
    assert units[name] == units[MACRO[name][0]]
    assert len(units[name]) == len(macro.class_names)


@pytest.mark.parametrize("name", list(MACRO))
def test_macro_sources_subjects_and_clip_counts(name):
    config = CONFIGS[name]
    plan = faces.plan_corpus(config)
    names = [s.name for s in config.sources]
    assert len(names) >= 3 and len(set(names)) == len(names)
    assert all(n.startswith("macro_") for n in names)
    # Every source has its own camera.
    cameras = [_camera(s) for s in config.sources]
    assert all(a != b for i, a in enumerate(cameras) for b in cameras[i + 1 :])
    assert {s.grey for s in config.sources} == {True, False}
    # Subjects: as many as configured, unique across sources, named by their source.
    assert len(plan.subjects) == sum(s.num_subjects for s in config.sources)
    assert len({s.id for s in plan.subjects}) == len(plan.subjects)
    for source in config.sources:
        mine = [s for s in plan.subjects if s.source is source]
        assert len(mine) == source.num_subjects
        assert all(s.id.startswith(f"{source.name}/") for s in mine)
        labels = [c.label for c in plan.clips if c.subject.source is source]
        counts = np.bincount(labels, minlength=len(config.class_names))
        assert tuple(counts) == source.class_counts
        per_subject = np.bincount([c.subject.index for c in plan.clips if c.subject in mine])
        assert per_subject[per_subject > 0].max() <= source.max_clips_per_subject
    assert len(plan.clips) == sum(sum(s.class_counts) for s in config.sources)
    assert len({c.id for c in plan.clips}) == len(plan.clips)
    # Modest: a 2-core CPU builds it in seconds.
    assert 30 <= len(plan.subjects) <= 40 and 300 <= len(plan.clips) <= 450


@pytest.mark.parametrize("name", list(MACRO))
def test_macro_people_are_not_the_fine_tuning_subjects(name):
    """Its own seed: no neutral face of the pre-training corpus is one of the fine-tuning's."""
    config, target = CONFIGS[name], CONFIGS[MACRO[name][0]]
    assert config.seed != target.seed
    faces_of = (
        lambda c: [  # noqa: E731
            faces.neutral_face(s, 32) for s in faces.plan_corpus(c).subjects[:8]
        ]
    )
    for a in faces_of(config):
        for b in faces_of(target):
            assert np.abs(a - b).mean() > 1.0


@pytest.mark.parametrize("name", list(MACRO))
def test_macro_motion_is_larger(name):
    config = CONFIGS[name]
    for target in MACRO[name]:
        assert config.amplitude_px >= 2 * CONFIGS[target].amplitude_px
    subject = faces.plan_corpus(config).subjects[0]
    for aus in {faces.CLASS_ACTION_UNITS[c] for c in config.class_names}:
        field = faces.displacement_field(subject, aus, 112, config.amplitude_px)
        assert np.linalg.norm(field, axis=-1).max() == pytest.approx(config.amplitude_px, rel=0.03)
    # Rendered: onset -> apex changes the pixels far more than in the fine-tuning corpus.
    energy = {}
    for corpus in (name, MACRO[name][0]):
        cfg = CONFIGS[corpus]
        clips = _clips_per_class(faces.plan_corpus(cfg), per_class=3)
        energy[corpus] = np.mean(
            [
                np.abs(
                    np.diff(
                        faces.render_clip(
                            cfg, c, noise=False, head_motion=False, frames=[c.onset, c.apex]
                        ).astype(np.float32),
                        axis=0,
                    )
                ).mean()
                for c in clips
            ]
        )
    assert energy[name] > 1.5 * energy[MACRO[name][0]]


def test_macro_grey_sources_store_identical_channels():
    for name in MACRO:
        config = CONFIGS[name]
        plan = faces.plan_corpus(config)
        for source in config.sources:
            clip = next(c for c in plan.clips if c.subject.source is source)
            apex = faces.render_clip(config, clip, frames=[clip.apex])[0].astype(np.int16)
            grey = (apex[..., 0] == apex[..., 1]).all() and (apex[..., 1] == apex[..., 2]).all()
            assert grey == source.grey, (name, source.name)


def test_macro_apex_frame_alone_is_learnable():
    """Evidence that pre-training on the apex frame learns the classes (chance 0.2)."""
    assert _apex_only_uar(CONFIGS["macro5"]) > 0.85


def test_macro_and_fine_tuning_view_configs():
    """The stored views of the pre-training -> fine-tuning recipe: the corpus' clips, one view."""
    wanted = {
        "macro5_apex_56": ("macro5", views.apex_view(56)),
        "casme2_subtle_apex_56": ("casme2_subtle", views.apex_view(56)),
        "macro3_evm_apex_32": ("macro3", views.evm_apex_view(32)),
        "megc2019_subtle_evm_apex_32": ("megc2019_subtle", views.evm_apex_view(32)),
    }
    for name, (corpus, view) in wanted.items():
        config = CONFIGS[name]
        assert config.view == view and CONFIGS[corpus].view is None
        assert _corpus_fields(config) == _corpus_fields(CONFIGS[corpus])
    # Pre-training and fine-tuning views give the same input shape.
    assert CONFIGS["macro5_apex_56"].view.shape == CONFIGS["casme2_subtle_apex_56"].view.shape
    assert CONFIGS["macro3_evm_apex_32"].view.shape == (
        CONFIGS["megc2019_subtle_evm_apex_32"].view.shape
    )
