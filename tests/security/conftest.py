"""The security tier: each module attacks pyrt as a hostile image, a hostile
container process or another local user would, with default flags.

Every test here must fail on an engine that has the hole it names (see
docs/security.md for the classes and how runc, crun, docker and podman
compare).  The fixtures of the privileged tier are shared
(pyrt_core.testing.fixtures); tests/privileged is on the path for its helpers.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "privileged"))


@pytest.fixture
def subreaper():
    """While the test runs, this process is a child subreaper that reaps the containers'
    dead processes, as conmon or containerd's shim do for a runtime they call."""
    from test_runtime_cli import _Reaper, _set_subreaper

    _set_subreaper(True)
    reaper = _Reaper()
    reaper.start()
    try:
        yield
    finally:
        reaper.stop.set()
        reaper.join()
        _set_subreaper(False)
