"""Name resolution on pyrt's networks: aardvark-dns, driven the way netavark drives it.

Containers on a user-defined network resolve each other's names (the container's name,
its ``--network-alias`` names, its short id) through a resolver that answers on the
network's gateway address, port 53, and is named in the container's resolv.conf.  The
resolver is aardvark-dns (Debian's ``aardvark-dns``, what podman and netavark use): it
answers a query with the addresses of the names on the networks the *asking* container
belongs to (it knows the asker by its source address), so a container never resolves a
name on a network it does not share, and forwards every other name to the host's
resolvers (those of the host's /etc/resolv.conf, read by aardvark-dns itself; it runs in
the host's network namespace, so a loopback resolver such as systemd-resolved's works),
or to the container's own ``--dns`` servers when it has some.  pyrt writes no DNS
wire-format code.

How aardvark-dns 1.4 is driven (its config.md; checked by experiment on Debian 12):

* a config directory holds one file per network; the first line lists the addresses
  it listens on (the gateways, comma separated), each further line one container:
  ``ID IPV4S IPV6S NAMES [DNS_SERVERS]`` (comma-separated lists, an empty field for
  none).  It parses every file of the directory but ``aardvark.pid``, and one file it
  cannot parse stops the whole server, so files are written elsewhere (the staging
  directory) and renamed in;
* ``aardvark-dns --config DIR -p 53 run`` forks a daemon (one process serves every
  network of the directory), writes its pid to ``DIR/aardvark.pid`` and returns before
  the daemon has bound its sockets; SIGHUP makes it re-read the directory and bind
  afresh.  pyrt waits until every gateway has a socket bound after the start or the
  reload (the socket's inode in /proc/net/udp changes on a reload), so when
  :func:`attach` returns, the names answer;
* aardvark-dns 1.4 forwards through ``AARDVARK_NO_PROXY`` for the whole process or not
  at all.  An ``--internal`` network must have no way out, a DNS query included (docker
  25 stopped forwarding there too), so internal networks are served by a second
  instance, with its own directory, run with ``AARDVARK_NO_PROXY`` set: it answers the
  network's names and NXDOMAIN for every other name.

Layout, under ``<runroot>/networks/`` (gone at a reboot, like the containers' network
namespaces): ``aardvark-dns/`` and ``aardvark-dns-internal/`` (the instances' config
directories: a file ``net_<network name>`` per network that has containers, and
``aardvark.pid``), ``aardvark-dns.staging/`` (files being written) and
``aardvark-dns.lock`` (flock: one change at a time, across processes).  The files are
the state: a network's file exists while it has containers, an instance runs while its
directory has a network file.  :func:`recover` makes that true again after a crash.

Call every function from the host's network namespace: aardvark-dns binds in the
namespace it is started in.
"""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import time

from pyrt_core.api import FileLock, PyrtError, UsageError, atomic_write, trusted_read

#: where distributions install aardvark-dns (podman's helper directory), then $PATH
AARDVARK_CANDIDATES = ("/usr/lib/podman/aardvark-dns", "/usr/libexec/podman/aardvark-dns",
                       "/usr/local/lib/podman/aardvark-dns",
                       "/usr/local/libexec/podman/aardvark-dns")
PORT = 53
PID_FILE = "aardvark.pid"
#: a network's file in an instance's directory: the prefix keeps any network name
#: (``aardvark.pid`` included) clear of aardvark's own file
FILE_PREFIX = "net_"
#: instance name -> extra environment: the plain one forwards, the internal one never
INSTANCES = {"aardvark-dns": {}, "aardvark-dns-internal": {"AARDVARK_NO_PROXY": "1"}}
#: how long a start, a reload or a stop may take
TIMEOUT = 5.0
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


class DNSError(PyrtError):
    """The resolver could not be started, reloaded or stopped."""


# -- paths ------------------------------------------------------------------------------

def _base(runroot: str) -> str:
    return os.path.join(os.path.abspath(runroot), "networks")


def _confdir(runroot: str, instance: str) -> str:
    return os.path.join(_base(runroot), instance)


