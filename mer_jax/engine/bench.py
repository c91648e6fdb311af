"""`mer-jax bench`: how fast the fold-parallel engine trains, against the two ways to avoid it.

For one model on random data of its input kind (uint8 pixels, or float optical
flow for 2-channel inputs), three programs do the same work, F folds x batch B
per step, measured in one process:

  fold_parallel  the engine as a sweep runs it: `train.fold_strategy` 'auto'
                 (vmap folds + lax.scan steps on GPU/TPU, a loop over folds +
                 Python steps on CPU; engine.resolve_strategy), or each --strategy;
  sequential     the F folds one after another, a one-fold program at batch B;
  one_model      ONE model at batch F*B (no fold axis): the speed a fold axis costs.

Each is run by the engine's own driver, the phases `train_folds` runs: its
compile phase (`engine.compile_plan`: the same programs, layout and memory
rule as a sweep; compile_s is this phase's time, about 0 where an earlier run
in the process compiled the same programs), then its run phase
(`engine.run_call`): W untimed calls (--warmup), then one timed call of N
steps per fold (--steps: one epoch; then the held-out evaluation of one
example per fold), synchronised by the call's host outputs. FLOPs per image
are XLA's count (`compiled.cost_analysis()`) of one_model's Python-loop
training step (forward, backward and update) divided by its batch; achieved
TFLOP/s = FLOPs per image x images/s.

CPU (defaults: the `small` preset, e.g. micro_attention width 16, 48x48, F=4,
B=8, 5 steps; 20-50 s on 2 cores, nearly all of it compiling). There 'auto' is
a loop over folds, the very program `sequential` runs, so fold_parallel /
sequential ~ 1 by construction; `--strategy vmap` times the fold axis:

  mer-jax bench --model micro_attention
  mer-jax bench --model micro_attention --strategy auto --strategy vmap
  mer-jax bench --all-models
  mer-jax bench --model feature_refinement --json

GPU (defaults: the `paper` preset, the paper's widths and input shape; not yet
run on one, see docs/benchmarks.md):

  # CDE-shaped ResNet-10 + micro-attention: 68 folds x batch 8, 224x224
  mer-jax bench --model micro_attention --input-size 224 --folds 68 --batch 8 --dtype bfloat16
  mer-jax bench --model micro_attention --input-size 224 --folds 68 --batch 8 \
      --strategy vmap --strategy map --fold-group 17
  # vmapped convolutions as grouped convs vs patches x batched GEMM (mer_jax.models.layers)
  mer-jax bench --model micro_attention --input-size 224 --folds 68 --batch 8 --dtype bfloat16 \
      --strategy vmap --conv-impl gemm --conv-impl xla
  mer-jax bench --model stanet --folds 8 --batch 4
  mer-jax bench --model aman --input-size 112 --folds 8 --batch 2

Sequence inputs count examples (clips), not frames: "images/s" is examples/s.
"""

import argparse
import ast
import dataclasses
import json
import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from mer_jax import config as config_lib
from mer_jax import distributed, engine, models
from mer_jax.models import layers

PRESETS = ("auto", "small", "paper")
# Random datasets hold at most this many bytes (every step gathers its batch from them).
MAX_DATA_BYTES = 1 << 29


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """One benchmark: a model, an input shape and the work per step (F folds x batch B)."""

    model: str
    ablation: str
    model_kwargs: dict
    input_shape: tuple[int, ...]  # one example, (..., H, W, C)
    folds: int = 4
    batch: int = 8
    dtype: str = "float32"
    steps: int = 5
    warmup: int = 1
    strategies: tuple[str, ...] = ("auto",)
    conv_impls: tuple[str, ...] = ("auto",)
    step_loop: str = "auto"
    fold_group: int = 1
    preset: str = "small"
    seed: int = 0


# ---------------------------------------------------------------------------
# Input shapes and random data.
# ---------------------------------------------------------------------------
def input_shape(model: str, size: int, frames=None) -> tuple[int, ...]:
    """The model's input shape at the paper's input with H = W = `size` and leading axes `frames`."""
    return models.spec(model).input_shape_at(size, frames)


