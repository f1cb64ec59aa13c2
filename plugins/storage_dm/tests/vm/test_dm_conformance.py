"""The storage conformance suite against the devicemapper driver, on a real
thin pool (loop files) in the VM tier."""
from __future__ import annotations

import os

import pytest

from pyrt_core.testing.storage_conformance import DriverConformance

from pyrt_core.testing.storage_conformance import driver, driver_home  # noqa: F401  (fixtures)

from dm_fixtures import SMALL, dm_devices, dm_loaded, wait_loops_detached  # noqa: F401  (fixture)

pytestmark = pytest.mark.vm


class TestDeviceMapperConformance(DriverConformance):
    driver_name = "devicemapper"
    driver_options = dict(SMALL)

    @pytest.fixture(autouse=True)
    def _pool_down_afterwards(self, dm_loaded):
        self._made = []
        before = set(dm_devices())
        yield
        for drv in self._made:
            drv.shutdown()
            wait_loops_detached(drv.home)
        assert sorted(set(dm_devices()) - before) == []

    def make_driver(self, home):
        drv = super().make_driver(home)
        self._made.append(drv)
        return drv
