"""What ``pyrt-runtime create`` imports from the namespaces plugin (and, when it is
installed beside it, the cgroups plugin: the create path calls both) stays lean (no
typing, re, enum, socket...), and the pieces that replaced the heavy modules (fd
passing over the C ``_socket``) behave; pyrt_core.records' TupleRecord is tested in
tests/unit/test_records.py, pyrt_core.digest in tests/unit/test_digest.py."""
from __future__ import annotations

import os
import subprocess
import sys

from pyrt_core.testing import machine
from pyrt_namespaces import channel

# Every create imports these (namespaces' create and what its children use, the cgroups
# hooks; ebpf on cgroup v2 hosts); exec imports join.
CREATE_PATH = ("pyrt_namespaces.plugin", "pyrt_namespaces.create", "pyrt_namespaces.join",
               "pyrt_namespaces.plans", "pyrt_namespaces.container_init",
               "pyrt_namespaces.parent")
if machine.has("distribution", "pyrt-cgroups"):  # not in the namespaces-alone environment
    CREATE_PATH += ("pyrt_cgroups.plugin", "pyrt_cgroups.manager", "pyrt_cgroups.base",
                    "pyrt_cgroups.limits", "pyrt_cgroups.detect", "pyrt_cgroups.v1",
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
