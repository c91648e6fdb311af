"""Training the learned magnifier on synthetic pairs (Oh et al. 2018, Sec. 3.2): `mer-jax
train-magnifier --steps N --out DIR`.

Loss (Sec. 3.2), with V = texture and M = shape representations of the encoder:

  L = |G(X_a, X_b', amp) - Y'|_1 + lambda (|V(X_a) - V(X_b)|_1 + |V(X_b') - V(Y')|_1
                                            + |M(X_b) - M(X_b')|_1),        lambda = 0.1

each |.|_1 the mean absolute difference (the authors' `L1_loss`), ' the colour-perturbed frames
of `mer_jax.magnifier.data`; the network sees (X_a, X_b') and is scored against Y'. The
authors' training graph (`_build_training_graph` in copies of their `magnet.py` that carry the
training code; the public repository stubs it out) keeps two of the three regularisers
(V(X_b) vs V(X_a), M(X_b) vs M(X_b')), each with its own weight; `texture_weight` /
`shape_weight` set them apart, `texture_by_weight=0` drops the third. Optimiser: Adam,
learning rate 1e-4, beta1 0.9, beta2 0.999, no weight decay (the authors' graph also has an
exponential learning-rate decay whose values are not public; none here).

Presets (`PRESETS`):
- "cpu" (default): width 8, 64 x 64 crops, batch 4, lr 1e-3 - about a second a step on two
  CPU cores, for a smoke run and tests; it learns little.
- "paper": the authors' network (width 32, `Magnifier()` defaults) on 384 x 384 samples,
  batch 4, Adam 1e-4, the paper's motion sampling (amp up to 100, magnified motion up to 30
  px), input noise. The authors trained on 100,000 pre-rendered samples; here every step
  renders fresh samples (`--workers` processes render ahead; on one GPU the renderer, about
  0.3 s per 384 x 384 sample per core, is the bottleneck without them).

Checkpoints: `DIR/magnifier.npz` (`magnifier.save_npz`: the authors' TF variable names, so
`magnifier.load_npz` reads trained and converted weights alike) every `--save-every` steps and
at the end, and `DIR/train_log.json` (preset, arguments, step, loss history). `--init` starts
from an .npz (fine-tuning the converted authors' weights, for instance).
"""

import argparse
import concurrent.futures as futures
import json
import math
import multiprocessing
import os
import pathlib
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from tqdm.auto import tqdm

from mer_jax.errors import UserError
from mer_jax.magnifier import data as magnifier_data
from mer_jax.magnifier import model as magnifier

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "model": {"width": 8},
        "image_size": 64,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "scene": {"max_amplification": 20.0},
    },
    "paper": {
        "model": {},  # Magnifier() defaults: the paper's network
        "image_size": 384,
        "batch_size": 4,
        "learning_rate": 1e-4,
        "scene": {"max_amplification": 100.0},
    },
}
COMMON = {
    "b1": 0.9,
    "b2": 0.999,
    "texture_weight": 0.1,
    "texture_by_weight": 0.1,
    "shape_weight": 0.1,
    "noise": 0.1,
    "seed": 0,
}


class TrainState(NamedTuple):
    params: Any
    opt_state: Any
    step: jax.Array


def make_optimizer(config: Mapping) -> optax.GradientTransformation:
    return optax.adam(config["learning_rate"], b1=config["b1"], b2=config["b2"])


def _l1(a, b):
    return jnp.mean(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32)))


def _forward(module: magnifier.Magnifier, batch):
    # One encoder pass over the four frames the loss needs.
    frames = [batch[k] for k in ("frame_a", "frame_b", "frame_b_perturbed", "target_perturbed")]
    texture, shape = module.encode(jnp.concatenate(frames))
    tex_a, tex_b, tex_bp, tex_yp = jnp.split(texture, 4)
    shp_a, shp_b, shp_bp, _ = jnp.split(shape, 4)
    out = module.decode(tex_bp, module.manipulate(shp_a, shp_bp, batch["amplification"]))
    return out, (tex_a, tex_b, tex_bp, tex_yp, shp_b, shp_bp)


def loss_fn(params, model: magnifier.Magnifier, batch, config: Mapping):
    """Sec. 3.2 loss on a `magnifier_data.make_batch` batch: (total, parts)."""
    out, (tex_a, tex_b, tex_bp, tex_yp, shp_b, shp_bp) = model.apply(params, batch, method=_forward)
    parts = {
        "l1": _l1(out, batch["target_perturbed"]),
        "texture_ab": _l1(tex_a, tex_b),
        "texture_by": _l1(tex_bp, tex_yp),
        "shape_bb": _l1(shp_b, shp_bp),
    }
    total = (
        parts["l1"]
        + config["texture_weight"] * parts["texture_ab"]
        + config["texture_by_weight"] * parts["texture_by"]
        + config["shape_weight"] * parts["shape_bb"]
    )
    return total, parts


def make_update_fn(model: magnifier.Magnifier, config: Mapping):
    """jit(update(state, batch) -> (state, metrics)), state donated."""
    optimizer = make_optimizer(config)

    def update(state: TrainState, batch):
        (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, model, batch, config
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state, state.step + 1), {"loss": loss, **parts}

    return jax.jit(update, donate_argnums=(0,))


def init_state(model: magnifier.Magnifier, config: Mapping, params=None) -> TrainState:
    if params is None:
        params = magnifier.init_params(model, jax.random.key(config["seed"]))
    return TrainState(params, make_optimizer(config).init(params), jnp.zeros((), jnp.int32))


