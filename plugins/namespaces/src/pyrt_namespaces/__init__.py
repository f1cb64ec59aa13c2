"""pyrt plugin: Linux namespace isolation.

Creates a container's init process in new namespaces (mount, pid, network, ipc,
uts, user, cgroup, time), joins the namespaces of a running container (exec), and
unshares the calling process.  The pluggy hooks live in :mod:`.plugin`; the work is
done by :mod:`.spawn` and the small modules it uses.
"""

__version__ = "0.1.0"
