"""A device-mapper and host stand-in for the devicemapper driver's unit tests.

:class:`FakeDM` keeps device-mapper devices in memory and plays the
``thin-pool`` target's part: thin device ids, ``create_thin`` /
``create_snap`` / ``delete`` / ``set_transaction_id`` messages with the
kernel's errors (EEXIST, ENODATA, EBUSY, EINVAL), and status lines.  It
outlives a :class:`DeviceSet`, like the kernel outlives a killed pyrt, so
crash recovery can be tested: ``crash_on`` makes a message raise
:class:`Crash` after (or before) the pool applied it.

:class:`FakeOps` replaces loop devices, mkfs, mounts and discards; a
filesystem UUID is kept per thin device id (a snapshot inherits its
origin's).
"""
from __future__ import annotations

import errno
import os
import uuid

from pyrt_storage_dm import dm as dmmod


class Crash(BaseException):
    """Stands for SIGKILL in the middle of an operation."""


def _err(code: int, what: str) -> dmmod.DMError:
    return dmmod.DMError(code, f"device-mapper {what}: {os.strerror(code)}")


class FakeDM:
    def __init__(self, data_blocks: int = 16384, meta_blocks: int = 8192):
        self.devices: dict[str, dict] = {}
        self.next_minor = 0
        self.data_blocks = data_blocks
        self.meta_blocks = meta_blocks
        self.pools: dict[str, dict] = {}  # name -> pool state (survives deactivation: keyed
        # by the metadata device, like metadata on disk)
        self.metadata: dict[str, dict] = {}  # metadata dev -> {"tid", "thins": {id: {...}}}
        self.crash_on: tuple[str, str] | None = None  # (message prefix, "before"|"after")
        self.messages: list[tuple[str, str]] = []
        self.busy: set[str] = set()  # names whose removal fails with EBUSY
        self.data_used_extra = 0

    # -- helpers -----------------------------------------------------------------------
    def _dev(self, name: str) -> dict:
        if name not in self.devices:
            raise _err(errno.ENXIO, f"info {name}")
        return self.devices[name]

    def _pool_of(self, name: str) -> dict:
        d = self._dev(name)
        ttype = d["table"][0][2]
        if ttype != "thin-pool":
            raise _err(errno.EINVAL, f"message to {name}")
        meta_dev = dmmod.parse_pool_table(d["table"][0][3])["metadata_dev"]
        return self.metadata[meta_dev]

    def pool_by_name(self, name: str) -> dict:
        return self._pool_of(name)

    def _thin_users(self, pool_dev: str, device_id: int) -> list[str]:
        out = []
        for n, d in self.devices.items():
            if d["table"] and d["table"][0][2] == "thin":
                p, did = d["table"][0][3].split()
                if p == pool_dev and int(did) == device_id:
                    out.append(n)
        return out

    def thin_ids(self, pool: str) -> list[int]:
        return sorted(self._pool_of(pool)["thins"])

    # -- the DeviceMapper interface ------------------------------------------------------
    def version(self):
        return (4, 47, 0)

    def info(self, name):
        d = self.devices.get(name)
        if d is None:
            return None
        flags = 0
        if d["table"]:
            flags |= dmmod.DM_ACTIVE_PRESENT_FLAG
        if d["suspended"]:
            flags |= dmmod.DM_SUSPEND_FLAG
        if d["deferred"]:
            flags |= dmmod.DM_DEFERRED_REMOVE
        return {"name": name, "dev": os.makedev(253, d["minor"]), "flags": flags,
                "open_count": d["open_count"], "target_count": len(d["table"] or [])}

    def table(self, name, status=False):
        d = self._dev(name)
        if not status:
            return list(d["table"] or [])
        out = []
        for start, length, ttype, params in d["table"] or []:
            if ttype == "thin-pool":
                p = self._pool_of(name)
                used = sum(len(t["blocks"]) for t in p["thins"].values()) + self.data_used_extra
                used = min(used, self.data_blocks)
                line = (f"{p['tid']} {10 + len(p['thins'])}/{self.meta_blocks} "
                        f"{used}/{self.data_blocks} - rw discard_passdown error_if_no_space -")
            else:
                line = "0 -"
            out.append((start, length, ttype, line))
        return out

    def list(self):
        return [(n, os.makedev(253, d["minor"])) for n, d in sorted(self.devices.items())]

    def create(self, name, targets, readonly=False):
        if name in self.devices:
            raise _err(errno.EBUSY, f"create {name}")
        ttype = targets[0][2]
        if ttype == "thin-pool":
            t = dmmod.parse_pool_table(targets[0][3])
            self.metadata.setdefault(t["metadata_dev"], {"tid": 0, "thins": {}})
        elif ttype == "thin":
            pool_dev, did = targets[0][3].split()
            pool = self._pool_by_dev(pool_dev)
            if int(did) not in pool["thins"]:
                raise _err(errno.ENODATA, f"load {name}")
        self.devices[name] = {"minor": self.next_minor, "table": list(targets),
                              "suspended": False, "deferred": False, "open_count": 0}
        self.next_minor += 1
        return os.makedev(253, self.devices[name]["minor"])

    def _pool_by_dev(self, pool_dev: str) -> dict:
        for n, d in self.devices.items():
            if "%d:%d" % (253, d["minor"]) == pool_dev:
                return self._pool_of(n)
        raise _err(errno.ENXIO, f"pool {pool_dev}")

    def reload(self, name, targets):
        self._dev(name)["table"] = list(targets)

    def suspend(self, name):
        self._dev(name)["suspended"] = True

    def resume(self, name):
        self._dev(name)["suspended"] = False

    def remove(self, name, *, deferred=False, retries=0, interval=0.1):
        if name not in self.devices:
            return True
        d = self.devices[name]
        if name in self.busy or d["open_count"]:
            if deferred:
                d["deferred"] = True
                return False
            raise _err(errno.EBUSY, f"remove {name}")
        if d["table"] and d["table"][0][2] == "thin-pool":
            if any(x["table"] and x["table"][0][2] == "thin" and
                   x["table"][0][3].split()[0] == "253:%d" % d["minor"]
                   for x in self.devices.values()):
                raise _err(errno.EBUSY, f"remove {name}")
        del self.devices[name]
        return True

    def cancel_deferred_remove(self, name):
        self._dev(name)["deferred"] = False

    def make_node(self, name, dev):
        return dmmod.node_path(name)

    node_for = make_node

    def release(self, name):
        """The last user of a busy device goes away (a deferred removal completes)."""
        self.busy.discard(name)
        d = self.devices.get(name)
        if d and d["deferred"]:
            del self.devices[name]

    def message(self, name, msg):
        self.messages.append((name, msg))
        pool = self._pool_of(name)
        crash = self.crash_on and msg.startswith(self.crash_on[0])
        if crash and self.crash_on[1] == "before":
            self.crash_on = None
            raise Crash(msg)
        words = msg.split()
        if words[0] == "create_thin":
            did = int(words[1])
            if did in pool["thins"]:
                raise _err(errno.EEXIST, f"message {msg}")
            pool["thins"][did] = {"blocks": set(), "uuid": None}
        elif words[0] == "create_snap":
            did, origin = int(words[1]), int(words[2])
            if did in pool["thins"]:
                raise _err(errno.EEXIST, f"message {msg}")
            if origin not in pool["thins"]:
                raise _err(errno.ENODATA, f"message {msg}")
            o = pool["thins"][origin]
            pool["thins"][did] = {"blocks": set(o["blocks"]), "uuid": o["uuid"]}
        elif words[0] == "delete":
            did = int(words[1])
            if did not in pool["thins"]:
                raise _err(errno.ENODATA, f"message {msg}")
            pool_dev = "253:%d" % self.devices[name]["minor"]
            if self._thin_users(pool_dev, did):
                raise _err(errno.EBUSY, f"message {msg}")
            del pool["thins"][did]
        elif words[0] == "set_transaction_id":
            if int(words[1]) != pool["tid"]:
                raise _err(errno.EINVAL, f"message {msg}")
            pool["tid"] = int(words[2])
        else:
            raise _err(errno.EINVAL, f"message {msg}")
        if crash:
            self.crash_on = None
            raise Crash(msg)

    def close(self):
        pass


