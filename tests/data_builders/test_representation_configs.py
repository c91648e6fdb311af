"""Views as builder configs: every representation built from the fixture trees and the synthetic
corpus at tiny sizes, checked against `representations.REPRESENTATIONS` applied to the frames config's
clips (an independent path), then loaded by `mer_jax.data` and swept."""

import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_builders import me_common, views
from data_builders.casme import casme_dataset_builder as casme
from data_builders.casme2 import casme2_dataset_builder as casme2
from data_builders.samm import samm_dataset_builder as samm
from data_builders.smic import smic_dataset_builder as smic
from data_builders.synthetic_me import synthetic_me_dataset_builder as synthetic
from mer_jax import cli, data
from mer_jax import config as config_lib
from mer_jax.magnifier import model as magnifier
from mer_jax.preprocess import representations
from tests.conftest import input_spec
from tests.data_builders import fixtures

SIZE = fixtures.FRAME_SIZE  # Frames read at 16x16: the smallest a flow pyramid takes.
TINY_SWEEP = f"{pathlib.Path(__file__).parents[2] / 'experiments' / 'quickstart.py'}:tiny"
# One small view per representation.
VIEWS = {
    "apex": views.apex_view(SIZE),
    "evm_apex": views.evm_apex_view(SIZE),
    "flow": views.flow_view(8, read_size=SIZE),
    "aman_stack": views.aman_view(3, (1.0, 3.0), size=SIZE),
    "flow_sequence": views.flowseq_view(3, SIZE, flow_method="dis"),
}
META = ("subject", "clip", "emotion", "source", "dataset", "onset", "apex", "offset", "repairs")


def _build(builder_cls, config, data_dir, manual_dir=None):
    """download_and_prepare, then every example via tfds.data_source, in order."""
    builder = builder_cls(config=config, data_dir=str(data_dir))
    download = tfds.download.DownloadConfig(manual_dir=str(manual_dir)) if manual_dir else None
    builder.download_and_prepare(file_format="array_record", download_config=download)
    source = tfds.data_source(f"{builder_cls.name}/{config.name}", data_dir=str(data_dir))
    return builder, [source["train"][i] for i in range(len(source["train"]))]


def _view_config(base, view):
    return me_common.view_configs(base, base.name, [view])[0]


def _reference(frames_examples, view):
    """The view of each frames-config clip, by preprocess directly."""
    fn = representations.REPRESENTATIONS[view.representation]
    out = []
    for ex in frames_examples:
        clip = representations.Clip(
            ex["frames"], int(ex["onset"]), int(ex["apex"]), int(ex["offset"]), str(ex["clip"])
        )
        out.append(fn(clip, view.spec()))
    return out


def _check_view(view_examples, frames_examples, view):
    assert len(view_examples) == len(frames_examples) > 0
    for got, ex, want in zip(view_examples, frames_examples, _reference(frames_examples, view)):
        assert "frames" not in got
        x = got["input"]
        assert x.shape == view.shape and x.dtype == view.dtype
        for key in META:
            if key in ex:
                assert got[key] == ex[key], key
        if view.table.batch is not None and view.dtype == np.uint8:
            # Built BATCH_CLIPS clips per call, the reference one clip per call: programs of
            # other shapes that another CPU may round differently, before the final
            # rounding to uint8 (no iterations, so by less than a step): at most one step.
            assert np.abs(x.astype(int) - want.astype(int)).max() <= 1
        else:  # The same per-clip or per-pair calls on both paths (OpenCV, resizing): exact.
            np.testing.assert_array_equal(x, want)
        if view.dtype == np.float32:  # Flow: finite, in pixels of the output grid.
            assert np.isfinite(x).all() and np.abs(x).max() < view.size


# ----------------------------------------------------------------------------
# The named configs: declared shapes and settings, nothing built.


SEED_SHAPES = {
    "apex_224": ((224, 224, 1), np.uint8),
    "evm_apex_112": ((112, 112, 3), np.uint8),
    "flow_28": ((28, 28, 2), np.float32),
    "aman_11x9": ((11, 9, 224, 224, 3), np.uint8),
    "flowseq_20x192": ((20, 192, 192, 2), np.float32),
}