def _staging(runroot: str) -> str:
    return os.path.join(_base(runroot), "aardvark-dns.staging")


def _lock(runroot: str) -> FileLock:
    return FileLock(os.path.join(_base(runroot), "aardvark-dns.lock"))


def _private_dir(path: str) -> None:
    """Make ``path`` (0700) or check it: ours (root's), a directory, writable by no one
    else; pyrt feeds its files to a root daemon and signals the pid it finds there."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if (not stat.S_ISDIR(st.st_mode) or st.st_uid not in (0, os.geteuid())
            or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
        raise DNSError(f"{path} is not a private directory of pyrt's (owner, mode): "
                       "refusing to use it for name resolution")


def _prepare(runroot: str) -> None:
    base = _base(runroot)
    os.makedirs(os.path.dirname(base), exist_ok=True)
    _private_dir(base)
    _private_dir(_staging(runroot))
    for instance in INSTANCES:
        _private_dir(_confdir(runroot, instance))


def aardvark_binary() -> str:
    """The aardvark-dns executable, or a DNSError saying which package brings it."""
    import shutil

    for path in AARDVARK_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("aardvark-dns")
    if found:
        return found
    raise DNSError("name resolution on networks needs aardvark-dns "
                   "(Debian: apt-get install aardvark-dns)")


# -- the network files ------------------------------------------------------------------

def _check_network_name(name: str) -> str:
    if (not name or len(name) > 200 or name[0] in ".-"
            or not set(name.lower()) <= _NAME_CHARS):
        raise UsageError(f"invalid network name {name!r} for name resolution")
    return name


def _check_id(container_id: str) -> str:
    cid = container_id.lower()
    if not cid or len(cid) > 128 or not set(cid) <= _ID_CHARS:
        raise UsageError(f"invalid container id {container_id!r} for name resolution")
    return cid


def _check_dns_name(name: str) -> str:
    """A name another container may look up: DNS characters only (the file's separators,
    space, comma and newline, can never get in)."""
    low = name.lower().rstrip(".")
    if (not low or len(low) > 253 or not set(low) <= _NAME_CHARS or low[0] in ".-"
            or ".." in low or any(len(label) > 63 for label in low.split("."))):
        raise UsageError(f"invalid name {name!r} for name resolution: letters, digits, "
                         "'-', '_' and '.' only")
    return low


def _split_ips(ips: list[str], what: str) -> tuple[list[str], list[str]]:
    import ipaddress

    v4, v6 = [], []
    for text in ips:
        try:
            ip = ipaddress.ip_address(text.split("/")[0] if what == "address" else text)
        except ValueError:
            raise UsageError(f"invalid {what} {text!r} for name resolution") from None
        (v4 if ip.version == 4 else v6).append(str(ip))
    return v4, v6


def _gateways(network: dict) -> list[str]:
    """The network's gateway addresses (IPv4 first): where its resolver answers."""
    import ipaddress

    found = []
    for cfg in (network.get("IPAM") or {}).get("Config") or ():
        gw = cfg.get("Gateway")
        if not gw and cfg.get("Subnet"):  # docker's default: the subnet's first address
            gw = str(next(ipaddress.ip_network(cfg["Subnet"], strict=False).hosts()))
        if gw:
            found.append(gw)
    v4, v6 = _split_ips(found, "gateway")
    if not v4 and not v6:
        raise DNSError(f"network {network.get('Name')!r} has no gateway address: "
                       "its resolver has nowhere to answer")
    return v4 + v6


class _NetFile:
    """One network's file: the listen line and one entry per container (id -> line)."""

    def __init__(self, listen: str, entries: dict[str, str]):
        self.listen = listen
        self.entries = entries

    def render(self) -> str:
        return "".join([self.listen + "\n"] + [line + "\n" for line in self.entries.values()])

    @property
    def gateways(self) -> list[str]:
        return self.listen.split(" ")[0].split(",")


def _net_path(runroot: str, instance: str, network_name: str) -> str:
    return os.path.join(_confdir(runroot, instance), FILE_PREFIX + network_name)


