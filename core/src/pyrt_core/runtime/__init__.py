"""The OCI runtime: executes a bundle (config.json + rootfs).

``config`` turns an OCI runtime-spec document into validated, typed objects
(the only place raw spec JSON is read); ``executor`` drives the isolation and
resource-control hooks to create, start and wait for the container;
``process`` is the handle an isolation plugin returns.
"""
