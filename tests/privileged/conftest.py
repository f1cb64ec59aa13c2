"""Opt the privileged tier into the storage-driver conformance suite.

``pytest_plugins`` is only honoured in a top-level conftest, so the plugin
is imported (with assertion rewriting) when this conftest is configured.
"""

PLUGIN = "pyrt_core.testing.storage_conformance"


def pytest_configure(config):
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)
