"""data_builders.fingerprint: digests of what a build reads and writes, atomic writes, locks."""

import hashlib
import os
import shutil

from data_builders import fingerprint


def _tree(root):
    (root / "Cropped" / "sub01").mkdir(parents=True)
    (root / "Cropped" / "sub01" / "img1.jpg").write_bytes(b"a" * 10)
    (root / "sheet.xlsx").write_bytes(b"sheet")
    return root


def test_tree_counts_every_file_and_names_what_changed(tmp_path):
    root = _tree(tmp_path / "manual")
    os.symlink(root, root / "Cropped" / "loop")  # a symlink loop is walked once
    before = fingerprint.tree(root)
    assert (before["files"], before["bytes"]) == (2, 15)
    assert sorted(before["parts"]) == ["Cropped", "sheet.xlsx"]
    assert fingerprint.tree(root) == before  # nothing read twice differs
    # Same size, new mtime: changed. The digest alone would not say where.
    stat = (root / "sheet.xlsx").stat()
    os.utime(root / "sheet.xlsx", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    (root / "new.csv").write_text("clip,column,value\n")
    shutil.rmtree(root / "Cropped")
    after = fingerprint.tree(root)
    assert after["digest"] != before["digest"]
    changes = fingerprint.tree_changes(before, after)
    assert changes == "sheet.xlsx changed; new.csv added; Cropped removed"


def test_tree_sees_a_frame_edited_in_place(tmp_path):
    root = _tree(tmp_path / "manual")
    before = fingerprint.tree(root)
    frame = root / "Cropped" / "sub01" / "img1.jpg"
    frame.write_bytes(b"b" * 11)
    after = fingerprint.tree(root)
    assert fingerprint.tree_changes(before, after) == "Cropped changed"


def test_sources_follow_project_imports_only(tmp_path, monkeypatch):
    pkg = tmp_path / "data_builders"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "top.py").write_text(
        "import numpy\nfrom data_builders import helper\n"
        "def f():\n    from mer_jax.pre import flow\n"
    )
    (pkg / "helper.py").write_text("from .sub import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("X = 1\n")
    (pkg / "unused.py").write_text("Y = 1\n")
    (tmp_path / "mer_jax" / "pre").mkdir(parents=True)
    (tmp_path / "mer_jax" / "pre" / "flow.py").write_text("Z = 1\n")
    monkeypatch.setattr(fingerprint, "REPO", tmp_path)
    first = fingerprint.sources("data_builders.sub.top")
    assert sorted(first["files"]) == [
        "data_builders/__init__.py",
        "data_builders/helper.py",
        "data_builders/sub/__init__.py",
        "data_builders/sub/leaf.py",
        "data_builders/sub/top.py",
        "mer_jax/pre/flow.py",
    ]
    leaf = (pkg / "sub" / "leaf.py").read_bytes()
    assert first["files"]["data_builders/sub/leaf.py"] == hashlib.sha256(leaf).hexdigest()
    (pkg / "unused.py").write_text("Y = 2\n")
    assert fingerprint.sources("data_builders.sub.top") == first
    (tmp_path / "mer_jax" / "pre" / "flow.py").write_text("Z = 2\n")  # a lazy import, edited
    assert fingerprint.sources("data_builders.sub.top")["digest"] != first["digest"]


def test_stored_digest_is_of_content_and_memoised(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "casme2" / "cropped_112" / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "dataset_info.json").write_text('{"name": "casme2"}')
    (folder / "casme2-train.array_record-00000-of-00001").write_bytes(b"x" * 100)
    (folder / "mer_jax_build.json").write_text("{}")  # mer_jax's own record: not content
    memo = tmp_path / "memo.json"
    first = fingerprint.stored(folder, memo)
    reference = hashlib.sha256(
        "".join(
            f"{p.name}\t{p.stat().st_size}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n"
            for p in sorted(folder.iterdir())
            if p.name != "mer_jax_build.json"
        ).encode()
    ).hexdigest()
    assert first == reference
    calls = []
    real = fingerprint.file_sha256
    monkeypatch.setattr(fingerprint, "file_sha256", lambda p: calls.append(p) or real(p))
    (folder / "mer_jax_build.json").write_text('{"other": 1}')
    assert fingerprint.stored(folder, memo) == first and calls == []  # nothing re-read
    # A copy (new paths and mtimes, same bytes) has the same digest; one changed byte does not.
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, copy_function=shutil.copy)
    assert fingerprint.stored(copy, memo) == first and len(calls) == 2
    shard = copy / "casme2-train.array_record-00000-of-00001"
    shard.write_bytes(b"x" * 99 + b"y")
    assert fingerprint.stored(copy, memo) != first
