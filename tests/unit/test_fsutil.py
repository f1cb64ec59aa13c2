"""pyrt_core.fsutil: atomic writes, JSON files, file locks, temp-file cleanup."""
from __future__ import annotations

import json
import multiprocessing
import os
import stat
import threading
import time

import pytest

from pyrt_core import fsutil


def test_atomic_write_bytes_and_str(tmp_path):
    p = tmp_path / "sub" / "f"
    fsutil.atomic_write(str(p), b"one")
    assert p.read_bytes() == b"one"
    fsutil.atomic_write(str(p), "two\n")
    assert p.read_text() == "two\n"
    assert os.listdir(p.parent) == ["f"]  # no temp file left


def test_atomic_write_mode_ignores_umask(tmp_path):
    old = os.umask(0o077)
    try:
        fsutil.atomic_write(str(tmp_path / "f"), b"x", mode=0o644)
        fsutil.atomic_write(str(tmp_path / "g"), b"x", mode=0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "f").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "g").st_mode) == 0o600


def test_atomic_write_replaces_symlink_not_target(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(target)
    fsutil.atomic_write(str(link), "new")
    assert target.read_text() == "keep"
    assert not link.is_symlink() and link.read_text() == "new"


def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    p = tmp_path / "f"
    p.write_text("old")

    def boom(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        fsutil.atomic_write(str(p), "new")
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["f"]


def test_temp_path_naming(tmp_path):
    t = fsutil.temp_path(str(tmp_path / "images.json"))
    assert os.path.dirname(t) == str(tmp_path)
    assert os.path.basename(t).startswith(".tmp-images.json-")
    assert t != fsutil.temp_path(str(tmp_path / "images.json"))


def test_read_write_json(tmp_path):
    p = str(tmp_path / "x.json")
    assert fsutil.read_json(p, {"d": 1}) == {"d": 1}
    assert fsutil.read_json(p, None) is None
    fsutil.write_json(p, {"b": [1, 2], "a": "é"})
    assert fsutil.read_json(p, None) == {"b": [1, 2], "a": "é"}
    assert json.loads(open(p).read()) == {"b": [1, 2], "a": "é"}


def test_read_json_corrupt_raises_valueerror(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{nope")
    with pytest.raises(ValueError):
        fsutil.read_json(str(p), {})


def test_clean_temp_files(tmp_path):
    (tmp_path / ".tmp-a-123").write_text("x")
    (tmp_path / ".tmp-dir-1").mkdir()
    (tmp_path / ".tmp-dir-1" / "f").write_text("x")
    (tmp_path / "keep.json").write_text("{}")
    (tmp_path / ".hidden").write_text("x")
    removed = fsutil.clean_temp_files(str(tmp_path))
    assert sorted(removed) == [".tmp-a-123", ".tmp-dir-1"]
    assert sorted(os.listdir(tmp_path)) == [".hidden", "keep.json"]
    assert fsutil.clean_temp_files(str(tmp_path / "missing")) == []


def test_clean_temp_files_older_than(tmp_path):
    old = tmp_path / ".tmp-old-1"
    old.write_text("x")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    (tmp_path / ".tmp-new-1").write_text("x")
    assert fsutil.clean_temp_files(str(tmp_path), older_than=60) == [".tmp-old-1"]
    assert os.listdir(tmp_path) == [".tmp-new-1"]


# -- locks ---------------------------------------------------------------------------


def test_lock_exclusive_blocks_second_holder(tmp_path):
    p = str(tmp_path / "lock")
    a = fsutil.FileLock(p)
    b = fsutil.FileLock(p)
    with a:
        assert a.locked
        assert not b.acquire(blocking=False)
        assert not b.acquire(timeout=0.1)
    assert not a.locked
    assert b.acquire(blocking=False)
    b.release()


def test_lock_shared_allows_shared_not_exclusive(tmp_path):
    p = str(tmp_path / "lock")
    s1, s2 = fsutil.FileLock(p, shared=True), fsutil.FileLock(p, shared=True)
    x = fsutil.FileLock(p)
    with s1:
        assert s2.acquire(blocking=False)
        assert not x.acquire(blocking=False)
        s2.release()
    assert x.acquire(blocking=False)
    x.release()


def test_lock_object_not_reentrant(tmp_path):
    lk = fsutil.FileLock(str(tmp_path / "lock"))
    with lk:
        with pytest.raises(RuntimeError):
            lk.acquire()


def test_lock_waits_for_release_across_threads(tmp_path):
    p = str(tmp_path / "lock")
    order = []
    a = fsutil.FileLock(p)
    a.acquire()

    def other():
        with fsutil.FileLock(p):
            order.append("b")

    t = threading.Thread(target=other)
    t.start()
    time.sleep(0.2)
    order.append("a")
    a.release()
    t.join(5)
    assert order == ["a", "b"]


def _increment(path, lockpath, n):
    for _ in range(n):
        with fsutil.FileLock(lockpath):
            v = fsutil.read_json(path, {"n": 0})
            v["n"] += 1
            fsutil.write_json(path, v)


def test_lock_serialises_processes(tmp_path):
    path, lockpath = str(tmp_path / "count.json"), str(tmp_path / "lock")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_increment, args=(path, lockpath, 25)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert fsutil.read_json(path, None) == {"n": 100}
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]
