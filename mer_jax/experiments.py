"""The papers' tables as configs: list them, run a table's variants, set paper beside ours.

A table config is `experiments/<paper>/<table>.py` whose `get_config(arg)` fills `c.paper`
(`config_defaults._paper`: the paper's seed, table, metrics and reported figures). A table
whose rows are separate trainings (ablations, one dataset per column) names them in a
module-level `VARIANTS` tuple; `get_config('<variant>')` is that row, `get_config(None)` the
first. Every table config also takes `synthetic`: the same recipe on the synthetic
stand-in at a size a 2-core CPU trains in about a minute (`arguments` parses both).

    mer-jax experiments [--json]                      # every table config
    mer-jax experiments run CONFIG[:synthetic] [--variants a,b] [--workdir DIR]

`run` trains the variants one after another in one job (each is its own compiled program:
ablations change the architecture, per-dataset rows the data) into DIR/<variant>/, and
writes DIR/table.md and table.json: the paper's figure beside ours (mean ± sd over seeds)
for every row and metric. A single sweep's summary.md has the same comparison
(`comparison`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import pathlib
import re
from collections.abc import Mapping, Sequence

import numpy as np

from mer_jax import config as config_lib
from mer_jax.errors import UserError
from mer_jax.metrics import HEADLINE

SYNTHETIC = "synthetic"
METRIC_NAMES = {"accuracy": "Acc", "uf1": "UF1", "uar": "UAR", "war": "WAR"}


def arguments(path: str, arg: str | None, variants: Sequence[str]) -> tuple[str, bool]:
    """(variant, synthetic) of a table config's `arg` ('casme2', 'synthetic', 'samm,synthetic';
    None: the first variant, real data); an unknown word names the file and what is known."""
    words = [w for w in (arg or "").split(",") if w]
    known = (*variants, SYNTHETIC)
    unknown = [w for w in words if w not in known]
    chosen = [w for w in words if w in variants]
    if unknown or len(chosen) > 1:
        bad = unknown[0] if unknown else chosen[1]
        raise ValueError(f"{path}: argument {bad!r} is not one of {', '.join(known)} (one variant)")
    variant = chosen[0] if chosen else (variants[0] if variants else "")
    return variant, SYNTHETIC in words


def reported(variant_figures: Mapping[str, Mapping], variant: str) -> dict:
    """The `c.paper.reported` of one variant from a table's {variant: {row: {metric: figure}}}."""
    return {row: dict(metrics) for row, metrics in variant_figures[variant].items()}


# ------------------------------------------------------------------------- the catalogue


