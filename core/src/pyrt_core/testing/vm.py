"""The VM tier: tests that need a kernel this host does not have.

``scripts/test-vm`` boots Debian's kernel once under qemu (TCG) and runs
``pytest tests/vm plugins/*/tests/vm -m vm`` inside it with ``PYRT_IN_VM=1``:
pure cgroup v2 with the controllers enabled, device-mapper (dm-thin) and loop
devices.  See docs/vm-tier.md.

* Every test under a ``tests/vm`` directory is marked ``vm`` (:func:`mark_items`,
  called by :mod:`pyrt_core.testing.fixtures`).  Outside the VM (the host's
  ``scripts/test`` collects them) each one is skipped with the reason
  :data:`SKIP_REASON` (the machine fact ``vm-tier``).
* Inside the VM the tests are also marked ``privileged``, so the ``no_leaks``
  guard checks them for leaked mounts, loop devices, device-mapper devices,
  cgroups and processes.
* Fixtures (inside the VM), for a ``tests/vm`` directory's ``conftest.py`` to take
  with ``from pyrt_core.testing.vm import *`` (they replace the host's of the same
  names there): :func:`vm_scratch` a tmpfs for the session (the guest's /tmp is an
  overlay, which cannot be an overlay upper directory), :func:`demo_layout` the
  busybox OCI layout built on the host before boot, :func:`pyrt_cli` a ``pyrt``
  with a fresh store on that tmpfs, and :func:`demo_cli` + :func:`demo_image`: one
  store for the session with the demo layout loaded once, and the image's id.
"""
from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

from pyrt_core.testing import machine

__all__ = ["vm_scratch", "demo_layout", "pyrt_cli", "_demo_store", "demo_cli", "demo_image"]

IN_VM = os.environ.get("PYRT_IN_VM") == "1"
SKIP_REASON = machine.reason("vm-tier")


def mark_items(items) -> None:
    """Mark the items of ``tests/vm`` directories (the central one, plugins' ones)."""
    for item in items:
        if f"{os.sep}tests{os.sep}vm{os.sep}" not in str(item.fspath):
            continue
        item.add_marker(pytest.mark.vm)
        if IN_VM:
            item.add_marker(pytest.mark.privileged)  # the no_leaks guard
        else:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def _mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


@pytest.fixture(scope="session")
def vm_scratch():
    """A tmpfs only this test session uses (unmounted at its end).

    The guest's /tmp is an overlay over the host's /tmp: pyrt's overlay
    driver cannot put its upper directories on it.  A tmpfs can.
    """
    if not IN_VM:
        pytest.skip(SKIP_REASON)
    path = tempfile.mkdtemp(prefix="pyrt-vm-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g,mode=0755", "pyrt-vm", path], check=True)
    try:
        yield path
    finally:
        if _mounted(path):
            subprocess.run(["umount", "-l", path], check=False)
        os.rmdir(path)


@pytest.fixture(scope="session")
def demo_layout(tmp_path_factory, pytestconfig):
    """The busybox OCI image layout: built on the host before boot (scripts/test-vm
    passes it as ``PYRT_VM_DEMO_LAYOUT``); built here with umoci otherwise."""
    given = os.environ.get("PYRT_VM_DEMO_LAYOUT")
    if given and os.path.isfile(os.path.join(given, "index.json")):
        return given
    dest = tmp_path_factory.mktemp("demo") / "layout"
    subprocess.run([os.path.join(str(pytestconfig.rootpath), "scripts", "build-demo-image"), str(dest), "latest"],
                   check=True, stdout=subprocess.DEVNULL)
    return str(dest)


@pytest.fixture
def pyrt_cli(vm_scratch, no_leaks):
    """A ``pyrt`` runner with its own store (automatic driver choice), as in
    pyrt_core.testing.fixtures, but on the session tmpfs instead of the guest's /tmp."""
    from pyrt_core.testing.cli import PyrtCLI

    base = tempfile.mkdtemp(prefix="cli-", dir=vm_scratch)
    cli = PyrtCLI(os.path.join(base, "root"), os.path.join(base, "run"))
    yield cli
    cli.cleanup(no_leaks, timeout=300)
    os.rmdir(base)


@pytest.fixture(scope="session")
def _demo_store(vm_scratch, demo_layout):
    """(PyrtCLI, image id): one store for the session with the demo image loaded
    once (every ``pyrt`` command costs seconds under emulation)."""
    from pyrt_core.testing.cli import PyrtCLI

    base = tempfile.mkdtemp(prefix="demo-store-", dir=vm_scratch)
    cli = PyrtCLI(os.path.join(base, "root"), os.path.join(base, "run"))
    try:
        r = cli("load", "-q", "-i", demo_layout, check=True, timeout=900)
        yield cli, r.stdout.split()[0]
    finally:
        cli.cleanup()
        os.rmdir(base)


@pytest.fixture
def demo_cli(_demo_store, no_leaks):
    """A ``pyrt`` runner on the session's shared store that holds :func:`demo_image`
    (automatic driver choice: overlay); containers a test leaves are removed after it,
    the running ones first, then the leak guard looks, then the stopped ones."""
    cli = _demo_store[0]
    yield cli
    cli.remove_running(timeout=300)
    no_leaks.check("left when the test ended, its running containers removed by `pyrt rm -f`")
    for cid in cli("ps", "-aq", "--no-trunc", timeout=300).stdout.split():
        cli("rm", "-f", cid, timeout=300)


@pytest.fixture
def demo_image(_demo_store):
    """The image id of the busybox demo layout in :func:`demo_cli`'s store."""
    return _demo_store[1]
