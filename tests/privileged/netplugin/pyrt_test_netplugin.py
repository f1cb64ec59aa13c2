"""A minimal, real network plugin for the core's privileged tests (tests/privileged/
test_network_core.py): it implements the ``pyrt_network_*`` hooks the way a backend
must, so that the core's side (flags, the namespace, setup/teardown order, files,
inspect, recovery) is proven against the kernel without pyrt-network.

What it does, only inside network namespaces the test made: a veth pair per container,
``eth0`` in the container's namespace (the path the core hands it) with an address of
``$PYRT_TESTNET_SUBNET.N/24`` and a default route, its peer on the bridge ``ptbr0`` of
the test's "host side" namespace ``$PYRT_TESTNET_HOSTNS`` (never the real host).  Ports
are only recorded (no forwarding rules): the core's side is what is tested.  It uses
``ip``/``nsenter`` (fine for a test; the product plugins use netlink).

State: ``<root>/networks/testveth/<id>.json`` per container, written before the veth
exists, so teardown and recovery work without the core's record.  It answers only when
the test's environment names it (``PYRT_TESTNET_HOSTNS``), as a backend that is not the
chosen one must.  ``PYRT_TESTNET_FAIL=setup`` makes setup fail after its veth exists
(undoing it, as the contract says), ``=setup-leave`` fail without undoing anything.
"""
import fcntl
import json
import os
import subprocess

from pyrt_core.api import UsageError, hookimpl

BACKEND = "testveth"
NETWORKS = ("bridge", "testnet")  # the default network and one "user-defined" network


def _hostns():
    if os.environ.get("PYRT_NETWORK_BACKEND", BACKEND) != BACKEND:
        return None
    return os.environ.get("PYRT_TESTNET_HOSTNS") or None


def _subnet():
    return os.environ["PYRT_TESTNET_SUBNET"]  # "10.213.7": a /24 the test checked is free


def _dir(root):
    d = os.path.join(root, "networks", BACKEND)
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def _run(*argv, check=True):
    r = subprocess.run(argv, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise UsageError(f"testveth: {' '.join(argv)}: {r.stderr.strip()}")
    return r


class _Lock:
    def __init__(self, root):
        self.fd = os.open(os.path.join(_dir(root), "lock"), os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self):
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def _states(root):
    d = _dir(root)
    out = {}
    for name in os.listdir(d):
        if name.endswith(".json"):
            with open(os.path.join(d, name)) as f:
                out[name[:-5]] = json.load(f)
    return out


def _release(root, cid, st):
    _run("ip", "-n", st["hostns"], "link", "del", st["host_if"], check=False)
    try:
        os.unlink(os.path.join(_dir(root), cid + ".json"))
    except FileNotFoundError:
        pass


@hookimpl
def pyrt_network_backend():
    return BACKEND if _hostns() else None


@hookimpl
def pyrt_network_validate(networking, root, runroot):
    if not _hostns():
        return None
    for a in networking.attachments:
        if a.network not in NETWORKS:
            raise UsageError(f"network {a.network} not found")
    for p in networking.ports:
        if p.host_port == 1:
            raise UsageError("testveth: host port 1 is in use")
    return True


@hookimpl
def pyrt_network_setup(container_id, netns, networking, root, runroot):
    hostns = _hostns()
    if not hostns:
        return None
    att = networking.attachments[0]
    host_if = "pt" + container_id[:12]
    with _Lock(root):
        used = {s["ip"] for s in _states(root).values()}
        ip = att.ipv4 or next(f"{_subnet()}.{n}" for n in range(2, 255)
                              if f"{_subnet()}.{n}" not in used)
        if att.ipv4 and att.ipv4 in used:
            raise UsageError(f"testveth: address {att.ipv4} is taken")
        st = {"hostns": hostns, "host_if": host_if, "ip": ip}
        with open(os.path.join(_dir(root), container_id + ".json"), "w") as f:
            json.dump(st, f)
    gw = f"{_subnet()}.1"
    try:
        _run("nsenter", f"--net={netns}", "ip", "link", "add", "eth0", "type", "veth",
             "peer", "name", host_if, "netns", hostns)
        if os.environ.get("PYRT_TESTNET_FAIL") == "setup-leave":
            raise UsageError("testveth: setup failed (and left its veth, on purpose)")
        if os.environ.get("PYRT_TESTNET_FAIL") == "setup":
            raise RuntimeError("testveth: setup failed\non purpose")
        if att.mac:
            _run("nsenter", f"--net={netns}", "ip", "link", "set", "eth0", "address", att.mac)
        _run("nsenter", f"--net={netns}", "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        _run("nsenter", f"--net={netns}", "ip", "link", "set", "eth0", "up")
        _run("nsenter", f"--net={netns}", "ip", "route", "add", "default", "via", gw)
        _run("ip", "-n", hostns, "link", "set", host_if, "master", "ptbr0", "up")
        link = _run("nsenter", f"--net={netns}", "ip", "-o", "link", "show", "eth0").stdout
        mac = link.split("link/ether ")[1].split()[0]
    except BaseException:
        if os.environ.get("PYRT_TESTNET_FAIL") != "setup-leave":
            _release(root, container_id, st)
        raise
    ports = []
    for i, p in enumerate(networking.ports):
        ports.append({"container_port": p.container_port, "protocol": p.protocol,
                      "host_ip": p.host_ip, "host_port": p.host_port or 40000 + i})
    name = att.network
    record = {"networks": {name: {"IPAddress": ip, "IPPrefixLen": 24, "Gateway": gw,
                                  "MacAddress": mac, "Aliases": list(att.aliases),
                                  "NetworkID": name, "DNSNames": [networking.name]}},
              "ports": ports, "private": {"host_if": host_if}}
    if name != "bridge":  # a "user-defined" network has its resolver (docker's rule)
        record["dns_servers"], record["dns_search"] = [gw], ["testnet.internal"]
    return record


@hookimpl
def pyrt_network_teardown(container_id, netns, record, root, runroot):
    if not _hostns():
        return None
    with _Lock(root):
        st = _states(root).get(container_id)
        if st is not None:
            _release(root, container_id, st)
    return True


@hookimpl
def pyrt_network_recover(live, root, runroot):
    if not _hostns():
        return None
    out = []
    with _Lock(root):
        for cid, st in _states(root).items():
            if cid not in live:
                _release(root, cid, st)
                out.append(f"testveth: released {st['host_if']} of {cid[:12]}")
    return out
