"""`mer-jax data list | build | describe`: the dataset builders from the command line."""

import argparse
import json
import sys

import tensorflow_datasets as tfds

import data_builders
from mer_jax import cli
from mer_jax.data import describe


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
    if getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None) and not args.manual_dir:
        print(
            f"{args.name} needs --manual-dir:\n{builder.MANUAL_DOWNLOAD_INSTRUCTIONS}",
            file=sys.stderr,
        )
        return 2
    config = tfds.download.DownloadConfig(manual_dir=args.manual_dir) if args.manual_dir else None
    builder.download_and_prepare(file_format="array_record", download_config=config)
    splits = {k: v.num_examples for k, v in builder.info.splits.items()}
    name = args.name
    if args.magnifier_checkpoint or args.landmark_model:
        name = f"{builder.name}/{builder.builder_config.name}"
    print(f"built {name} in {builder.data_dir}: {splits}")
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
    p.set_defaults(fn=cmd_data_build)
    describe.add_parser(data)
    return group
