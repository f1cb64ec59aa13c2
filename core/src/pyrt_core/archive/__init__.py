"""Image layer tars: writing, reading and applying them, and the tree changes they carry.

Below both :mod:`pyrt_core.images` and the storage drivers (``pyrt_core.storage`` and
the storage plugins), which use it; it imports neither.

* :mod:`.layerformat`: the names every module agrees on (block size, whiteouts, xattrs)
* :mod:`.changes`: :class:`~.changes.Change` and :func:`~.changes.compare_trees`
* :mod:`.pack`: layer tars from a directory (a list of changes, or an overlay upper dir)
* :mod:`.tarreader`: the streaming tar parser
* :mod:`.unpack`: :func:`~.unpack.apply_layer`, the hostile-input unpacker
* :mod:`.decompress`: :func:`~.decompress.open_layer_stream` (gzip, zstd, plain)

Nothing is imported here: each command imports only the modules it uses.
"""
