"""pyrt's devicemapper storage driver: a thin pool with one thin snapshot per layer."""
