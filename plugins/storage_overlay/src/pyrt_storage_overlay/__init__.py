"""pyrt plugin: the overlay storage driver (see :mod:`pyrt_storage_overlay.driver`)."""
