"""Shared fixtures and tiers.

* Unit tests (``tests/unit``) need no root.
* Privileged tests (``tests/privileged``, marker ``privileged``) need root and
  the host kernel; they skip with the reason when not root.
* Security tests (``tests/security``, markers ``security`` and ``privileged``):
  one attack per known escape class, as a hostile image or container process
  would make it (docs/security.md); their own tox environment.
* Every privileged test runs under the ``no_leaks`` guard
  (``pyrt_core.testing.leaks``): mounts, loop devices, device-mapper devices,
  cgroups, network namespaces and foreign-pid-namespace processes that appear
  during the test and remain after it fail the test; fixtures that clean up
  after ``pyrt`` (``pyrt_cli``) let it compare before their safety nets run.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

pytest_plugins = ["pyrt_core.testing.leaks", "pyrt_core.testing.machine"]

IS_ROOT = os.geteuid() == 0
BUSYBOX = shutil.which("busybox") or "/bin/busybox"

# Applets linked in the test rootfs.  Keep in sync with what tests call.
APPLETS = [
    "sh", "ls", "cat", "echo", "true", "false", "sleep", "id", "hostname", "mount",
    "ps", "touch", "mkdir", "rm", "pwd", "env", "stat", "test", "grep", "ip",
    "readlink", "head", "wc", "kill", "dd", "chmod", "ln", "mknod", "uname", "sed",
    "find", "printf", "umask", "cut", "tr", "sort", "cp", "mv", "df", "ifconfig",
]


def pytest_collection_modifyitems(config, items):
    from pyrt_core.testing import machine

    for item in items:
        if "/privileged/" in str(item.fspath):
            item.add_marker(pytest.mark.privileged)
        if "/security/" in str(item.fspath):
            item.add_marker(pytest.mark.security)
            item.add_marker(pytest.mark.privileged)
        if item.get_closest_marker("privileged") and not IS_ROOT:
            item.add_marker(pytest.mark.skip(reason=machine.reason("root", detail="privileged tier")))


def make_busybox_rootfs(path) -> str:
    """Write a minimal root filesystem with the static busybox and a few applets."""
    path = str(path)
    for d in ("bin", "etc", "tmp", "root", "home/user", "proc", "sys", "dev", "usr/bin"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    os.chmod(os.path.join(path, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(path, "bin/busybox"))
    for a in APPLETS:
        os.symlink("busybox", os.path.join(path, "bin", a))
    with open(os.path.join(path, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n"
                "user:x:1000:1000:user:/home/user:/bin/sh\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(path, "etc/group"), "w") as f:
        f.write("root:x:0:\nuser:x:1000:\nextra:x:2000:user\nnogroup:x:65534:\n")
    return path


@pytest.fixture
def busybox_rootfs(tmp_path):
    """A directory holding a busybox root filesystem (no image, no layers)."""
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    return make_busybox_rootfs(tmp_path / "rootfs")


# -- the CLI and a real image -------------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from clitools import PyrtCLI  # noqa: E402  (tests/ is on sys.path)


@pytest.fixture(scope="session")
def demo_layout(tmp_path_factory):
    """An OCI image layout of busybox built offline by scripts/build-demo-image (umoci)."""
    if not shutil.which("umoci"):
        pytest.skip("umoci is not installed (apt-get install umoci)")
    dest = tmp_path_factory.mktemp("demo") / "layout"
    subprocess.run([os.path.join(REPO, "scripts", "build-demo-image"), str(dest), "latest"],
                   check=True, stdout=subprocess.DEVNULL)
    return str(dest)


@pytest.fixture
def pyrt_cli(tmp_path, no_leaks):
    """A `pyrt` runner with its own store (automatic driver choice); at the end its
    containers are removed and the leak guard looks before the safety net runs
    (:meth:`clitools.PyrtCLI.cleanup`)."""
    cli = PyrtCLI(tmp_path / "root", tmp_path / "run")
    yield cli
    cli.cleanup(no_leaks)