def module_of(path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(f"mer_jax_table_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table_configs(root: str | pathlib.Path = "experiments") -> list[pathlib.Path]:
    """Config files under `root` that define `VARIANTS` or set `c.paper` (sorted)."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--dir {root}: no such directory (run from the repository root)")
    out = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        if "def get_config" in text and "c.paper." in text:
            out.append(path)
    return out


def is_built(dataset: str, data_dir: str = "") -> dict[str, bool]:
    """{part: built?} for each part of `dataset` ('a/x+b/y'): a TFDS dataset_info.json of that
    builder config in the data dir (config `data_dir`, else TFDS_DATA_DIR or
    ~/tensorflow_datasets)."""
    from mer_jax.data import loader

    root = pathlib.Path(data_dir or loader.default_data_dir()).expanduser()
    out = {}
    for part in dataset.split("+"):
        name, _, config = part.partition("/")
        folder = root / name / config if config else root / name
        out[part] = any(folder.glob("*/dataset_info.json"))
    return out


def describe(path: pathlib.Path, variant: str, synthetic: bool = False) -> dict:
    """One catalogue row: what the config at `path` (variant, real or synthetic data) runs and
    what the paper reports for it."""
    arg = ",".join(w for w in (variant, SYNTHETIC if synthetic else "") if w)
    config = config_lib.load(f"{path}:{arg}" if arg else str(path))
    p = config.paper
    figures = {
        row: {m: _figure_text(*np.atleast_1d(v)) for m, v in metrics.items()}
        for row, metrics in p.reported.items()
    }
    return {
        "config": str(path),
        "variant": variant,
        "run": f"mer-jax experiments run {path}" + (":synthetic" if synthetic else ""),
        "seed": p.seed,
        "model": config.model,
        "table": p.table,
        "title": p.title,
        "datasets": config.dataset.split("+"),
        "protocol": config.protocol,
        "label_scheme": config.input.label_scheme,
        "metrics": list(p.metrics),
        "runs": p.runs,
        "reported": figures,
        "built": is_built(config.dataset, config.data_dir),
    }


def catalogue(root: str | pathlib.Path = "experiments") -> list[dict]:
    """Every variant of every table config under `root` (`describe`)."""
    rows = []
    for path in table_configs(root):
        for variant in getattr(module_of(path), "VARIANTS", None) or ("",):
            rows.append(describe(path, variant))
    return sorted(rows, key=_paper_order)


def _paper_order(row: dict) -> tuple:
    """Seed, then sections before tables before figures, by number (stable within)."""
    kind = {"Sec": 0, "Table": 1, "Fig": 2}.get(row["table"].split(" ")[0].rstrip("."), 3)
    number = re.findall(r"\d+", row["table"])
    return row["seed"], kind, int(number[0]) if number else 0


# ------------------------------------------------------------------ paper beside ours


def fold_key(name: str) -> str:
    """The row name of a fold: its name, or for a CDMER task 'Exp.1: ...' its number 'Exp1'
    (config keys hold no dots)."""
    return name.split(":")[0].replace(".", "") if name.startswith("Exp.") else name


def _task_metrics(results: Mapping) -> dict[str, list[dict]]:
    """{task row: [metrics of each seed]} of a protocol scored per task (`metrics.by_task`:
    seed 002's five-fold CDMER pools a task's folds)."""
    per_seed = results.get("per_seed") or [{"metrics": results.get("metrics") or {}}]
    out = {}
    for entry in per_seed:
        for task, m in ((entry.get("metrics") or {}).get("by_task") or {}).items():
            out.setdefault(fold_key(task), []).append(m)
    return out


def _ours(results: Mapping, row: str) -> tuple[dict, dict] | None:
    """(mean, sd) of our metrics for a table row: 'all', a source, a task or a fold
    (`fold_key`); a task's or fold's figure is the mean over seeds of its own metrics."""
    if row == "all":
        return results.get("metrics") or {}, results.get("metrics_sd") or {}
    if row in (results.get("metrics_by_source") or {}):
        sd = (results.get("metrics_by_source_sd") or {}).get(row, {})
        return results["metrics_by_source"][row], sd
    per_seed = _task_metrics(results).get(row)
    if per_seed is None:
        folds = [f for f in results.get("folds") or () if fold_key(str(f.get("subject"))) == row]
        per_seed = [f["metrics"] for f in folds if f.get("metrics")]
    if not per_seed:
        return None
    keys = [k for k in HEADLINE if all(k in m for m in per_seed)]
    mean = {k: float(np.mean([m[k] for m in per_seed])) for k in keys}
    if len(per_seed) < 2:
        return mean, {}
    return mean, {k: float(np.std([m[k] for m in per_seed], ddof=1)) for k in keys}


def paper_figures(results: Mapping) -> dict:
    """{row: {metric: figure}} from results.json's flattened config ('paper.reported.R.M')."""
    out = {}
    for key, value in (results.get("config") or {}).items():
        if key.startswith("paper.reported."):
            _, _, row, metric = key.split(".")
            out.setdefault(row, {})[metric] = value
    return out


def comparison(results: Mapping) -> list[dict]:
    """One dict per (row, metric) the paper reports: paper figure (and sd), ours (and sd,
    over seeds), the number of seeds; empty when the config names no paper table."""
    seeds = len(results.get("seeds") or [results.get("seed")])
    figures = paper_figures(results)
    if not figures:  # a row the paper gives no figure for (seed 003 Fig. 3 but n = 11): ours
        metrics = (results.get("config") or {}).get("paper.metrics") or ()
        figures = {"all": dict.fromkeys(metrics)} if metrics else {}
    out = []
    for row, metrics in figures.items():
        ours = _ours(results, row)
        for metric, figure in metrics.items():
            mean, sd = figure if isinstance(figure, list | tuple) else (figure, None)  # None: n/a
            entry = {"row": row, "metric": metric, "paper": mean, "paper_sd": sd, "seeds": seeds}
            entry["ours"] = None if ours is None else ours[0].get(metric)
            entry["ours_sd"] = None if ours is None else ours[1].get(metric)
            out.append(entry)
    return out


def _figure_text(mean, sd=None) -> str:
    """'0.7632', '0.7632 ± 0.0100' or 'n/a' (no figure)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean:.4f}" + (f" ± {sd:.4f}" if sd is not None else "")


def comparison_markdown(rows: Sequence[dict], *, variant_column: bool = False) -> list[str]:
    """A Markdown table of `comparison` rows (with a variant column for a whole table)."""
    if not rows:
        return []
    head = ["variant"] * variant_column + ["row", "metric", "paper", "ours (mean ± sd)", "seeds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.get("variant", "")] * variant_column + [
            r["row"],
            METRIC_NAMES[r["metric"]],
            _figure_text(r["paper"], r["paper_sd"]),
            _figure_text(r["ours"], r["ours_sd"]),
            str(r["seeds"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# ----------------------------------------------------------------------- running a table


def run_table(spec: str, workdir, *, variants=None, overrides=(), seeds=None, force=False,
              progress=True, log=print) -> dict:  # fmt: skip
    """Train the chosen variants of the table config `spec` ('path[:synthetic]') one after
    another into workdir/<variant>/ and write workdir/table.md and table.json."""
    from mer_jax import sweep

    path, _, arg = spec.partition(":")
    if arg not in ("", SYNTHETIC):
        raise UserError(f"{spec}: 'experiments run' takes ':{SYNTHETIC}' or nothing after the path")
    module = module_of(pathlib.Path(path))
    known = tuple(getattr(module, "VARIANTS", None) or ("",))
    chosen = known if not variants else tuple(variants)
    unknown = [v for v in chosen if v not in known]
    if unknown:
        raise UserError(
            f"--variants: {unknown[0]!r} is not a variant of {path} ({', '.join(known)})"
        )
    configs = {}
    for v in chosen:  # every config checked before anything trains
        words = ",".join(w for w in (v, arg) if w)
        config = config_lib.load(f"{path}:{words}" if words else path)
        config_lib.override(config, list(overrides))
        if seeds is not None:
            config.seeds = tuple(range(config.seed, config.seed + seeds))
        config_lib.check(config)
        configs[v] = config
    workdir = pathlib.Path(workdir)
    rows, table = [], {"config": spec, "variants": {}}
    for i, (v, config) in enumerate(configs.items()):
        log(f"[{i + 1}/{len(configs)}] {path} variant {v or '(the table)'}")
        results = sweep.run(config, workdir / (v or "table"), force=force, progress=progress,
                            log=log)  # fmt: skip
        compared = [{"variant": v, **r} for r in comparison(results)]
        rows += compared
        table["variants"][v] = {"workdir": str(workdir / (v or "table")), "rows": compared}
    first = next(iter(configs.values())).paper
    lines = [f"# Seed {first.seed}, {first.table}: {first.title}", "", f"`{spec}`", ""]
    lines += comparison_markdown(rows, variant_column=True)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "table.md").write_text("\n".join(lines) + "\n")
    (workdir / "table.json").write_text(json.dumps(table, indent=2) + "\n")
    log("\n".join(lines))
    return table


# --------------------------------------------------------------------------------- CLI


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `mer-jax experiments [--json]` and `mer-jax experiments run CONFIG`."""
    from mer_jax import cli

    p = subparsers.add_parser("experiments", help=cli.help_of("experiments"))
    p.add_argument("--json", action="store_true", help="the catalogue as JSON")
    p.add_argument("--markdown", action="store_true", help="one Markdown row per table config")
    p.add_argument("--dir", default="experiments", help="where the table configs are")
    sub = p.add_subparsers(dest="action")
    r = sub.add_parser("run", help="train a table's variants in one job; paper beside ours")
    r.add_argument("config", help="experiments/<paper>/<table>.py, optionally :synthetic")
    r.add_argument("--variants", help="comma-separated variants (default: all)")
    r.add_argument("--workdir", help="default runs/<config path under experiments/>[-synthetic]")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    r.add_argument("--seeds", type=int, metavar="N", help="seeds seed .. seed+N-1 in each job")
    r.add_argument("--force", action="store_true", help="discard earlier runs in the work dir")
    r.add_argument("--no-progress", action="store_true")
    p.set_defaults(fn=cmd_experiments)
    return p


def cmd_experiments(args) -> int:
    if args.action == "run":
        from mer_jax import sweep

        if args.seeds is not None and args.seeds < 1:
            raise UserError(f"--seeds {args.seeds}: give a number of seeds >= 1")
        run_table(
            args.config,
            args.workdir or sweep.default_workdir(args.config),
            variants=[v for v in (args.variants or "").split(",") if v] or None,
            overrides=args.set or (),
            seeds=args.seeds,
            force=args.force,
            progress=not args.no_progress,
        )
        return 0
    rows = catalogue(args.dir)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print("\n".join(markdown_table(rows) if args.markdown else _table(rows)))
    return 0


def markdown_table(rows: Sequence[dict]) -> list[str]:
    """One Markdown row per table config: its variants, protocol, data and the paper's
    headline figure of its first variant (docs/experiments.md)."""
    lines = [
        "| seed | table | config | variants | protocol | datasets | paper (first variant) |",
        "|---|---|---|---|---|---|---|",
    ]
    by_config: dict[str, list[dict]] = {}
    for r in rows:
        by_config.setdefault(r["config"], []).append(r)
    for config, variants in by_config.items():
        r = variants[0]
        headline = r["reported"].get("all") or next(iter(r["reported"].values()), {})
        figure = ", ".join(f"{METRIC_NAMES[m]} {v}" for m, v in headline.items()) or "-"
        names = ", ".join(v["variant"] for v in variants if v["variant"]) or "-"
        datasets = "<br>".join(r["datasets"])
        lines.append(
            f"| {r['seed']} | {r['table']} | `{config}` | {names} | `{r['protocol']}` | "
            f"{datasets} | {figure} |"
        )
    return lines


def _table(rows: Sequence[dict]) -> list[str]:
    head = (
        f"{'seed':<8} {'table':<9} {'variant':<18} {'protocol':<16} {'datasets':<34} built  paper"
    )
    lines = [head]
    for r in rows:
        headline = r["reported"].get("all") or next(iter(r["reported"].values()), {})
        figure = ", ".join(f"{METRIC_NAMES[m]} {v}" for m, v in headline.items())
        built = "yes" if all(r["built"].values()) else "no"
        lines.append(
            f"{r['seed']:<8} {r['table']:<9} {r['variant'] or '-':<18} {r['protocol']:<16} "
            f"{'+'.join(r['datasets'])[:34]:<34} {built:<6} {figure}"
        )
    lines.append(f"\n{len(rows)} rows; `mer-jax experiments --json` gives every figure and row.")
    return lines
