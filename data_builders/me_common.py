"""Reading code shared by the micro-expression builders (CASME, CASME II, SAMM, SMIC).

A builder turns each row of its official coding sheet (for SMIC, each clip
folder) into a `Record`, checks every record against the frame folders before
anything is written (`plan_clip`), then stores per clip the frames
onset..offset (config `frames='onset_offset'`) or the whole clip folder
(`frames='all'`), each resized to S x S with cv2.INTER_AREA, as RGB uint8; grey
frames come back replicated to 3 channels. `onset`, `apex`, `offset` index the
stored frames; `onset_frame`, `apex_frame`, `offset_frame` keep the sheet's
frame numbers (-1 where the sheet has none). No `label`: label_schemes maps the
stored `emotion` (or `objective_class`) to the classes of a protocol.

View configs (`data_builders/views.py`) read the frames the same way and
store, instead of `frames`, one model input per clip in an `input` feature
(e.g. `cropped_flow_28`: the onset->apex flow at 28x28 of the cropped release),
computed with `mer_jax.preprocess`; `view_configs` makes them.

Sheet defects (issue 3 item 5) that these rules repair, each repair written to
the example's `repairs` text:
  R1 apex missing ('/', '-', empty, or a negative number such as SAMM's -1):
     apex := the middle frame of onset..offset, (onset + offset) // 2.
  R2 apex outside onset..offset: apex := the middle frame, as R1.
  R3 onset or offset missing: the first / last frame of the clip folder.
  R4 a row of `corrections.csv` in manual_dir (columns clip, column, value,
     note) replaces a cell of that clip before it is read; see `Corrections`.
Anything else stops the build with an `AnnotationError` naming the file and
row: a missing column, a duplicate clip, onset > offset, a cell that is not a
frame number, a missing clip folder or frame file, an unreadable image.
"""

from __future__ import annotations

import abc
import csv
import dataclasses
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import tensorflow_datasets as tfds
from tqdm.auto import tqdm

from data_builders import views

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".bmp", ".png", ".tif", ".tiff")
FRAME_MODES = ("onset_offset", "all")
MISSING_MARKERS = ("", "/", "-", "n/a", "na", "none", "nan")
CORRECTIONS_FILE = "corrections.csv"
# Record fields a corrections.csv row may set.
CORRECTABLE = (
    "onset_frame",
    "apex_frame",
    "offset_frame",
    "emotion",
    "action_units",
    "objective_class",
)
_HEADER_SEARCH_ROWS = 30
_TRAILING_NUMBER = re.compile(r"(\d+)$")

log = logging.getLogger(__name__)


class AnnotationError(ValueError):
    """A defect of the input files that no documented rule repairs."""


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
            "objective_class": text(),
            "onset": scalar(),
            "apex": scalar(),
            "offset": scalar(),
            "onset_frame": scalar(),
            "apex_frame": scalar(),
            "offset_frame": scalar(),
            "repairs": text(),
        }
    )


# ----------------------------------------------------------------------------
# Records and frame plans.


@dataclasses.dataclass
class Record:
    """One clip as its annotation describes it; frame numbers are the sheet's (None: absent)."""

    dataset: str  # 'casme2'
    source: str  # 'casme2'; SMIC: 'smic' (HS), 'smic_vis', 'smic_nir'
    subject: str  # 'casme2/sub01', unique across datasets
    clip: str  # 'casme2/sub01/EP02_01f'
    folder: Path
    where: str  # 'CASME2-coding-20140508.xlsx row 5', for error messages
    emotion: str
    action_units: str = ""
    objective_class: str = ""
    onset_frame: int | None = None
    apex_frame: int | None = None
    offset_frame: int | None = None
    has_apex: bool = True  # False: the dataset has no apex annotation (SMIC)
    repairs: list[str] = dataclasses.field(default_factory=list)

    @property
    def at(self) -> str:
        return f"{self.where} ({self.clip})"


@dataclasses.dataclass
class Plan:
    """What to store for one record: frame files in order and indices into them."""

    record: Record
    paths: list[Path]
    onset: int
    apex: int  # -1 when the dataset has no apex annotation
    offset: int
    repairs: list[str]


