"""pyrt-network's ``[network]`` table of the pyrt config file, declared to the core.

The ``pyrt.config`` entry point ``network`` names :data:`SECTION`: the core hands each
key on in the environment variable named here (the environment's own value winning)::

    [network]
    backend = "bridge"                 # PYRT_NETWORK_BACKEND: bridge (this plugin), cni
    default_pool = "172.17.0.0/12/16"  # PYRT_NETWORK_POOL: BASE/SIZE for new networks

Nothing to import here: the core loads this on every command whose file has the table.
"""

ENV_BACKEND = "PYRT_NETWORK_BACKEND"
ENV_POOL = "PYRT_NETWORK_POOL"

#: [network] key -> environment variable
SECTION = {"backend": ENV_BACKEND, "default_pool": ENV_POOL}

#: this plugin's backend name
BACKEND = "bridge"
