"""pyrt plugin: Linux namespace isolation.

Creates a container's init process in new namespaces (mount, pid, network, ipc,
uts, user, cgroup, time), joins the namespaces of a running container (exec), and
unshares the calling process.  The pluggy hooks live in :mod:`.plugin`; the work is
done by :mod:`.create`, :mod:`.join` and :mod:`.unshare`, with the plans made before
forking (:mod:`.plans`), the container's processes' steps (:mod:`.container_init`), the
parent's side of them (:mod:`.parent`), and the small modules they use.
"""

__version__ = "0.1.0"