class FakeOps:
    """Loop devices, mkfs, mounts and discards, pretended."""

    def __init__(self, dm: FakeDM):
        self.dm = dm
        self.loops: dict[str, str] = {}  # file -> /dev/loopN
        self.mounts: set[str] = set()
        self.discarded: list[str] = []
        self.grown: list[tuple[str, str]] = []
        self.mkfs_calls: list[tuple[str, str, str]] = []

    def _thin_id(self, devpath: str) -> tuple[dict, int]:
        name = os.path.basename(devpath)
        pool_dev, did = self.dm.devices[name]["table"][0][3].split()
        return self.dm._pool_by_dev(pool_dev), int(did)

    def attach(self, path, readonly=False, retries=20, autoclear=True):
        # a file attached again gets its former number back (the kernel reuses a freed
        # loop number first): the fake keeps a pool's data by that device name
        dev = self.loops.get(path) or f"/dev/loop{len(self.loops)}"
        self.loops[path] = dev
        return dev, -1

    def find_backing(self, path):
        return self.loops.get(path)

    def backing_devices(self, path):
        return [self.loops[path]] if path in self.loops else []

    def dev_numbers(self, devpath):
        if devpath.startswith("/dev/loop"):
            return f"7:{devpath[len('/dev/loop'):]}"
        if not os.path.exists(devpath):
            raise OSError(errno.ENOENT, "no such device", devpath)
        return "8:0"

    def device_size(self, devpath):
        for f, d in self.loops.items():
            if d == devpath:
                return os.path.getsize(f)
        return 1 << 30

    def discard(self, devpath, length=None):
        pool, did = self._thin_id(devpath)
        self.discarded.append(devpath)

    def mkfs(self, fs, device, extra=""):
        pool, did = self._thin_id(device)
        pool["thins"][did]["uuid"] = str(uuid.uuid4())
        self.mkfs_calls.append((fs, device, extra))

    def read_uuid(self, fs, device):
        pool, did = self._thin_id(device)
        return pool["thins"][did]["uuid"]

    def mount(self, device, target, fs, options=""):
        self._thin_id(device)
        self.mounts.add(target)

    def umount(self, target, lazy=False):
        if target not in self.mounts:
            raise OSError(errno.EINVAL, "not mounted", target)
        self.mounts.discard(target)

    def is_mountpoint(self, path):
        return path in self.mounts

    def grow(self, fs, device, mountpoint):
        self.grown.append((device, mountpoint))

    def missing_tools(self, fs):
        return []

    def close(self, fd):
        pass

    def zero_head(self, path, length=4096):
        with open(path, "r+b") as f:
            f.write(b"\0" * length)

    def create_sparse(self, path, size):
        with open(path, "ab") as f:
            f.truncate(max(size, os.path.getsize(path)))
