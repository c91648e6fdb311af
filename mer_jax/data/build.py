"""`mer-jax data list | build | describe`: the dataset builders from the command line.

`build` (also what `loader.prepare_builder` runs for synthetic corpora) builds a
dataset only when what it would be built from changed: beside the prepared
dataset (`<data_dir>/<name>/<config>/<version>/mer_jax_build.json`) it records
the builder (VERSION, sha256 of its source files and of every project module
they import) and the manual dir's files (names, sizes, mtimes; `fingerprint.tree`).
A later build compares: the same -> "<name> already built from the same files;
reusing <dir> (--force to rebuild)"; else it rebuilds and says why (what
changed). A dataset built without a record is rebuilt. The earlier build is moved
aside while rebuilding and put back if the build fails. An exclusive flock on
`<data_dir>/<name>/<config>/.<version>.mer_jax.lock` keeps two builds of one
dataset apart: the second waits and says who it waits for (`--no-wait`: fails).
"""

import argparse
import datetime
import json
import shutil
import sys
from pathlib import Path

import tensorflow_datasets as tfds

import data_builders
from data_builders import fingerprint
from mer_jax import cli, files
from mer_jax.data import describe

RECORD = f"{fingerprint.OWN_PREFIX}build.json"


def _builders():
    out = []
    for name in data_builders.BUILDER_MODULES:
        module = data_builders.import_builder(name)
        builder_cls = module.Builder
        out.append(
            {
                "name": name,
                "configs": [c.name for c in builder_cls.BUILDER_CONFIGS],
                "needs_manual_dir": bool(
                    getattr(builder_cls, "MANUAL_DOWNLOAD_INSTRUCTIONS", None)
                ),
                "description": (builder_cls.__doc__ or "").strip().splitlines()[0],
            }
        )
    return out


def cmd_data_list(args) -> int:
    rows = _builders()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        manual = " (needs --manual-dir)" if r["needs_manual_dir"] else ""
        print(f"{r['name']}{manual}: {r['description']}")
        for c in r["configs"]:
            print(f"  {r['name']}/{c}")
    return 0


def check_manual_dir(path) -> Path:
    """`path` as an absolute folder; FileNotFoundError / ValueError naming it otherwise."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise FileNotFoundError(f"--manual-dir {folder} does not exist")
    if not folder.is_dir():
        raise ValueError(
            f"--manual-dir {folder} is a file, not a folder: pass the folder the dataset is "
            "unpacked in"
        )
    return folder.resolve()


def builder_fingerprint(builder) -> dict:
    """The builder's name, VERSION and source files (`fingerprint.sources` of its module)."""
    code = fingerprint.sources(type(builder).__module__)
    return {
        "dataset": f"{builder.name}/{builder.builder_config.name}",
        "version": str(builder.version),
        "sources": code["digest"],
        "source_files": code["files"],
    }


def _read_record(target: Path) -> dict:
    try:
        return json.loads((target / RECORD).read_text())
    except (OSError, ValueError):
        return {}


def _why_build(target: Path, wanted: dict, force: bool) -> str | None:
    """Why the dataset in `target` must be (re)built from `wanted`; None: it was built from it."""
    if force:
        return "--force"
    if not (target / "dataset_info.json").is_file():
        return "not built yet"
    record = _read_record(target)
    if not record:
        return "it was built without a record of the files it came from"
    old, new = record.get("builder", {}), wanted["builder"]
    if old.get("version") != new["version"]:
        return f"the builder's VERSION changed ({old.get('version')} -> {new['version']})"
    if old.get("sources") != new["sources"]:
        files, before = new["source_files"], old.get("source_files", {})
        changed = sorted({*files, *before} - {n for n in files if before.get(n) == files[n]})
        return f"the builder's source files changed ({fingerprint.listed(changed)})"
    before, now = record.get("manual_dir"), wanted["manual_dir"]
    if (before is None) != (now is None):
        return f"it was built {'without' if before is None else 'with'} a --manual-dir"
    if now is not None and before.get("digest") != now["digest"]:
        changes = fingerprint.tree_changes(before, now)
        return f"the files in --manual-dir changed since it was built ({changes})"
    return None


def _fresh(builder):
    """A new builder of the same class, config and data dir (reads what is there now)."""
    return type(builder)(config=builder.builder_config, data_dir=str(builder.data_dir_root))


def _previous(target: Path) -> Path:
    """Where the earlier build waits while a rebuild runs."""
    return target.parent / f".{target.name}.mer_jax-previous"


def _recover(target: Path, log) -> None:
    """Puts back an earlier build that an interrupted rebuild left aside."""
    previous = _previous(target)
    if not previous.exists():
        return
    if target.exists():
        shutil.rmtree(previous)
    else:
        previous.rename(target)
        log(f"put back the earlier build in {target}, moved aside by an interrupted rebuild")


