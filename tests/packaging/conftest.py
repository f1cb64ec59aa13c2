import os
import sys

import pytest

from pyrt_core.testing import machine

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=machine.reason("root", detail="privileged tier")))