def list_frames(folder: Path, at: str) -> dict[int, Path]:
    """Image files of a clip folder by frame number (the trailing digits of the name), sorted."""
    if not folder.is_dir():
        raise AnnotationError(f"{at}: clip folder {folder} not found")
    frames = {}
    for path in folder.iterdir():
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        match = _TRAILING_NUMBER.search(path.stem)
        if not match:
            raise AnnotationError(f"{at}: image {path} has no frame number at the end of its name")
        number = int(match.group(1))
        if number in frames:
            raise AnnotationError(
                f"{at}: images {frames[number].name} and {path.name} in {folder} are both frame "
                f"{number}"
            )
        frames[number] = path
    if not frames:
        raise AnnotationError(f"{at}: clip folder {folder} holds no image files {IMAGE_SUFFIXES}")
    return dict(sorted(frames.items()))


def _middle(numbers: Sequence[int]) -> int:
    """The frame at the middle position, (onset + offset) // 2 for a contiguous run."""
    return numbers[(len(numbers) - 1) // 2]


def plan_clip(record: Record, frames: Mapping[int, Path], mode: str) -> Plan:
    """Applies rules R1-R3 and checks the frames exist; see the module docstring."""
    numbers = list(frames)
    repairs = list(record.repairs)
    onset, apex, offset = record.onset_frame, record.apex_frame, record.offset_frame
    if onset is None:
        onset = numbers[0]
        repairs.append(f"onset missing in the sheet: first frame of the folder, {onset}")
    if offset is None:
        offset = numbers[-1]
        repairs.append(f"offset missing in the sheet: last frame of the folder, {offset}")
    if onset > offset:
        raise AnnotationError(f"{record.at}: onset frame {onset} > offset frame {offset}")
    span = [n for n in numbers if onset <= n <= offset]
    if mode == "onset_offset":
        missing = [n for n in range(onset, offset + 1) if n not in frames]
        if missing:
            raise AnnotationError(
                f"{record.at}: {len(missing)} frame file(s) of onset..offset {onset}..{offset} "
                f"missing in {record.folder}, first frame {missing[0]} (the folder holds frames "
                f"{numbers[0]}..{numbers[-1]}, {len(numbers)} files)"
            )
    elif mode == "all":
        for name, number in (("onset", onset), ("offset", offset)):
            if number not in frames:
                raise AnnotationError(
                    f"{record.at}: {name} frame {number} has no file in {record.folder} (it holds "
                    f"frames {numbers[0]}..{numbers[-1]})"
                )
    else:
        raise ValueError(f"frames mode {mode!r} not one of {FRAME_MODES}")
    if record.has_apex:
        if apex is None:
            apex = _middle(span)
            repairs.append(f"apex missing in the sheet: middle frame {apex}")
        elif not onset <= apex <= offset:
            old, apex = apex, _middle(span)
            repairs.append(
                f"apex frame {old} outside onset..offset {onset}..{offset}: middle frame {apex}"
            )
        elif apex not in frames:
            raise AnnotationError(f"{record.at}: apex frame {apex} has no file in {record.folder}")
    kept = span if mode == "onset_offset" else numbers
    index = {n: i for i, n in enumerate(kept)}
    return Plan(
        record=record,
        paths=[frames[n] for n in kept],
        onset=index[onset],
        apex=index[apex] if record.has_apex else -1,
        offset=index[offset],
        repairs=repairs,
    )


def plan_all(records: Sequence[Record], mode: str, *, name: str) -> list[Plan]:
    """Checks every record (duplicates, folders, frames) before anything is written."""
    seen: dict[str, Record] = {}
    plans = []
    for record in tqdm(records, desc=f"{name}: checking clips", unit="clip", leave=False):
        if record.clip in seen:
            raise AnnotationError(f"{record.at}: duplicate clip, also on {seen[record.clip].where}")
        seen[record.clip] = record
        plans.append(plan_clip(record, list_frames(record.folder, record.at), mode))
    repaired = [p for p in plans if p.repairs]
    if repaired:
        log.warning(
            "%s: %d of %d clips repaired (see their `repairs` feature), e.g. %s: %s",
            name,
            len(repaired),
            len(plans),
            repaired[0].record.clip,
            "; ".join(repaired[0].repairs),
        )
    return plans


def load_frames(paths: Sequence[Path], size: int | None, at: str) -> np.ndarray:
    """(T, size, size, 3) uint8 RGB; cv2.INTER_AREA; grey images replicated to 3 channels.
    `size=None` keeps the stored resolution (every frame of the clip must share it)."""
    out = None
    for i, path in enumerate(paths):
        data = np.fromfile(path, np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            raise AnnotationError(f"{at}: unreadable image {path}")
        if size is not None:
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        if out is None:
            out = np.empty((len(paths), *image.shape), np.uint8)
        elif image.shape != out.shape[1:]:
            raise AnnotationError(
                f"{at}: {path} is {image.shape[1]}x{image.shape[0]}, the clip's first frame "
                f"{paths[0]} is {out.shape[2]}x{out.shape[1]}"
            )
        out[i] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return out


def face_cropped_frames(
    plan: Plan, size: int, *, align: bool = False, landmark_model: str = ""
) -> np.ndarray:
    """(T, size, size, 3): every frame cut to the one face box of the onset frame (Sec. 3 of
    seeds 000-002: faces cropped before resizing), or with `align` warped by the one
    transform that levels the onset frame's eyes (68 landmarks), `mer_jax.preprocess.face`."""
    from mer_jax import face  # Imported here: frames-only configs need no cascade.

    frames = load_frames(plan.paths, None, plan.record.at)
    at = plan.record.at
    try:
        if align:
            return face.aligned_clip(
                frames, plan.onset, size, model=landmark_model or None, clip=at
            )
        box = face.crop_box(frames[plan.onset], clip=at)
    except face.FaceNotFoundError as e:
        raise AnnotationError(f"{e} (file {plan.paths[plan.onset]})") from None
    return face.crop_clip(frames, box, size, clip=at)


def example(plan: Plan, config: MEConfig) -> dict:
    record = plan.record
    size = config.image_size
    sheet = lambda n: -1 if n is None else n
    face = config.face_crop or config.face_align
    return {
        "frames": (
            face_cropped_frames(
                plan, size, align=config.face_align, landmark_model=config.landmark_model
            )
            if face
            else load_frames(plan.paths, size, record.at)
        ),
        "dataset": record.dataset,
        "source": record.source,
        "subject": record.subject,
        "clip": record.clip,
        "emotion": record.emotion,
        "action_units": record.action_units,
        "objective_class": record.objective_class,
        "onset": plan.onset,
        "apex": plan.apex,
        "offset": plan.offset,
        "onset_frame": sheet(record.onset_frame),
        "apex_frame": sheet(record.apex_frame),
        "offset_frame": sheet(record.offset_frame),
        "repairs": "; ".join(plan.repairs),
    }


# ----------------------------------------------------------------------------
# Sheets.


@dataclasses.dataclass(frozen=True)
class SheetRow:
    """Cells of one data row by key; `row` is 1-based, as a spreadsheet shows it."""

    file: str
    row: int
    cells: dict[str, object]

    @property
    def where(self) -> str:
        return f"{self.file} row {self.row}"


def _norm(header) -> str:
    return " ".join(str(header).split()).lower() if header is not None else ""


def _open_rows(path: Path) -> list[tuple]:
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types for a bad file.
        raise AnnotationError(f"{path}: not a readable .xlsx workbook ({e})") from e
    try:
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # Some writers store wrong dimensions; read every stored row.
        return list(sheet.iter_rows(values_only=True))
    finally:
        book.close()


def _find_header(rows: Sequence[tuple], anchors: Sequence[str]) -> int | None:
    """0-based index of the first row naming every anchor column."""
    wanted = {_norm(a) for a in anchors}
    for i, row in enumerate(rows[:_HEADER_SEARCH_ROWS]):
        if wanted <= {_norm(c) for c in row}:
            return i
    return None


def read_sheet(
    path: Path,
    columns: Mapping[str, str | Sequence[str]],
    *,
    optional: Sequence[str] = (),
    anchors: Sequence[str] = ("Subject", "Filename"),
) -> list[SheetRow]:
    """Data rows of the first worksheet under its header row, cells keyed by `columns` keys.

    The header row is the first of the top 30 rows that names every `anchors`
    column (row 1 for CASME II and CASME I, row 14 for SAMM). `columns` maps a
    key to its header text or alternatives (matched ignoring case and extra
    spaces); a key in `optional` may be absent (its cells are then None). Rows
    whose keyed cells are all empty are skipped.
    """
    rows = _open_rows(path)
    header_index = _find_header(rows, anchors)
    if header_index is None:
        raise AnnotationError(
            f"{path}: no header row naming {list(anchors)} in its first {_HEADER_SEARCH_ROWS} rows"
        )
    header = [_norm(c) for c in rows[header_index]]
    positions = {}
    for key, names in columns.items():
        names = (names,) if isinstance(names, str) else tuple(names)
        found = [header.index(_norm(n)) for n in names if _norm(n) in header]
        if found:
            positions[key] = found[0]
        elif key not in optional:
            raise AnnotationError(
                f"{path}: header row {header_index + 1} has no column {names[0]!r} "
                f"(it has {[c for c in rows[header_index] if c is not None]})"
            )
    out = []
    for i, row in enumerate(rows[header_index + 1 :], start=header_index + 2):
        cells = {k: row[p] if p < len(row) else None for k, p in positions.items()}
        cells.update({k: None for k in columns if k not in positions})
        if all(cell_text(v) == "" for v in cells.values()):
            continue
        out.append(SheetRow(path.name, i, cells))
    return out


def sheet_has_columns(path: Path, required: Sequence[str]) -> bool:
    """Whether the workbook has a header row naming every `required` column."""
    try:
        return _find_header(_open_rows(path), required) is not None
    except AnnotationError:
        return False


def cell_text(value) -> str:
    """A cell as text: None -> '', 12.0 -> '12', surrounding spaces stripped."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def frame_number(row: SheetRow, key: str, header: str, clip: str) -> int | None:
    """A frame-number cell; None for a missing marker ('/', '-', empty) or a negative number."""
    value = row.cells[key]
    text = cell_text(value)
    if text.lower() in MISSING_MARKERS:
        return None
    if isinstance(value, bool) or not re.fullmatch(r"-?\d+(\.0*)?", text):
        raise AnnotationError(
            f"{row.where} ({clip}): column {header!r} holds {value!r}, not a frame number"
        )
    number = int(float(text))
    return number if number >= 0 else None


def numbered_id(row: SheetRow, key: str, header: str, prefix: str, width: int) -> str:
    """A subject cell as its folder name: 1, '01' or 'sub01' -> 'sub01' (prefix 'sub', width 2)."""
    text = cell_text(row.cells[key])
    match = re.fullmatch(rf"(?:{re.escape(prefix)})?0*(\d+)", text, flags=re.IGNORECASE)
    if not match:
        raise AnnotationError(
            f"{row.where}: column {header!r} holds {row.cells[key]!r}, not a subject number"
        )
    return f"{prefix}{int(match.group(1)):0{width}d}"


def required_text(row: SheetRow, key: str, header: str) -> str:
    text = cell_text(row.cells[key])
    if not text:
        raise AnnotationError(f"{row.where}: column {header!r} is empty")
    return text


class Corrections:
    """Rule R4: user-supplied cell corrections, read from manual_dir/corrections.csv.

    Columns `clip` (e.g. casme2/sub01/EP02_01f), `column` (one of CORRECTABLE),
    `value` (new cell text; '/' marks a frame as missing), `note` (why). Every
    correction is recorded in the clip's `repairs`; one that names a clip of
    this dataset that the sheet does not have is an error.
    """

    def __init__(self, manual_dir: Path):
        self.path = manual_dir / CORRECTIONS_FILE
        self.items: dict[str, list[tuple[str, str, str, str]]] = {}
        self.used: set[str] = set()
        if not self.path.exists():
            return
        with open(self.path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [_norm(c) for c in reader.fieldnames or ()]
            if not {"clip", "column", "value"} <= set(fields):
                raise AnnotationError(
                    f"{self.path}: header must name columns clip, column, value (and note); "
                    f"it has {reader.fieldnames}"
                )
            for line, raw in enumerate(reader, start=2):
                row = {_norm(k): (v or "").strip() for k, v in raw.items() if k is not None}
                where = f"{self.path.name} line {line}"
                if row["column"] not in CORRECTABLE:
                    raise AnnotationError(
                        f"{where}: column {row['column']!r} is not one of {CORRECTABLE}"
                    )
                self.items.setdefault(row["clip"], []).append(
                    (row["column"], row["value"], row.get("note", ""), where)
                )

    def apply(self, clip: str, cells: dict[str, object]) -> tuple[dict[str, object], list[str]]:
        """The cells with this clip's corrections applied, and one repair note per correction."""
        cells, notes = dict(cells), []
        for column, value, note, where in self.items.get(clip, ()):
            old = cell_text(cells.get(column))
            cells[column] = value
            notes.append(f"{column} {old!r} -> {value!r} ({where}{': ' + note if note else ''})")
        self.used.add(clip)
        return cells, notes

    def check_all_used(self, prefix: str) -> None:
        """Raises for a correction naming a clip under `prefix` that no row had."""
        for clip, items in self.items.items():
            if clip.startswith(prefix) and clip not in self.used:
                raise AnnotationError(f"{items[0][3]}: clip {clip!r} is not in the coding sheet")


def records_from_sheet(
    rows: Iterable[SheetRow],
    *,
    dataset: str,
    headers: Mapping[str, str],
    subject_folder: Callable[[SheetRow], str],
    frames_root: Path,
    corrections: Corrections,
    objective: Mapping[str, str] | None = None,
) -> list[Record]:
    """Records of sheet rows whose cells carry the keys subject, filename, onset_frame,
    apex_frame, offset_frame, emotion and optionally action_units, objective_class.

    `headers` maps keys to header names for messages; the clip folder is
    frames_root / subject_folder(row) / filename.
    """
    records = []
    for row in rows:
        folder_name = subject_folder(row)
        filename = required_text(row, "filename", headers["filename"])
        subject = f"{dataset}/{folder_name}"
        clip = f"{subject}/{filename}"
        cells = dict(row.cells)
        if objective is not None:
            cells["objective_class"] = objective.get(clip, "")
        cells, notes = corrections.apply(clip, cells)
        row = dataclasses.replace(row, cells=cells)
        records.append(
            Record(
                dataset=dataset,
                source=dataset,
                subject=subject,
                clip=clip,
                folder=frames_root / folder_name / filename,
                where=row.where,
                emotion=required_text(row, "emotion", headers["emotion"]),
                action_units=cell_text(cells.get("action_units")),
                objective_class=cell_text(cells.get("objective_class")),
                onset_frame=frame_number(row, "onset_frame", headers["onset_frame"], clip),
                apex_frame=frame_number(row, "apex_frame", headers["apex_frame"], clip),
                offset_frame=frame_number(row, "offset_frame", headers["offset_frame"], clip),
                repairs=notes,
            )
        )
    corrections.check_all_used(f"{dataset}/")
    return records


# ----------------------------------------------------------------------------
# Finding the inputs in manual_dir.


def _candidates(root: Path, names: Sequence[str]) -> list[Path]:
    # A zip unpacked into a folder of its own name gives root/name/name.
    out = []
    for name in names:
        out += [root / name / name, root / name, *sorted(root.glob(f"*/{name}"))]
    return out


def find_file(root: Path, names: Sequence[str]) -> Path | None:
    """The first of root/name, root/*/name that is a file, or None."""
    return next((p for p in _candidates(root, names) if p.is_file()), None)


def find_dir(root: Path, names: Sequence[str], what: str, instructions: str) -> Path:
    """The first of root/name/name, root/name, root/*/name that is a folder."""
    for path in _candidates(root, names):
        if path.is_dir():
            return path
    raise FileNotFoundError(
        f"{what} not found in {root}: looked for a folder named {' or '.join(names)} there and "
        f"one level down.\n{instructions}"
    )


def find_sheet(
    root: Path, names: Sequence[str], signature: Sequence[str], what: str, instructions: str
) -> Path:
    """The coding sheet: a file named like `names`, else the one .xlsx (top level or one folder
    down) whose header names every `signature` column."""
    path = find_file(root, names)
    if path is not None:
        return path
    found = [
        p
        for p in sorted([*root.glob("*.xlsx"), *root.glob("*/*.xlsx")])
        if not p.name.startswith("~$") and sheet_has_columns(p, signature)
    ]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise FileNotFoundError(
            f"{what}: several workbooks in {root} look like it ({[str(p) for p in found]}); "
            "keep only one"
        )
    named = f"no {' or '.join(names)} and " if names else ""
    raise FileNotFoundError(
        f"{what} not found in {root}: {named}no .xlsx whose header names {list(signature)}."
        f"\n{instructions}"
    )


def manual_dir(dl_manager: tfds.download.DownloadManager) -> Path:
    """dl_manager.manual_dir as a local Path; FileNotFoundError with the instructions if absent."""
    try:
        root = dl_manager.manual_dir
    except AssertionError as e:  # TFDS: 'does not exist or is empty' + instructions.
        raise FileNotFoundError(str(e)) from None
    return Path(os.fspath(root))


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
        root = manual_dir(dl_manager)
        records = self._records(root)
        if not records:
            raise AnnotationError(f"{self.name}: no clips found in {root}")
        plans = plan_all(records, self.builder_config.frames, name=self.name)
        return {"train": self._generate_examples(plans)}

    def _generate_examples(self, plans: Sequence[Plan]):
        config = self.builder_config
        examples = ((plan.record.clip, example(plan, config)) for plan in plans)
        if config.view is None:
            yield from examples
        else:  # The frames config's examples, mapped to its view a batch of clips at a time.
            yield from views.with_inputs(config.view, examples)
