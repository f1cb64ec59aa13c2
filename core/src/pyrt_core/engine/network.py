"""The engine's side of networking (docs/networking.md): resolve a container's networking
at ``create``, give it its network namespace and the plugin's setup before a start,
tear both down when the run ends, and clean what a killed pyrt left.

Only containers in mode ``networks`` (a plugin's networks) reach a plugin; ``none``
and ``host`` cost nothing, and the default (no ``--network``) costs one cheap hook
call (``pyrt_network_backend``: the lean caller loads only the plugins that implement
it).  Reading a record never needs :mod:`pyrt_core.netmodel`: the config keeps its
JSON form, the state the plugin's record (a plain mapping).

Order of a start (each step leaves what recovery can clean after a SIGKILL): the
record says ``starting`` -> the namespace file ``<runroot>/netns/<id>`` exists
(``net:netns``) -> ``pyrt_network_setup`` did its work (``net:setup``) -> its record
is saved in the container's state.  A run's end (:func:`release`, from
``cleanup_locked``): ``pyrt_network_teardown`` (with the record, or None when it was
never saved: the plugin works from its own state) -> ``cleanup:net-teardown`` -> the
namespace is removed.  The namespace file is the core's mark that something may be
held: recovery tears down every one whose container is not running.
"""
from __future__ import annotations

import os

from .. import netns
from ..errors import NotFoundError, PyrtError, UsageError
from .common import fault

INSTALL_HINT = "install pyrt-network (docs/networking.md)"


def networking_dict(config) -> dict:
    """The config's networking as JSON, for records an earlier pyrt wrote (``network``
    alone: none or host) and API users who set only ``network`` too."""
    if config.networking:
        return config.networking
    mode = config.network or "none"
    if mode in ("none", "host"):
        return {"mode": mode}
    if mode.startswith("container:"):
        return {"mode": "container", "container": mode[len("container:"):]}
    return {"mode": "networks", "attachments": [{"network": mode}]}


def mode_of(config) -> str:
    return networking_dict(config).get("mode", "none")


def backend(engine) -> str | None:
    """The installed network backend's name, or None (no network plugin)."""
    return engine.pm.hook.pyrt_network_backend()


def resolve(engine, config) -> None:
    """Finish the flags' resolution where it needs the store and the plugins, before the
    image is looked up and anything exists: the default network, ``container:NAME``, a
    plugin for the networks named.  Changes ``config`` in place."""
    d = networking_dict(config)
    mode = d.get("mode", "none")
    if mode == "container":
        try:
            target = engine.containers.get(d.get("container") or "")
        except NotFoundError:
            raise NotFoundError(f"no such container: {d.get('container')} "
                                "(--network container:NAME)") from None
        d = dict(d, container=target.id)
        config.network, config.networking = f"container:{target.id}", d
        return
    if mode != "networks":
        config.networking = d
        return
    default = config.network in ("default", "")
    name = backend(engine)
    if default and name is None:  # (no netmodel: `pyrt run IMAGE` without a plugin)
        if d.get("ports") or config.publish_all:
            raise UsageError(f"publishing ports needs a network plugin: {INSTALL_HINT}")
        if any(a.get("mac") for a in d.get("attachments") or ()):
            raise UsageError(f"--mac-address needs a network plugin: {INSTALL_HINT}")
        config.network = "none"
        config.networking = {"mode": "none", **{k: d[k] for k in (
            "dns", "dns_search", "dns_options", "extra_hosts") if d.get(k)}}
        return
    from .. import netmodel

    net = netmodel.ContainerNetworking.from_dict(d)
    if name is None:
        raise UsageError(f"network {net.networks[0]!r} needs a network plugin: {INSTALL_HINT}")
    if default:
        first = net.attachments[0] if net.attachments else None
        net.attachments = [netmodel.NetworkAttachment(network=netmodel.DEFAULT_NETWORK,
                                                      mac=first.mac if first else None)]
        config.network = netmodel.DEFAULT_NETWORK
    config.networking = net.to_dict()


def validate(engine, config, image) -> None:
    """Once the image is known: ``-P`` (its ``EXPOSE`` ports and ``--expose``'s on random
    host ports), then the plugin's own checks (``pyrt_network_validate``: unknown
    network, address taken, host port in use), before anything exists."""
    d = config.networking or {}
    if d.get("mode") != "networks":
        return
    from .. import netmodel

    net = netmodel.ContainerNetworking.from_dict(d)
    if config.publish_all:
        have = {(p.container_port, p.protocol) for p in net.ports}
        for spec in list(image.config.exposed_ports) + list(config.expose):
            for port, proto in netmodel.parse_expose(spec):
                if (port, proto) not in have:
                    have.add((port, proto))
                    net.ports.append(netmodel.PortMapping(port, proto))
        config.networking = net.to_dict()
    engine.pm.hook.pyrt_network_validate(networking=net, root=engine.settings.root,
                                         runroot=engine.settings.runroot)


