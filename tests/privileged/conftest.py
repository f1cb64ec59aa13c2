"""Opt the privileged tier into the storage-driver conformance suite, and share
the fixture of the lifecycle tests.

``pytest_plugins`` is only honoured in a top-level conftest, so the plugin
is imported (with assertion rewriting) when this conftest is configured.
"""
import pytest

PLUGIN = "pyrt_core.testing.storage_conformance"


def pytest_configure(config):
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)


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
    from lifecycle_helpers import conmon_pids, wait_for

    pyrt_cli = demo_cli
    yield pyrt_cli
    # only the running ones: pyrt_cli's clean-up checks for leaks before it removes the
    # stopped ones (whose removal could hide what their exit left behind)
    pyrt_cli.remove_running()
    wait_for(lambda: conmon_pids(pyrt_cli) == [], timeout=10, what="conmon to exit")
