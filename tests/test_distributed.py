"""One sweep over two processes on this machine (`mer-jax sweep --coordinator ...`, CPU, gloo):
the same results as one process, one set of report files, and a dead process ends the other.

The reference is one process with two host devices: the same mesh and fold layout, so the
results must be identical.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.xla_flags import subprocess_env

ROOT = Path(__file__).resolve().parents[1]
TINY = f"{ROOT / 'experiments' / 'quickstart.py'}:tiny"
REPORTS = ("results.json", "summary.md", "confusion_matrix.png", "run.json")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _argv(workdir, tfds_dir, *settings):
    argv = [sys.executable, "-m", "mer_jax.cli", "sweep", TINY, "--workdir", str(workdir),
            "--no-progress", "--no-compile-cache", "--set", f"data_dir={tfds_dir}",
            "--set", "report.attention_maps=0"]  # fmt: skip
    for s in settings:
        argv += ["--set", s]
    return argv


def _two_processes(argv, *, stderr=subprocess.STDOUT):
    """Processes 0 and 1 of `argv` (a `mer-jax` command line) on one localhost coordinator."""
    port = _port()
    cluster = ["--coordinator", f"localhost:{port}", "--num-processes", "2", "--process-id"]
    return [
        subprocess.Popen(
            [*argv, *cluster, str(i)],
            env=subprocess_env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )  # fmt: skip
        for i in (0, 1)
    ]


def _two_sweeps(workdir, tfds_dir, *settings, heartbeat=100):
    argv = [*_argv(workdir, tfds_dir, *settings), "--heartbeat-timeout", str(heartbeat)]
    return _two_processes(argv)


def _results(workdir) -> dict:
    return json.loads((Path(workdir) / "results.json").read_text())


@pytest.fixture(scope="module")
def built(tfds_dir):
    """The tiny corpus built once, before processes race to build it."""
    out = subprocess.run(
        [sys.executable, "-m", "mer_jax.cli", "data", "build", "synthetic_me/tiny",
         "--data-dir", tfds_dir],
        env=subprocess_env(), cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return tfds_dir


def test_two_processes_give_the_one_process_results_and_one_report(built, tmp_path):
    # 4 LOSO folds and the final model: 5 rows over 2 devices, one of them padded.
    settings = ("train.epochs=2", "train.final_model=True")
    procs = _two_sweeps(tmp_path / "two", built, *settings)
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    assert "process 1 of 2" in outs[1] and "UAR" not in outs[1]  # only process 0 reports
    assert "process 1 of 2" not in outs[0] and "UAR" in outs[0]
    two = _results(tmp_path / "two")
    assert "over 2 devices" in two["engine"]["layout"]
    env = subprocess_env(devices=2)
    ref = tmp_path / "one"
    subprocess.run(
        _argv(ref, built, *settings, "train.fold_strategy=vmap"), env=env, cwd=ROOT, check=True,
        capture_output=True, timeout=600,
    )  # fmt: skip
    one = _results(ref)
    assert two["predictions"] == one["predictions"] and two["metrics"] == one["metrics"]
    # One set of report files, written by process 0: no temporary or duplicate files.
    names = sorted(os.listdir(tmp_path / "two"))
    for name in REPORTS:
        assert name in names
    assert not [n for n in names if n.startswith(".") and n != ".lock" or "tmp" in n], names


def test_a_dead_process_ends_the_other_with_an_error(built, tmp_path):
    """Kill process 1 once it trains: process 0 stops within the heartbeat timeout (5 s here),
    with JAX's error saying another task died, instead of waiting forever."""
    procs = _two_sweeps(tmp_path / "run", built, "train.epochs=200", heartbeat=5)
    deadline = time.monotonic() + 300
    while not (tmp_path / "run" / "run.json").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(10)  # inside training
    procs[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    out = procs[0].communicate(timeout=120)[0]
    procs[1].wait()
    assert procs[0].returncode != 0
    assert time.monotonic() - killed < 60
    assert "task died" in out or "heartbeat" in out.lower(), out[-3000:]


def test_bench_distributed_reports_per_device_speed_and_scaling_efficiency(tmp_path):
    argv = [sys.executable, "-m", "mer_jax.cli", "bench", "--folds", "4", "--batch", "2",
            "--steps", "1", "--warmup", "0", "--width", "4", "--input-size", "16", "--json"]  # fmt: skip
    procs = _two_processes(argv, stderr=subprocess.PIPE)
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    assert "images_per_s" not in outs[1][0]  # process 0 reports (gloo prints its own line)
    r = json.loads(outs[0][0][outs[0][0].index("{") :])
    assert (r["processes"], r["devices"]) == (2, 2)
    assert r["images_per_s_per_device"] == pytest.approx(r["distributed"] / 2)
    assert r["speedup"] == pytest.approx(r["distributed"] / r["one_process"])
    assert r["scaling_efficiency"] == pytest.approx(r["speedup"] / 2)


def test_incomplete_process_options_are_one_line_errors(capsys):
    from mer_jax import cli

    assert cli.main(["sweep", TINY, "--coordinator", "localhost:1"]) == 2
    assert "--coordinator, --num-processes and --process-id go together" in capsys.readouterr().err
    argv = ["sweep", TINY, "--coordinator", "localhost:1", "--num-processes", "2"]
    assert cli.main([*argv, "--process-id", "2"]) == 2
    assert "--process-id 2: not in [0, --num-processes 2)" in capsys.readouterr().err
