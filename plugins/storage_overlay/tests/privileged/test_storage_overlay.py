"""The overlay driver: the conformance suite plus overlay-specific checks."""
from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import sys
import tarfile

import pytest

from pyrt_core.errors import DriverNotSupported, StorageError, UsageError
from pyrt_core.testing.storage_conformance import (
    DriverConformance,
    build_tar,
    mounts_under,
    tar_dir,
    tar_file,
    tar_opaque,
    tar_whiteout,
    unmount_all_under,
)


from pyrt_core.testing import machine  # noqa: E402

drv_mod = machine.import_plugin_module("pyrt_storage_overlay.driver", "pyrt-storage-overlay")
mounts_mod = machine.import_plugin_module("pyrt_storage_overlay.mounts", "pyrt-storage-overlay")
probe_mod = machine.import_plugin_module("pyrt_storage_overlay.probe", "pyrt-storage-overlay")
OverlayDriver = drv_mod.OverlayDriver


class TestOverlayConformance(DriverConformance):
    driver_name = "overlay"


@pytest.fixture
def overlay(tmp_path):
    home = str(tmp_path / "home")
    machine.skip_unless("overlayfs")
    d = OverlayDriver(home, {})  # on a kernel with overlayfs, a refusal is a failure
    try:
        yield d
    finally:
        try:
            d.cleanup()
        finally:
            unmount_all_under(home)


def _options(mountpoint):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if left.split()[4] == mountpoint:
                return right.split()[2]
    return None


def test_short_links_and_lower_file(overlay):
    home = overlay.home
    overlay.create("base", None)
    overlay.create("mid", "base")
    overlay.create("top", "mid")
    links = {}
    for id in ("base", "mid", "top"):
        link = open(os.path.join(home, id, "link")).read()
        assert re.fullmatch(r"[A-Z0-9]{26}", link)
        assert os.readlink(os.path.join(home, "l", link)) == f"../{id}/diff"
        assert os.path.samefile(os.path.join(home, "l", link), os.path.join(home, id, "diff"))
        for sub in ("diff", "work", "merged"):
            assert os.path.isdir(os.path.join(home, id, sub))
        links[id] = link
    assert not os.path.exists(os.path.join(home, "base", "lower"))
    assert open(os.path.join(home, "mid", "lower")).read() == f"l/{links['base']}"
    assert open(os.path.join(home, "top", "lower")).read() == f"l/{links['mid']}:l/{links['base']}"
    overlay.remove("mid")
    assert not os.path.lexists(os.path.join(home, "l", links["mid"]))
    assert sorted(os.listdir(os.path.join(home, "l"))) == sorted([links["base"], links["top"]])


def test_128_layer_chain_mounts(overlay):
    parent = None
    for i in range(128):
        id = f"layer{i:03d}"
        overlay.create(id, parent)
        with open(os.path.join(overlay.home, id, "diff", f"f{i:03d}"), "w") as f:
            f.write(str(i))
        parent = id
    top = overlay.get(parent)
    try:
        assert os.path.ismount(top)
        assert sorted(os.listdir(top)) == [f"f{i:03d}" for i in range(128)]
        assert open(os.path.join(top, "f000")).read() == "0"
        lower = open(os.path.join(overlay.home, parent, "lower")).read()
        assert lower.count(":") == 126
        # with absolute paths these options would not fit in one page
        absolute = ":".join(os.path.join(overlay.home, x) for x in lower.split(":"))
        assert len(absolute) > os.sysconf("SC_PAGESIZE")
        # ... so the driver mounted with paths relative to its home
        assert f"upperdir={parent}/diff" in _options(top)
        assert _options(top).startswith("rw,lowerdir=l/")
    finally:
        overlay.put(parent)
    assert not os.path.ismount(top)
    assert mounts_under(overlay.home) == []


def test_home_with_comma_uses_relative_mount(tmp_path):
    home = str(tmp_path / "odd,home:x")
    d = OverlayDriver(home, {})
    try:
        d.create("base", None)
        d.create("child", "base")
        open(os.path.join(home, "base", "diff", "f"), "w").write("x")
        root = d.get("child")
        assert open(os.path.join(root, "f")).read() == "x"
        d.put("child")
    finally:
        d.cleanup()
        unmount_all_under(home)


def test_probe_result_is_cached(tmp_path, monkeypatch):
    home = str(tmp_path / "home")
    d = OverlayDriver(home, {})
    cache = open(os.path.join(home, probe_mod.PROBE_FILE)).read()
    assert "d_type=true" in cache and "native_diff=" in cache
    status = dict(d.status())
    assert status["Supports d_type"] == "true"
    assert status["Backing Filesystem"] == mounts_mod.backing_filesystem(home)
    assert status["Native Overlay Diff"] in ("true", "false")
    assert [n for n in os.listdir(home) if n.startswith(".probe-")] == []

    def no_probe(home):
        raise AssertionError("probed again")

    monkeypatch.setattr(probe_mod, "_probe_host", no_probe)
    OverlayDriver(home, {})  # cheap: the cached result is used
    # a different kernel or device invalidates the cache
    monkeypatch.setattr(probe_mod, "_probe_key", lambda home: "other")
    with pytest.raises(AssertionError, match="probed again"):
        OverlayDriver(home, {})


def test_d_type_probe(tmp_path, monkeypatch):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("")
    os.symlink("file", tmp_path / "link")
    types = mounts_mod.dir_entry_types(str(tmp_path))
    assert types["dir"] == 4 and types["file"] == 8 and types["link"] == 10  # DT_DIR/REG/LNK
    monkeypatch.setattr(probe_mod, "dir_entry_types", lambda path: {n: 0 for n in os.listdir(path)})
    with pytest.raises(DriverNotSupported, match="d_type"):
        OverlayDriver(str(tmp_path / "home"), {})
    assert not os.path.exists(tmp_path / "home")  # a failed probe leaves nothing