@pytest.mark.parametrize(
    "builder_cls, prefix",
    [
        (casme2.Builder, "cropped"),
        (casme.Builder, "cropped"),
        (samm.Builder, "raw"),
        (smic.Builder, "hs_cropped"),
        (synthetic.Builder, "casme2"),
    ],
)
def test_named_seed_views_declare_their_shape_and_settings(builder_cls, prefix, tmp_path):
    configs = {c.name: c for c in builder_cls.BUILDER_CONFIGS}
    frames_keys = None
    for config in configs.values():
        if config.view is None:
            frames_keys = set(builder_cls(config=config, data_dir=str(tmp_path)).info.features)
            break
    for view_name, (shape, dtype) in SEED_SHAPES.items():
        config = configs[f"{prefix}_{view_name}"]
        info = builder_cls(config=config, data_dir=str(tmp_path)).info
        feature = info.features["input"]
        assert feature.shape == shape and feature.np_dtype == dtype
        # The same metadata as the frames configs, `input` in place of `frames`.
        assert set(info.features) == frames_keys - {"frames"} | {"input"}
        meta = info.metadata["view"]
        assert meta["name"] == view_name and meta["shape"] == list(shape)
        assert meta["magnifier"] == "eulerian"
        assert config.view.describe() in info.config_description
        rep = config.view.representation
        if rep in ("apex", "evm_apex", "flow"):
            unannotated = builder_cls is smic.Builder
            rule = views.UNANNOTATED_APEX[rep] if unannotated else "ground_truth"
            assert meta["input"]["apex"] == rule and f"apex {rule}" in info.config_description
    if builder_cls is smic.Builder:  # VIS and NIR: seed 002's flow view.
        assert configs["vis_cropped_flow_28"].view.apex == "interframe_diff"
        assert "nir_cropped_flow_28" in configs


def test_bad_view_settings_name_the_config_and_field(tmp_path):
    base = smic.SMICConfig(name="hs", release="raw", camera="hs")
    with pytest.raises(ValueError, match="smic config 'hs_flow_8'.*apex 'ground_truth'"):
        smic.Builder(config=_view_config(base, VIEWS["flow"]), data_dir=str(tmp_path))
    bad = dataclasses.replace(VIEWS["apex"], channels=2)
    with pytest.raises(ValueError, match="casme2 config 'raw_apex_16'.*channels 2"):
        casme2.Builder(config=_view_config(me_common.MEConfig(name="raw"), bad), data_dir=tmp_path)
    with pytest.raises(ValueError, match="flow_method 'flownet'"):
        dataclasses.replace(VIEWS["flow"], flow_method="flownet").check("here")


# ----------------------------------------------------------------------------
# Built from the fixture trees.


@pytest.fixture(scope="module")
def casme2_built(tmp_path_factory):
    """The CASME II fixture tree; its frames config at 16x16 and one view per representation."""
    root = tmp_path_factory.mktemp("casme2_views")
    fixtures.write_casme2(root / "manual")
    fixtures.write_samm(root / "manual")  # For pooling: SAMM's frames and its apex view.
    base = me_common.MEConfig(name="cropped", release="cropped", image_size=SIZE)
    frames_config = dataclasses.replace(base, name="cropped_16")
    data_dir = root / "tfds"
    _, frames = _build(casme2.Builder, frames_config, data_dir, root / "manual")
    built = {}
    for rep, view in VIEWS.items():
        built[rep] = _build(casme2.Builder, _view_config(base, view), data_dir, root / "manual")
    samm_base = me_common.MEConfig(name="raw", release="raw", image_size=SIZE)
    _build(samm.Builder, dataclasses.replace(samm_base, name="raw_16"), data_dir, root / "manual")
    _build(samm.Builder, _view_config(samm_base, VIEWS["apex"]), data_dir, root / "manual")
    return data_dir, frames, built


@pytest.mark.parametrize("representation", list(VIEWS))
def test_casme2_views_equal_preprocess_of_the_frames_config(casme2_built, representation):
    _, frames, built = casme2_built
    builder, examples = built[representation]
    _check_view(examples, frames, VIEWS[representation])
    assert builder.info.metadata["view"]["input"] == VIEWS[representation].spec()
    assert builder.info.metadata["frames"] == {
        "release": "cropped",
        "mode": "onset_offset",
        "size": SIZE,
        "face_crop": False,
        "face_align": False,
    }


