"""The security tier: each module attacks pyrt as a hostile image, a hostile
container process or another local user would, with default flags.

Every test here must fail on an engine that has the hole it names (see
docs/security.md for the classes and how runc, crun, docker and podman
compare).  The fixtures of the privileged tier are shared.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "privileged"))

@pytest.fixture
def demo_cli(pyrt_cli, demo_layout):
    """A pyrt CLI with the demo image loaded as ``demo/busybox`` (``.image``)."""
    iid = pyrt_cli("load", "-q", "-i", demo_layout, check=True).stdout.split()[0]
    pyrt_cli("tag", iid, "demo/busybox:latest", check=True)
    pyrt_cli.image = "demo/busybox"
    return pyrt_cli


@pytest.fixture
def detached_cli(demo_cli):
    """:func:`demo_cli`; at the end every container is removed and its conmon has exited."""
    from lifecycle_helpers import conmon_pids, wait_for

    pyrt_cli = demo_cli
    yield pyrt_cli
    # only the running ones: pyrt_cli's clean-up checks for leaks before it removes the
    # stopped ones (whose removal could hide what their exit left behind)
    pyrt_cli.remove_running()
    wait_for(lambda: conmon_pids(pyrt_cli) == [], timeout=10, what="conmon to exit")


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
