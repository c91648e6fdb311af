"""Macro-expression builders (CK+, Oulu-CASIA, JAFFE, MUG, RAF-DB, FER-2013) built from tiny
fixture trees in the official layouts and read back with tfds.data_source; one test per
defect class; the pre-training label schemes against the seed papers' counts."""

import shutil

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_builders import macro_common
from data_builders.ck_plus import ck_plus_dataset_builder as ck_plus
from data_builders.fer2013 import fer2013_dataset_builder as fer2013
from data_builders.jaffe import jaffe_dataset_builder as jaffe
from data_builders.mug import mug_dataset_builder as mug
from data_builders.oulu_casia import oulu_casia_dataset_builder as oulu
from data_builders.raf_db import raf_db_dataset_builder as raf_db
from mer_jax import label_schemes
from mer_jax.label_schemes import text
from tests.data_builders import macro_fixtures as fixtures

SIZE = 4  # 16x16 images -> 4x4 box means (INTER_AREA at exactly 1/4); FER 48x48 -> 12x12 boxes.
BUILDERS = {
    "ck_plus": ck_plus,
    "oulu_casia": oulu,
    "jaffe": jaffe,
    "mug": mug,
    "raf_db": raf_db,
    "fer2013": fer2013,
}
# The datasets' own code tables, as the task and the datasets' READMEs give them.
CK_NAMES = ["neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
RAF_NAMES = {
    1: "surprise",
    2: "fear",
    3: "disgust",
    4: "happiness",
    5: "sadness",
    6: "anger",
    7: "neutral",
}
FER_NAMES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _config(cls=macro_common.MacroConfig, **kwargs):
    return cls(name="tiny", **{"image_size": SIZE, **kwargs})


def _build(builder_cls, manual_dir, data_dir, config):
    """download_and_prepare into data_dir; {split: every example via tfds.data_source}."""
    builder = builder_cls(config=config, data_dir=str(data_dir))
    builder.download_and_prepare(
        file_format="array_record",
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)),
    )
    name = f"{builder_cls.name}/{config.name}"
    out = {}
    for split in builder.info.splits:
        source = tfds.data_source(name, data_dir=str(data_dir), split=split)
        out[split] = [source[i] for i in range(len(source))]
    return out


def _error(builder_cls, manual_dir, tmp_path, config, error=macro_common.AnnotationError):
    with pytest.raises(error) as info:
        _build(builder_cls, manual_dir, tmp_path / "data", config)
    return str(info.value)


def _text(ex, key):
    return text(ex[key])


def _fields(ex):
    return tuple(_text(ex, k) for k in ("dataset", "subject", "clip", "emotion", "source_file"))


