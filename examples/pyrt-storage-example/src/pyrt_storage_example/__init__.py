"""An example pyrt storage driver plugin (see driver.py)."""