def _read(path: str) -> _NetFile | None:
    """The file pyrt wrote (read back only when nobody else can have written it)."""
    if not os.path.lexists(path):
        return None
    data = trusted_read(path)
    if data is None:
        raise DNSError(f"{path} is not a file only pyrt can have written: "
                       "remove it, then run `pyrt system recover`")
    lines = [line for line in data.decode().split("\n") if line]
    if not lines:
        return _NetFile("", {})
    return _NetFile(lines[0], {line.split(" ")[0]: line for line in lines[1:]})


def _write(runroot: str, instance: str, network_name: str, nf: _NetFile | None) -> None:
    """Replace (or with ``nf`` None remove) a network's file: written in the staging
    directory, then renamed in, so aardvark-dns never reads half a file."""
    path = _net_path(runroot, instance, network_name)
    if nf is None or not nf.entries:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    staged = os.path.join(_staging(runroot), f"{instance}.{FILE_PREFIX}{network_name}")
    atomic_write(staged, nf.render(), 0o644, durable=False)
    os.rename(staged, path)


def _networks(runroot: str, instance: str) -> list[str]:
    try:
        names = os.listdir(_confdir(runroot, instance))
    except FileNotFoundError:
        return []
    return sorted(n[len(FILE_PREFIX):] for n in names if n.startswith(FILE_PREFIX))


# -- the daemon -------------------------------------------------------------------------

