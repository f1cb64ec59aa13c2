"""pyrt's btrfs storage driver (entry point ``btrfs`` in ``pyrt.storage.drivers``)."""
