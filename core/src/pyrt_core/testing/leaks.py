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
directories, named network namespaces, processes of another pid namespace, and in
the host's network namespace its network interfaces, its nftables tables (each with
its numbers of chains, rules and set elements, so a rule left in a table that stays
counts too) and its listening sockets not on loopback (the same sources as the
project's ``leakcheck`` tool).  Loopback listeners are left out: tests that run no
kernel work (and hold no test lock) start servers on 127.0.0.1 at any time, while
what pyrt itself could leave listening (a network's resolver) binds a bridge's
gateway address.

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
    out.update(network_state())
    mine = os.readlink("/proc/self/ns/pid")
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink(f"/proc/{pid}/ns/pid") != mine:
                    out.add(f"process {pid} in another pid namespace")
            except OSError:
                pass
    return out


def network_state() -> set[str]:
    """The host network namespace's part of :func:`kernel_state`: interfaces, nftables
    tables, listening sockets off loopback."""
    out = set()
    try:
        out.update("link " + n for n in os.listdir("/sys/class/net"))
    except OSError:
        pass
    out.update(nft_tables())
    out.update(listeners())
    return out


_NFT = []


def nft_tables() -> list[str]:
    """``nft <family> <name>: N chains, N rules, N elements`` per table, read through
    libnftables (ctypes, JSON; no ``nft`` process per check); empty without it."""
    if not _NFT:
        try:
            import ctypes

            lib = ctypes.CDLL("libnftables.so.1")
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
            lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
            ctx = lib.nft_ctx_new(0)
            lib.nft_ctx_output_set_flags(ctx, 1 << 4)  # JSON
            lib.nft_ctx_buffer_output(ctx)
            lib.nft_ctx_buffer_error(ctx)
            _NFT.append((lib, ctx))
        except (OSError, AttributeError):
            _NFT.append(None)
    if _NFT[0] is None:
        return []
    import json

    lib, ctx = _NFT[0]
    if lib.nft_run_cmd_from_buffer(ctx, b"list ruleset") != 0:
        return []
    text = lib.nft_ctx_get_output_buffer(ctx) or b""
    counts: dict[tuple[str, str], list[int]] = {}
    for item in json.loads(text or b"{}").get("nftables", []):
        kind, obj = next(iter(item.items()))
        if kind == "table":
            counts.setdefault((obj["family"], obj["name"]), [0, 0, 0])
            continue
        if kind not in ("chain", "rule", "set", "map"):
            continue
        c = counts.setdefault((obj["family"], obj["table"]), [0, 0, 0])
        if kind == "chain":
            c[0] += 1
        elif kind == "rule":
            c[1] += 1
        else:
            c[2] += len(obj.get("elem") or ())
    return [f"nft {f} {t}: {a} chains, {b} rules, {e} elements" for (f, t), (a, b, e) in counts.items()]


def listeners() -> list[str]:
    """``listen tcp 10.1.2.3:53``: the listening TCP and bound UDP sockets of this
    network namespace, loopback addresses left out (module docstring)."""
    import socket

    out = []
    for proto, path, state in (("tcp", "/proc/net/tcp", "0A"), ("tcp6", "/proc/net/tcp6", "0A"),
                               ("udp", "/proc/net/udp", "07"), ("udp6", "/proc/net/udp6", "07")):
        try:
            with open(path) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 4 or parts[3] != state:
                continue
            hexaddr, _, hexport = parts[1].rpartition(":")
            raw = bytes.fromhex(hexaddr)
            # /proc/net prints the address as 32-bit words in host (little endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            if len(raw) == 4:
                addr = socket.inet_ntop(socket.AF_INET, raw)
                loop = addr.startswith("127.")
            else:
                addr = socket.inet_ntop(socket.AF_INET6, raw)
                loop = addr == "::1" or addr.startswith("::ffff:127.")
            if not loop:
                out.append(f"listen {proto} {addr}:{int(hexport, 16)}")
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
