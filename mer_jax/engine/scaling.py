"""`mer-jax bench --distributed`: how the fold axis scales over several processes.

Run on every process of a distributed run (`mer_jax.distributed`), with the
same arguments. Two timed runs of the same work, F folds x batch B per step,
by the engine's own driver (`bench.time_driver`):

  one_process   process 0 alone, its local devices (the others wait);
  distributed   every process, the fold axis over all their devices.

Reported: images/s of each, images/s per device of the distributed run,
speed-up = distributed / one_process and scaling efficiency = speed-up x
(process 0's devices / all devices), 1.0 being perfect. F should be a
multiple of the device count (padding folds cost time and count as nothing).
"""

import dataclasses
import json

import jax

from mer_jax import distributed, engine
from mer_jax.engine import bench


def run_scaling(cfg: bench.BenchConfig, log=None) -> dict:
    """The two runs of the module docstring; every process returns the same dict."""
    strategy = next((s for s in cfg.strategies if s in ("vmap", "map")), "vmap")
    step_loop = "scan" if strategy == "map" else cfg.step_loop
    strategy, step_loop = engine.resolve_strategy(strategy, step_loop)
    bench.check_config(cfg)
    work, folds = bench.make_work(cfg)
    say = (lambda m: log(f"{cfg.model}: {m}")) if log else (lambda _: None)
    local = None
    if distributed.is_main():
        say(
            f"one_process: {cfg.folds} folds on process 0's {jax.local_device_count()} device(s) ..."
        )
        layout = engine.Layout(
            strategy, step_loop, cfg.fold_group, devices=tuple(jax.local_devices())
        )
        local = bench.time_driver(work, folds, cfg.batch, layout)["images_per_s"]
    distributed.barrier("mer-jax bench: one_process done")
    say(f"distributed: {cfg.folds} folds over {jax.device_count()} devices, "
        f"{jax.process_count()} processes ...")  # fmt: skip
    spread = bench.time_driver(
        work, folds, cfg.batch, engine.Layout(strategy, step_loop, cfg.fold_group)
    )
    result = {
        "distributed": spread["images_per_s"],
        "images_per_s_per_device": spread["images_per_s"] / jax.device_count(),
        "processes": jax.process_count(),
        "devices": jax.device_count(),
        "layout": spread["compiled"].layout,
        "device": {**engine.device_info(), "jax": jax.__version__},
        "config": {**dataclasses.asdict(cfg), "strategy": strategy, "step_loop": step_loop},
    }
    if local is not None:
        speedup = spread["images_per_s"] / local
        result |= {
            "one_process": local,
            "speedup": speedup,
            "scaling_efficiency": speedup * jax.local_device_count() / jax.device_count(),
        }
    return result


def format_scaling(r: dict) -> str:
    c = r["config"]
    return "\n".join([
        f"{c['model']}: {c['folds']} folds x batch {c['batch']}, {c['steps']} steps, "
        f"{c['strategy']} + {c['step_loop']}; {r['processes']} processes, {r['devices']} devices",
        f"one_process   {r['one_process']:>12.1f} images/s (process 0's devices)",
        f"distributed   {r['distributed']:>12.1f} images/s ({r['images_per_s_per_device']:.1f} "
        "per device)",
        f"speed-up {r['speedup']:.3f}, scaling efficiency {r['scaling_efficiency']:.3f} (1.0: perfect)",
        f"layout: {r['layout']}",
    ])  # fmt: skip


def print_scaling(result: dict, as_json: bool) -> None:
    print(json.dumps(result, indent=2, default=str) if as_json else format_scaling(result))