def netns_path(engine, cid: str) -> str:
    return netns.path_for(engine.settings.runroot, cid)


def prepare(engine, c) -> str | None:
    """Before a start: the path of the network namespace the container joins (None: a
    new one the runtime makes, mode none; or the host's, mode host).  Mode
    ``networks``: a fresh namespace set up by the plugin, its record saved in the
    container's state; a failure tears down what exists and raises one line."""
    d = networking_dict(c.config)
    mode = d.get("mode", "none")
    if mode == "container":
        return _joined(engine, d.get("container") or "")
    if mode != "networks":
        return None
    from ..netmodel import ContainerNetworking

    path = netns_path(engine, c.id)
    record = None
    try:
        netns.create(path)
        fault("net:netns")
        net = ContainerNetworking.from_dict(d)
        net.hostname = c.config.hostname or c.id[:12]
        net.name = c.name
        record = engine.pm.hook.pyrt_network_setup(
            container_id=c.id, netns=path, networking=net, root=engine.settings.root,
            runroot=engine.settings.runroot)
        if record is None:
            raise UsageError(f"network {net.networks[0]!r} needs a network plugin: {INSTALL_HINT}")
        fault("net:setup")
        c.state.network = dict(record)
        engine.containers.save(c, durable=False)
    except BaseException as e:
        errors: list[str] = []
        release(engine, c, errors, record=record)
        if isinstance(e, PyrtError) and "\n" not in str(e):
            raise
        if isinstance(e, Exception):
            raise PyrtError(f"setting up the network of container {c.short_id}: "
                            f"{_one_line(e)}") from None
        raise
    return path


def _joined(engine, ref: str) -> str:
    """``container:NAME``: the namespace of that running container (its namespace file,
    else its init's)."""
    try:
        t = engine.containers.get(ref)
    except NotFoundError:
        raise NotFoundError(f"no such container: {ref[:12]} (--network container:)") from None
    if not engine.is_running(t) or not t.state.pid:
        raise UsageError(f"cannot join the network of container {t.name or t.short_id}: "
                         "it is not running")
    path = netns_path(engine, t.id)
    if netns.is_netns(path):
        return path
    return f"/proc/{t.state.pid}/ns/net"


#: the files ``container:NAME`` takes from the container it joins (docker's)
SHARED_FILES = ("hosts", "resolv.conf")


