"""pyrt-cgroups' table of the pyrt config file, declared to the core.

The ``pyrt.config`` entry point ``cgroups`` names :data:`SECTION`: the core reads the
file's ``[cgroups]`` table and hands each key on in the environment variable named here
(the environment's own value winning), from where this plugin reads it, in the engine
and, across conmon, in pyrt-runtime::

    [cgroups]
    manager = "auto"   # cgroupfs-v1, cgroupfs-v2, none; PYRT_CGROUP_MANAGER wins

Nothing to import here: the core loads this on every command whose config file has
the table.
"""

#: the variable the manager is chosen by (pyrt_cgroups.manager.select)
ENV_MANAGER = "PYRT_CGROUP_MANAGER"

#: [cgroups] key -> environment variable
SECTION = {"manager": ENV_MANAGER}