def _proc_alive(pid: int) -> bool:
    """Any thread of ``pid`` still running (not a zombie: a daemon's parent may be an
    init that never reaps it).  Every thread counts: a multi-threaded process's leader
    turns zombie before its other threads have exited and closed its sockets."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        if data[data.rfind(b")") + 2:][:1] not in (b"Z", b"X", b""):
            return True
    return False


def running_pid(runroot: str, instance: str = "aardvark-dns") -> int | None:
    """The pid of the instance's aardvark-dns when it runs, else None.  The pid file is
    trusted only when pyrt's directory holds it, and the pid only when that process is
    an aardvark-dns serving this very directory (a reused pid is somebody else's)."""
    confdir = _confdir(runroot, instance)
    if not os.path.isdir(confdir):  # (trusted_read would remember a missing directory)
        return None
    data = trusted_read(os.path.join(confdir, PID_FILE))
    if not data:
        return None
    try:
        pid = int(data.strip())
    except ValueError:
        return None
    if pid <= 1 or not _proc_alive(pid):
        return None
    try:
        if os.stat(f"/proc/{pid}").st_uid not in (0, os.geteuid()):
            return None
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return None
    if not argv or not argv[0].endswith(b"aardvark-dns"):
        return None
    try:
        if argv[argv.index(b"--config") + 1] != confdir.encode():
            return None
    except (ValueError, IndexError):
        return None
    return pid


def _udp_sockets() -> dict[tuple[str, int], int]:
    """(address, port) -> socket inode of the UDP sockets bound in this network
    namespace, from /proc/net/udp and udp6 (the kernel's own table)."""
    import ipaddress

    found = {}
    for name, width in (("udp", 4), ("udp6", 16)):
        try:
            with open(f"/proc/net/{name}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) < 10:
                continue
            hexaddr, _, hexport = cols[1].partition(":")
            raw = bytes.fromhex(hexaddr)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            addr = ipaddress.ip_address(raw) if len(raw) == width else None
            if addr is not None:
                found[(str(addr), int(hexport, 16))] = int(cols[9])
    return found


def _socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process ``pid`` holds."""
    found = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def _wait_bound(gateways: list[str], before: dict[tuple[str, int], int], pid: int,
                what: str) -> None:
    """Wait until the daemon ``pid`` has a socket bound on port 53 of every gateway, a
    new one where one was bound ``before`` (the reload made it): it then serves the
    files as they are now."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        now = _udp_sockets()
        mine = _socket_inodes(pid)
        missing = [gw for gw in gateways
                   if now.get((gw, PORT)) not in mine
                   or now.get((gw, PORT)) == before.get((gw, PORT))]
        if not missing:
            return
        if not _proc_alive(pid):
            raise DNSError(f"aardvark-dns exited while {what}")
        if time.monotonic() > deadline:
            raise DNSError(f"aardvark-dns did not answer on {', '.join(missing)} port {PORT} "
                           f"within {TIMEOUT:g}s while {what} (is the gateway address up, "
                           "or port 53 taken there?)")
        time.sleep(0.01)


def _start(runroot: str, instance: str) -> int:
    confdir = _confdir(runroot, instance)
    try:
        os.unlink(os.path.join(confdir, PID_FILE))
    except FileNotFoundError:
        pass
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **INSTANCES[instance]}
    # run forks the daemon and returns once it wrote its pid; close_fds keeps pyrt's
    # locks out of the daemon, cwd "/" keeps it from holding any directory busy
    proc = subprocess.run([aardvark_binary(), "--config", confdir, "-p", str(PORT), "run"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, cwd="/", env=env, close_fds=True,
                          timeout=TIMEOUT * 2)
    pid = running_pid(runroot, instance)
    if proc.returncode != 0 or pid is None:
        err = " ".join(line for line in proc.stderr.decode(errors="replace").splitlines()
                       if "syslog" not in line)
        raise DNSError(f"aardvark-dns did not start (exit {proc.returncode})"
                       + (f": {err}" if err else ""))
    return pid


def _stop(runroot: str, instance: str, pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + TIMEOUT
        while _proc_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        if not _proc_alive(pid):
            break
    try:
        os.unlink(os.path.join(_confdir(runroot, instance), PID_FILE))
    except FileNotFoundError:
        pass


def _sync(runroot: str, instance: str, changed: bool,
          focus: list[str] | None = None) -> str | None:
    """Make the instance's process match its directory: started when it has networks and
    none runs, reloaded when ``changed``, stopped when no network is left.  ``focus``:
    the gateways of the network that changed, which must answer afterwards; the others
    must answer where they answered before (a network whose bridge vanished in a crash
    does not hold every other network hostage).  Without ``focus`` (recovery) every
    gateway must answer.  Returns what was done (for recovery's report) or None."""
    networks = _networks(runroot, instance)
    pid = running_pid(runroot, instance)
    if not networks:
        if pid is None:
            return None
        _stop(runroot, instance, pid)
        return f"stopped {instance} (pid {pid}): no network has containers"
    gateways: list[str] = []
    for net in networks:
        nf = _read(_net_path(runroot, instance, net))
        if nf is not None:
            gateways += nf.gateways
    if pid is None:
        pid = _start(runroot, instance)
        _wait_bound(gateways if focus is None else [g for g in focus if g in gateways], {},
                    pid, "starting")
        return f"started {instance} (pid {pid}) for {', '.join(networks)}"
    if changed:
        before = _udp_sockets()
        mine = _socket_inodes(pid)
        wanted = [gw for gw in gateways
                  if focus is None or gw in focus or before.get((gw, PORT)) in mine]
        os.kill(pid, signal.SIGHUP)
        _wait_bound(wanted, before, pid, "reloading")
        return f"reloaded {instance} (pid {pid})"
    return None


def _instance_of(network: dict) -> str:
    return "aardvark-dns-internal" if network.get("Internal") else "aardvark-dns"


# -- the interface the network plugin calls ---------------------------------------------

def attach(root: str, runroot: str, network: dict, container_id: str, ips: list[str],
           names: list[str], dns_servers: list[str] | None = None) -> list[str]:
    """Register ``names`` (the container's name, aliases, short id) -> ``ips`` on
    ``network`` (its stored record: Name, IPAM.Config's Gateway/Subnet, Internal), make
    sure the network's resolver answers on its gateways, and return those addresses for
    the container's resolv.conf.  ``dns_servers``: the container's own ``--dns``
    servers, where its other names are forwarded instead of the host's resolvers
    (docker's embedded DNS does the same).  Idempotent (the entry is replaced); on
    failure the files are as before."""
    del root  # the resolver's state lives under runroot only (gone at a reboot)
    name = _check_network_name(network.get("Name") or "")
    cid = _check_id(container_id)
    v4, v6 = _split_ips(list(ips), "address")
    if not v4 and not v6:
        raise UsageError(f"container {container_id[:12]} has no address on network {name}")
    clean: list[str] = []
    for n in names:
        low = _check_dns_name(n)
        if low not in clean:
            clean.append(low)
    if not clean:
        raise UsageError(f"container {container_id[:12]} has no name on network {name}")
    up4, up6 = _split_ips(list(dns_servers or ()), "DNS server")
    gateways = _gateways(network)
    instance = _instance_of(network)
    line = " ".join([cid, ",".join(v4), ",".join(v6), ",".join(clean)]
                    + ([",".join(up4 + up6)] if up4 or up6 else []))
    _prepare(runroot)
    with _lock(runroot):
        for other in INSTANCES:  # a network re-created with another Internal flag
            if other != instance and os.path.lexists(_net_path(runroot, other, name)):
                _write(runroot, other, name, None)
                _sync(runroot, other, True, [])
        path = _net_path(runroot, instance, name)
        old = _read(path)
        nf = _NetFile(",".join(gateways), dict(old.entries) if old else {})
        nf.entries[cid] = line
        _write(runroot, instance, name, nf)
        try:
            _sync(runroot, instance, True, gateways)
        except BaseException:
            _write(runroot, instance, name, old)
            try:
                _sync(runroot, instance, True, gateways)
            except PyrtError:
                pass
            raise
    return gateways


def detach(root: str, runroot: str, network_name: str, container_id: str) -> None:
    """Remove the container's names from ``network_name``; the network's resolver stops
    answering with its last container (the instance stops with its last network).
    Idempotent."""
    del root
    _check_network_name(network_name)
    cid = _check_id(container_id)
    if not os.path.isdir(_base(runroot)):
        return
    _prepare(runroot)
    with _lock(runroot):
        for instance in INSTANCES:
            path = _net_path(runroot, instance, network_name)
            nf = _read(path)
            if nf is None or cid not in nf.entries:
                continue
            del nf.entries[cid]
            _write(runroot, instance, network_name, nf)
            _sync(runroot, instance, True, nf.gateways)


def network_removed(root: str, runroot: str, network_name: str) -> None:
    """Forget every entry of a removed network (normally none are left by then)."""
    del root
    _check_network_name(network_name)
    if not os.path.isdir(_base(runroot)):
        return
    _prepare(runroot)
    with _lock(runroot):
        for instance in INSTANCES:
            if os.path.lexists(_net_path(runroot, instance, network_name)):
                _write(runroot, instance, network_name, None)
                _sync(runroot, instance, True, [])


def recover(root: str, runroot: str, live: dict[str, list[str]]) -> list[str]:
    """After a crash: ``live`` maps each network to the ids of its containers that still
    live.  Drop the entries of every other container (and networks absent from
    ``live``), restart an instance that should run and does not (a SIGKILL), stop one
    that should not, remove half-written files.  Returns what was done, one line each."""
    del root
    if not os.path.isdir(_base(runroot)):
        return []
    done: list[str] = []
    _prepare(runroot)
    keep = {net: {c.lower() for c in ids} for net, ids in live.items()}
    with _lock(runroot):
        staging = _staging(runroot)
        for leftover in os.listdir(staging):
            os.unlink(os.path.join(staging, leftover))
            done.append(f"dns: removed the half-written {leftover}")
        for instance in INSTANCES:
            changed = False
            for net in _networks(runroot, instance):
                path = _net_path(runroot, instance, net)
                nf = _read(path)
                if nf is None:
                    continue
                gone = [cid for cid in nf.entries if cid not in keep.get(net, ())]
                for cid in gone:
                    del nf.entries[cid]
                    done.append(f"dns: removed the names of container {cid[:12]} "
                                f"from network {net}")
                if gone or not nf.entries:
                    _write(runroot, instance, net, nf)
                    changed = True
            try:
                what = _sync(runroot, instance, changed)
            except PyrtError as e:
                done.append(f"dns: {instance}: {e}")
                continue
            if what:
                done.append(f"dns: {what}")
    return done
