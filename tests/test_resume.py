"""Runs that survive: a sweep stopped by Ctrl-C and then by SIGKILL resumes from its orbax
checkpoints to exactly the results of an uninterrupted run; diverging folds stay in their fold.

Every sweep runs in a subprocess with this process's XLA flags (`tests.xla_flags`),
the uninterrupted reference too. Same machine, same programs: the results must be
identical, not close.
"""

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mer_jax import cli
from tests.xla_flags import subprocess_env

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "experiments" / "quickstart.py") + ":tiny"
EPOCHS = 6
SETTINGS = [
    f"train.epochs={EPOCHS}",
    "train.checkpoint_every=1",
    "report.attention_maps=0",
    "optimizer.decay_every_epochs=3",
]


def _start(workdir, tfds_dir, cache):
    """The sweep's command in a subprocess. Every run of this file shares one persistent XLA
    cache: only the first compiles (the programs are the same, and so are their results)."""
    argv = [
        "sweep",
        TINY,
        "--workdir",
        str(workdir),
        "--no-progress",
        "--compile-cache",
        str(cache),
    ]
    for item in [*SETTINGS, f"data_dir={tfds_dir}"]:
        argv += ["--set", item]
    env = dict(subprocess_env(), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "mer_jax.cli", *argv],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _signal_after_a_checkpoint(proc, signum) -> list[str]:
    """Send `signum` once the sweep reports a saved checkpoint; its stdout lines until then."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("checkpoint: epoch") and "saved" in line:
            proc.send_signal(signum)
            break
    return lines


def _comparable(results: dict) -> dict:
    """results.json without what differs between any two runs (timings)."""
    return {k: v for k, v in results.items() if k != "timing"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("xla-cache")


@pytest.fixture(scope="module")
def reference(tfds_dir, tmp_path_factory, cache):
    """The same sweep uninterrupted: its results.json."""
    workdir = tmp_path_factory.mktemp("uninterrupted")
    proc = _start(workdir, tfds_dir, cache)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return json.loads((workdir / "results.json").read_text())


def test_ctrl_c_then_sigkill_then_resume_gives_the_uninterrupted_results(
    tfds_dir, tmp_path, reference, cache
):
    # 1. Ctrl-C after the first checkpoint: a clean exit (130, one line, no traceback).
    proc = _start(tmp_path, tfds_dir, cache)
    _signal_after_a_checkpoint(proc, signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "interrupted after epoch" in err
    assert "run the same command again to resume" in err
    assert not (tmp_path / "results.json").exists()
    stopped_at = int(err.split("interrupted after epoch ")[1].split(";")[0])
    assert 1 <= stopped_at < EPOCHS
    # 2. The same command resumes; SIGKILL it after its next checkpoint.
    proc = _start(tmp_path, tfds_dir, cache)
    lines = _signal_after_a_checkpoint(proc, signal.SIGKILL)
    proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL
    assert any(f"resuming after epoch {stopped_at}" in line for line in lines), lines
    # 3. Again: it resumes from the last checkpoint SIGKILL left and finishes.
    proc = _start(tmp_path, tfds_dir, cache)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert "resuming after epoch" in out
    resumed = json.loads((tmp_path / "results.json").read_text())
    assert _comparable(resumed) == _comparable(reference)
    # 4. A fourth time: the run is finished, nothing trains.
    proc = _start(tmp_path, tfds_dir, cache)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0 and "finished run: nothing to do" in out, err[-3000:]
    assert "compiling" not in out


def test_a_diverging_fold_stops_alone_and_the_others_are_reported(tfds_dir, tmp_path, capsys):
    """The issue's probe: at lr 30 one fold's loss turns non-finite in epoch 4 (of 4)."""
    argv = ["sweep", TINY, "--workdir", str(tmp_path), "--no-progress", "--no-compile-cache"]
    for item in ("optimizer.lr=30.0", "train.epochs=4", "report.attention_maps=0"):
        argv += ["--set", item]
    code = cli.main([*argv, "--set", f"data_dir={tfds_dir}"])
    err = capsys.readouterr().err
    results = json.loads((tmp_path / "results.json").read_text())
    diverged = results["diverged_folds"]
    if not diverged or len(diverged) == results["num_folds"]:
        pytest.fail(f"expected some but not all folds to diverge: {diverged}")
    assert code == 3
    assert results["metrics"]["complete"] is False
    for d in diverged:
        assert f"{d['subject']} (epoch {d['epoch']})" in err
        fold = results["folds"][d["fold"]]
        assert fold["subject"] == d["subject"] and fold["accuracy"] is None
        assert fold["final_train_loss"] is None  # NaN: no number to report
    healthy = [f for f in results["folds"] if "diverged_epoch" not in f]
    for f in healthy:
        assert np.isfinite(f["final_train_loss"]) and f["accuracy"] is not None
    # Pooled metrics cover exactly the healthy folds' held-out clips.
    subjects = set(results["predictions"]["subject"])
    assert subjects == {f["subject"] for f in healthy}
    assert results["metrics"]["num_samples"] == sum(f["num_test"] for f in healthy)
    assert "**Incomplete**" in (tmp_path / "summary.md").read_text()
