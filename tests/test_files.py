"""mer_jax.files: atomic writes and locks that name their holder."""

import os

import pytest

from mer_jax import files


def test_write_atomic_never_leaves_half_a_file(tmp_path):
    path = tmp_path / "cache" / "inputs.npy"
    files.write_bytes(path, lambda f: f.write(b"old"))

    def fails(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.write_bytes(path, fails)
    assert path.read_bytes() == b"old"
    assert os.listdir(path.parent) == ["inputs.npy"]  # no temporary file left


def test_lock_names_its_holder(tmp_path):
    lines = []
    path = tmp_path / "x.lock"
    with files.Lock(path, "casme2/cropped_112 is being built by another process", lines.append):
        holder = path.read_text()
        assert f"pid {os.getpid()}" in holder
        with pytest.raises(files.LockHeld) as info:
            with files.Lock(
                path,
                "casme2/cropped_112 is being built by another process",
                lines.append,
                wait=False,
            ):
                pass
        message = str(info.value)
        assert "casme2/cropped_112 is being built by another process" in message
        assert holder.strip() in message and str(path) in message
    with files.Lock(
        path, "casme2/cropped_112 is being built by another process", lines.append, wait=False
    ):
        pass  # released
    assert lines == []
