"""Containers: records on disk, and the OCI bundle the engine builds for each."""