def test_home_on_overlayfs_is_not_supported(tmp_path):
    for d in ("lower", "upper", "work", "merged"):
        (tmp_path / d).mkdir()
    mounts_mod.mount_overlay(str(tmp_path / "merged"),
                          f"lowerdir={tmp_path}/lower,upperdir={tmp_path}/upper,"
                          f"workdir={tmp_path}/work")
    try:
        with pytest.raises(DriverNotSupported):
            OverlayDriver(str(tmp_path / "merged" / "home"), {})
    finally:
        mounts_mod.unmount(str(tmp_path / "merged"))


def test_mount_is_gone_after_put_and_remove(overlay):
    overlay.create("base", None)
    overlay.create_rw("ctr", "base")
    merged = overlay.get("ctr")
    assert merged == os.path.join(overlay.home, "ctr", "merged")
    assert os.path.ismount(merged)
    assert overlay.get("ctr") == merged
    overlay.put("ctr")
    assert os.path.ismount(merged)  # still held once
    overlay.put("ctr")
    assert not os.path.ismount(merged)
    overlay.get("ctr")
    overlay.remove("ctr")
    assert not os.path.exists(merged)
    assert mounts_under(overlay.home) == []


def test_whiteout_translation(overlay):
    overlay.create("base", None)
    overlay.apply_diff("base", None, build_tar([
        tar_file("gone", b"x"), tar_dir("dir"), tar_file("dir/old", b"o"), tar_file("keep", b"k")]))
    overlay.create("child", "base")
    overlay.apply_diff("child", "base", build_tar([
        tar_whiteout("gone"), tar_dir("dir"), tar_opaque("dir"), tar_file("dir/new", b"n")]))
    upper = os.path.join(overlay.home, "child", "diff")
    st = os.lstat(os.path.join(upper, "gone"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(upper, "dir"), "trusted.overlay.opaque") == b"y"
    assert not os.path.exists(os.path.join(upper, ".wh.gone"))
    with tarfile.open(fileobj=io.BytesIO(b"".join(overlay.diff("child", "base")))) as tf:
        names = {m.name.rstrip("/").removeprefix("./") for m in tf.getmembers()}
    assert {".wh.gone", "dir", "dir/.wh..wh..opq", "dir/new"} <= names
    assert "gone" not in names and "keep" not in names
    assert [(c.path, c.kind) for c in overlay.changes("child", "base")] == \
        [("/dir", "C"), ("/dir/new", "A"), ("/dir/old", "D"), ("/gone", "D")]


def test_native_changes_match_naive_changes(overlay):
    from pyrt_core.storage import naivediff

    suite = TestOverlayConformance()
    suite._apply(overlay, "base", None, suite._base_tar())
    overlay.create_rw("ctr", "base")
    suite._make_changes(overlay, "ctr")
    root = overlay.get("ctr")
    try:  # more: a file replaced by a directory, an opaque dir below a new one
        os.unlink(os.path.join(root, "setuid"))
        os.makedirs(os.path.join(root, "setuid", "inner"))
        os.chown(os.path.join(root, "opt", "app", "one"), 0, 0)  # copy-up, no change
    finally:
        overlay.put("ctr")
    native = overlay.changes("ctr", "base")
    assert native == naivediff.changes(overlay, "ctr", "base")
    assert overlay.diff_size("ctr", "base") == sum(
        os.lstat(os.path.join(overlay.home, "ctr", "diff") + c.path).st_size
        for c in native if c.kind != "D"
        and not stat.S_ISDIR(os.lstat(os.path.join(overlay.home, "ctr", "diff") + c.path).st_mode))


def test_changes_against_other_parent_fall_back_to_naive(overlay):
    overlay.create("a", None)
    overlay.apply_diff("a", None, build_tar([tar_file("x", b"x")]))
    overlay.create("b", "a")
    overlay.apply_diff("b", "a", build_tar([tar_file("y", b"y")]))
    # b against no parent: everything of a and b counts as added
    assert [(c.path, c.kind) for c in overlay.changes("b", None)] == [("/x", "A"), ("/y", "A")]


def test_create_rw_size_option_is_refused_clearly(overlay):
    overlay.create("base", None)
    with pytest.raises(UsageError, match="xfs"):
        overlay.create_rw("ctr", "base", {"size": "10G"})
    assert not overlay.exists("ctr")


def test_options_are_refused(tmp_path):
    with pytest.raises(UsageError):
        OverlayDriver(str(tmp_path / "home"), {"mountopt": "nodev"})


def test_missing_parent_gives_clear_error(overlay):
    overlay.create("base", None)
    overlay.create("child", "base")
    overlay.remove("base")
    with pytest.raises(StorageError, match="missing parent"):
        overlay.get("child")


def test_parallel_apply_and_metadata(overlay):
    assert overlay.supports_parallel_apply() is True
    overlay.create("base", None)
    overlay.create("child", "base")
    meta = overlay.metadata("child")
    assert meta["LowerDir"] == os.path.join(overlay.home, "base", "diff")
    assert meta["UpperDir"] == os.path.join(overlay.home, "child", "diff")


def test_plugin_import_is_cheap():
    code = ("import sys, pyrt_storage_overlay.driver; "
            "print(' '.join(m for m in ('ctypes', 'tarfile', 'json', 'subprocess') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
