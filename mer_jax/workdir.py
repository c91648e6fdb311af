"""A sweep's work dir: checked before any data loads, locked, one run at a time, written atomically.

`open_workdir(path, config)` creates the directory (or checks the one there is a
writable directory), takes an exclusive lock (a second sweep in the same dir is
an error naming the process that holds it), and reads `run.json`, the manifest
of the run the directory holds:

  no run.json, empty dir   a new run;
  same config, running     the run was interrupted: resume from its checkpoints;
  same config, finished    nothing to do (`WorkDir.finished`);
  another config           an error naming the keys that differ; `force` clears
                           the earlier run's files and starts afresh;
  files but no run.json    an error: not a mer-jax work dir (never cleared).

Every file the report writes goes through `mer_jax.files.atomic`, so a reader
never sees half a file.
"""

import dataclasses
import datetime
import json
import pathlib
import shutil

from mer_jax import files

MANIFEST = "run.json"
LOCK = ".lock"
CHECKPOINTS = "checkpoints"
# Config keys a resume may change: they decide when checkpoints are written, not results.
RESUMABLE_KEYS = ("train.checkpoint_every", "train.checkpoint_keep")
# What a run writes besides the files the manifest lists (cleared by `force` too).
RUN_ENTRIES = (CHECKPOINTS, "weights")


@dataclasses.dataclass
class WorkDir:
    """An open, locked work dir (close it, or use it as a context manager)."""

    path: pathlib.Path
    config: dict  # the run's flattened config
    resuming: bool  # an interrupted run of the same config: continue from its checkpoints
    finished: bool  # the same config already ran to the end here
    _lock: object = None
    writes: bool = True  # False: another process of a distributed run writes (`follow`)

    @property
    def checkpoints(self) -> pathlib.Path:
        return self.path / CHECKPOINTS

    def finish(self, outputs) -> None:
        """Record the run as finished, with the files it wrote (names relative to the dir)."""
        if self.writes:
            names = sorted(str(pathlib.Path(p).relative_to(self.path)) for p in outputs)
            _write_manifest(self.path, self.config, "finished", names)
        self.finished = True

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_workdir(path, config: dict, *, force: bool = False, log=print) -> WorkDir:
    """Open `path` for a sweep of the flattened `config` (see the module docstring)."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"work dir {path} is a file, not a directory")
    lock = files.Lock(path / LOCK, f"work dir {path} is in use by a running sweep", wait=False)
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock.acquire()  # released by WorkDir.close
    except PermissionError:
        raise PermissionError(f"work dir {path} is not writable") from None
    try:
        manifest = _read_manifest(path)
        workdir = WorkDir(path, config, resuming=False, finished=False, _lock=lock)
        if manifest is None:
            _refuse_foreign_files(path)
        elif force:
            _clear(path, manifest)
            log(f"work dir {path}: --force, the earlier run's files removed")
        else:
            _check_same_config(path, manifest["config"], config)
            workdir.finished = manifest["status"] == "finished"
            workdir.resuming = not workdir.finished
        if not workdir.finished:
            _write_manifest(path, config, "running", [])
        return workdir
    except BaseException:
        lock.release()
        raise


def follow(path, config: dict) -> WorkDir:
    """The work dir process 0 of a distributed run opened (`open_workdir`), as the other
    processes see it: not locked, never written; finished or resuming as its manifest says."""
    path = pathlib.Path(path)
    manifest = _read_manifest(path)
    if manifest is None or manifest["config"] != _plain(config):
        raise RuntimeError(f"work dir {path}: process 0 opened it for another config")
    status = manifest["status"]
    return WorkDir(path, config, status == "running", status == "finished", writes=False)


def _read_manifest(path: pathlib.Path) -> dict | None:
    file = path / MANIFEST
    if not file.exists():
        return None
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
        if {"config", "status", "outputs"} - set(manifest):
            raise ValueError("keys missing")
    except ValueError as err:
        raise ValueError(f"{file}: not a mer-jax run manifest ({err}); remove it") from None
    return manifest


def _write_manifest(path: pathlib.Path, config: dict, status: str, outputs: list) -> None:
    manifest = {
        "status": status,
        "updated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "outputs": outputs,
        "config": config,
    }
    files.write_text(path / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")


def _refuse_foreign_files(path: pathlib.Path) -> None:
    others = sorted(p.name for p in path.iterdir() if p.name != LOCK)
    if others:
        listed = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
        raise ValueError(
            f"work dir {path} holds files but no mer-jax run ({MANIFEST}): {listed}; "
            "choose an empty or new --workdir"
        )


def _check_same_config(path: pathlib.Path, before: dict, now: dict) -> None:
    keys = sorted(k for k in set(before) | set(now) if k not in RESUMABLE_KEYS)
    differ = [k for k in keys if _plain(before.get(k)) != _plain(now.get(k))]
    if differ:
        shown = "; ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in differ[:6])
        more = f" (and {len(differ) - 6} more)" if len(differ) > 6 else ""
        raise ValueError(
            f"work dir {path} holds a run of another config ({shown}{more}); "
            "use another --workdir, or --force to discard that run"
        )


def _plain(value):
    """A config value as JSON would hold it (tuples are lists there)."""
    return json.loads(json.dumps(value, default=str))


def _clear(path: pathlib.Path, manifest: dict) -> None:
    for name in [*manifest["outputs"], *RUN_ENTRIES, MANIFEST]:
        target = path / name
        if not target.resolve().is_relative_to(path.resolve()):
            raise ValueError(f"{path / MANIFEST}: output {name!r} lies outside the work dir")
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
