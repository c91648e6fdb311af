"""Still-image datasets through the loader: the macro-expression pre-training sets.

The macro builders (`data_builders/macro_common.py`: ck_plus, oulu_casia, jaffe,
mug, raf_db, fer2013) store one image per example: `image` (S, S, 3) uint8,
`dataset`, `subject` ('' where the dataset does not say), `clip` ('' for a still
image; a sequence's clip id on each of its selected frames), `frame`, `emotion`
and `source_file`, and no `source` or `frames`. `mer_jax.data.loader` reads them
through this module:

* ids (`ids`): source = `dataset`; clip = '<clip>#<frame>' for a frame of a
  sequence, '<dataset>/<source_file>' for a still image, so one per example;
  subject = `subject`, or where the dataset records none the example's own
  clip id (a subject-less sequence: its clip), said once per dataset in the log.
* model inputs (`inputs`): `representations.still_input`, the image as the
  apex frame of `apex` and `evm_apex` (resized and converted to channels by
  the same functions); a representation that needs motion is a `UserError`
  (`check_representation`).
"""

from collections.abc import Callable, Mapping

import numpy as np
from tqdm.auto import tqdm

from mer_jax.errors import UserError
from mer_jax.label_schemes import text
from mer_jax.preprocess import representations

# The features of a still-image dataset (`macro_common.features`).
FEATURES = ("image", "dataset", "subject", "clip", "frame", "source_file")


def stores_stills(features) -> bool:
    """True for a dataset of single images (a macro builder's), not clips or a stored view."""
    return all(key in features for key in FEATURES) and not {"frames", "input"} & set(features)


def _own_subjects(part: str, datasets, subjects, sequences, clip_ids, log) -> np.ndarray:
    """Each example without a subject id becomes its own subject: its sequence, else its own
    clip id; said once per dataset."""
    out, missing = list(subjects), {}
    for i, (dataset, subject) in enumerate(zip(datasets, subjects)):
        if not subject:
            out[i] = sequences[i] or clip_ids[i]
            missing.setdefault(dataset, []).append(i)
    for dataset, rows in missing.items():
        total = int((datasets == dataset).sum())
        what = "sequence" if all(sequences[i] for i in rows) else "image"
        count = "" if len(rows) == total else f"{len(rows)} of {total} images: "
        log(f"{dataset}: no subject ids; {count}each {what} is its own subject ({part})")
    return np.array(out, dtype=str)


def ids(part: str, columns: Mapping[str, list], log: Callable[[str], None]) -> dict:
    """{'subject', 'clip', 'source'}: str arrays over the stored examples of one part."""
    datasets, subjects, sequences, files = (
        np.array([text(v) for v in columns[key]], dtype=str)
        for key in ("dataset", "subject", "clip", "source_file")
    )
    clip_ids = np.array(
        [
            f"{sequence}#{int(frame)}" if sequence else f"{dataset}/{file}"
            for dataset, sequence, frame, file in zip(datasets, sequences, columns["frame"], files)
        ],
        dtype=str,
    )
    subjects = _own_subjects(part, datasets, subjects, sequences, clip_ids, log)
    return {"subject": subjects, "clip": clip_ids, "source": datasets}


def check_representation(part: str, representation: str) -> None:
    """A UserError unless `representation` can be made from a single image."""
    if representation not in representations.STILL_REPRESENTATIONS:
        raise UserError(
            f"config key 'input.representation': {representation!r} needs clips; {part} stores "
            f"still images (one per example): use one of {representations.STILL_REPRESENTATIONS}"
        )


def inputs(source, spec: Mapping, desc: str, progress: bool) -> np.ndarray:
    """The model input of every stored image of a data source, (N, ...)."""
    out = None
    for i in tqdm(range(len(source)), desc=desc, unit="image", disable=not progress):
        x = representations.still_input(source[i]["image"], spec)
        if out is None:
            out = np.zeros((len(source), *x.shape), x.dtype)
        out[i] = x
    return out
