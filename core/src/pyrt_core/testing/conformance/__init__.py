"""The parts of pyrt's storage-driver conformance suite.

The entry point stays :mod:`pyrt_core.testing.storage_conformance` (the pytest
plugin, its fixtures and :class:`~pyrt_core.testing.storage_conformance.DriverConformance`);
here are the tar and tree helpers (:mod:`.tars`, :mod:`.trees`) and the tests,
grouped by area into mixins (:mod:`.layers`, :mod:`.diffs`).
"""