def test_samm_casme_smic_views_and_smic_apex_rules(tmp_path):
    manual, data_dir = tmp_path / "manual", tmp_path / "tfds"
    fixtures.write_casme(manual)
    fixtures.write_smic(manual)
    read = dict(release="raw", image_size=SIZE)
    smic_base = smic.SMICConfig(name="hs", camera="hs", **read)
    cases = [
        (casme.Builder, me_common.MEConfig(name="raw", **read), ["flow_sequence"]),
        (smic.Builder, smic_base, ["apex", "flow", "evm_apex"]),
    ]
    for builder_cls, base, reps in cases:
        frames_config = dataclasses.replace(base, name=f"{base.name}_{SIZE}")
        _, frames = _build(builder_cls, frames_config, data_dir, manual)
        for rep in reps:
            view = VIEWS[rep]
            if builder_cls is smic.Builder:
                view = views.without_apex_annotation(view)
            _, examples = _build(builder_cls, _view_config(base, view), data_dir, manual)
            _check_view(examples, frames, view)
            if rep == "apex":  # SMIC has no apex: the middle frame of the folder (seed 000).
                for ex, fr in zip(examples, frames):
                    mid = (len(fr["frames"]) - 1) // 2
                    want = representations.to_channels(fr["frames"][mid], 1)
                    np.testing.assert_array_equal(ex["input"], want)


def test_aman_view_records_the_learned_magnifier(tmp_path):
    net = magnifier.Magnifier(width=4, num_dec_resblk=1)
    x = jnp.zeros((1, SIZE, SIZE, 3))
    params = net.init(jax.random.key(0), x, x, jnp.ones((1,)))["params"]
    checkpoint = tmp_path / "magnifier.npz"
    magnifier.save_npz(checkpoint, params)
    fixtures.write_samm(tmp_path / "manual", fixtures.samm_rows()[:2])
    base = me_common.MEConfig(name="raw", release="raw", image_size=SIZE)
    config = views.with_magnifier(_view_config(base, VIEWS["aman_stack"]), str(checkpoint))
    sha = views.file_sha256(str(checkpoint))
    assert config.name == f"raw_aman_3x2_16_learned_{sha[:8]}"
    builder, examples = _build(samm.Builder, config, tmp_path / "d", tmp_path / "manual")
    meta = builder.info.metadata["view"]
    assert meta["magnifier"] == "learned" and meta["magnifier_sha256"] == sha
    assert meta["input"]["magnifier_checkpoint"] == str(checkpoint)
    assert "learned magnifier magnifier.npz" in builder.info.config_description
    frames_config = dataclasses.replace(base, name="raw_16")
    _, frames = _build(samm.Builder, frames_config, tmp_path / "d", tmp_path / "manual")
    _check_view(examples, frames, config.view)
    # Read back without the builder's code (a config no class registers): same settings.
    read = tfds.builder(f"samm/{config.name}", data_dir=str(tmp_path / "d"))
    assert read.info.metadata["view"]["magnifier"] == "learned"
    with pytest.raises(ValueError, match="AMAN views"):
        views.with_magnifier(_view_config(base, VIEWS["flow"]), str(checkpoint))
    # The named config, as `mer-jax data build samm/raw_aman_11x9 --magnifier-checkpoint` takes it.
    learned = lambda c: views.with_magnifier(c, str(checkpoint))
    named = views.builder_with("samm/raw_aman_11x9", [learned], str(tmp_path))
    assert named.builder_config.name == f"raw_aman_11x9_learned_{sha[:8]}"
    assert named.info.metadata["view"]["magnifier_sha256"] == sha
    argv = ["data", "build", "samm/raw_flow_28", "--magnifier-checkpoint", str(checkpoint)]
    assert cli.main([*argv, "--manual-dir", str(tmp_path), "--data-dir", str(tmp_path)]) == 2


# ----------------------------------------------------------------------------
# The synthetic corpus, mer_jax.data and a sweep.


