"""Still-image (macro-expression) datasets through `mer_jax.data.load`: tiny CK+, JAFFE,
RAF-DB and FER-2013 trees in their official layouts -> `mer-jax data build` -> pooled loads
under the pre-training label schemes, checked against the stored images read back with
tfds.data_source and resized with cv2 here, and against the fixture tables."""

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from mer_jax import cli, data, label_schemes
from mer_jax.errors import UserError
from mer_jax.label_schemes import text
from mer_jax.preprocess import representations
from tests.conftest import input_spec
from tests.data_builders import macro_fixtures as fixtures

CK, JAFFE, RAF, FER = "ck_plus/last3_112", "jaffe/112", "raf_db/aligned_112", "fer2013/48"
# The pre-training schemes written out (seed 000 Sec. 4.1, seed 001 Table 2): stored emotion
# -> class index; absent = excluded.
MACRO_5 = ("happiness", "surprise", "anger", "disgust", "sadness")
FIVE = {"ck_plus": {"happy": 0, "surprise": 1, "anger": 2, "disgust": 3, "sadness": 4}}
FIVE["jaffe"] = {"happiness": 0, "surprise": 1, "anger": 2, "disgust": 3, "sadness": 4}
NEGATIVE = {"anger", "angry", "contempt", "disgust", "fear", "sadness", "sad"}
THREE = {
    name: {**dict.fromkeys(NEGATIVE, 0), "happy": 1, "happiness": 1, "surprise": 2}
    for name in ("ck_plus", "raf_db", "fer2013")
}
CK_NAMES = ["neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
JAFFE_CODES = {"AN": "anger", "DI": "disgust", "FE": "fear", "HA": "happiness"}
JAFFE_CODES |= {"NE": "neutral", "SA": "sadness", "SU": "surprise"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("stills")
    writers = {
        CK: fixtures.write_ck_plus,
        JAFFE: fixtures.write_jaffe,
        RAF: fixtures.write_raf_db,
        FER: fixtures.write_fer2013,
    }
    for name, write in writers.items():
        manual = root / "manual" / name.split("/")[0]
        write(manual)
        argv = ["data", "build", name, "--manual-dir", str(manual), "--data-dir", str(root)]
        assert cli.main(argv) == 0
    return str(root)


def _stored(name, data_dir):
    """The stored `image` of every example of `name`'s train split, (N, S, S, 3)."""
    source = tfds.data_source(name, data_dir=data_dir, split="train")
    return np.stack([source[i]["image"] for i in range(len(source))])


def _grey(rgb):
    """ITU-R 601 luma, rounded (cv2 computes it in fixed point: within 1 of this)."""
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.rint(luma).astype(np.int16)[..., None]


def _ck_rows():
    """(clip id, subject, emotion) of each stored CK+ image: the last 3 frames up to the
    labelled one of each labelled sequence, in order."""
    rows = []
    for subject, sequence, first, last, code, _ in fixtures.CK_PLUS_SEQUENCES:
        if code is not None:
            for n in range(max(first, last - 2), last + 1):
                clip = f"ck_plus/{subject}/{sequence}#{n}"
                rows.append((clip, f"ck_plus/{subject}", CK_NAMES[code]))
    return rows


def _jaffe_rows():
    return [
        (f"jaffe/jaffe/{name}.tiff", f"jaffe/{name[:2]}", JAFFE_CODES[name.split(".")[1][:2]])
        for name in sorted(fixtures.JAFFE_NAMES)
    ]


def _load(data_dir, name, lines=None, progress=False, **spec):
    log = (lambda _: None) if lines is None else lines.append
    return data.load(name, input_spec(**spec), data_dir=data_dir, log=log, progress=progress)


def test_ck_plus_and_jaffe_pool_under_macro_5class(data_dir):
    lines = []
    ds = _load(
        data_dir, f"{CK}+{JAFFE}", lines, image_size=56, channels=1, label_scheme="macro_5class"
    )
    rows = [("ck_plus", r) for r in _ck_rows()] + [("jaffe", r) for r in _jaffe_rows()]
    stored = np.concatenate([_stored(CK, data_dir), _stored(JAFFE, data_dir)])
    keep = np.array([emotion in FIVE[ds_name] for ds_name, (_, _, emotion) in rows])
    kept = [r for r, k in zip(rows, keep) if k]
    assert ds.clips.tolist() == [clip for _, (clip, _, _) in kept]
    assert ds.subjects.tolist() == [subject for _, (_, subject, _) in kept]
    assert ds.sources.tolist() == [name for name, _ in kept]
    assert ds.labels.tolist() == [FIVE[name][emotion] for name, (_, _, emotion) in kept]
    assert ds.class_names == MACRO_5
    # The image, shrunk to 56 (cv2 INTER_AREA) and made grey.
    want = np.stack([_grey(cv2.resize(x, (56, 56), interpolation=cv2.INTER_AREA)) for x in stored])
    assert ds.images.shape == (len(kept), 56, 56, 1) and ds.images.dtype == np.uint8
    assert np.abs(ds.images.astype(np.int16) - want[keep]).max() <= 1
    # JAFFE's fear and neutral images are counted, not dropped silently.
    jaffe = [e in FIVE["jaffe"] for _, _, e in _jaffe_rows()]
    excluded = f"{JAFFE}: label scheme macro_5class excludes {jaffe.count(False)} of {len(jaffe)}"
    assert any(excluded in line for line in lines) and not all(jaffe)
    assert not any("no subject ids" in line for line in lines)


def test_colour_apex_and_evm_apex_are_the_image(data_dir):
    stored = _stored(JAFFE, data_dir)
    keep = [JAFFE_CODES[n.split(".")[1][:2]] in FIVE["jaffe"] for n in sorted(fixtures.JAFFE_NAMES)]
    same = _load(data_dir, JAFFE, image_size=112, channels=3, label_scheme="macro_5class")
    np.testing.assert_array_equal(same.images, stored[keep])  # stored size: as stored
    evm = _load(
        data_dir, JAFFE, representation="evm_apex", image_size=32, label_scheme="macro_5class"
    )
    want = np.stack([cv2.resize(x, (32, 32), interpolation=cv2.INTER_AREA) for x in stored])
    np.testing.assert_array_equal(evm.images, want[keep])
    # ... which is what evm_apex makes of a clip that does not move: nothing to magnify.
    still = representations.Clip(np.repeat(stored[:1], 8, axis=0), 0, 4, 7, "still")
    spec = input_spec(representation="evm_apex", image_size=32)
    magnified = representations.evm_apex_batch([still], spec)[0]
    assert np.abs(magnified.astype(np.int16) - want[0]).max() <= 1


@pytest.mark.parametrize("representation", ["flow", "flow_sequence", "aman_stack"])
def test_motion_representations_need_clips(data_dir, representation):
    with pytest.raises(UserError) as info:
        _load(data_dir, f"{JAFFE}+{CK}", representation=representation, label_scheme="macro_5class")
    message = str(info.value)
    assert "\n" not in message and "config key 'input.representation'" in message
    assert f"{representation!r} needs clips; {JAFFE} stores still images" in message


def test_subjectless_images_are_their_own_subjects(data_dir):
    lines = []
    name = f"{CK}+{RAF}+{FER}"
    ds = _load(data_dir, name, lines, image_size=48, channels=3, label_scheme="macro_3class")
    raf_names = ["", "surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]
    raf = [  # the train split, in the label file's order
        (f"raf_db/basic/Image/aligned/{n[: -len('.jpg')]}_aligned.jpg", raf_names[int(code)])
        for n, code in fixtures.RAF_LINES
        if n.startswith("train_")
    ]
    fer_names = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    fer = [
        (f"fer2013/fer2013.csv:{i + 2}", fer_names[int(code)])
        for i, (code, usage) in enumerate(fixtures.FER_ROWS)
        if usage == "Training"
    ]
    rows = [("ck_plus", c, s, e) for c, s, e in _ck_rows()]
    rows += [("raf_db", c, c, e) for c, e in raf] + [("fer2013", c, c, e) for c, e in fer]
    kept = [r for r in rows if r[3] in THREE[r[0]]]
    assert len(kept) == len(rows) - 1  # RAF-DB's neutral train_00003
    assert ds.clips.tolist() == [r[1] for r in kept]
    assert ds.subjects.tolist() == [r[2] for r in kept]
    assert ds.sources.tolist() == [r[0] for r in kept]
    assert ds.labels.tolist() == [THREE[r[0]][r[3]] for r in kept]
    assert ds.class_names == ("negative", "positive", "surprise")
    said = [line for line in lines if "no subject ids" in line]
    assert said == [
        f"raf_db: no subject ids; each image is its own subject ({RAF})",
        f"fer2013: no subject ids; each image is its own subject ({FER})",
    ]
    # FER-2013 is stored at 48: its inputs are its images; the others shrunk to 48.
    fer_stored = _stored(FER, data_dir)
    np.testing.assert_array_equal(ds.images[ds.sources == "fer2013"], fer_stored)
    raf_stored = _stored(RAF, data_dir)[[e in THREE["raf_db"] for _, e in raf]]
    want = [cv2.resize(x, (48, 48), interpolation=cv2.INTER_AREA) for x in raf_stored]
    np.testing.assert_array_equal(ds.images[ds.sources == "raf_db"], np.stack(want))


def test_still_inputs_are_cached_with_progress(data_dir, capfd):
    lines = []
    first = _load(data_dir, CK, lines, progress=True, image_size=40, label_scheme="macro_5class")
    log = "\n".join(lines)
    assert f"{CK}/1.0.0: computing model inputs (not cached" in log
    assert f"{CK}/1.0.0 -> apex: 100%" in capfd.readouterr().err  # the progress bar
    lines.clear()
    again = _load(data_dir, CK, lines, image_size=40, label_scheme="macro_5class")
    assert any("model inputs from the cache" in line for line in lines)
    np.testing.assert_array_equal(again.images, first.images)


def test_stills_pool_with_clips_of_the_same_input_shape(data_dir, monkeypatch):
    """CK+ images and the synthetic `tiny` clips, under one scheme that covers both."""
    classes = ("negative", "positive", "surprise")
    scheme = label_schemes.Scheme(
        name="test_pool",
        classes=classes,
        tables={
            "ck_plus": {emotion: classes[i] for emotion, i in THREE["ck_plus"].items()},
            "smic": {c: c for c in classes},
            "samm": {c: c for c in classes},
        },
    )
    monkeypatch.setitem(label_schemes.SCHEMES, scheme.name, scheme)
    spec = dict(image_size=32, channels=1, label_scheme="test_pool")
    pooled = _load(data_dir, f"{CK}+synthetic_me/tiny", **spec)
    ck, tiny = _load(data_dir, CK, **spec), _load(data_dir, "synthetic_me/tiny", **spec)
    for key in ("images", "labels", "subjects", "sources", "clips"):
        both = np.concatenate([getattr(ck, key), getattr(tiny, key)])
        np.testing.assert_array_equal(getattr(pooled, key), both, err_msg=key)
    assert set(pooled.sources.tolist()) == {"ck_plus", "smic", "samm"}
    tiny_source = tfds.data_source("synthetic_me/tiny", data_dir=data_dir, split="train")
    assert tiny.clips.tolist() == [text(tiny_source[i]["clip"]) for i in range(len(tiny_source))]


def test_read_metadata_reads_stills_without_pixels(data_dir):
    meta = data.read_metadata(
        f"{CK}+{JAFFE}", label_scheme="macro_5class", data_dir=data_dir, log=lambda _: None
    )
    ds = _load(data_dir, f"{CK}+{JAFFE}", image_size=24, label_scheme="macro_5class")
    for key in ("labels", "subjects", "sources", "clips", "class_names"):
        np.testing.assert_array_equal(getattr(meta, key), getattr(ds, key), err_msg=key)
