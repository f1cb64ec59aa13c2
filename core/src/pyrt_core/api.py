"""pyrt's public plugin API: what a plugin may use of pyrt-core.

A plugin imports from here (and from :mod:`pyrt_core.errors`,
:mod:`pyrt_core.hookspecs` and :mod:`pyrt_core.testing`), never from the
core's other modules: those may move between releases, these names do not
(import-linter checks it in CI, see ``.importlinter``).  docs/writing-plugins.md
lists the names by group.

Names are resolved lazily (PEP 562): importing this module imports nothing else, and
``from pyrt_core.api import X`` imports only the module X lives in, so a plugin on the
runtime's hot path (which must not import attrs or pluggy, see docs/architecture.md,
"The hot path") pays for nothing else.  tests/unit/test_api.py checks both, and that
every name resolves.

A resolved name is cached in this module's globals, so a plugin that needs a name
after it can no longer import (the container's init after ``pivot_root``) resolves it
once before, where it still can.
"""
from __future__ import annotations

#: True for type checkers only (mypy treats any ``TYPE_CHECKING`` so); importing typing
#: would cost every plugin's start-up
TYPE_CHECKING = False

#: api name -> "module" (the attribute has the same name there), "module:attribute"
#: (renamed here: the core's name is ambiguous once out of its module) or "module:" (the
#: module itself: a table of constants, or functions named for their module).  Grouped by what a
#: plugin author uses them for; keep the TYPE_CHECKING imports at the end in step.
_HOMES = {
    # -- errors (also importable from pyrt_core.errors) and the hook marker ------------------
    "PyrtError": "pyrt_core.errors",  # base of every error pyrt reports (exit code 125)
    "UsageError": "pyrt_core.errors",  # bad input: a flag, an option, a limit
    "NotFoundError": "pyrt_core.errors",
    "ConflictError": "pyrt_core.errors",
    "ImageError": "pyrt_core.errors",
    "StorageError": "pyrt_core.errors",
    "RuntimeError_": "pyrt_core.errors",  # the runtime's own failures (not Python's)
    "ExecError": "pyrt_core.errors",  # the container's command could not be run (126/127)
    "DriverNotSupported": "pyrt_core.errors",  # a storage driver's host probe said no
    "DriverPrerequisitesMissing": "pyrt_core.errors",
    "hookimpl": "pyrt_core.hookspecs",  # marks a hook implementation

    # -- the types hooks receive and return (hookspecs) ---------------------------------------
    "ImageReference": "pyrt_core.models",  # a parsed image reference (transport, registry...)
    "FetchOptions": "pyrt_core.models",  # pyrt_image_fetch/_push options: platform, quiet...
    "Image": "pyrt_core.models",  # a stored image record
    "Container": "pyrt_core.models",  # a container record (lifecycle hooks)
    # networking (the pyrt_network_* hooks; docs/networking.md)
    "ContainerNetworking": "pyrt_core.netmodel",  # a container's resolved networking
    "NetworkAttachment": "pyrt_core.netmodel",  # the container on one network
    "PortMapping": "pyrt_core.netmodel",  # one published port
    "NetworkCreate": "pyrt_core.netmodel",  # `pyrt network create`, resolved
    "DEFAULT_NETWORK": "pyrt_core.netmodel",  # the default network's name ("bridge")
    # a container's network namespace, as the core makes it (the network plugins' tests)
    "netns_path": "pyrt_core.netns:path_for",  # (runroot, id) -> <runroot>/netns/<id>
    "create_netns": "pyrt_core.netns:create",  # a fresh persistent namespace at a path
    "remove_netns": "pyrt_core.netns:remove",  # unmount and unlink it (idempotent)
    "is_netns": "pyrt_core.netns",  # whether a path is a network namespace's bind mount
    "RuntimeConfig": "pyrt_core.runtime.config",  # pyrt_isolation_create's resolved config
    "ProcessConfig": "pyrt_core.runtime.config",  # pyrt_isolation_join's process
    "Resources": "pyrt_core.runtime.config",  # pyrt_resources_* limits
    "ContainerProcess": "pyrt_core.runtime.process",  # what pyrt_isolation_create returns

    # -- runtime configuration constants (pyrt_core.runtime.config) ---------------------------
    "NULL_STDIO": "pyrt_core.runtime.config",  # a stdio entry: the container's /dev/null
    "SECCOMP_CACHE_ANNOTATION": "pyrt_core.runtime.config",  # where filters may be cached
    "DEFAULT_DEVICES": "pyrt_core.runtime.config",  # the devices every container gets
    "NAMESPACE_TYPES": "pyrt_core.runtime.config",  # runtime-spec namespace type names
    # mount(2) flags, as Mount.flags carries them
    "MS_RDONLY": "pyrt_core.runtime.config",
    "MS_NOSUID": "pyrt_core.runtime.config",
    "MS_NODEV": "pyrt_core.runtime.config",
    "MS_NOEXEC": "pyrt_core.runtime.config",
    "MS_SYNCHRONOUS": "pyrt_core.runtime.config",
    "MS_REMOUNT": "pyrt_core.runtime.config",
    "MS_MANDLOCK": "pyrt_core.runtime.config",
    "MS_DIRSYNC": "pyrt_core.runtime.config",
    "MS_NOSYMFOLLOW": "pyrt_core.runtime.config",
    "MS_NOATIME": "pyrt_core.runtime.config",
    "MS_NODIRATIME": "pyrt_core.runtime.config",
    "MS_BIND": "pyrt_core.runtime.config",
    "MS_MOVE": "pyrt_core.runtime.config",
    "MS_REC": "pyrt_core.runtime.config",
    "MS_SILENT": "pyrt_core.runtime.config",
    "MS_UNBINDABLE": "pyrt_core.runtime.config",
    "MS_PRIVATE": "pyrt_core.runtime.config",
    "MS_SLAVE": "pyrt_core.runtime.config",
    "MS_SHARED": "pyrt_core.runtime.config",
    "MS_RELATIME": "pyrt_core.runtime.config",
    "MS_STRICTATIME": "pyrt_core.runtime.config",
    "MS_LAZYTIME": "pyrt_core.runtime.config",

    # -- the runtime's helpers for isolation and resource plugins -----------------------------
    "resources_from_spec": "pyrt_core.runtime.spec",  # OCI linux.resources dict -> Resources
    "wait_status_to_exit_code": "pyrt_core.runtime.process",  # waitpid status -> docker code
    "run_hooks": "pyrt_core.runtime.hooks",  # run OCI hooks (prestart, createContainer...)
    # seccomp: what the runtime's SeccompConfig may hold, and its action values
    "SeccompConfig": "pyrt_core.runtime.seccomp_config",
    "SECCOMP_ACTIONS": "pyrt_core.runtime.seccomp_config:ACTIONS",
    "SECCOMP_OPERATORS": "pyrt_core.runtime.seccomp_config:OPERATORS",
    "SECCOMP_ARCHITECTURES": "pyrt_core.runtime.seccomp_config:ARCHITECTURES",
    "SECCOMP_FLAGS": "pyrt_core.runtime.seccomp_config:FLAGS",
    "seccomp_action_value": "pyrt_core.runtime.seccomp_config:action_value",
    # capabilities, in runtime-spec names (CAP_CHOWN)
    "CAP_NAMES": "pyrt_core.capabilities",
    "DEFAULT_CAPS": "pyrt_core.capabilities",
    "normalize_capability": "pyrt_core.capabilities:normalize",

    # -- plain record classes (no attrs: cheap on the runtime's hot path) ---------------------
    "Record": "pyrt_core.records",  # mutable, ==, repr
    "FrozenRecord": "pyrt_core.records",  # immutable, hashable
    "TupleRecord": "pyrt_core.records",  # a named tuple without collections/typing
    # the models' base (pyrt_core.models' types), declared as attrs classes are, and
    # attrs' functions for them (attrs.evolve & co. do not take them)
    "Model": "pyrt_core.records",
    "field": "pyrt_core.records",
    "fields": "pyrt_core.records",
    "asdict": "pyrt_core.records",
    "evolve": "pyrt_core.records",

    # -- docker's --format for a plugin's commands (Go templates, json, table) --------------
    "check_format": "pyrt_core.cli.formatting:check",  # a bad template: one line, before work
    "print_rows": "pyrt_core.cli.formatting",  # ls --format: json lines, a template, a table
    "print_objects": "pyrt_core.cli.formatting",  # inspect: a JSON array, or -f per object

    # -- small lean helpers (importable where json, hashlib or re would cost) -----------------
    "json_loads": "pyrt_core.jsonlean:loads",  # JSON without the json module
    "json_dumps": "pyrt_core.jsonlean:dumps",
    "sha256_hex": "pyrt_core.digest",  # SHA-256 without OpenSSL (hashlib)
    "trusted_read": "pyrt_core.trusted:read",  # read a cache file only root or we could write
    "trusted_write": "pyrt_core.trusted:write",
    "parse_size": "pyrt_core.units",  # "1.5g" -> bytes, docker's way
    "human_size": "pyrt_core.units",  # bytes -> "1.5GB"

    # -- files ----------------------------------------------------------------------------
    "atomic_write": "pyrt_core.fsutil",  # write a file by rename (durable, never half-written)
    "read_json": "pyrt_core.fsutil",  # a JSON file, or a default when it is missing
    "FileLock": "pyrt_core.fsutil",  # an flock(2) lock file
    "remove_tree": "pyrt_core.fsutil",  # rm -rf that never follows a symlink out
    "copy_tree": "pyrt_core.storage.copy",  # cp -a (hard links, xattrs, devices kept)

    # -- storage drivers (the pyrt.storage.drivers entry points) ------------------------------
    "StorageDriver": "pyrt_core.storage.driver",  # the base class every driver implements
    "NaiveDiffDriver": "pyrt_core.storage.driver",  # a driver whose diffs compare directories
    "Change": "pyrt_core.archive.changes",  # one entry of a driver's changes()
    # diff(driver, id, parent) and changes(...) by comparing a layer with its parent
    "naivediff": "pyrt_core.storage.naivediff:",
    "apply_layer": "pyrt_core.archive.unpack",  # unpack a layer tar (whiteouts, safely)
    "pack_overlay_diff": "pyrt_core.archive.pack",  # an overlay upper dir -> a layer tar

    # -- images (fetch and push plugins) --------------------------------------------------
    "ImageStore": "pyrt_core.images.store",  # the local image and blob store
    "mediatypes": "pyrt_core.images.mediatypes:",  # the OCI/Docker media type constants
    "parse_config": "pyrt_core.images.configcheck",  # an image config's bytes, checked
    "check_digest": "pyrt_core.images.digests",  # refuse a malformed "sha256:..." digest
    "chain_ids": "pyrt_core.images.digests",  # layer diff ids -> chain ids
    "short_digest": "pyrt_core.images.digests:short",  # "sha256:abcd..." -> 12 hex digits
    "host_platform": "pyrt_core.images.platforms",  # "linux/amd64" for this host
    "platform_of": "pyrt_core.images.platforms",  # a manifest list entry's platform
    "platform_matches": "pyrt_core.images.platforms",
    "manifest_for": "pyrt_core.images.save",  # a stored image's manifest, for a push
    "open_layer_stream": "pyrt_core.archive.decompress",  # a layer blob, decompressed

    # -- the command line (plugins that add commands: pyrt.commands entry points) -------------
    "engine_from_args": "pyrt_core.cli.common",  # the Engine the global flags describe
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attr = home.partition(":")
    __import__(module)
    import sys

    value = sys.modules[module] if home.endswith(":") else getattr(sys.modules[module],
                                                                      attr or name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and editors: the same names, eagerly
    from .netmodel import (DEFAULT_NETWORK, ContainerNetworking, NetworkAttachment,  # noqa: F401
                           NetworkCreate, PortMapping)
    from .archive.decompress import open_layer_stream  # noqa: F401
    from .archive.pack import pack_overlay_diff  # noqa: F401
    from .archive.unpack import apply_layer  # noqa: F401
    from .capabilities import CAP_NAMES, DEFAULT_CAPS  # noqa: F401
    from .capabilities import normalize as normalize_capability  # noqa: F401
    from .cli.common import engine_from_args  # noqa: F401
    from .digest import sha256_hex  # noqa: F401
    from .errors import (ConflictError, DriverNotSupported, DriverPrerequisitesMissing,  # noqa: F401
                         ExecError, ImageError, NotFoundError, PyrtError, RuntimeError_,
                         StorageError, UsageError)
    from .fsutil import FileLock, atomic_write, read_json, remove_tree  # noqa: F401
    from .hookspecs import hookimpl  # noqa: F401
    from .images import mediatypes  # noqa: F401
    from .images.configcheck import parse_config  # noqa: F401
    from .images.digests import chain_ids, check_digest  # noqa: F401
    from .images.digests import short as short_digest  # noqa: F401
    from .images.platforms import host_platform, platform_matches, platform_of  # noqa: F401
    from .images.save import manifest_for  # noqa: F401
    from .images.store import ImageStore  # noqa: F401
    from .cli.formatting import check as check_format  # noqa: F401
    from .cli.formatting import print_objects, print_rows  # noqa: F401
    from .jsonlean import dumps as json_dumps  # noqa: F401
    from .jsonlean import loads as json_loads  # noqa: F401
    from .models import Container, FetchOptions, Image, ImageReference  # noqa: F401
    from .records import (FrozenRecord, Model, Record, TupleRecord, asdict,  # noqa: F401
                          evolve, field, fields)
    from .runtime.config import (DEFAULT_DEVICES, MS_BIND, MS_DIRSYNC, MS_LAZYTIME,  # noqa: F401
                                 MS_MANDLOCK, MS_MOVE, MS_NOATIME, MS_NODEV, MS_NODIRATIME,
                                 MS_NOEXEC, MS_NOSUID, MS_NOSYMFOLLOW, MS_PRIVATE, MS_RDONLY,
                                 MS_REC, MS_RELATIME, MS_REMOUNT, MS_SHARED, MS_SILENT,
                                 MS_SLAVE, MS_STRICTATIME, MS_SYNCHRONOUS, MS_UNBINDABLE,
                                 NAMESPACE_TYPES, NULL_STDIO, SECCOMP_CACHE_ANNOTATION,
                                 ProcessConfig, Resources, RuntimeConfig)
    from .runtime.hooks import run_hooks  # noqa: F401
    from .runtime.spec import resources_from_spec  # noqa: F401
    from .runtime.process import ContainerProcess, wait_status_to_exit_code  # noqa: F401
    from .runtime.seccomp_config import ACTIONS as SECCOMP_ACTIONS  # noqa: F401
    from .runtime.seccomp_config import ARCHITECTURES as SECCOMP_ARCHITECTURES  # noqa: F401
    from .runtime.seccomp_config import FLAGS as SECCOMP_FLAGS  # noqa: F401
    from .runtime.seccomp_config import OPERATORS as SECCOMP_OPERATORS  # noqa: F401
    from .runtime.seccomp_config import SeccompConfig  # noqa: F401
    from .runtime.seccomp_config import action_value as seccomp_action_value  # noqa: F401
    from .storage.copy import copy_tree  # noqa: F401
    from .archive.changes import Change  # noqa: F401
    from .storage.driver import NaiveDiffDriver, StorageDriver  # noqa: F401
    from .storage import naivediff  # noqa: F401
    from .netns import create as create_netns  # noqa: F401
    from .netns import is_netns  # noqa: F401
    from .netns import path_for as netns_path  # noqa: F401
    from .netns import remove as remove_netns  # noqa: F401
    from .trusted import read as trusted_read  # noqa: F401
    from .trusted import write as trusted_write  # noqa: F401
    from .units import human_size, parse_size  # noqa: F401
