"""Conformance tests of a driver's layers: creating them (also read-write ones),
exists/remove/get/put, snapshot semantics, chains, removal order, cleanup, status."""
from __future__ import annotations

import os
import stat

import pytest

from pyrt_core.errors import PyrtError, UsageError

from .trees import layer_content, mounts_under, read_layer_file, write_files, write_layer_files


class LayerTests:
    """Mixed into :class:`pyrt_core.testing.storage_conformance.DriverConformance`; each
    test takes the plugin's ``driver`` fixture."""

    # -- creating layers --------------------------------------------------------------
    def test_create_empty_base(self, driver):
        assert not driver.exists("base")
        driver.create("base", None)
        assert driver.exists("base")
        root = driver.get("base")
        try:
            assert os.path.isdir(root)
            assert [n for n in os.listdir(root) if n != "lost+found"] == []
            st = os.stat(root)
            assert stat.S_IMODE(st.st_mode) == 0o755, oct(st.st_mode)
            assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())
        finally:
            driver.put("base")

    def test_create_from_base(self, driver):
        driver.create("base", None)
        write_layer_files(driver, "base", {"/etc/hostname": "base\n", "/bin/": b"", "/data/a/b": "deep"})
        before = layer_content(driver, "base")
        driver.create("child", "base")
        assert layer_content(driver, "child") == before
        assert read_layer_file(driver, "child", "/data/a/b") == b"deep"

    def test_create_twice_fails(self, driver):
        driver.create("base", None)
        with pytest.raises(PyrtError):
            driver.create("base", None)

    def test_create_with_missing_parent_fails(self, driver):
        with pytest.raises(PyrtError):
            driver.create("child", "no-such-parent")
        assert not driver.exists("child")

    def test_create_rw(self, driver):
        driver.create("base", None)
        write_layer_files(driver, "base", {"/f": "from base"})
        driver.create_rw("ctr", "base")
        assert driver.exists("ctr")
        root = driver.get("ctr")
        try:
            assert open(os.path.join(root, "f")).read() == "from base"
            write_files(root, {"/f": "mine", "/new": "n"})
        finally:
            driver.put("ctr")
        assert read_layer_file(driver, "ctr", "/f") == b"mine"
        assert read_layer_file(driver, "base", "/f") == b"from base"
        assert read_layer_file(driver, "base", "/new") is None

    def test_create_rw_rejects_unknown_option(self, driver):
        driver.create("base", None)
        with pytest.raises(UsageError):
            driver.create_rw("ctr", "base", {"no-such-option": "1"})
        assert not driver.exists("ctr")

    def test_create_rw_without_parent(self, driver):
        driver.create_rw("ctr", None)
        write_layer_files(driver, "ctr", {"/x": "x"})
        assert read_layer_file(driver, "ctr", "/x") == b"x"

    # -- exists / remove / get / put ------------------------------------------------------
    def test_exists_and_remove(self, driver):
        assert not driver.exists("nope")
        driver.remove("nope")  # removing a missing layer is not an error
        driver.create("base", None)
        assert driver.exists("base")
        driver.remove("base")
        assert not driver.exists("base")
        with pytest.raises(PyrtError):
            driver.get("base")
        driver.create("base", None)  # the id can be used again
        assert layer_content(driver, "base") == {}

    def test_get_put_repeated(self, driver):
        driver.create("base", None)
        first = driver.get("base")
        second = driver.get("base")
        assert first == second
        write_files(first, {"/f": "x"})
        driver.put("base")
        assert open(os.path.join(second, "f")).read() == "x"  # still held once
        driver.put("base")
        driver.put("base")  # an extra put is not an error
        for _ in range(3):
            again = driver.get("base")
            assert again == first
            assert open(os.path.join(again, "f")).read() == "x"
            driver.put("base")

    def test_put_releases_mounts(self, driver, driver_home):
        driver.create("base", None)
        driver.create("child", "base")
        driver.get("child")
        driver.put("child")
        assert mounts_under(driver_home) == []

    def test_remove_mounted_layer_unmounts(self, driver, driver_home):
        driver.create("base", None)
        driver.create_rw("ctr", "base")
        root = driver.get("ctr")
        write_files(root, {"/f": "x"})
        driver.remove("ctr")
        assert not driver.exists("ctr")
        assert mounts_under(driver_home) == []
        assert not os.path.exists(os.path.join(root, "f"))

    def test_remove_layer_with_unfriendly_modes(self, driver):
        driver.create("base", None)
        root = driver.get("base")
        try:
            write_files(root, {"/locked/inner/file": "x", "/ro": "y"})
            os.chmod(os.path.join(root, "locked", "inner", "file"), 0)
            os.chmod(os.path.join(root, "locked", "inner"), 0)
            os.chmod(os.path.join(root, "locked"), 0o500)
            os.chmod(os.path.join(root, "ro"), 0)
        finally:
            driver.put("base")
        driver.create("child", "base")
        driver.remove("child")
        driver.remove("base")
        assert not driver.exists("base")

    # -- snapshot semantics -------------------------------------------------------------
    def test_snapshot_semantics(self, driver):
        driver.create("base", None)
        write_layer_files(driver, "base", {"/f": "base", "/d/g": "g", "/keep": "k"})
        base_view = layer_content(driver, "base")
        driver.create("child", "base")
        root = driver.get("child")
        try:
            write_files(root, {"/f": "child", "/d/g": None, "/new": "n"})
            os.chmod(os.path.join(root, "keep"), 0o600)
        finally:
            driver.put("child")
        assert layer_content(driver, "base") == base_view  # the parent never changes
        child = layer_content(driver, "child")
        assert child["/f"][1] == b"child"
        assert "/d/g" not in child and "/d" in child  # hidden in the child only
        assert child["/new"][1] == b"n"
        assert child["/keep"][3] == 0o600
        driver.create("sibling", "base")
        assert layer_content(driver, "sibling") == base_view

    def test_chain_of_10_layers(self, driver):
        parent = None
        for i in range(10):
            driver.create(f"layer{i}", parent)
            write_layer_files(driver, f"layer{i}", {f"/file-{i}": str(i), "/top": str(i)})
            parent = f"layer{i}"
        for i in range(10):
            view = layer_content(driver, f"layer{i}")
            assert sorted(p for p in view if p.startswith("/file-")) == \
                sorted(f"/file-{j}" for j in range(i + 1))
            assert view["/top"][1] == str(i).encode()

    def test_parent_removal_order(self, driver, driver_home):
        driver.create("a", None)
        write_layer_files(driver, "a", {"/a": "a"})
        driver.create("b", "a")
        write_layer_files(driver, "b", {"/b": "b"})
        driver.create("c", "b")
        driver.create("c2", "b")
        driver.get("c")
        driver.remove("c")  # a child first, its parent stays intact
        assert not driver.exists("c")
        assert sorted(layer_content(driver, "b")) == ["/a", "/b"]
        assert sorted(layer_content(driver, "c2")) == ["/a", "/b"]
        for id in ("c2", "b", "a"):
            driver.remove(id)
            assert not driver.exists(id)
        assert mounts_under(driver_home) == []

    def test_cleanup_unmounts_everything(self, driver, driver_home):
        driver.create("base", None)
        driver.create("child", "base")
        driver.create_rw("ctr", "child")
        for id in ("base", "child", "ctr"):
            driver.get(id)
        driver.get("ctr")
        driver.cleanup()
        assert mounts_under(driver_home) == []
        for id in ("base", "child", "ctr"):
            assert driver.exists(id)

    def test_status_and_metadata(self, driver):
        status = driver.status()
        assert isinstance(status, list)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in status)
        driver.create("base", None)
        meta = driver.metadata("base")
        assert isinstance(meta, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
        assert isinstance(driver.supports_parallel_apply(), bool)