def share_files(engine, c, bundle: str) -> None:
    """``--network container:NAME``: the container sees NAME's /etc/hosts and
    /etc/resolv.conf (its addresses, ``--add-host`` entries, its network's resolver or
    ``--dns``), as docker gives it; copied from NAME's bundle at each start (the files
    pyrt wrote there, root's only, opened without following a link).  A file NAME's
    bundle lacks keeps the one written for this container."""
    from ..fsutil import atomic_write

    target = networking_dict(c.config).get("container") or ""
    src = engine.containers.bundle_dir(target)
    for name in SHARED_FILES:
        try:
            fd = os.open(os.path.join(src, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as f:
            data = f.read(1 << 20)
        atomic_write(os.path.join(bundle, name), data, durable=False)


def release(engine, c, errors: list[str], record: dict | None = None) -> bool:
    """A run's end: the plugin's teardown, then the namespace's removal; False when the
    container held nothing (no namespace file, no record: no plugin is loaded)."""
    path = netns_path(engine, c.id)
    record = record or c.state.network or None
    if not os.path.lexists(path) and not record:
        return False
    try:
        engine.pm.hook.pyrt_network_teardown(
            container_id=c.id, netns=path if netns.is_netns(path) else None, record=record,
            root=engine.settings.root, runroot=engine.settings.runroot)
    except Exception as e:  # noqa: BLE001 - reported; recovery asks the plugin again
        errors.append(f"network: {_one_line(e)}")
    fault("cleanup:net-teardown")
    try:
        netns.remove(path)
    except OSError as e:
        errors.append(f"network namespace: {e}")
    c.state.network = {}
    return True


def recover(engine, full: bool, actions: list[str]) -> None:
    """Recovery's network pass, after the records' pass (which ended the runs of
    containers whose monitor died, releasing their networks): a namespace file whose
    container is created or exited is torn down and removed (its lock free); one with no
    record is removed.  Then, if anything was found or in full mode,
    ``pyrt_network_recover`` with the ids whose namespaces remain."""
    store = engine.containers
    found = False
    for cid in netns.listed(engine.settings.runroot):
        c = store.load_record(cid) if len(cid) == 64 else None
        if c is None:
            if len(cid) != 64 or not os.path.isdir(store.path(cid)):
                netns.remove(netns.path_for(engine.settings.runroot, cid))
                actions.append(f"removed the network namespace of a removed container {cid[:12]}")
                found = True
            continue
        if c.state.status not in ("created", "exited"):
            continue  # running, or a transitional state the records' pass owns
        try:
            lk = store.container_lock(cid, blocking=False)
        except NotFoundError:
            continue
        if lk is None:
            continue
        with lk:
            c = store.load_record(cid)
            if c is None or c.state.status not in ("created", "exited"):
                continue
            errors: list[str] = []
            if release(engine, c, errors):
                store.save(c, durable=False)
                actions.append(f"released the network of container {c.short_id}"
                               + (f" ({'; '.join(errors)})" if errors else ""))
                found = True
    if found or full:
        live = netns.listed(engine.settings.runroot)
        try:
            lines = engine.pm.hook.pyrt_network_recover(live=live, root=engine.settings.root,
                                                        runroot=engine.settings.runroot)
        except Exception as e:  # noqa: BLE001 - recovery must go on
            lines = [f"network recovery failed: {_one_line(e)}"]
        actions.extend(lines or [])


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


# -- network connect / disconnect -------------------------------------------------------

def _attached_running(engine, c, what: str) -> str:
    """The namespace path of a running container of mode ``networks`` (the one ``connect``
    and ``disconnect`` act on), else one line saying why not."""
    mode = mode_of(c.config)
    if mode != "networks":
        raise UsageError(f"container {c.name or c.short_id} is on network mode {mode}: "
                         f"it cannot be {what} a network")
    path = netns_path(engine, c.id)
    if not engine.is_running(c) or not netns.is_netns(path):
        raise UsageError(f"container {c.name or c.short_id} is not running ({what} a network "
                         "needs a running container with its own network namespace)")
    return path


def connect(engine, ref: str, network: str, aliases=(), ipv4: str | None = None,
            ipv6: str | None = None) -> dict:
    """``pyrt network connect``: attach a running container to one more network through
    ``pyrt_network_connect``, under the container's lock; the new record is kept in its
    state (inspect) and the attachment in its config, so a later start joins it again
    (docker keeps it too).  Returns the record."""
    from .. import netmodel

    c = engine.containers.get(ref)
    with engine.lock(c.id):
        c = engine.reload(c.id)
        path = _attached_running(engine, c, "connected to")
        net = netmodel.ContainerNetworking.from_dict(networking_dict(c.config))
        net.hostname = c.config.hostname or c.id[:12]
        net.name = c.name
        att = netmodel.NetworkAttachment(network=network, aliases=tuple(aliases), ipv4=ipv4,
                                         ipv6=ipv6)
        net.attachments.append(att)
        before = set((c.state.network or {}).get("networks") or {})
        record = engine.pm.hook.pyrt_network_connect(
            container_id=c.id, netns=path, networking=net, network=network,
            record=c.state.network or None, root=engine.settings.root,
            runroot=engine.settings.runroot)
        if record is None:
            raise UsageError(f"network {network!r} needs a network plugin: {INSTALL_HINT}")
        added = [n for n in record.get("networks") or {} if n not in before]
        if added:  # the name the backend resolved (an id prefix given)
            net.attachments[-1] = netmodel.NetworkAttachment(
                network=added[0], aliases=att.aliases, ipv4=att.ipv4, ipv6=att.ipv6)
        c.state.network = dict(record)
        c.config.networking = net.to_dict()
        engine.containers.save(c)
    return record


def disconnect(engine, ref: str, network: str, force: bool = False) -> dict:
    """``pyrt network disconnect``: detach a running container from one network through
    ``pyrt_network_disconnect`` (the plugin moves the container's published ports to its
    remaining network, or removes them with its last), under the container's lock; the
    attachment leaves its config too.  Returns the record."""
    c = engine.containers.get(ref)
    with engine.lock(c.id):
        c = engine.reload(c.id)
        path = _attached_running(engine, c, "disconnected from")
        record = engine.pm.hook.pyrt_network_disconnect(
            container_id=c.id, netns=path, network=network, record=c.state.network or None,
            root=engine.settings.root, runroot=engine.settings.runroot)
        if record is None:
            raise UsageError(f"network {network!r} needs a network plugin: {INSTALL_HINT}")
        left = set(record.get("networks") or {})
        gone = set((c.state.network or {}).get("networks") or {}) - left
        d = networking_dict(c.config)
        d = dict(d, attachments=[a for a in d.get("attachments") or ()
                                 if a.get("network") not in gone and a.get("network") != network])
        if gone & {c.config.network}:
            c.config.network = d["attachments"][0]["network"] if d["attachments"] else "none"
        if not d["attachments"]:
            d = dict(d, mode="none", attachments=[], ports=[])
        c.config.networking = d
        c.state.network = dict(record)
        engine.containers.save(c)
    return record