@pytest.fixture(scope="module")
def synthetic_built(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("synthetic_views")
    tiny = next(c for c in synthetic.Builder.BUILDER_CONFIGS if c.name == "tiny")
    _, frames = _build(synthetic.Builder, tiny, data_dir)
    built = {}
    for view in (views.apex_view(32), views.flow_view(16, channels=3)):
        config = dataclasses.replace(tiny, name=f"tiny_{view.name}", view=view)
        built[view.name] = _build(synthetic.Builder, config, data_dir)
    return data_dir, frames, built


def test_synthetic_views_equal_preprocess_of_the_frames(synthetic_built):
    _, frames, built = synthetic_built
    for builder, examples in built.values():
        view = builder.builder_config.view
        _check_view(examples, frames, view)
        assert [e["label"] for e in examples] == [e["label"] for e in frames]
    strain = built["flow_16_strain"][1][0]["input"][..., 2]
    assert (strain >= 0).all()


def test_load_reads_the_stored_view_and_names_ignored_keys(synthetic_built):
    data_dir, _, _ = synthetic_built
    lines = []
    spec = input_spec(image_size=32, channels=1)
    on_the_fly = data.load(
        "synthetic_me/tiny", spec, data_dir=str(data_dir), progress=False, log=lines.append
    )
    stored = data.load(
        "synthetic_me/tiny_apex_32", spec, data_dir=str(data_dir), progress=False, log=lines.append
    )
    np.testing.assert_array_equal(stored.images, on_the_fly.images)
    np.testing.assert_array_equal(stored.labels, on_the_fly.labels)
    assert stored.clips.tolist() == on_the_fly.clips.tolist()
    assert any("tiny_apex_32: model inputs stored" in line and "agree" in line for line in lines)
    lines.clear()
    flow = data.load(
        "synthetic_me/tiny_flow_16_strain",
        spec,
        data_dir=str(data_dir),
        progress=False,
        log=lines.append,
    )
    assert flow.images.shape == (24, 16, 16, 3) and flow.images.dtype == np.float32
    line = next(line for line in lines if "stored view is used" in line)
    assert "input.representation='apex' (stored 'flow')" in line
    assert "input.image_size=32 (stored 16)" in line and "input.channels=1 (stored 3)" in line
    assert "input.num_frames" not in line  # the flow view reads no num_frames


def test_pooled_views_and_frames(casme2_built):
    data_dir, _, _ = casme2_built
    spec = input_spec(image_size=SIZE, channels=1, label_scheme="megc2019_3class")
    load = lambda name: data.load(name, spec, data_dir=str(data_dir), progress=False, log=print)
    parts = {
        name: load(name) for name in ("casme2/cropped_apex_16", "samm/raw_apex_16", "samm/raw_16")
    }
    # A view and the frames config it comes from give the same arrays.
    np.testing.assert_array_equal(parts["samm/raw_apex_16"].images, parts["samm/raw_16"].images)
    for pooled_name in (
        "casme2/cropped_apex_16+samm/raw_apex_16",
        "casme2/cropped_apex_16+samm/raw_16",
    ):
        pooled = load(pooled_name)
        a, b = (parts[n] for n in pooled_name.split("+"))
        np.testing.assert_array_equal(pooled.images, np.concatenate([a.images, b.images]))
        np.testing.assert_array_equal(pooled.labels, np.concatenate([a.labels, b.labels]))
        assert set(pooled.sources.tolist()) == {"casme2", "samm"}
    with pytest.raises(ValueError, match="appears twice"):
        load("samm/raw_apex_16+samm/raw_16")


def test_sweep_names_a_view_config(synthetic_built, tmp_path):
    data_dir, _, _ = synthetic_built
    argv = ["sweep", TINY_SWEEP, "--workdir", str(tmp_path), "--no-progress", "--no-compile-cache"]
    settings = [f"data_dir={data_dir}", "dataset=synthetic_me/tiny_apex_32"]
    assert cli.main([*argv, *(a for s in settings for a in ("--set", s))]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["dataset"] == "synthetic_me/tiny_apex_32"
    assert results["num_folds"] == 4 and len(results["predictions"]["clip"]) == 24


def test_experiments_name_views_their_input_keys_agree_with():
    """Each experiment naming a synthetic view config says the same in its `input` keys, so
    `--set dataset=<a frames config>` computes that very view at load time."""
    configs = {c.name: c for c in synthetic.Builder.BUILDER_CONFIGS}
    experiments = pathlib.Path(__file__).parents[2] / "experiments"
    named = 0
    for path in sorted(experiments.rglob("*.py")):
        for arg in (None, "quick", "subtle", "synthetic"):
            try:
                c = config_lib.load(f"{path}:{arg}" if arg else str(path))
            except ValueError:
                continue
            for part in c.dataset.split("+"):
                builder, _, name = part.partition("/")
                if builder == "synthetic_me" and configs[name].view is not None:
                    named += 1
                    view = configs[name].view.metadata()
                    assert data.ignored_keys(view, c.input) == [], (path, arg)
    assert named >= 15
