"""What ``pyrt-runtime create`` imports from the namespaces and cgroups plugins stays
lean (no typing, re, enum, socket...), and the pieces that replaced the heavy
modules (Record for NamedTuple, fd passing over the C ``_socket``) behave."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pyrt_namespaces import channel
from pyrt_core.records import TupleRecord as Record

# Every create imports these (spawn.create, the cgroups hooks; ebpf on cgroup v2 hosts).
CREATE_PATH = ("pyrt_namespaces.plugin", "pyrt_namespaces.spawn", "pyrt_cgroups.plugin",
               "pyrt_cgroups.manager", "pyrt_cgroups.detect", "pyrt_cgroups.v1",
               "pyrt_cgroups.v2", "pyrt_cgroups.ebpf")
# ~5-15 ms each on a slow VM; attrs is left to pyrt_core.runtime.config's own test
HEAVY = ("typing", "re", "enum", "inspect", "socket", "selectors", "json", "dataclasses",
         "collections", "shlex", "subprocess", "threading", "platform", "hashlib", "ast",
         "tokenize", "encodings.ascii")


def test_create_path_imports_no_heavy_module():
    code = f"import sys, {', '.join(CREATE_PATH)}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                         capture_output=True, text=True, check=True, cwd="/")
    loaded = set(out.stdout.split())
    assert set(CREATE_PATH) <= loaded
    heavy = sorted(m for m in HEAVY if m in loaded)
    assert not heavy, f"imported {heavy}; who imported them:\n{out.stderr}"


def test_seccomp_module_leaves_hashlib_for_the_cache():
    # `pyrt-runtime features` imports it to ask whether libseccomp loads
    code = "import sys, pyrt_namespaces.seccomp; print('hashlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd="/")
    assert out.stdout.strip() == "False"


# -- Record ---------------------------------------------------------------------------------

class Point(Record):
    x: int
    y: int = 0
    label: str | None = None

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


def test_record_fields_defaults_and_replace():
    p = Point(1, label="a")
    assert Point._fields == ("x", "y", "label")
    assert (p.x, p.y, p.label, p.norm1) == (1, 0, "a", 1)
    assert tuple(p) == (1, 0, "a")
    x, y, label = p
    assert (x, y, label) == (1, 0, "a")
    q = p._replace(y=-5)
    assert (q.x, q.y, q.label) == (1, -5, "a") and p.y == 0
    assert p._asdict() == {"x": 1, "y": 0, "label": "a"}
    assert repr(q) == "Point(x=1, y=-5, label='a')"
    with pytest.raises(ValueError):
        p._replace(z=1)


def test_record_equality_hash_and_immutability():
    assert Point(1, 2) == Point(x=1, y=2) and Point(1, 2) != Point(2, 1)
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert Point(1, 2) != (1, 2, None)
    p = Point(1)
    with pytest.raises(AttributeError):
        p.x = 2
    with pytest.raises(AttributeError):
        del p.y


def test_record_refuses_bad_arguments():
    with pytest.raises(TypeError, match="missing field 'x'"):
        Point()
    with pytest.raises(TypeError):
        Point(1, 2, "a", "extra")
    with pytest.raises(TypeError, match="given twice"):
        Point(1, x=2)
    with pytest.raises(TypeError, match="not a field"):
        Point(1, z=2)
    with pytest.raises(TypeError, match="follows one with a default"):
        class Bad(Record):  # noqa: F841
            a: int = 0
            b: int


# -- file descriptors over the control channel -------------------------------------------------

def test_fds_travel_over_the_channel():
    parent, child = channel.socketpair()
    r, w = os.pipe()
    try:
        assert not os.get_inheritable(parent) and not os.get_inheritable(child)
        channel.send_fds(child, b"console", [r, w])
        msg, fds = channel.recv_fds(parent)
        assert msg == b"console" and len(fds) == 2
        try:
            assert all(not os.get_inheritable(fd) for fd in fds)
            os.write(fds[1], b"x")  # the copy of w
            assert os.read(r, 1) == b"x"
        finally:
            for fd in fds:
                os.close(fd)
        channel.send_fds(child, b"detach", [r])
        msg, fds = channel.recvmsg_fds(parent, 64, 2)
        assert msg == b"detach" and len(fds) == 1
        os.close(fds[0])
        channel.send(child, b"start")  # no fds: an ordinary message
        assert channel.recvmsg_fds(parent, 64, 2) == (b"start", [])
        os.fstat(parent)  # still open: the helpers never close the caller's socket
        os.fstat(child)
    finally:
        for fd in (parent, child, r, w):
            os.close(fd)


def test_seccomp_cache_names_use_sha256():
    import hashlib

    from pyrt_core.digest import sha256_hex

    for data in (b"", b"abc", bytes(range(256)) * 40):
        assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
