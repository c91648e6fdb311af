"""Clips as their annotation describes them (`Record`), checked into frame plans (`Plan`).

Rules R1-R3, G and G' of `data_builders.me_common` live here: `plan_clip` repairs a
missing or out-of-range apex and a missing onset / offset, and checks that every
frame file the clip stores exists, with no gap (`check_no_gap`, in every frames mode),
or for a dataset that drops frames (`Record.allow_gaps`, rule G') stores the frames
present and lists the missing ones (`Plan.missing`); `plan_all` checks every record before
anything is written. `load_frames` reads a plan's frames (RGB uint8, resized
with cv2.INTER_AREA), `face_cropped_frames` cut or aligned to the onset frame's
face. `records_from_sheet` turns coding-sheet rows into records.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from data_builders import sheets
from data_builders.sheets import AnnotationError, Corrections, SheetRow

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".bmp", ".png", ".tif", ".tiff")
FRAME_MODES = ("onset_offset", "all")
_TRAILING_NUMBER = re.compile(r"(\d+)$")

log = logging.getLogger(__name__)


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
    # FACS numbers of `action_units` (sheets.action_unit_codes); None: not coded (SMIC).
    au_codes: tuple[int, ...] | None = None
    allow_gaps: bool = False  # rule G': the recording drops frames (CAS(ME)^3)

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
    missing: list[int] = dataclasses.field(default_factory=list)  # rule G': dropped frames


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


def _file_name(like: Path, number: int) -> str:
    """The name frame `number` would have, numbered as the file `like` is ('img46.jpg' ->
    'img48.jpg', '006_05561.jpg' -> '006_05562.jpg')."""
    match = _TRAILING_NUMBER.search(like.stem)
    digits = match.group(1)
    width = len(digits) if digits.startswith("0") and len(digits) > 1 else 0
    return f"{like.stem[: match.start()]}{number:0{width}d}{like.suffix}"


def check_no_gap(
    record: Record, frames: Mapping[int, Path], first: int, last: int, what: str, fix: str
):
    """Rule G (every frames mode, every dataset): a clip is stored whole or not at all. Every
    frame number first..last that the clip stores must have its file; else AnnotationError
    naming the sheet row (or the folder), the clip folder, the missing frame and its file."""
    missing = [n for n in range(first, last + 1) if n not in frames]
    if not missing:
        return
    numbers = list(frames)
    like = frames[max((n for n in numbers if n < missing[0]), default=numbers[0])]
    raise AnnotationError(
        f"{record.at}: {len(missing)} frame file(s) of {what} {first}..{last} missing in "
        f"{record.folder}, first frame {missing[0]} ({_file_name(like, missing[0])}; the folder "
        f"holds frames {numbers[0]}..{numbers[-1]}, {len(numbers)} files). A clip is stored "
        f"whole or not at all: restore the file{fix}"
    )


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
    if mode not in FRAME_MODES:
        raise ValueError(f"frames mode {mode!r} not one of {FRAME_MODES}")
    if record.allow_gaps:
        return _plan_with_gaps(record, frames, mode, (onset, apex, offset), repairs)
    span = [n for n in numbers if onset <= n <= offset]
    if mode == "onset_offset":
        fix = ", or correct the clip's onset / offset in corrections.csv if they are wrong"
        check_no_gap(record, frames, onset, offset, "onset..offset", fix)
    else:
        fix = " (this config stores every frame of the clip folder)"
        check_no_gap(record, frames, numbers[0], numbers[-1], "the clip folder's frames", fix)
        for name, number in (("onset", onset), ("offset", offset)):
            if number not in frames:
                raise AnnotationError(
                    f"{record.at}: {name} frame {number} has no file in {record.folder} (it holds "
                    f"frames {numbers[0]}..{numbers[-1]})"
                )
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


def _plan_with_gaps(
    record: Record, frames: Mapping[int, Path], mode: str, sheet: tuple, repairs: list[str]
) -> Plan:
    """Rule G' (datasets whose recordings drop frames): store the frame files present, list
    the frame numbers missing between the first and last stored frame in `Plan.missing`, and
    move an onset / apex / offset whose file was dropped to the nearest present frame of
    onset..offset (the earlier one on a tie), recorded in `repairs`. Never interpolates."""
    onset, apex, offset = sheet
    numbers = list(frames)
    if mode == "all" and not numbers[0] <= onset <= offset <= numbers[-1]:
        raise AnnotationError(
            f"{record.at}: onset..offset {onset}..{offset} is outside the frames "
            f"{numbers[0]}..{numbers[-1]} of {record.folder}"
        )
    span = [n for n in numbers if onset <= n <= offset]
    if not span:
        raise AnnotationError(
            f"{record.at}: no frame file of onset..offset {onset}..{offset} in {record.folder} "
            f"(it holds frames {numbers[0]}..{numbers[-1]})"
        )

    def present(name: str, number: int) -> int:
        if number in frames:
            return number
        near = min(span, key=lambda n: (abs(n - number), n))
        repairs.append(f"{name} frame {number} dropped (no file): nearest frame {near}")
        return near

    if apex is None:
        apex = _middle(span)
        repairs.append(f"apex missing in the sheet: middle frame {apex}")
    elif not onset <= apex <= offset:
        old, apex = apex, _middle(span)
        repairs.append(
            f"apex frame {old} outside onset..offset {onset}..{offset}: middle frame {apex}"
        )
    first, last = (onset, offset) if mode == "onset_offset" else (numbers[0], numbers[-1])
    missing = [n for n in range(first, last + 1) if n not in frames]
    if missing:
        repairs.append(
            f"{len(missing)} dropped frame(s) of {first}..{last} not stored (missing_frames)"
        )
    onset, apex, offset = present("onset", onset), present("apex", apex), present("offset", offset)
    kept = span if mode == "onset_offset" else numbers
    index = {n: i for i, n in enumerate(kept)}
    return Plan(
        record=record,
        paths=[frames[n] for n in kept],
        onset=index[onset],
        apex=index[apex],
        offset=index[offset],
        repairs=repairs,
        missing=missing,
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
    from mer_jax.preprocess import face  # Imported here: frames-only configs need no cascade.

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


def records_from_sheet(
    rows: Iterable[SheetRow],
    *,
    dataset: str,
    headers: Mapping[str, str],
    subject_folder: Callable[[SheetRow], str],
    frames_root: Path,
    corrections: Corrections,
    objective: Mapping[str, str] | None = None,
    clip_name: Callable[[SheetRow, str], str] | None = None,
    clip_folder: Callable[[str, str], Path] | None = None,
    allow_gaps: bool = False,
) -> list[Record]:
    """Records of sheet rows whose cells carry the keys subject, filename, onset_frame,
    apex_frame, offset_frame, emotion and optionally action_units, objective_class.

    `headers` maps keys to header names for messages; the clip is
    '<dataset>/<subject folder>/<clip_name(row, filename)>' (default: the filename), its
    folder frames_root / clip_folder(subject folder, filename) (default: subject/filename).
    The action-unit cell is parsed here (`sheets.action_unit_codes`), so a bad code stops
    the build naming the row. `allow_gaps`: rule G' for every clip (CAS(ME)^3).
    """
    records = []
    for row in rows:
        folder_name = subject_folder(row)
        filename = sheets.required_text(row, "filename", headers["filename"])
        subject = f"{dataset}/{folder_name}"
        clip = f"{subject}/{clip_name(row, filename) if clip_name else filename}"
        relative = (
            clip_folder(folder_name, filename) if clip_folder else Path(folder_name, filename)
        )
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
                folder=frames_root / relative,
                where=row.where,
                emotion=sheets.required_text(row, "emotion", headers["emotion"]),
                action_units=sheets.cell_text(cells.get("action_units")),
                objective_class=sheets.cell_text(cells.get("objective_class")),
                onset_frame=sheets.frame_number(row, "onset_frame", headers["onset_frame"], clip),
                apex_frame=sheets.frame_number(row, "apex_frame", headers["apex_frame"], clip),
                offset_frame=sheets.frame_number(
                    row, "offset_frame", headers["offset_frame"], clip
                ),
                repairs=notes,
                au_codes=sheets.action_unit_codes(
                    cells.get("action_units"), f"{row.where} ({clip})"
                ),
                allow_gaps=allow_gaps,
            )
        )
    corrections.check_all_used(f"{dataset}/")
    return records
