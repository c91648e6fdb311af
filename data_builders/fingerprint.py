"""What a build reads and writes, as digests (atomic writes and locks: `mer_jax.files`).

Standard library only: the loader imports this without TensorFlow Datasets.

* `tree(root)`: every file under a folder (the user's manual dir) by relative
  name, size and mtime, digested as a whole and per top-level entry, so a
  change can be named (`tree_changes`). Cheap (no file is read) and sure: an
  edited, added, removed or replaced file changes its size or mtime.
* `sources(module)`: the project source files a module runs (its own file and
  every `data_builders` / `mer_jax` module it imports, transitively, found by
  parsing the imports), each by sha256.
* `stored(folder, memo)`: the files of a prepared dataset dir (array_record
  shards, dataset_info.json, features.json, ...) by name, size and sha256 of
  their content; each file's sha256 is memoised by (path, size, mtime, inode)
  so an unchanged dataset is not read again.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from mer_jax import files

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("data_builders", "mer_jax")
# Files of a prepared dataset dir that mer_jax writes itself: not part of its content.
OWN_PREFIX = "mer_jax_"


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha(lines) -> str:
    return hashlib.sha256("".join(lines).encode()).hexdigest()


# ----------------------------------------------------------------------------
# A folder's files by name, size and mtime.


def _files(root: Path) -> Iterator[tuple[str, int, int]]:
    """(relative name, size, mtime_ns) of every file under root, symlinks followed once."""
    seen, stack = set(), [root]
    while stack:
        folder = stack.pop()
        info = folder.stat()
        if (info.st_dev, info.st_ino) in seen:  # a symlink loop, or a folder linked twice
            continue
        seen.add((info.st_dev, info.st_ino))
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir():
                    stack.append(Path(entry.path))
                elif entry.is_file():
                    stat = entry.stat()
                    name = Path(entry.path).relative_to(root).as_posix()
                    yield name, stat.st_size, stat.st_mtime_ns


def tree(root: Path) -> dict:
    """{'digest', 'files', 'bytes', 'parts': {top-level entry: digest}} of the files under root."""
    lines: dict[str, list[str]] = {}
    count = size = 0
    for name, nbytes, mtime in sorted(_files(Path(root))):
        lines.setdefault(name.split("/")[0], []).append(f"{name}\t{nbytes}\t{mtime}\n")
        count, size = count + 1, size + nbytes
    parts = {part: _sha(part_lines) for part, part_lines in sorted(lines.items())}
    digest = _sha(line for part_lines in lines.values() for line in part_lines)
    return {"digest": digest, "files": count, "bytes": size, "parts": parts}


def listed(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def tree_changes(old: dict, new: dict) -> str:
    """What differs between two `tree`s, by top-level entry: 'X changed; Y added; Z removed'."""
    before, after = old.get("parts", {}), new.get("parts", {})
    out = []
    for what, names in (
        ("changed", [n for n in after if n in before and before[n] != after[n]]),
        ("added", [n for n in after if n not in before]),
        ("removed", [n for n in before if n not in after]),
    ):
        if names:
            out.append(f"{listed(names)} {what}")
    return "; ".join(out) or "file names, sizes or modification times differ"


# ----------------------------------------------------------------------------
# Source files a module runs.


def module_file(name: str) -> Path | None:
    """The file of a project module ('data_builders.clips'), None outside PACKAGES."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = REPO.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported(path: Path) -> set[str]:
    """Modules (and possible submodules) that `path` imports anywhere in it."""
    parts = path.relative_to(REPO).with_suffix("").parts
    package = parts[:-1]  # a package's __init__ is its package too: parts end in '__init__'
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = ".".join(package[: len(package) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def sources(*modules: str) -> dict:
    """{'digest', 'files': {path relative to the repository: sha256}} of `modules` and every
    project module they import, transitively."""
    files: dict[str, str] = {}
    todo = [module_file(m) for m in modules]
    while todo:
        path = todo.pop()
        if path is None:
            continue
        name = path.relative_to(REPO).as_posix()
        if name in files:
            continue
        files[name] = file_sha256(path)
        todo += [module_file(m) for m in _imported(path)]
    files = dict(sorted(files.items()))
    return {"digest": _sha(f"{n}\t{s}\n" for n, s in files.items()), "files": files}


# ----------------------------------------------------------------------------
# A prepared dataset's stored files by content.


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def stored(folder: Path, memo: Path) -> str:
    """sha256 over (name, size, content sha256) of each file of `folder` but mer_jax's own
    (OWN_PREFIX) and hidden ones; content hashes memoised in the json file `memo`."""
    folder = Path(folder).resolve()
    known = _read_json(memo)
    lines, changed = [], False
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", OWN_PREFIX)) or not path.is_file():
            continue
        stat = path.stat()
        key = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        entry = known.get(str(path))
        if not entry or entry[:3] != key:
            entry, changed = [*key, file_sha256(path)], True
            known[str(path)] = entry
        lines.append(f"{path.name}\t{stat.st_size}\t{entry[3]}\n")
    if changed:
        known = {p: e for p, e in known.items() if Path(p).exists()}
        with contextlib.suppress(OSError):  # a read-only data dir: hash again next time
            files.write_text(memo, json.dumps(known, indent=0))
    return _sha(lines)
