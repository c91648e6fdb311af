"""The user's annotation files: found in manual_dir, coding sheets and corrections read.

`find_dir` / `find_file` / `find_sheet` locate a release's folders and files in
the user's manual_dir (also one folder down, as an unpacked zip leaves them);
`read_sheet` reads the data rows of an official coding sheet (.xlsx) under its
header row, cells keyed by column; `frame_number`, `numbered_id`,
`required_text` and `cell_text` read single cells; `action_unit_codes` /
`action_unit_vector` parse an action-unit cell; `Corrections` is rule R4 of
`data_builders.me_common`: the user's cell corrections from manual_dir /
corrections.csv. A defect no rule repairs raises `AnnotationError` naming the
file and row.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import openpyxl
import tensorflow_datasets as tfds

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


class AnnotationError(ValueError):
    """A defect of the input files that no documented rule repairs."""


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


def _open_rows(path: Path, worksheet: str | None = None) -> list[tuple]:
    """The rows of the worksheet named `worksheet` if the book has one, else of the first."""
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types for a bad file.
        raise AnnotationError(f"{path}: not a readable .xlsx workbook ({e})") from e
    try:
        named = worksheet is not None and worksheet in book.sheetnames
        sheet = book[worksheet] if named else book.worksheets[0]
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
    worksheet: str | None = None,
) -> list[SheetRow]:
    """Data rows of the first worksheet under its header row, cells keyed by `columns` keys.

    The header row is the first of the top 30 rows that names every `anchors`
    column (row 1 for CASME II and CASME I, row 14 for SAMM). `columns` maps a
    key to its header text or alternatives (matched ignoring case and extra
    spaces); a key in `optional` may be absent (its cells are then None). Rows
    whose keyed cells are all empty are skipped. `worksheet`: read the sheet of that name
    when the book has one (CAS(ME)^3's 'label'), else the first.
    """
    rows = _open_rows(path, worksheet)
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


# ----------------------------------------------------------------------------
# Action units: a sheet's FACS string as a fixed multi-hot vector.

# The vector's AUs: every FACS (Ekman, Friesen & Hager 2002) action unit 1..46 (codes 3 and
# 40 do not exist), a superset of the AUs the CASME, CASME II, SAMM, CAS(ME)^3 and 4DME sheets
# code. Head / eye positions (51-64), visibility (70-74), gross behaviour (80+) and
# M / AD codes are valid FACS but not in the vector: kept in the raw string only.
ACTION_UNITS = tuple(n for n in range(1, 47) if n not in (3, 40))
_AU_INDEX = {n: i for i, n in enumerate(ACTION_UNITS)}
# One code: optional 'AU', side (L, R, T, B, U) before or after, number, intensity A-E,
# and any parenthesised notes ('(?)', '(k)'). 'M57', 'AD38' are movement / descriptor codes.
_AU_TOKEN = re.compile(
    r"(?P<other>(?:M|AD)\d+)|(?:AU)?(?P<side>[LRTBU])?(?P<number>\d+)(?P<intensity>[A-E])?"
    r"(?P<after>[LRTBU])?(?:\([^()]*\))*(?P<rest>.*)",
    re.IGNORECASE,
)
_AU_SPLIT = re.compile(r"\s*(?:[+,;/&]|\band\b|\bor\b)\s*|\s+", re.IGNORECASE)


def action_unit_codes(value, where: str) -> tuple[int, ...] | None:
    """The FACS action-unit numbers of a sheet's AU cell, sorted, or None when the cell is
    empty or a missing marker (not coded).

    Accepts the sheets' spellings: '4+L10', 'R12+25', 'AU4, AU7', '1+2+5B', '12(?)', 'R12A',
    'AU12(k)', '4,7' (CAS(ME)^3) and 'R12 or R15' (SAMM; both codes set: the choice is the
    coder's, the raw string keeps it). Separators are + , ; / & 'and' 'or' and spaces. A token
    that is not a FACS code raises AnnotationError naming `where`.
    """
    text = cell_text(value)
    if text.lower() in MISSING_MARKERS:
        return None
    codes = set()
    joined = re.sub(r"(?i)\bAU\s+(?=\d)|\s+(?=\()", lambda m: m[0].strip(), text)
    for token in _AU_SPLIT.split(joined.strip("+,; ")):
        if not token:
            continue
        match = _AU_TOKEN.fullmatch(token)
        if match is None or match["rest"] or (match["number"] and match["side"] and match["after"]):
            raise AnnotationError(
                f"{where}: action unit {token!r} of {text!r} is not a FACS code (e.g. '4', "
                "'L10', 'AU12', '5B', '12(?)'); correct the cell in corrections.csv"
            )
        if match["other"]:
            continue
        number = int(match["number"])
        if number == 0 or number in (3, 40) or number > 99:
            raise AnnotationError(
                f"{where}: action unit {token!r} of {text!r}: FACS has no AU{number}"
            )
        codes.add(number)
    return tuple(sorted(codes))


def action_unit_vector(codes: Sequence[int] | None) -> np.ndarray:
    """(len(ACTION_UNITS),) uint8 multi-hot of `codes` (all zeros for None: not coded)."""
    out = np.zeros(len(ACTION_UNITS), np.uint8)
    for number in codes or ():
        if number in _AU_INDEX:
            out[_AU_INDEX[number]] = 1
    return out


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