def _shrink(image):
    """Reference resize, independent of cv2.resize: means of k x k blocks, rounded to nearest
    (ties to even); grey images replicated to 3 channels first."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    k = image.shape[0] // SIZE
    means = image.reshape(SIZE, k, SIZE, k, 3).mean(axis=(1, 3), dtype=np.float64)
    return np.rint(means).astype(np.uint8)


def _lossless(key, grey=False):
    """What a .png / .tiff fixture holds, as RGB, shrunk: from the generator, not the file."""
    pixels = fixtures.image(key, grey=grey)
    return _shrink(pixels if grey else pixels[..., ::-1])


def _decoded(path):
    """A JPEG fixture as cv2 decodes it (RGB), shrunk."""
    return _shrink(cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1])


def _apply(scheme, examples):
    """Every stored emotion must be known to the scheme (label_schemes.apply raises if not)."""
    datasets = [_text(e, "dataset") for e in examples]
    emotions = [_text(e, "emotion") for e in examples]
    return label_schemes.apply(label_schemes.get(scheme), datasets, emotions)


# ----------------------------------------------------------------------------
# Registration and configs.


def test_registered_names_configs_and_features(tmp_path):
    for name, module in BUILDERS.items():
        assert module.Builder.name == name
        assert module.Builder.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()
        assert {c.image_size for c in module.Builder.BUILDER_CONFIGS} >= {112, 224}
    assert [c.frames for c in ck_plus.Builder.BUILDER_CONFIGS] == [3, 3]
    assert all(c.frames == 8 for c in mug.Builder.BUILDER_CONFIGS)
    assert {(c.camera, c.lighting) for c in oulu.Builder.BUILDER_CONFIGS} == {("VL", "Strong")}
    assert {c.release for c in raf_db.Builder.BUILDER_CONFIGS} == {"aligned", "original"}
    info = tfds.builder("ck_plus/last3_224", data_dir=str(tmp_path)).info
    assert set(info.features) == {
        "image",
        "dataset",
        "subject",
        "clip",
        "frame",
        "emotion",
        "source_file",
    }
    assert info.features["image"].shape == (224, 224, 3)
    assert "Lucey" in info.citation and "593" in info.description
    citations = {
        "oulu_casia/vis_strong_112": "Zhao",
        "jaffe/112": "Lyons",
        "mug/apex8_112": "Aifanti",
        "raf_db/aligned_112": "Deng",
        "fer2013/48": "Goodfellow",
    }
    for name, author in citations.items():
        assert author in tfds.builder(name, data_dir=str(tmp_path)).info.citation


@pytest.mark.parametrize(
    "module, kwargs, message",
    [
        (ck_plus, {"frames": 0}, "frames 0"),
        (jaffe, {"image_size": 0}, "image_size 0"),
        (raf_db, {"release": "cropped"}, "release 'cropped'"),
        (oulu, {"camera": "IR"}, "camera 'IR'"),
        (oulu, {"lighting": "Bright"}, "lighting 'Bright'"),
    ],
)
def test_bad_config_names_the_field(tmp_path, module, kwargs, message):
    cls = oulu.OuluConfig if module is oulu else macro_common.MacroConfig
    defaults = {"release": "aligned"} if module is raf_db else {}
    defaults |= {"frames": 3} if module in (ck_plus, oulu) else {}
    with pytest.raises(ValueError, match=message):
        module.Builder(config=_config(cls, **{**defaults, **kwargs}), data_dir=str(tmp_path))


# ----------------------------------------------------------------------------
# Built datasets.


def test_ck_plus_last_three_frames_of_labelled_sequences(tmp_path):
    fixtures.write_ck_plus(tmp_path / "in")
    split = _build(ck_plus.Builder, tmp_path / "in", tmp_path / "data", _config(frames=3))
    assert list(split) == ["train"]
    examples = split["train"]
    wanted = []
    for subject, sequence, first, last, code, grey in fixtures.CK_PLUS_SEQUENCES:
        if code is None:
            continue  # No emotion file: not labelled, skipped.
        for n in range(max(first, last - 2), last + 1):
            wanted.append((subject, sequence, n, CK_NAMES[code], grey))
    assert len(examples) == len(wanted) == 3 + 3 + 3 + 2
    for ex, (subject, sequence, n, emotion, grey) in zip(examples, wanted, strict=True):
        key = fixtures.ck_plus_frame(subject, sequence, n)
        clip = f"ck_plus/{subject}/{sequence}"
        assert _fields(ex) == ("ck_plus", f"ck_plus/{subject}", clip, emotion, key)
        assert ex["frame"] == n
        np.testing.assert_array_equal(ex["image"], _lossless(key, grey))
    labels, keep = _apply("macro_5class", examples)  # disgust, surprise, happy, anger
    assert keep.all() and list(labels[::3]) == [3, 1, 0, 2]
    labels, keep = _apply("macro_3class", examples)
    assert keep.all() and list(labels[::3]) == [0, 2, 1, 0]


def test_oulu_casia_vis_strong_last_frames(tmp_path):
    fixtures.write_oulu_casia(tmp_path / "in")
    config = _config(oulu.OuluConfig)
    examples = _build(oulu.Builder, tmp_path / "in", tmp_path / "data", config)["train"]
    wanted = []
    for camera, lighting, subject, expression, count in fixtures.OULU_SEQUENCES:
        if (camera, lighting) == ("VL", "Strong"):
            wanted += [(subject, expression, n) for n in range(max(0, count - 3), count)]
    assert len(examples) == len(wanted) == 3 * 4
    for ex, (subject, expression, n) in zip(examples, wanted, strict=True):
        key = f"OriginalImg/VL/Strong/{subject}/{expression}/{n:03d}.jpeg"
        clip = f"oulu_casia/{subject}/{expression}"
        assert _fields(ex) == ("oulu_casia", f"oulu_casia/{subject}", clip, expression, key)
        assert ex["frame"] == n
        np.testing.assert_array_equal(ex["image"], _decoded(tmp_path / "in" / key))
    labels, keep = _apply("macro_5class", examples)
    assert list(keep[::3]) == [True, True, False, True]  # Fear is not one of the five.


def test_jaffe_codes_from_file_names(tmp_path):
    fixtures.write_jaffe(tmp_path / "in")
    config = _config()
    examples = _build(jaffe.Builder, tmp_path / "in", tmp_path / "data", config)["train"]
    codes = {"AN": "anger", "DI": "disgust", "FE": "fear", "HA": "happiness"}
    codes |= {"NE": "neutral", "SA": "sadness", "SU": "surprise"}
    assert len(examples) == len(fixtures.JAFFE_NAMES)  # The README is not an image.
    for ex, name in zip(examples, sorted(fixtures.JAFFE_NAMES), strict=True):
        key = f"jaffe/{name}.tiff"
        emotion = codes[name.split(".")[1][:2]]
        assert _fields(ex) == ("jaffe", f"jaffe/{name[:2]}", "", emotion, key)
        assert ex["frame"] == -1
        np.testing.assert_array_equal(ex["image"], _lossless(key, grey=True))
    _, keep = _apply("macro_5class", examples)
    assert keep.sum() == 5  # NE and FE dropped.


def test_mug_window_around_the_apex(tmp_path):
    fixtures.write_mug(tmp_path / "in")
    (tmp_path / "in" / "corrections.csv").write_text(
        "clip,column,value,note\nmug/002/surprise/take003,apex_frame,114,late apex\n"
    )
    config = _config(frames=4)
    examples = _build(mug.Builder, tmp_path / "in", tmp_path / "data", config)["train"]
    # Window of 4 at positions apex-1..apex+2, the apex at position (T-1)//2, shifted inside
    # the take: 0..19 -> apex 9; 0..9 -> apex 4; 5..7 is shorter than 4; corrected apex 114
    # of 100..115 -> 113..116, shifted back to 112..115.
    windows = [range(8, 12), range(3, 7), range(5, 8), range(112, 116)]
    wanted = [
        (subject, emotion, take, n)
        for (subject, emotion, take, _, _), frames in zip(fixtures.MUG_TAKES, windows)
        for n in frames
    ]
    assert len(examples) == len(wanted) == 15
    for ex, (subject, emotion, take, n) in zip(examples, wanted, strict=True):
        key = f"subjects3/{subject}/{emotion}/{take}/img_{n:04d}.jpg"
        clip = f"mug/{subject}/{emotion}/{take}"
        assert _fields(ex) == ("mug", f"mug/{subject}", clip, emotion, key)
        assert ex["frame"] == n
        np.testing.assert_array_equal(ex["image"], _decoded(tmp_path / "in" / key))
    assert mug.window(list(range(20)), 9, 8) == list(range(6, 14))  # The shipped window.
    _, keep = _apply("macro_5class", examples)
    assert keep.sum() == 15 - 4  # Neutral dropped.


@pytest.mark.parametrize("release", ["aligned", "original"])
def test_raf_db_splits_from_names(tmp_path, release):
    fixtures.write_raf_db(tmp_path / "in")
    config = _config(release=release)
    splits = _build(raf_db.Builder, tmp_path / "in", tmp_path / "data", config)
    assert set(splits) == {"train", "test"}
    for split, examples in splits.items():
        lines = [(n, c) for n, c in fixtures.RAF_LINES if n.startswith(split + "_")]
        assert len(examples) == len(lines)
        for ex, (name, code) in zip(examples, lines, strict=True):
            stem = name[: -len(".jpg")]
            file = name if release == "original" else f"{stem}_aligned.jpg"
            key = f"basic/Image/{release}/{file}"
            assert _fields(ex) == ("raf_db", "", "", RAF_NAMES[int(code)], key)
            np.testing.assert_array_equal(ex["image"], _decoded(tmp_path / "in" / key))
    labels, keep = _apply("macro_3class", splits["train"] + splits["test"])
    assert list(labels) == [0, 1, -1, 2, 0] and list(keep) == [True, True, False, True, True]


def test_fer2013_rows_and_usage_splits(tmp_path):
    fixtures.write_fer2013(tmp_path / "in")
    splits = _build(fer2013.Builder, tmp_path / "in", tmp_path / "data", _config())
    usage = {"train": "Training", "public_test": "PublicTest", "private_test": "PrivateTest"}
    assert set(splits) == set(usage)
    for split, examples in splits.items():
        rows = [i for i, (_, u) in enumerate(fixtures.FER_ROWS) if u == usage[split]]
        assert len(examples) == len(rows)
        for ex, i in zip(examples, rows, strict=True):
            emotion = FER_NAMES[int(fixtures.FER_ROWS[i][0])]
            assert _fields(ex) == ("fer2013", "", "", emotion, f"fer2013.csv:{i + 2}")
            np.testing.assert_array_equal(ex["image"], _shrink(fixtures.fer_pixels(i)))
    labels, keep = _apply("macro_3class", splits["train"])  # angry, happy, sad
    assert list(labels) == [0, 1, 0] and keep.all()


def test_fer2013_native_size_keeps_pixels(tmp_path):
    fixtures.write_fer2013(tmp_path / "in", fixtures.FER_ROWS[:4])
    config = _config(image_size=48)
    splits = _build(fer2013.Builder, tmp_path / "in", tmp_path / "data", config)
    first = splits["train"][0]
    np.testing.assert_array_equal(
        first["image"], np.repeat(fixtures.fer_pixels(0)[..., None], 3, -1)
    )


# ----------------------------------------------------------------------------
# Label schemes against the papers' counts.


def test_macro_5class_reproduces_seed_000_image_counts():
    # Sequences per CK+ code 1-7 (Lucey et al. 2010, Table 2); seed 000 keeps 3 frames of
    # each sequence of its five emotions: 852 images.
    per_code = {1: 45, 2: 18, 3: 59, 4: 25, 5: 69, 6: 28, 7: 83}
    emotions = [ck_plus.EMOTIONS[c] for c, n in per_code.items() for _ in range(n)]
    _, keep = label_schemes.apply(label_schemes.get("macro_5class"), "ck_plus", emotions)
    assert 3 * keep.sum() == 852
    # JAFFE: 213 images per code (AN DI FE HA NE SA SU); seed 000 keeps 151.
    per_jaffe = {"AN": 30, "DI": 29, "FE": 32, "HA": 31, "NE": 30, "SA": 31, "SU": 30}
    emotions = [jaffe.EMOTIONS[c] for c, n in per_jaffe.items() for _ in range(n)]
    _, keep = label_schemes.apply(label_schemes.get("macro_5class"), "jaffe", emotions)
    assert keep.sum() == 151
    # Oulu-CASIA: 80 subjects x 6 expressions, last 3 frames: 1200 images.
    emotions = list(oulu.EMOTIONS) * 80
    _, keep = label_schemes.apply(label_schemes.get("macro_5class"), "oulu_casia", emotions)
    assert 3 * keep.sum() == 1200
    # MUG folder names; the classes line up with the objective classes of fine-tuning.
    labels, keep = label_schemes.apply(label_schemes.get("macro_5class"), "mug", list(mug.EMOTIONS))
    assert (
        label_schemes.get("macro_5class").classes == label_schemes.get("objective_5class").classes
    )
    assert list(labels) == [2, 3, -1, 0, -1, 4, 1]


def test_macro_3class_follows_seed_001_table_2():
    scheme = label_schemes.get("macro_3class")
    assert scheme.classes == label_schemes.get("megc2019_3class").classes
    table_2 = {  # dataset: (negative, positive, surprise, excluded), stored names
        "ck_plus": (["anger", "contempt", "disgust", "fear", "sadness"], ["happy"], [], []),
        "raf_db": (["fear", "disgust", "sadness", "anger"], ["happiness"], [], ["neutral"]),
        "fer2013": (["angry", "fear", "disgust", "sad"], ["happy"], [], ["neutral"]),
    }
    names = {"ck_plus": CK_NAMES[1:], "raf_db": list(RAF_NAMES.values()), "fer2013": FER_NAMES}
    for dataset, (negative, positive, _, excluded) in table_2.items():
        labels, keep = label_schemes.apply(scheme, dataset, names[dataset])
        for name, label, kept in zip(names[dataset], labels, keep):
            want = 0 if name in negative else 1 if name in positive else 2
            if name in excluded:
                assert not kept, (dataset, name)
            else:
                assert kept and label == want, (dataset, name)
    with pytest.raises(ValueError, match="'jaffe'"):
        label_schemes.apply(scheme, "jaffe", ["anger"])


# ----------------------------------------------------------------------------
# Defects: each stops the build naming the file and line.


@pytest.mark.parametrize("name", list(BUILDERS))
def test_missing_manual_dir_says_where_to_get_it(tmp_path, name):
    module = BUILDERS[name]
    config = module.Builder.BUILDER_CONFIGS[0]
    homepage = {
        "ck_plus": "jeffcohn.net",
        "oulu_casia": "cse.oulu.fi",
        "jaffe": "zenodo.3451524",
        "mug": "mug.ee.auth.gr",
        "raf_db": "whdeng.cn",
        "fer2013": "kaggle.com",
    }[name]
    layout = {
        "ck_plus": "Emotion/S005/001/S005_001_00000011_emotion.txt",
        "oulu_casia": "OriginalImg/VL/Strong/P001/Anger/000.jpeg",
        "jaffe": "KA.AN1.39.tiff",
        "mug": "subjects3/001/anger/take000/img_0000.jpg",
        "raf_db": "basic/EmoLabel/list_patition_label.txt",
        "fer2013": "fer2013.csv",
    }[name]
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not the dataset")
    for manual in ("absent", "empty", "other"):
        message = _error(module.Builder, tmp_path / manual, tmp_path, config, FileNotFoundError)
        assert str(tmp_path / manual) in message and homepage in message and layout in message


@pytest.mark.parametrize(
    "content, problem",
    [
        ("   8.0000000e+00\n", "'8.0000000e+00' is not a CK+ emotion code 0-7"),
        ("   2.5000000e+00\n", "'2.5000000e+00' is not a CK+ emotion code 0-7"),
        ("happy\n", "'happy' is not a CK+ emotion code 0-7"),
    ],
)
def test_ck_plus_bad_label_value(tmp_path, content, problem):
    fixtures.write_ck_plus(tmp_path / "in")
    path = "Emotion/S010/004/S010_004_00000005_emotion.txt"
    (tmp_path / "in" / path).write_text(content)
    message = _error(ck_plus.Builder, tmp_path / "in", tmp_path, _config(frames=3))
    assert f"{path} line 1: {problem}" in message


def test_ck_plus_empty_label_file_and_missing_labelled_frame(tmp_path):
    fixtures.write_ck_plus(tmp_path / "in")
    label = "Emotion/S022/001/S022_001_00000009_emotion.txt"
    (tmp_path / "in" / label).write_text("\n")
    message = _error(ck_plus.Builder, tmp_path / "in", tmp_path, _config(frames=3))
    assert f"{label}: expected one emotion code (0-7), found 0 non-empty lines" in message
    (tmp_path / "in" / label).write_text("5\n")
    (tmp_path / "in" / fixtures.ck_plus_frame("S022", "001", 9)).unlink()
    message = _error(ck_plus.Builder, tmp_path / "in", tmp_path, _config(frames=3))
    assert (
        f"{label} (ck_plus/S022/001): the labelled frame S022_001_00000009 has no image" in message
    )
    shutil.rmtree(tmp_path / "in" / "cohn-kanade-images" / "S022" / "001")
    message = _error(ck_plus.Builder, tmp_path / "in", tmp_path, _config(frames=3))
    assert f"{label} (ck_plus/S022/001): clip folder" in message and "not found" in message


def test_oulu_casia_unknown_expression_folder(tmp_path):
    fixtures.write_oulu_casia(tmp_path / "in", [("VL", "Strong", "P003", "Angry", 3)])
    message = _error(oulu.Builder, tmp_path / "in", tmp_path, _config(oulu.OuluConfig))
    assert "OriginalImg/VL/Strong/P003/Angry: expression folder 'Angry' is not one of" in message


def test_oulu_casia_missing_lighting_folder(tmp_path):
    fixtures.write_oulu_casia(tmp_path / "in", [("VL", "Weak", "P001", "Anger", 3)])
    config = _config(oulu.OuluConfig)
    message = _error(oulu.Builder, tmp_path / "in", tmp_path, config, FileNotFoundError)
    assert "OriginalImg/VL/Strong not found" in message


@pytest.mark.parametrize(
    "name, problem",
    [
        ("KA.XX1.40", "expression code 'XX' is not one of"),
        ("KA_AN1_40", "not a JAFFE image name SUBJECT.CODEtake.ID.tiff"),
    ],
)
def test_jaffe_bad_file_name(tmp_path, name, problem):
    fixtures.write_jaffe(tmp_path / "in", fixtures.JAFFE_NAMES[:2] + [name])
    message = _error(jaffe.Builder, tmp_path / "in", tmp_path, _config())
    assert f"jaffe/{name}.tiff: {problem}" in message


def test_unreadable_image(tmp_path):
    fixtures.write_jaffe(tmp_path / "in")
    bad = tmp_path / "in" / "jaffe" / "KA.HA2.30.tiff"
    bad.write_bytes(b"not a tiff")
    message = _error(jaffe.Builder, tmp_path / "in", tmp_path, _config())
    assert f"jaffe/KA.HA2.30.tiff: unreadable image {bad}" in message


def test_mug_bad_corrections(tmp_path):
    fixtures.write_mug(tmp_path / "in", fixtures.MUG_TAKES[:1])
    corrections = tmp_path / "in" / "corrections.csv"
    corrections.write_text("clip,column,value,note\nmug/001/anger/take000,apex_frame,20,\n")
    message = _error(mug.Builder, tmp_path / "in", tmp_path, _config(frames=4))
    assert "corrections.csv line 2" in message
    assert "apex_frame '20' of mug/001/anger/take000 is not a frame of" in message
    corrections.write_text("clip,column,value,note\nmug/009/anger/take000,apex_frame,3,\n")
    message = _error(mug.Builder, tmp_path / "in", tmp_path, _config(frames=4))
    assert "corrections.csv line 2: clip 'mug/009/anger/take000'" in message


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda lines: lines.__setitem__(2, ("test_0001.jpg", "8")), "line 3: emotion code '8'"),
        (lambda lines: lines.__setitem__(1, ("train_00002.jpg 4", "x")), "line 2: expected"),
        (lambda lines: lines.__setitem__(3, ("val_00003.jpg", "7")), "line 4: image name"),
        (lambda lines: lines.append(lines[0]), "line 6 (train_00001.jpg): image"),
    ],
)
def test_raf_db_bad_label_line(tmp_path, edit, problem):
    fixtures.write_raf_db(tmp_path / "in")
    lines = list(fixtures.RAF_LINES)
    edit(lines)
    labels = tmp_path / "in" / "basic" / "EmoLabel" / "list_patition_label.txt"
    labels.write_text("".join(f"{name} {code}\n" for name, code in lines))
    config = _config(release="aligned")
    message = _error(raf_db.Builder, tmp_path / "in", tmp_path, config)
    assert f"list_patition_label.txt {problem}" in message


def test_raf_db_missing_image(tmp_path):
    fixtures.write_raf_db(tmp_path / "in")
    missing = tmp_path / "in" / "basic" / "Image" / "aligned" / "test_0002_aligned.jpg"
    missing.unlink()
    config = _config(release="aligned")
    message = _error(raf_db.Builder, tmp_path / "in", tmp_path, config)
    assert f"list_patition_label.txt line 5 (test_0002.jpg): image {missing} not found" in message


@pytest.mark.parametrize(
    "row, problem",
    [
        (("3", "Training", " ".join(["7"] * 2303)), "2303 pixel values, expected 2304"),
        (("3", "Training", " ".join(["7"] * 2303 + ["x"])), "pixel value 'x' is not an integer"),
        (("3", "Training", " ".join(["7"] * 2303 + ["256"])), "pixel value 256 is outside 0-255"),
        (("7", "Training"), "emotion '7' is not one of 0-6"),
        (("3", "Validation"), "Usage 'Validation' is not one of"),
    ],
)
def test_fer2013_bad_row(tmp_path, row, problem):
    rows = list(fixtures.FER_ROWS)
    rows[2] = row
    fixtures.write_fer2013(tmp_path / "in", rows)
    message = _error(fer2013.Builder, tmp_path / "in", tmp_path, _config())
    assert f"fer2013.csv line 4: {problem}" in message


def test_fer2013_missing_column(tmp_path):
    path = fixtures.write_fer2013(tmp_path / "in")
    path.write_text(path.read_text().replace("Usage", "Use", 1))
    message = _error(fer2013.Builder, tmp_path / "in", tmp_path, _config())
    assert "fer2013.csv line 1: header has no column 'usage'" in message
