"""The VM tier's fixtures (pyrt_core.testing.vm): inside the VM they replace the
host's ``demo_layout``, ``pyrt_cli`` and ``demo_cli`` for the tests of this directory."""
from pyrt_core.testing.vm import *  # noqa: F401,F403
