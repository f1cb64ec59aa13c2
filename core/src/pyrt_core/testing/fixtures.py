"""The shared fixtures and tiers of pyrt's test suites, a pytest plugin.

pyrt's own suites load it from the repository's pyproject.toml (``-p
pyrt_core.testing.fixtures``): the central ``tests/`` and every plugin's
``plugins/<name>/tests/``.  A third-party plugin's suite may load it too.

* Unit tests (``tests/unit``, ``plugins/*/tests/unit``) need no root.
* Privileged tests (a ``privileged`` directory, marker ``privileged``) need root and
  the host kernel; they skip with the machine fact ``root`` when not root.
* Security tests (``tests/security``, markers ``security`` and ``privileged``):
  one attack per known escape class, as a hostile image or container process
  would make it (docs/security.md); their own tox environment.
* VM tests (a ``tests/vm`` directory, marker ``vm``): run by scripts/test-vm
  (:mod:`pyrt_core.testing.vm`).
* Every privileged test runs under the ``no_leaks`` guard
  (``pyrt_core.testing.leaks``): mounts, loop devices, device-mapper devices,
  cgroups, network namespaces and foreign-pid-namespace processes that appear
  during the test and remain after it fail the test; fixtures that clean up
  after ``pyrt`` (``pyrt_cli``) let it compare before their safety nets run.
* Skips name a machine fact (``pyrt_core.testing.machine``; enforced with CI=true).
* Fixtures: :func:`busybox_rootfs`, :func:`demo_layout`, :func:`pyrt_cli`,
  :func:`demo_cli`, :func:`detached_cli`; the storage and network conformance suites'.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

pytest_plugins = ["pyrt_core.testing.leaks", "pyrt_core.testing.machine",
                  "pyrt_core.testing.storage_conformance",
                  "pyrt_core.testing.network_conformance"]

IS_ROOT = os.geteuid() == 0
BUSYBOX = shutil.which("busybox") or "/bin/busybox"

# Applets linked in the test rootfs.  Keep in sync with what tests call.
APPLETS = [
    "sh", "ls", "cat", "echo", "true", "false", "sleep", "id", "hostname", "mount",
    "ps", "touch", "mkdir", "rm", "pwd", "env", "stat", "test", "grep", "ip",
    "readlink", "head", "wc", "kill", "dd", "chmod", "ln", "mknod", "uname", "sed",
    "find", "printf", "umask", "cut", "tr", "sort", "cp", "mv", "df", "ifconfig",
]


def pytest_configure(config):
    for line in (
        "privileged: needs root and the host kernel (namespaces, mounts, loop devices)",
        "security: an attack on the engine as a hostile image or container would make it",
        "vm: runs inside the VM tier (real Debian kernel with dm-thin and cgroup v2)",
    ):
        config.addinivalue_line("markers", line)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    from pyrt_core.testing import machine, vm

    vm.mark_items(items)
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

from pyrt_core.testing.cli import PyrtCLI  # noqa: E402


@pytest.fixture(scope="session")
def demo_layout(tmp_path_factory, pytestconfig):
    """An OCI image layout of busybox built offline by scripts/build-demo-image (umoci)
    of the repository the tests run from (pytest's root directory)."""
    if not shutil.which("umoci"):
        pytest.skip("umoci is not installed (apt-get install umoci)")
    dest = tmp_path_factory.mktemp("demo") / "layout"
    subprocess.run([os.path.join(str(pytestconfig.rootpath), "scripts", "build-demo-image"),
                    str(dest), "latest"], check=True, stdout=subprocess.DEVNULL)
    return str(dest)


@pytest.fixture
def pyrt_cli(tmp_path, no_leaks):
    """A `pyrt` runner with its own store (automatic driver choice); at the end its
    containers are removed and the leak guard looks before the safety net runs
    (:meth:`pyrt_core.testing.cli.PyrtCLI.cleanup`)."""
    cli = PyrtCLI(tmp_path / "root", tmp_path / "run")
    yield cli
    cli.cleanup(no_leaks)


@pytest.fixture
def demo_cli(pyrt_cli, demo_layout):
    """A pyrt CLI with the demo image loaded as ``demo/busybox`` (``.image``)."""
    iid = pyrt_cli("load", "-q", "-i", demo_layout, check=True).stdout.split()[0]
    pyrt_cli("tag", iid, "demo/busybox:latest", check=True)
    pyrt_cli.image = "demo/busybox"
    return pyrt_cli


@pytest.fixture
def detached_cli(demo_cli):
    """:func:`demo_cli`; at the end every container is removed and its conmon has exited
    (the lifecycle, recovery and tty tests)."""
    from pyrt_core.testing.lifecycle import conmon_pids, wait_for

    pyrt_cli = demo_cli
    yield pyrt_cli
    # only the running ones: pyrt_cli's clean-up checks for leaks before it removes the
    # stopped ones (whose removal could hide what their exit left behind)
    pyrt_cli.remove_running()
    wait_for(lambda: conmon_pids(pyrt_cli) == [], timeout=10, what="conmon to exit")
