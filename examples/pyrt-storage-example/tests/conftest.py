# Opt in to pyrt's storage-driver conformance suite (fixtures and tests).
pytest_plugins = ["pyrt_core.testing.storage_conformance"]