def is_flow(shape) -> bool:
    """Two-channel inputs are (u, v) optical flow (float); 1 or 3 channels are uint8 pixels."""
    return shape[-1] == 2


def random_data(shape, folds: int, batch: int, num_classes: int, seed: int = 0):
    """(Data, Folds) for `folds` LOSO folds over `folds + 1` random subjects.

    Sample i belongs to subject i % (F + 1); fold f holds subject f out (one test
    example) and trains on every other subject: F*B samples for fold 0, the one-model
    run's. Past MAX_DATA_BYTES a subject gets fewer than B samples (epochs repeat them).
    """
    rng = np.random.default_rng(seed)
    subjects = folds + 1
    per_example = math.prod(shape) * (4 if is_flow(shape) else 1)
    per_subject = max(1, min(batch, MAX_DATA_BYTES // (per_example * subjects)))
    n = subjects * per_subject
    if is_flow(shape):
        images = rng.standard_normal((n, *shape), dtype=np.float32)
    else:
        images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    codes = np.arange(n) % subjects
    data = engine.Data(
        jnp.asarray(images),
        jnp.asarray(rng.integers(0, num_classes, n), jnp.int32),
        jnp.asarray(codes, jnp.int32),
    )
    fold_ids = np.arange(folds)
    base = jax.random.key(seed)
    fold_set = engine.Folds(
        key=jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(fold_ids, jnp.uint32)),
        train_mask=jnp.asarray(codes[None, :] != fold_ids[:, None]),
        heldout_subjects=jnp.asarray(np.eye(folds, subjects, dtype=bool)),
        test_idx=jnp.asarray(fold_ids[:, None], jnp.int32),  # sample f is subject f's
        test_valid=jnp.ones((folds, 1), bool),
        val_idx=jnp.zeros((folds, 1), jnp.int32),  # no validation splits
        val_valid=jnp.zeros((folds, 1), bool),
        val_subjects=jnp.zeros((folds, subjects), bool),
        val_is_test=jnp.zeros((folds,), bool),
    )
    return data, fold_set


# ---------------------------------------------------------------------------
# Timing the driver.
# ---------------------------------------------------------------------------
def _flops(compiled) -> float | None:
    """XLA's FLOP count of a compiled program, or None where the backend gives none."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 - some backends raise instead of returning nothing
        return None
    if isinstance(cost, list | tuple):
        cost = cost[0] if cost else None
    flops = (cost or {}).get("flops")
    return float(flops) if flops and flops > 0 else None


def _take(tree, f: int):
    """Fold `f` of a tree with a leading fold axis, keeping the axis (length 1)."""
    return jax.tree_util.tree_map(lambda x: x[f : f + 1], tree)


@dataclasses.dataclass(frozen=True)
class Work:
    """What one timed run trains: `model` on `data`, `steps` steps per call, untimed calls first."""

    model: object
    tx: object
    data: engine.Data
    steps: int
    warmup: int
    aux_loss: object = None


def _compile(work: Work, folds, batch: int, layout: engine.Layout):
    """The driver's plan and compile phases for `folds` at per-fold batch `batch`."""
    schedule = engine.Schedule(
        epochs=work.warmup + 1,
        batch_size=batch,
        steps_per_epoch=work.steps,
        num_classes=1,
        balance=False,
    )
    augment = engine.Augment()
    plan = engine.make_plan(
        work.model, work.tx, schedule, augment, work.data, folds, layout, work.aux_loss
    )
    return engine.compile_plan(plan, work.data, folds)


def time_driver(work: Work, folds: engine.Folds, batch: int, layout: engine.Layout) -> dict:
    """Compile and run `folds` as `engine.train_folds` does, by its own phases.

    The driver's compile phase (its program cache shares programs between runs
    of the same shapes, e.g. 'auto' on CPU and `sequential`), then its run
    phase: `warmup` untimed calls, then one timed call of `steps` steps per
    fold (for lax.scan, with the held-out evaluation in the same program),
    synchronised by its host outputs. Returns images_per_s, compile_s (this
    run's compile phase: about 0 when an earlier run compiled the same
    programs), seconds and the Compiled programs.
    """
    compiled = _compile(work, folds, batch, layout)
    run = engine.start_run(compiled, work.data, folds)
    for epoch in range(work.warmup):
        engine.run_call(run, epoch)
    jax.block_until_ready(run.states)
    start = time.perf_counter()
    engine.run_call(run, work.warmup)  # host outputs: waits for the devices
    seconds = time.perf_counter() - start
    return {
        "images_per_s": compiled.plan.num_folds * batch * work.steps / seconds,
        "compile_s": compiled.compile_s,
        "seconds": seconds,
        "compiled": compiled,
    }


# ---------------------------------------------------------------------------
# The benchmark.
# ---------------------------------------------------------------------------
def _resolve(strategy: str, step_loop: str) -> tuple[str, str]:
    if strategy == "map" and step_loop == "auto":
        step_loop = "scan"  # lax.map over folds exists only inside the scanned program
    return engine.resolve_strategy(strategy, step_loop)


def check_config(cfg: BenchConfig) -> None:
    if cfg.dtype not in engine.DTYPES:
        raise ValueError(f"--dtype {cfg.dtype!r} is not one of {sorted(engine.DTYPES)}")
    for name in ("folds", "batch", "steps"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {cfg.warmup}")


def _plans(cfg: BenchConfig) -> list[tuple[str, str, str]]:
    """(strategy, step loop, conv_impl) of every fold_parallel run, resolved, without repeats."""
    plans = []
    for strategy in cfg.strategies:
        for conv_impl in cfg.conv_impls:
            plan = (
                *_resolve(strategy, cfg.step_loop),
                engine.resolve_conv_impl(conv_impl, strategy),
            )
            if plan not in plans:
                plans.append(plan)
    return plans


def _measure(cfg: BenchConfig, work: Work, folds, plans, say) -> tuple[dict, dict, dict, object]:
    """(fold_parallel by strategy, sequential, one_model, FLOPs of one_model's step)."""
    by_strategy = {}
    for strategy, step_loop, conv_impl in plans:
        name = f"{strategy}+{step_loop}" + ("+gemm" if conv_impl == "gemm" else "")
        say(f"fold_parallel: {strategy} folds + {step_loop} steps, {conv_impl} convolutions ...")
        model = work.model.clone(conv_impl=conv_impl)
        layout = engine.Layout(strategy, step_loop, fold_group=cfg.fold_group)
        by_strategy[name] = time_driver(
            dataclasses.replace(work, model=model), folds, cfg.batch, layout
        )
    step_loop = plans[0][1]
    say(f"sequential: {cfg.folds} one-fold programs + {step_loop} steps ...")
    loop = engine.Layout("loop", step_loop)
    sequential = time_driver(work, folds, cfg.batch, loop)
    work_size = cfg.folds * cfg.batch
    say(f"one_model: 1 model x batch {work_size} + {step_loop} steps ...")
    fold0 = _take(folds, 0)
    one_model = time_driver(work, fold0, work_size, loop)
    # FLOPs of one training step: the Python-loop step program of the same work.
    python = _compile(work, fold0, work_size, engine.Layout("loop", "python"))
    return by_strategy, sequential, one_model, _flops(python.programs["train_step"])


def make_work(cfg: BenchConfig) -> tuple[Work, engine.Folds]:
    """The model, optimizer and random data of `cfg`, and its F folds."""
    spec = models.spec(cfg.model)
    model = models.build(
        cfg.model, spec.num_classes, dtype=engine.DTYPES[cfg.dtype], **cfg.model_kwargs
    )
    tx = engine.make_optimizer(config_lib.base().optimizer, cfg.steps, frozen=spec.frozen)
    data, folds = random_data(cfg.input_shape, cfg.folds, cfg.batch, spec.num_classes, cfg.seed)
    return Work(model, tx, data, cfg.steps, cfg.warmup, spec.aux_loss), folds


def run_bench(cfg: BenchConfig, log=None) -> dict:
    """Measure fold_parallel, sequential and one_model for `cfg` (see the module docstring)."""
    check_config(cfg)
    plans = _plans(cfg)
    work, folds = make_work(cfg)
    model, data = work.model, work.data
    say = (lambda m: log(f"{cfg.model}: {m}")) if log else (lambda _: None)
    by_strategy, sequential, one_model, flops = _measure(cfg, work, folds, plans, say)
    primary = by_strategy[next(iter(by_strategy))]
    runs = {"fold_parallel": primary, "sequential": sequential, "one_model": one_model}
    speeds = {k: v["images_per_s"] for k, v in runs.items()}
    flops_per_image = flops / (cfg.folds * cfg.batch) if flops else "n/a"
    tflops = {
        k: (flops_per_image * v / 1e12 if flops_per_image != "n/a" else "n/a")
        for k, v in speeds.items()
    }
    return {
        **speeds,
        "fold_parallel_by_strategy": {k: v["images_per_s"] for k, v in by_strategy.items()},
        "ratios": {
            "fold_parallel/one_model": speeds["fold_parallel"] / speeds["one_model"],
            "fold_parallel/sequential": speeds["fold_parallel"] / speeds["sequential"],
        },
        "compile_s": {k: v["compile_s"] for k, v in runs.items()},
        "compile_s_by_strategy": {k: v["compile_s"] for k, v in by_strategy.items()},
        "flops_per_image": flops_per_image,
        "tflops": tflops,
        "device": {**engine.device_info(), "jax": jax.__version__},
        "config": _config_record(cfg, model, plans, data),
    }


def _config_record(cfg: BenchConfig, model, plans, data) -> dict:
    return {
        "model": cfg.model,
        "ablation": cfg.ablation,
        "model_kwargs": cfg.model_kwargs,
        "params": models.count_params(model, cfg.input_shape),
        "num_classes": models.spec(cfg.model).num_classes,
        "input_shape": list(cfg.input_shape),
        "input_dtype": "float32" if is_flow(cfg.input_shape) else "uint8",
        "unit": "examples/s" if len(cfg.input_shape) > 3 else "images/s",
        "folds": cfg.folds,
        "batch": cfg.batch,
        "dtype": cfg.dtype,
        "steps": cfg.steps,
        "warmup": cfg.warmup,
        "strategy": plans[0][0],
        "step_loop": plans[0][1],
        "conv_impl": plans[0][2],
        "fold_group": cfg.fold_group,
        "preset": cfg.preset,
        "dataset_size": int(data.labels.shape[0]),
        "seed": cfg.seed,
    }


# ---------------------------------------------------------------------------
# Output.
# ---------------------------------------------------------------------------
def _num(x, fmt: str) -> str:
    return format(x, fmt) if isinstance(x, int | float) else str(x)


def format_result(r: dict) -> str:
    """The human-readable table of one `run_bench` result."""
    c, d = r["config"], r["device"]
    shape = "x".join(str(s) for s in c["input_shape"])
    strategy, step_loop, work = c["strategy"], c["step_loop"], c["folds"] * c["batch"]
    rows = [
        (
            "fold_parallel",
            f"{c['folds']} folds x {c['batch']}, {strategy} + {step_loop}"
            + (" + gemm" if c.get("conv_impl") == "gemm" else " steps"),
        ),
        ("sequential", f"{c['folds']} x 1 fold x {c['batch']}, {step_loop} steps"),
        ("one_model", f"1 model x {work}, {step_loop} steps"),
    ]
    lines = [
        f"{c['model']} ({c['ablation']}, {c['params']:,} params), input {shape} "
        f"{c['input_dtype']}, {c['dtype']}, {c['steps']} steps after "
        f"{c['warmup']} warm-up call(s), preset {c['preset']}",
        f"device: {d['device_kind']} ({d['platform']} x {d['num_devices']}), jax {d['jax']}",
        f"{'run':<14} {'program':<38} {c['unit']:>12} {'compile s':>10} {'TFLOP/s':>9}",
    ]
    for key, program in rows:
        lines.append(
            f"{key:<14} {program:<38} {r[key]:>12.1f} {r['compile_s'][key]:>10.2f} "
            f"{_num(r['tflops'][key], '>9.4f'):>9}"
        )
    for name, speed in list(r["fold_parallel_by_strategy"].items())[1:]:
        lines.append(f"{'fold_parallel':<14} {name:<38} {speed:>12.1f}")
    ratios = r["ratios"]
    lines.append(
        f"fold_parallel / one_model = {ratios['fold_parallel/one_model']:.3f}   "
        f"fold_parallel / sequential = {ratios['fold_parallel/sequential']:.3f}"
    )
    lines.append(
        f"FLOPs per example (training step, XLA cost analysis): {_num(r['flops_per_image'], '.4g')}"
    )
    return "\n".join(lines)


def format_table(results: list[dict]) -> str:
    """One line per model (`--all-models`)."""
    head = (
        f"{'model':<22} {'ablation':<16} {'input':<14} {'params':>11} {'fold_par':>9} "
        f"{'seq':>9} {'one':>9} {'fp/one':>7} {'fp/seq':>7} {'fp comp s':>9} {'FLOPs/ex':>9}"
    )
    lines = [head]
    for r in results:
        c = r["config"]
        lines.append(
            f"{c['model']:<22} {c['ablation']:<16} "
            f"{'x'.join(str(s) for s in c['input_shape']):<14} {c['params']:>11,} "
            f"{r['fold_parallel']:>9.1f} {r['sequential']:>9.1f} {r['one_model']:>9.1f} "
            f"{r['ratios']['fold_parallel/one_model']:>7.3f} "
            f"{r['ratios']['fold_parallel/sequential']:>7.3f} "
            f"{r['compile_s']['fold_parallel']:>9.1f} {_num(r['flops_per_image'], '>9.3g'):>9}"
        )
    if results:
        d = results[0]["device"]
        c = results[0]["config"]
        lines.append(
            f"(per second; {c['folds']} folds x batch {c['batch']}, {c['steps']} steps, "
            f"{c['dtype']}, {c['strategy']} + {c['step_loop']}; "
            f"{d['device_kind']}, jax {d['jax']})"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Command line.
# ---------------------------------------------------------------------------
def _parse_kwarg(item: str) -> tuple[str, object]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--model-kwarg {item!r}: expected key=value")
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return key, raw


def config_from_args(args, model: str | None = None) -> BenchConfig:
    """A BenchConfig from parsed `mer-jax bench` arguments (for `model`, default --model)."""
    name = model or args.model
    if name not in models.MODELS:
        raise ValueError(
            f"--model {name!r} is not a registered model; known: {sorted(models.MODELS)}"
        )
    spec = models.spec(name)
    ablation = args.ablation or next(iter(spec.ablations))
    if ablation not in spec.ablations:
        raise ValueError(
            f"--ablation {ablation!r} is not an ablation of {name}; known: {list(spec.ablations)}"
        )
    preset = args.preset
    if preset not in PRESETS:
        raise ValueError(f"--preset {preset!r} is not one of {PRESETS}")
    if preset == "auto":
        preset = "small" if jax.default_backend() == "cpu" else "paper"
    if preset == "small":
        size, frames, kwargs = spec.small.size, spec.small.frames, dict(spec.small.kwargs)
    else:
        size, frames, kwargs = spec.input_shape[-2], spec.input_shape[:-3], {}
    kwargs.update(spec.ablations[ablation])
    if args.width is not None:
        kwargs[spec.width_kwarg] = args.width
    fields = spec.fields - {"dtype"}
    for item in args.model_kwarg or []:
        key, value = _parse_kwarg(item)
        if key not in fields:
            raise ValueError(
                f"--model-kwarg {item!r}: {name}.Model has no field {key!r}; "
                f"its fields: {sorted(fields)}"
            )
        kwargs[key] = value
    shape = input_shape(name, args.input_size or size, args.frames if args.frames else frames)
    steps = args.steps if args.steps is not None else (5 if preset == "small" else 20)
    return BenchConfig(
        model=name,
        ablation=ablation,
        model_kwargs=kwargs,
        input_shape=shape,
        folds=args.folds,
        batch=args.batch,
        dtype=args.dtype,
        steps=steps,
        warmup=args.warmup,
        strategies=tuple(args.strategy or ("auto",)),
        conv_impls=tuple(args.conv_impl or ("auto",)),
        step_loop=args.step_loop,
        fold_group=args.fold_group,
        preset=preset,
        seed=args.seed,
    )


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `bench` sub-command to `subparsers` (an argparse sub-parsers action)."""
    p = subparsers.add_parser(
        "bench",
        help="images/s of fold-parallel training vs sequential folds vs one model",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--model", default="micro_attention", help="a registered model")
    p.add_argument("--all-models", action="store_true", help="every model's first ablation")
    p.add_argument("--ablation", help="one of the model's ABLATIONS (default the first)")
    p.add_argument("--input-size", type=int, help="H = W of the input (default: the preset's)")
    p.add_argument(
        "--frames", type=int, nargs="+", help="leading axes of sequence inputs (stanet T; aman n k)"
    )
    p.add_argument("--folds", type=int, default=4, help="folds F trained at once (default 4)")
    p.add_argument("--batch", type=int, default=8, help="per-fold batch B (default 8)")
    p.add_argument("--dtype", choices=sorted(engine.DTYPES), default="float32")
    p.add_argument("--steps", type=int, help="timed steps (default 5 small, 20 paper)")
    p.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed calls (epochs of --steps steps) before the timed one (default 1)",
    )
    p.add_argument("--width", type=int, help="the model's width knob (see bench.WIDTH_KWARG)")
    p.add_argument(
        "--model-kwarg", action="append", metavar="KEY=VALUE", help="a Model field, repeatable"
    )
    p.add_argument(
        "--strategy",
        action="append",
        choices=engine.FOLD_STRATEGIES,
        help="fold strategy of the fold_parallel run, repeatable (default auto)",
    )
    p.add_argument(
        "--conv-impl",
        action="append",
        choices=("auto", *layers.CONV_IMPLS),
        help="convolutions of the fold_parallel run: xla, gemm (patches x batched GEMM), "
        "auto (gemm for vmapped folds on GPU/TPU); repeatable (default auto)",
    )
    p.add_argument("--step-loop", choices=engine.STEP_LOOPS, default="auto")
    p.add_argument("--fold-group", type=int, default=1, help="folds per lax.map group ('map')")
    p.add_argument(
        "--preset",
        choices=PRESETS,
        default="auto",
        help="small (CPU sizes) or paper (paper widths and input); auto: small on CPU",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    distributed.add_arguments(p)
    p.set_defaults(fn=cmd_bench)
    return p


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def cmd_bench(args) -> int:
    """`mer-jax bench`: print the table (or --json) of one model, or of every model; with
    --distributed, the scaling over processes (`engine.scaling`)."""
    if distributed.requested(args):
        from mer_jax.engine import scaling

        distributed.initialize(args)
        result = scaling.run_scaling(
            config_from_args(args), log=_log if distributed.is_main() else None
        )
        if distributed.is_main():
            scaling.print_scaling(result, args.json)
        return 0
    if args.all_models:
        given = [
            flag
            for flag, value in (
                ("--ablation", args.ablation),
                ("--input-size", args.input_size),
                ("--frames", args.frames),
                ("--width", args.width),
                ("--model-kwarg", args.model_kwarg),
            )
            if value
        ]
        if given:
            raise ValueError(f"--all-models takes each model's small sizes; drop {given}")
        args = argparse.Namespace(**{**vars(args), "preset": "small"})
        results = [run_bench(config_from_args(args, name), log=_log) for name in models.MODELS]
        print(json.dumps({"models": results}, indent=2) if args.json else format_table(results))
        return 0
    result = run_bench(config_from_args(args), log=_log)
    print(json.dumps(result, indent=2) if args.json else format_result(result))
    return 0
