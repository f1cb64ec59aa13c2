"""The leak guard, a pytest plugin: a privileged test that leaves kernel resources
behind fails, with the list of what it left.

A test is compared twice:

* **before its fixtures' safety nets run.**  Fixtures that drive ``pyrt`` remove
  the containers a test leaves and then, as a safety net, unmount whatever is still
  mounted under their store.  Comparing only after that would let the safety net
  hide a leak of the engine's own (a root filesystem ``pyrt`` forgot to unmount is
  unmounted by the fixture, and the test passes).  So such a fixture calls
  :meth:`LeakGuard.check` once the engine's own removal of the running containers
  is done and before its safety net: what is new since the test function started
  (all fixtures set up) is a leak of the test or of the engine it drives.
* **after every fixture is torn down**: what is new since before the first fixture
  was set up (a fixture's own leak; what a safety net could not remove).

What counts: mounts, attached loop devices, device-mapper devices, cgroup
directories, named network namespaces and processes of another pid namespace (the
same sources as the project's ``leakcheck`` tool).

Opt in with ``pytest_plugins = ["pyrt_core.testing.leaks"]`` in a top-level
``conftest.py``; the guard applies to tests marked ``privileged`` when run as
root.  A fixture with a safety net requests ``no_leaks`` and calls
``no_leaks.check(what)`` before it cleans up by force (:class:`LeakGuard`).
"""
from __future__ import annotations

import os

import pytest

IS_ROOT = os.geteuid() == 0
CGROUP_ROOT = "/sys/fs/cgroup"
#: cgroup directories the machine's own process supervisor makes, one per command it
#: runs, while tests run (this project's sandboxes run every shell command of a
#: developer or CI in ``<controller>/process_api/<id>``): never pyrt's, whose cgroups are
#: named after containers, so their coming and going is no test's leak
FOREIGN_CGROUP_PARENTS = ("process_api",)


def kernel_state() -> set[str]:
    """What a test may leak, as strings ("mount /x", "loop /dev/loop3", ...)."""
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            out.add("mount " + line.split()[4])
    # from sysfs, not losetup/dmsetup: no process to start (seconds each in the VM tier)
    try:
        blocks = os.listdir("/sys/block")
    except OSError:
        blocks = []
    for b in blocks:
        if b.startswith("loop") and os.path.exists(f"/sys/block/{b}/loop/backing_file"):
            out.add(f"loop /dev/{b}")
        elif b.startswith("dm-"):
            try:
                with open(f"/sys/block/{b}/dm/name") as f:
                    out.add("dm " + f.read().strip())
            except OSError:
                pass
    for dirpath, dirnames, _ in os.walk(CGROUP_ROOT):
        if dirpath[len(CGROUP_ROOT):].count("/") > 4:
            dirnames[:] = []
            continue
        if os.path.basename(dirpath) in FOREIGN_CGROUP_PARENTS:
            dirnames[:] = []
            continue
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if p.count("/") > 4:
                out.add("cgroup " + p)
    try:
        out.update("netns " + n for n in os.listdir("/run/netns"))
    except OSError:
        pass
    mine = os.readlink("/proc/self/ns/pid")
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink(f"/proc/{pid}/ns/pid") != mine:
                    out.add(f"process {pid} in another pid namespace")
            except OSError:
                pass
    return out


class LeakGuard:
    """The snapshots of one test.  ``active`` is false for a test the guard does not
    watch (not privileged, or not root): :meth:`check` then does nothing."""

    def __init__(self, active: bool):
        self.active = active
        self.before: set[str] = kernel_state() if active else set()
        self.at_call: set[str] | None = None  # taken when the test function starts
        self.found: list[str] = []  # what check() reported, with where it was found
        self._reported: set[str] = set()

    def call_starts(self) -> None:
        if self.active:
            self.at_call = kernel_state()

    def check(self, what: str, ignore=None) -> list[str]:
        """Compare now with the start of the test function; record and return what is
        new.  ``what`` says at which point (for the failure message); ``ignore(item)``
        true leaves out what the fixture still holds on purpose and releases later
        (e.g. a device-mapper pool it deactivates next)."""
        if not self.active or self.at_call is None:
            return []
        new = [i for i in kernel_state() - self.at_call if not (ignore and ignore(i))]
        self.report(what, new)
        return sorted(new)

    def report(self, what: str, items) -> None:
        """Record a leak a fixture found itself (e.g. what its safety net had to remove);
        what an earlier check reported already is not repeated."""
        items = sorted(set(items) - self._reported)
        if self.active and items:
            self._reported.update(items)
            self.found.append(f"{what}:\n    " + "\n    ".join(items[:30]))


_KEY = pytest.StashKey[LeakGuard]()


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail a privileged test that leaves kernel resources behind (module docstring)."""
    guard = LeakGuard(IS_ROOT and request.node.get_closest_marker("privileged") is not None)
    request.node.stash[_KEY] = guard
    yield guard
    if not guard.active:
        return
    leaked = sorted(kernel_state() - guard.before)
    parts = list(guard.found)
    if leaked:
        parts.append("after every fixture was torn down:\n    " + "\n    ".join(leaked[:30]))
    if parts:
        pytest.fail("test leaked kernel resources\n  " + "\n  ".join(parts), pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    guard = item.stash.get(_KEY, None)
    if guard is not None:
        guard.call_starts()
