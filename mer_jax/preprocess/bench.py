"""`mer-jax bench-preprocess`: how fast clips become model inputs, step by step.

On N synthetic clips of T frames at S x S (a smooth random texture that moves by
a few sub-pixel steps up to the apex at T // 2 and back, deterministic by
--seed), times each preprocessing step the views (`data_builders/views.py`)
are made of:

  tvl1_opencv           OpenCV's TV-L1 (cv2.optflow), onset->apex pair, clip by clip
  tvl1_jax              mer_jax.preprocess.flow.tvl1, the onset->apex pairs of B clips per call
  farneback             OpenCV Farneback, onset->apex, clip by clip
  dis                   OpenCV DIS (medium preset), onset->apex, clip by clip
  evm_jax               mer_jax.preprocess.evm.magnify (seed 001's settings), B clips per call
  evm_apex_jax          mer_jax.preprocess.evm.magnify_frame: the same EVM, only the apex frame
                        (T // 2) kept, as seed 001's view is built, B clips per call
  evm_against_onset_jax mer_jax.preprocess.evm.magnify_against_onset, AMAN's 11 frames x 9 factors
                        of B clips per call (the frames are the first 11 of each clip)
  tim                   mer_jax.preprocess.tim.tim of B clips to 11 frames per call
  apex_interframe_diff  mer_jax.preprocess.apex.interframe_diff of B clips per call
  face_crop             mer_jax.preprocess.face: Haar cascade on the onset frame, then the crop of
                        every frame to S/2 (the centre box when no face is found, as on
                        these textures), clip by clip

Batched (JAX) steps run B = --batch clips per call (the last call padded to B);
the first call is untimed and reported as `compile_s` (compilation plus one run).
Each step is timed from host arrays to host arrays (transfers included), over
--repeats passes of all N clips, best pass kept. Reports clips/s and ms/clip
per step, and the device.

CPU (a couple of minutes on 2 cores):

  mer-jax bench-preprocess --clips 16 --frames 24 --size 64
  mer-jax bench-preprocess --clips 16 --frames 24 --size 64 --json

GPU, a CASME II-sized corpus (about 250 clips; not yet measured, see
docs/benchmarks.md):

  mer-jax bench-preprocess --clips 250 --frames 64 --size 112 --batch 50 --json
  mer-jax bench-preprocess --clips 250 --frames 64 --size 224 --batch 25 --json
"""

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from mer_jax import engine
from mer_jax.errors import UserError
from mer_jax.preprocess import apex, evm, face, flow, tim

AMAN_FRAMES, AMAN_FACTORS = 11, tuple(float(a) for a in range(1, 10))
EVM_SETTINGS = dict(alpha=15.0, low=0.1, high=0.4, fps=200.0, lambda_c=16.0, band_units="nyquist")


def synthetic_clips(
    num_clips: int, num_frames: int, size: int, *, seed: int = 0, max_shift: float = 2.0
) -> np.ndarray:
    """(N, T, S, S, 3) uint8: smooth random colour textures translated by up to `max_shift`
    pixels at the apex (frame T // 2) and back, one direction per clip."""
    if num_clips < 1 or num_frames < 2 or size < 16:
        raise ValueError(
            f"synthetic_clips: need clips >= 1, frames >= 2, size >= 16; got {num_clips}, "
            f"{num_frames}, {size}"
        )
    rng = np.random.default_rng(seed)
    out = np.empty((num_clips, num_frames, size, size, 3), np.uint8)
    apex_t = num_frames // 2
    for n in range(num_clips):
        noise = rng.uniform(0, 255, (size, size, 3)).astype(np.float32)
        texture = cv2.GaussianBlur(noise, (0, 0), sigmaX=max(1.0, size / 32))
        lo, hi = texture.min(), texture.max()
        texture = (texture - lo) / max(hi - lo, 1e-6) * 255.0
        angle = rng.uniform(0, 2 * np.pi)
        for t in range(num_frames):
            amount = max_shift * (1.0 - abs(t - apex_t) / max(apex_t, 1))
            m = np.float32([[1, 0, amount * np.cos(angle)], [0, 1, amount * np.sin(angle)]])
            moved = cv2.warpAffine(texture, m, (size, size), borderMode=cv2.BORDER_REFLECT)
            out[n, t] = np.clip(np.rint(moved), 0, 255).astype(np.uint8)
    return out