def make_config(preset: str = "cpu", **overrides) -> dict:
    """PRESETS[preset] over COMMON, then `overrides` (None values ignored; `model` and
    `scene` dicts merged key by key)."""
    if preset not in PRESETS:
        raise ValueError(f"make_config: preset={preset!r} is not one of {sorted(PRESETS)}")
    config = {**COMMON, **PRESETS[preset], "preset": preset}
    config["model"] = dict(config["model"])
    config["scene"] = dict(config["scene"])
    for key, value in overrides.items():
        if value is None:
            continue
        if key in ("model", "scene"):
            config[key].update(value)
        elif key not in config:
            raise ValueError(f"make_config: unknown setting {key!r}")
        else:
            config[key] = value
    if config["image_size"] % 4 or config["image_size"] < 16:
        raise ValueError(f"image_size={config['image_size']} must be a multiple of 4, >= 16")
    if config["batch_size"] < 1:
        raise ValueError(f"batch_size={config['batch_size']} must be >= 1")
    return config


def _batch(config: Mapping, step: int) -> dict:
    return magnifier_data.make_batch(
        (config["seed"], step),
        config["batch_size"],
        config["image_size"],
        noise=config["noise"],
        **config["scene"],
    )


def train(
    config: Mapping,
    steps: int,
    out_dir,
    *,
    save_every: int = 1000,
    init: str | None = None,
    workers: int = 0,
    progress: bool = True,
) -> dict:
    """Train for `steps` steps (batch of step s from seed (config['seed'], s)); returns the log."""
    if steps < 1:
        raise ValueError(f"train: steps={steps} must be >= 1")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = magnifier.Magnifier(**config["model"])
    params = magnifier.load_npz(init, model) if init else None
    state = init_state(model, config, params)
    update = make_update_fn(model, config)
    log = {"config": dict(config), "model": magnifier.config_of(model)._asdict(), "history": []}
    log["num_params"] = magnifier.num_params(model)

    def save(step):
        magnifier.save_npz(out / "magnifier.npz", state.params)
        log["step"] = step
        tmp = out / "train_log.json.tmp"
        tmp.write_text(json.dumps(log, indent=1, default=str))
        os.replace(tmp, out / "train_log.json")

    # Input: batches rendered ahead in worker processes (spawned: no forked JAX runtime).
    pool = None
    if workers > 0:
        pool = futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        ahead = {s: pool.submit(_batch, dict(config), s) for s in range(min(steps, 2 * workers))}
    start, bar = time.perf_counter(), tqdm(total=steps, unit="step", disable=not progress)
    try:
        for step in range(steps):
            if pool is None:
                batch = _batch(config, step)
            else:
                batch = ahead.pop(step).result()
                if step + 2 * workers < steps:
                    ahead[step + 2 * workers] = pool.submit(
                        _batch, dict(config), step + 2 * workers
                    )
            state, metrics = update(state, batch)
            if (step + 1) % 10 == 0 or step + 1 == steps:
                metrics = {k: float(v) for k, v in metrics.items()}
                if not math.isfinite(metrics["loss"]):
                    raise UserError(
                        f"train-magnifier: loss is {metrics['loss']} at step {step + 1} "
                        "(training diverged: lower --learning-rate)"
                    )
                log["history"].append({"step": step + 1, **metrics})
                bar.set_postfix(loss=f"{metrics['loss']:.4f}")
            bar.update(1)
            if (step + 1) % save_every == 0 and step + 1 < steps:
                save(step + 1)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    log["train_s"] = time.perf_counter() - start
    save(steps)
    return log


# ---------------------------------------------------------------- command line


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `train-magnifier` sub-command to `subparsers` (an argparse sub-parsers action)."""
    p = subparsers.add_parser(
        "train-magnifier",
        help="train the Oh et al. 2018 motion magnifier on synthetic pairs",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--steps", type=int, required=True, help="optimiser steps")
    p.add_argument("--out", required=True, help="directory for magnifier.npz and train_log.json")
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="default cpu")
    p.add_argument("--width", type=int, help="encoder width (paper 32)")
    p.add_argument("--image-size", type=int, help="training crop side, a multiple of 4")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--max-amplification", type=float)
    p.add_argument("--noise", type=float, help="input noise strength (0: none)")
    p.add_argument("--seed", type=int)
    p.add_argument("--save-every", type=int, default=1000)
    p.add_argument("--init", help="start from this .npz (magnifier.load_npz format)")
    p.add_argument("--workers", type=int, default=0, help="processes rendering batches ahead")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(fn=cmd_train_magnifier)
    return p


def cmd_train_magnifier(args) -> int:
    config = make_config(
        args.preset,
        model={"width": args.width} if args.width else None,
        scene={"max_amplification": args.max_amplification} if args.max_amplification else None,
        image_size=args.image_size,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        noise=args.noise,
        seed=args.seed,
    )
    log = train(
        config,
        args.steps,
        args.out,
        save_every=args.save_every,
        init=args.init,
        workers=args.workers,
        progress=not args.no_progress,
    )
    last = log["history"][-1]
    print(
        f"magnifier ({log['num_params']:,} parameters) {args.steps} steps in "
        f"{log['train_s']:.1f} s: loss {last['loss']:.4f} (L1 {last['l1']:.4f})\n"
        f"  wrote {args.out}/magnifier.npz, train_log.json"
    )
    return 0
