"""The VM itself: the kernel features the VM tier is there for."""
from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.vm


def test_guest_kernel_has_pure_cgroup2_and_device_mapper():
    with open("/proc/self/mountinfo") as f:
        fstypes = {line.split(" - ")[1].split()[0] for line in f if " - " in line}
    assert "cgroup" not in fstypes and "cgroup2" in fstypes
    with open("/sys/fs/cgroup/cgroup.controllers") as f:
        have = set(f.read().split())
    assert {"cpu", "io", "memory", "pids"} <= have, have
    assert os.path.exists("/dev/mapper/control") or os.path.exists("/sys/module/dm_mod")
