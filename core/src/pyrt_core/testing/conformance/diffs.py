"""Conformance tests of a driver's diffs: applying layer tars (whiteouts, opaque
directories, path escapes that must write nothing outside the home), the list of
changes, diffs that round-trip and diff sizes."""
from __future__ import annotations

import io
import os
import uuid

from pyrt_core.errors import LayerError
from pyrt_core.storage.driver import Change

from .tars import (
    IS_ROOT,
    MTIME,
    build_tar,
    tar_device,
    tar_dir,
    tar_fifo,
    tar_file,
    tar_hardlink,
    tar_opaque,
    tar_symlink,
    tar_whiteout,
)
from .trees import expected_owner, layer_content, write_files, write_layer_files


class DiffTests:
    """Mixed into :class:`pyrt_core.testing.storage_conformance.DriverConformance`; each
    test takes the plugin's ``driver`` fixture."""

    # -- applying layer tars ----------------------------------------------------------------
    def _base_tar(self):
        entries = [
            tar_dir("etc"),
            tar_file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
            tar_file("etc/shadow", b"secret\n", mode=0o600),
            tar_dir("bin"),
            tar_file("bin/tool", b"#!/bin/sh\necho tool\n" * 100, mode=0o755),
            tar_hardlink("bin/tool-link", "bin/tool"),
            tar_symlink("bin/sh", "tool"),
            tar_symlink("abs", "/etc/passwd"),
            tar_dir("opt"),
            tar_dir("opt/app"),
            tar_file("opt/app/one", b"1"),
            tar_file("opt/app/two", b"2"),
            tar_dir("opt/app/sub"),
            tar_file("opt/app/sub/three", b"3"),
            tar_dir("home"),
            tar_dir("home/user", mode=0o700, uid=1000, gid=1000),
            tar_file("home/user/.profile", b"PS1=$\n", uid=1000, gid=1000),
            tar_file("setuid", b"s", mode=0o4755),
            tar_dir("tmp", mode=0o1777),
            tar_file("tmp/junk", b"junk"),
            tar_fifo("fifo"),
            tar_file("gone-later", b"bye"),
        ]
        if IS_ROOT:
            entries += [tar_dir("dev"), tar_device("dev/null", 1, 3),
                        tar_device("dev/loopx", 7, 99, block=True, mode=0o660)]
        return entries

    def _apply(self, driver, id, parent, entries) -> int:
        driver.create(id, parent)
        n = driver.apply_diff(id, parent, build_tar(entries))
        assert isinstance(n, int) and n >= 0
        return n

    def test_apply_diff_base_layer(self, driver):
        n = self._apply(driver, "base", None, self._base_tar())
        assert n >= len(b"#!/bin/sh\necho tool\n" * 100)
        view = layer_content(driver, "base")
        assert view["/etc/passwd"][:2] == ("file", b"root:x:0:0::/root:/bin/sh\n")
        assert view["/etc/passwd"][2] == MTIME
        assert view["/etc/shadow"][3] == 0o600
        assert view["/bin/tool"][3] == 0o755
        assert view["/bin/tool"][-1] == ("links", ("/bin/tool", "/bin/tool-link"))
        assert view["/bin/sh"][:2] == ("symlink", "tool")
        assert view["/abs"][:2] == ("symlink", "/etc/passwd")
        assert view["/home/user"][1:] == (0o700, expected_owner(1000), expected_owner(1000))
        assert view["/home/user/.profile"][-2:] == (expected_owner(1000), expected_owner(1000))
        assert view["/setuid"][3] == 0o4755
        assert view["/tmp"][1] == 0o1777
        assert view["/fifo"][0] == "fifo"
        if IS_ROOT:
            assert view["/dev/null"][:3] == ("chr", 1, 3)
            assert view["/dev/loopx"][:4] == ("blk", 7, 99, 0o660)

    def test_apply_diff_whiteouts_and_opaque_dirs(self, driver):
        self._apply(driver, "base", None, self._base_tar())
        self._apply(driver, "child", "base", [
            tar_whiteout("gone-later"),
            tar_whiteout("opt/app/two"),
            tar_dir("tmp", mode=0o1777),
            tar_opaque("tmp"),  # the parent's content of tmp is hidden
            tar_file("tmp/fresh", b"fresh"),
            tar_dir("etc"),
            tar_opaque("etc"),
            tar_file("etc/hosts", b"127.0.0.1 localhost\n"),
            tar_file("bin/added", b"added"),
            tar_hardlink("bin/added-link", "bin/added"),
            tar_symlink("bin/sh", "added"),  # replaces the parent's symlink
        ])
        base = layer_content(driver, "base")
        view = layer_content(driver, "child")
        assert "/gone-later" in base and "/gone-later" not in view
        assert "/opt/app/two" not in view
        assert view["/opt/app/one"][1] == b"1" and view["/opt/app/sub/three"][1] == b"3"
        assert sorted(p for p in view if p.startswith("/tmp/")) == ["/tmp/fresh"]
        assert sorted(p for p in view if p.startswith("/etc/")) == ["/etc/hosts"]
        assert view["/bin/sh"][:2] == ("symlink", "added")
        assert view["/bin/added"][-1] == ("links", ("/bin/added", "/bin/added-link"))
        assert not any(".wh." in p for p in view)  # no whiteout marker shows
        assert layer_content(driver, "base") == base  # the parent is untouched
        # a grandchild sees the child's deletions too
        self._apply(driver, "grandchild", "child", [tar_file("opt/app/four", b"4")])
        grand = layer_content(driver, "grandchild")
        assert "/gone-later" not in grand and "/etc/passwd" not in grand
        assert sorted(p for p in grand if p.startswith("/opt/app/")) == \
            ["/opt/app/four", "/opt/app/one", "/opt/app/sub", "/opt/app/sub/three"]

    def test_apply_diff_escape_writes_nothing_outside(self, driver, driver_home, tmp_path):
        outside = tmp_path / "outside"
        outside.mkdir()
        victim = outside / "victim"
        victim.write_bytes(b"original")
        token = f"pyrt-conformance-escape-{uuid.uuid4().hex}"
        watch = [os.path.dirname(driver_home)]
        p = os.path.dirname(watch[0])
        while p != os.path.dirname(p):
            watch.append(p)
            p = os.path.dirname(p)
        watch.append("/")

        def escaped():
            found = [os.path.join(d, token) for d in watch if os.path.lexists(os.path.join(d, token))]
            found += [str(x) for x in outside.iterdir() if x.name != "victim"]
            return found

        up = "../" * 40
        tars = {
            "dotdot": ([tar_file(up + token, b"pwned")], True),
            "dotdot-dir": ([tar_dir("a"), tar_file("a/" + up + token, b"pwned")], True),
            "symlink-parent": ([tar_symlink("evil", str(outside)),
                                tar_file("evil/" + token, b"pwned")], False),
            "symlink-dotdot": ([tar_symlink("evil", up + str(outside).lstrip("/")),
                                tar_file("evil/" + token, b"pwned")], False),
            "hardlink-out": ([tar_hardlink("stolen", up + str(victim).lstrip("/"))], False),
            "hardlink-abs": ([tar_hardlink("stolen", str(victim))], False),
        }
        driver.create("base", None)
        try:
            for i, (label, (entries, must_refuse)) in enumerate(tars.items()):
                id = f"evil{i}"
                driver.create(id, "base")
                try:
                    driver.apply_diff(id, "base", build_tar(entries))
                except LayerError:
                    pass
                else:
                    assert not must_refuse, f"{label}: apply_diff accepted a path escape"
                assert escaped() == [], f"{label}: wrote outside the driver home"
                assert victim.read_bytes() == b"original"
                assert os.stat(victim).st_nlink == 1, f"{label}: hard-linked a file outside"
                driver.remove(id)
        finally:
            for path in escaped():
                if os.path.lexists(path) and os.path.basename(path) == token:
                    os.unlink(path)

    # -- diffs -------------------------------------------------------------------------------
    def _make_changes(self, driver, id):
        root = driver.get(id)
        try:
            write_files(root, {
                "/added": "added",
                "/newdir/f": "new",
                "/etc/passwd": "changed\n",
                "/gone-later": None,
                "/opt/app/sub": None,
                "/tmp": None,
                "/tmp/": b"",
                "/tmp/only": "only",
            })
            os.chmod(os.path.join(root, "tmp"), 0o1777)
            os.chmod(os.path.join(root, "etc/shadow"), 0o640)
            os.symlink("added", os.path.join(root, "added-link"))
            os.link(os.path.join(root, "added"), os.path.join(root, "added-hard"))
            os.unlink(os.path.join(root, "bin/sh"))
            os.symlink("tool-link", os.path.join(root, "bin/sh"))
            os.utime(os.path.join(root, "etc/passwd"), (MTIME + 100, MTIME + 100))
        finally:
            driver.put(id)

    def test_changes(self, driver):
        self._apply(driver, "base", None, self._base_tar())
        driver.create_rw("ctr", "base")
        self._make_changes(driver, "ctr")
        changes = driver.changes("ctr", "base")
        assert all(isinstance(c, Change) for c in changes)
        assert [c.path for c in changes] == sorted(c.path for c in changes)
        got = {c.path: c.kind for c in changes}
        want = {
            "/added": "A", "/added-link": "A", "/added-hard": "A",
            "/newdir": "A", "/newdir/f": "A",
            "/etc/passwd": "C", "/etc/shadow": "C", "/bin/sh": "C",
            "/gone-later": "D", "/opt/app/sub": "D",
            "/tmp/only": "A", "/tmp/junk": "D",
        }
        for path, kind in want.items():
            assert got.get(path) == kind, f"{path}: want {kind}, got {got.get(path)}"
        # below a deleted directory nothing more is listed
        assert "/opt/app/sub/three" not in got
        # unchanged files are not listed; directories holding changes may be (as C)
        base_view = layer_content(driver, "base")
        for path, kind in got.items():
            if path in want:
                continue
            assert kind == "C" and base_view.get(path, ("",))[0] == "dir", \
                f"unexpected change {kind} {path}"
        # against no parent everything is added
        driver.create("solo", None)
        write_layer_files(driver, "solo", {"/x/y": "y"})
        assert [(c.path, c.kind) for c in driver.changes("solo", None)] == \
            [("/x", "A"), ("/x/y", "A")]

    def test_diff_round_trip(self, driver):
        self._apply(driver, "base", None, self._base_tar())
        driver.create_rw("ctr", "base")
        self._make_changes(driver, "ctr")
        tar = io.BytesIO(b"".join(driver.diff("ctr", "base")))
        driver.create("copy", "base")
        driver.apply_diff("copy", "base", tar)
        assert layer_content(driver, "copy") == layer_content(driver, "ctr")

    def test_diff_round_trip_of_base_layer(self, driver):
        self._apply(driver, "base", None, self._base_tar())
        tar = io.BytesIO(b"".join(driver.diff("base", None)))
        driver.create("copy", None)
        driver.apply_diff("copy", None, tar)
        assert layer_content(driver, "copy") == layer_content(driver, "base")

    def test_diff_of_a_layer_with_whiteouts(self, driver):
        self._apply(driver, "base", None, self._base_tar())
        self._apply(driver, "child", "base", [
            tar_whiteout("gone-later"), tar_dir("opt"), tar_dir("opt/app"), tar_opaque("opt/app"),
            tar_file("opt/app/only", b"only"),
        ])
        tar = io.BytesIO(b"".join(driver.diff("child", "base")))
        driver.create("copy", "base")
        driver.apply_diff("copy", "base", tar)
        view = layer_content(driver, "copy")
        assert view == layer_content(driver, "child")
        assert "/gone-later" not in view
        assert sorted(p for p in view if p.startswith("/opt/app/")) == ["/opt/app/only"]

    def test_diff_size(self, driver):
        driver.create("base", None)
        write_layer_files(driver, "base", {"/keep": b"k" * 300, "/modify": b"m" * 200, "/delete": b"d" * 5000})
        driver.create_rw("ctr", "base")
        root = driver.get("ctr")
        try:
            write_files(root, {"/new": b"n" * 1000, "/modify": b"M" * 500, "/delete": None,
                               "/dir/": b""})
        finally:
            driver.put("ctr")
        assert driver.diff_size("ctr", "base") == 1500
        assert driver.diff_size("base", None) == 5500
