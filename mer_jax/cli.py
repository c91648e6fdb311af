"""`mer-jax`: run sweeps, list models, build datasets.

mer-jax sweep CONFIG[:ARG] [--workdir DIR] [--set key=value ...]
mer-jax models [--json]
mer-jax data list [--json]
mer-jax data build NAME[/CONFIG] [--data-dir DIR] [--manual-dir DIR]
"""

import argparse
import json
import os
import pathlib
import sys

from mer_jax.data import describe
from mer_jax.engine import bench
from mer_jax.magnifier import train as magnifier_train
from mer_jax.preprocess import bench as bench_preprocess


def _enable_compilation_cache(path: str | None) -> None:
    """Persistent XLA cache: an identical second sweep skips most of its compile time."""
    import jax

    if not path:
        return
    pathlib.Path(path).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def cmd_sweep(args) -> int:
    from mer_jax import config as config_lib
    from mer_jax import sweep

    config = config_lib.load(args.config)
    config_lib.override(config, args.set or [])
    stem = pathlib.Path(args.config.partition(":")[0]).stem
    workdir = pathlib.Path(args.workdir or f"runs/{stem}")
    _enable_compilation_cache(None if args.no_compile_cache else args.compile_cache)
    results = sweep.run(config, workdir, progress=not args.no_progress)
    m, t = results["metrics"], results["timing"]
    print(
        f"\n{results['model']} | {results['dataset']} | {results['protocol']} "
        f"({results['num_folds']} folds)\n"
        f"  Acc {m['accuracy']:.4f}  UF1 {m['uf1']:.4f}  UAR {m['uar']:.4f}  WAR {m['war']:.4f}\n"
        f"  compile {t['compile_s']:.1f} s, train {t['train_s']:.1f} s "
        f"({t['images_per_s']:.0f} images/s) on {results['device']['device_kind']}"
    )
    for source, sm in results["metrics_by_source"].items():
        print(f"  {source:>8}: Acc {sm['accuracy']:.4f}  UF1 {sm['uf1']:.4f}  UAR {sm['uar']:.4f}")
    if m["absent_classes"]:
        print(f"  classes absent from the ground truth: {m['absent_classes']}")
    return 0


def cmd_models(args) -> int:
    from mer_jax import models

    rows = models.catalogue()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<22} {'ablation':<16} {'input':<15} {'classes':>7} {'params':>12}")
    for r in rows:
        shape = "x".join(str(s) for s in r["input_shape"])
        print(
            f"{r['model']:<22} {r['ablation']:<16} {shape:<15} {r['num_classes']:>7} {r['params']:>12,}"
        )
    return 0


def _builders():
    import data_builders

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
    import tensorflow_datasets as tfds

    import data_builders

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


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mer-jax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sweep", help="train and evaluate every fold of a protocol in one program")
    p.add_argument("config", help="experiments/<file>.py, optionally :ARG for get_config(ARG)")
    p.add_argument("--workdir", help="where results go (default runs/<config name>)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--compile-cache",
        default=os.environ.get("MER_JAX_COMPILE_CACHE", os.path.expanduser("~/.cache/mer_jax/xla")),
        help="persistent XLA compilation cache directory",
    )
    p.add_argument("--no-compile-cache", action="store_true")
    p.set_defaults(fn=cmd_sweep)

    p = sub.add_parser("models", help="registered models and ablations with parameter counts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_models)
    bench.add_parser(sub)
    bench_preprocess.add_parser(sub)
    magnifier_train.add_parser(sub)

    data = sub.add_parser("data", help="dataset builders").add_subparsers(
        dest="data_command", required=True
    )
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
    return parser


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (FileNotFoundError, ImportError, KeyError, ValueError, TypeError) as err:
        print(f"mer-jax: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