# Steps: name -> (batched, what, function(clips (B, T, S, S, 3) uint8) -> host array).
def _per_clip(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    return lambda clips: np.stack([fn(c) for c in clips])


def _onset_apex_flow(method: Callable) -> Callable[[np.ndarray], np.ndarray]:
    def one(clip):
        t = len(clip) // 2
        grey = lambda frame: cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        return method(grey(clip[0]), grey(clip[t]))

    return _per_clip(one)


def _tvl1_jax(clips):
    t = clips.shape[1] // 2
    prev = jnp.asarray(np.stack([cv2.cvtColor(c[0], cv2.COLOR_RGB2GRAY) for c in clips]))
    nxt = jnp.asarray(np.stack([cv2.cvtColor(c[t], cv2.COLOR_RGB2GRAY) for c in clips]))
    return np.asarray(flow.tvl1(prev, nxt))


def _evm(clips):
    return np.asarray(evm.magnify(jnp.asarray(clips), **EVM_SETTINGS))


def _evm_apex(clips):
    at = clips.shape[1] // 2
    return np.asarray(evm.magnify_frame(jnp.asarray(clips), at, **EVM_SETTINGS))


def _evm_against_onset(clips):
    frames = jnp.asarray(clips[:, :AMAN_FRAMES])
    return np.asarray(evm.magnify_against_onset(frames, AMAN_FACTORS, onset=0))


def _tim(clips):
    x = jnp.asarray(clips).astype(jnp.float32) / 255.0
    return np.asarray(tim.tim(x, AMAN_FRAMES))


def _apex(clips):
    grey = jnp.asarray(clips).astype(jnp.float32).mean(-1)
    return np.asarray(apex.interframe_diff(grey))


def _face_crop(clips):
    size = clips.shape[2]
    out = []
    for i, clip in enumerate(clips):
        found = face.detect_faces(clip[0], clip=str(i))
        if len(found):
            box = face.square_box(found[0], clip.shape[1:3], 0.1)
        else:
            side = size * 3 // 4
            box = face.Box((size - side) // 2, (size - side) // 2, side)
        out.append(face.crop_clip(clip, box, max(size // 2, 1), clip=str(i)))
    return np.stack(out)


STEPS: dict[str, tuple[bool, str, Callable[[np.ndarray], np.ndarray]]] = {
    "tvl1_opencv": (False, "OpenCV TV-L1, onset->apex", _onset_apex_flow(flow.tvl1_opencv)),
    "tvl1_jax": (True, "JAX TV-L1 (mer_jax.preprocess.flow.tvl1), onset->apex", _tvl1_jax),
    "farneback": (False, "OpenCV Farneback, onset->apex", _onset_apex_flow(flow.farneback_opencv)),
    "dis": (False, "OpenCV DIS (medium), onset->apex", _onset_apex_flow(flow.dis_opencv)),
    "evm_jax": (True, "EVM of the clip (mer_jax.preprocess.evm.magnify, seed 001 settings)", _evm),
    "evm_apex_jax": (
        True,
        "EVM, apex frame only (mer_jax.preprocess.evm.magnify_frame)",
        _evm_apex,
    ),
    "evm_against_onset_jax": (
        True,
        f"AMAN Eulerian stack, {AMAN_FRAMES} frames x {len(AMAN_FACTORS)} factors",
        _evm_against_onset,
    ),
    "tim": (True, f"TIM to {AMAN_FRAMES} frames (mer_jax.preprocess.tim.tim)", _tim),
    "apex_interframe_diff": (True, "interframe-diff apex (mer_jax.preprocess.apex)", _apex),
    "face_crop": (False, "Haar face box on the onset + crop of every frame", _face_crop),
}


def _chunks(clips: np.ndarray, batch: int) -> list[np.ndarray]:
    """Chunks of `batch` clips, the last padded by repeating its final clip (same shape: one
    compiled program)."""
    out = []
    for start in range(0, len(clips), batch):
        chunk = clips[start : start + batch]
        if len(chunk) < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), axis=0)])
        out.append(chunk)
    return out


def run(
    *,
    clips: int = 16,
    frames: int = 24,
    size: int = 64,
    batch: int = 0,
    steps: Sequence[str] = tuple(STEPS),
    repeats: int = 1,
    seed: int = 0,
    log: Callable[[str], None] = lambda message: None,
) -> dict:
    """Times each step of `steps` on `clips` synthetic clips; see the module docstring.

    batch 0 = all clips in one call. Returns {'device', 'clips', 'frames', 'size',
    'batch', 'steps': {name: {'clips_per_s', 'ms_per_clip', 'seconds', 'compile_s',
    'batched', 'what'}}}.
    """
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise UserError(f"bench-preprocess: unknown step(s) {unknown}; known: {list(STEPS)}")
    if frames < AMAN_FRAMES and any(s in steps for s in ("evm_against_onset_jax", "tim")):
        raise ValueError(f"bench-preprocess: --frames must be >= {AMAN_FRAMES} (AMAN's n)")
    if repeats < 1:
        raise ValueError(f"bench-preprocess: --repeats must be >= 1, got {repeats}")
    batch = batch or clips
    if batch < 1:
        raise ValueError(f"bench-preprocess: --batch must be >= 0, got {batch}")
    data = synthetic_clips(clips, frames, size, seed=seed)
    results = {}
    for name in steps:
        batched, what, fn = STEPS[name]
        chunks = _chunks(data, batch) if batched else [data]
        compile_s = None
        if batched:
            start = time.perf_counter()
            fn(chunks[0])
            compile_s = time.perf_counter() - start
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            for chunk in chunks:
                fn(chunk)
            best = min(best, time.perf_counter() - start)
        best = max(best, 1e-9)
        results[name] = {
            "clips_per_s": clips / best,
            "ms_per_clip": 1000.0 * best / clips,
            "seconds": best,
            "compile_s": compile_s,
            "batched": batched,
            "what": what,
        }
        log(f"{name}: {clips / best:.1f} clips/s ({1000.0 * best / clips:.2f} ms/clip)")
    return {
        "device": engine.device_info(),
        "clips": clips,
        "frames": frames,
        "size": size,
        "batch": batch,
        "repeats": repeats,
        "versions": {"jax": jax.__version__, "opencv": cv2.__version__},
        "steps": results,
    }


def format_table(result: dict) -> str:
    d = result["device"]
    lines = [
        f"{result['clips']} clips x {result['frames']} frames x {result['size']}x"
        f"{result['size']}, batch {result['batch']}, on {d['platform']} ({d['device_kind']})",
        "",
        "| step | batched | clips/s | ms/clip | compile+first call (s) |",
        "|---|---|---|---|---|",
    ]
    for name, r in result["steps"].items():
        compile_s = "-" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        lines.append(
            f"| {name} | {'yes' if r['batched'] else 'no'} | {r['clips_per_s']:.1f} | "
            f"{r['ms_per_clip']:.2f} | {compile_s} |"
        )
    return "\n".join(lines)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `bench-preprocess` sub-command to `subparsers`."""
    p = subparsers.add_parser(
        "bench-preprocess",
        help="clips/s of each preprocessing step (flows, EVM, TIM, apex, face crop)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--clips", type=int, default=16, help="synthetic clips N (default 16)")
    p.add_argument("--frames", type=int, default=24, help="frames per clip T (default 24)")
    p.add_argument("--size", type=int, default=64, help="frame side S (default 64)")
    p.add_argument("--batch", type=int, default=0, help="clips per JAX call (default 0: all)")
    p.add_argument(
        "--step",
        action="append",
        choices=list(STEPS),
        help="a step to time, repeatable (default all)",
    )
    p.add_argument("--repeats", type=int, default=1, help="timed passes, best kept (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(fn=cmd_bench_preprocess)
    return p


def cmd_bench_preprocess(args) -> int:
    result = run(
        clips=args.clips,
        frames=args.frames,
        size=args.size,
        batch=args.batch,
        steps=args.step or tuple(STEPS),
        repeats=args.repeats,
        seed=args.seed,
        log=lambda message: print(f"bench-preprocess: {message}", file=sys.stderr, flush=True),
    )
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0