def _prepare(builder, manual: Path | None, target: Path, log):
    """download_and_prepare into `target`; an earlier build there is kept until it succeeds."""
    previous = _previous(target)
    if target.exists():
        target.rename(previous)
    try:
        fresh = _fresh(builder)
        config = tfds.download.DownloadConfig(manual_dir=str(manual)) if manual else None
        fresh.download_and_prepare(file_format="array_record", download_config=config)
    except BaseException:
        if previous.exists() and not target.exists():
            previous.rename(target)
            log(f"the build failed: the earlier build in {target} is left as it was")
        raise
    if previous.exists():
        shutil.rmtree(previous)
    return fresh


def build(builder, *, manual_dir=None, force: bool = False, wait: bool = True, log=print):
    """(the builder of the built dataset, whether an earlier build was reused).

    Builds `builder`'s dataset (array_record) unless it was built from the same
    manual-dir files by the same builder (see the module docstring), or with
    `force`. Holds the dataset's lock while it compares and builds; `wait=False`
    raises `files.LockHeld` if another build holds it.
    """
    name = f"{builder.name}/{builder.builder_config.name}"
    manual = check_manual_dir(manual_dir) if manual_dir else None
    reads_manual = bool(getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None))
    target = Path(builder.data_dir)
    lock = target.parent / f".{target.name}.mer_jax.lock"
    what = f"{name} in {target.parent} is being built by another process"
    with files.Lock(lock, what, log, wait=wait):
        _recover(target, log)
        wanted = {
            "builder": builder_fingerprint(builder),
            "manual_dir": (
                {"path": str(manual), **fingerprint.tree(manual)}
                if manual and reads_manual
                else None
            ),
        }
        why = _why_build(target, wanted, force)
        if why is None:
            log(f"{name} already built from the same files; reusing {target} (--force to rebuild)")
            return _fresh(builder), True
        log(f"building {name} into {target}: {why}")
        built = _prepare(builder, manual, target, log)
        wanted["built"] = datetime.datetime.now().isoformat(timespec="seconds")
        text = json.dumps(wanted, indent=1)
        files.write_text(target / RECORD, text)
    return built, False


def cmd_data_build(args) -> int:
    data_builders.import_builder(args.name)
    if args.magnifier_checkpoint or args.landmark_model:
        from data_builders import me_common, views

        changes = []
        if args.landmark_model:  # an aligned config, with the user's landmark model
            changes.append(lambda c: me_common.with_landmark_model(c, args.landmark_model))
        if args.magnifier_checkpoint:  # an AMAN view config, with the learned magnifier
            changes.append(lambda c: views.with_magnifier(c, args.magnifier_checkpoint))
        builder = views.builder_with(args.name, changes, args.data_dir)
    else:
        builder = tfds.builder(args.name, data_dir=args.data_dir)
    if args.manual_dir:
        check_manual_dir(args.manual_dir)
    elif getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
        print(
            f"{args.name} needs --manual-dir:\n{builder.MANUAL_DOWNLOAD_INSTRUCTIONS}",
            file=sys.stderr,
        )
        return 2
    builder, reused = build(
        builder, manual_dir=args.manual_dir, force=args.force, wait=not args.no_wait
    )
    if not reused:
        splits = {k: v.num_examples for k, v in builder.info.splits.items()}
        print(f"built {builder.name}/{builder.builder_config.name} in {builder.data_dir}: {splits}")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `mer-jax data` and its subcommands to `subparsers`."""
    group = subparsers.add_parser("data", help=cli.help_of("data"))
    data = group.add_subparsers(dest="data_command", required=True)
    p = data.add_parser("list", help="every builder and its configs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_data_list)
    p = data.add_parser("build", help="build NAME[/CONFIG] into array_record shards")
    p.add_argument("name")
    p.add_argument(
        "--data-dir",
        default=None,
        help="TFDS data dir (default TFDS_DATA_DIR or ~/tensorflow_datasets)",
    )
    p.add_argument("--manual-dir", default=None, help="your copy of the dataset, official layout")
    p.add_argument(
        "--magnifier-checkpoint",
        default=None,
        help="AMAN views (aman_*): a learned-magnifier .npz instead of Eulerian magnification",
    )
    p.add_argument(
        "--landmark-model",
        default=None,
        help="aligned configs (*_aligned_*): a dlib 68-point shape predictor file instead of "
        "the one the `landmarks` extra packages",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="rebuild even if it was built from the same files by the same builder",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="fail at once (instead of waiting) if another build of it is running",
    )
    p.set_defaults(fn=cmd_data_build)
    describe.add_parser(data)
    return group
