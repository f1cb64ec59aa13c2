"""Volumes: named storage that outlives containers (docs/volumes.md).

Volume *drivers* are chosen by name, like storage drivers, but through hooks
(``pyrt_volume_*`` in :mod:`pyrt_core.hookspecs`, docker's volume plugin protocol:
create, remove, mount, unmount, path, get, list, capabilities); the ``local`` driver
is the core's own (:mod:`.local`, registered through :mod:`pyrt_core.builtin`).

===========  ===========================================================================
``names``    docker's rule for a volume's name (no attrs, no re: ``pyrt volume``'s path)
``store``    the core's record of every volume (driver, labels, options, who mounts it)
             under ``<root>/volumes/<name>/volume.json``, and the lock writers take
``local``    the ``local`` driver: ``<root>/volumes/<name>/_data``, its ``type``/
             ``device``/``o`` options mounted on first use and unmounted after the last
``sysmount`` mount(2)/umount2(2) through libc (the runtime's are a layer above the store)
===========  ===========================================================================

The engine's side (create a container's volumes, mount them for a run, copy the
image's content up, release them) is :mod:`pyrt_core.engine.volumes`; the commands
are :mod:`pyrt_core.cli.volumes`.
"""
