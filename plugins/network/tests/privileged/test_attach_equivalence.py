"""pyrt-network's netlink without IPRoute sets up what the IPRoute-based code did.

The same setup is made twice, each time in network namespaces of the test's own (a
"host" namespace, run with ``ip netns exec`` so that /sys is its own, and two
"container" namespaces): once by the IPRoute-based code pyrt-network had until
pyrt_network.rtnl replaced it (reconstructed below from netlink.py as of commit
b4b8d52, the reference, nowhere in the product), once by pyrt_network.netlink.  Two
networks (IPv4 and IPv6 with an MTU; IPv4 alone), a container on both (default routes
through the first), a container with loopback only, a second ``ensure_bridge`` on the
networks that are up, and the errors of a refused bridge, a missing bridge and a veth
name taken.  Then ``ip -d -j link``, ``ip -j addr``, ``ip -j route`` and ``ip -6 -j
route`` of every namespace are compared, after the kernel's timers are dropped and what
must differ is named the same: interface indexes, and the random MAC addresses (with the
link-local addresses made of them) of the host's side; the containers' MAC addresses are
pyrt's and are compared.  ``host_routes()`` is compared with the reference's too, in a
namespace with routes of both families and in the host's own (read only).

Nothing of the host's is touched: every interface is made in the test's namespaces and
goes with them.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from pyrt_core.testing import machine

machine.import_plugin_module("pyrt_network.netlink", "pyrt-network")
from pyrt_network import netlink  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="needs root and ip (iproute2)")

REFERENCE = '''
import os
from pyroute2 import IPRoute
from pyrt_core.api import PyrtError

AF_INET, AF_INET6, IFA_F_NODAD, LOOPBACK_IFINDEX = 2, 10, 2, 1


def in_netns(path, func):
    # the thread that joins the namespace is netlink's (not what is compared)
    from pyrt_network.netlink import joined

    def run():
        with IPRoute() as ipr:
            return func(ipr)

    return joined(path, run)


def link_index(ipr, name):
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def host_routes():
    out = []
    with IPRoute() as ipr:
        names = {link["index"]: link.get("ifname") for link in ipr.get_links()}
        for fam in (AF_INET, AF_INET6):
            for r in ipr.get_routes(family=fam, table=254):
                dst, n = r.get("dst"), r["dst_len"]
                if not dst or n == 0:
                    continue
                if fam == AF_INET6 and (dst.startswith("fe80:") or n == 128):
                    continue
                out.append((f"{dst}/{n}", names.get(r.get("oif"), "")))
    return out


def ensure_bridge(name, addrs, mtu):
    made = False
    with IPRoute() as ipr:
        idx = link_index(ipr, name)
        if idx is None:
            kw = {"mtu": mtu} if mtu else {}
            try:
                ipr.link("add", ifname=name, kind="bridge", **kw)
                made = True
            except Exception as e:
                if getattr(e, "code", None) != 17:
                    raise PyrtError(f"cannot create bridge {name}: {e}") from None
            idx = link_index(ipr, name)
        fams = {AF_INET6 if ":" in ip else AF_INET for ip, _n in addrs}
        fam = fams.pop() if len(fams) == 1 else 0
        have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=fam)}
        for ip, n in addrs:
            if (ip, n) not in have:
                fam = AF_INET6 if ":" in ip else AF_INET
                kw = {"flags": IFA_F_NODAD} if fam == AF_INET6 else {}
                ipr.addr("add", index=idx, address=ip, prefixlen=n, family=fam, **kw)
        ipr.link("set", index=idx, state="up")
    with open(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "w") as f:
        f.write("1")
    return made


def attach(netns, host_end, bridge, ifname, addrs, mac, mtu, routes):
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with IPRoute() as ipr:
            br = link_index(ipr, bridge)
            if br is None:
                raise PyrtError(f"bridge {bridge} is missing")
            kw = {"mtu": mtu} if mtu else {}
            peer = {"ifname": ifname, "address": mac, "net_ns_fd": fd, **kw}
            ipr.link("add", ifname=host_end, kind="veth", peer=peer, master=br, state="up", **kw)
    finally:
        os.close(fd)
    with open(f"/sys/class/net/{host_end}/brport/hairpin_mode", "w") as f:
        f.write("1")

    def inside(ns):
        i = link_index(ns, ifname)
        for ip, n in addrs:
            fam = AF_INET6 if ":" in ip else AF_INET
            kw = {"flags": IFA_F_NODAD} if fam == AF_INET6 else {}
            ns.addr("add", index=i, address=ip, prefixlen=n, family=fam, **kw)
        ns.link("set", index=i, state="up")
        ns.link("set", index=LOOPBACK_IFINDEX, state="up")
        for gw in routes:
            if ":" in gw:
                ns.route("add", dst="::/0", gateway=gw, family=AF_INET6)
            else:
                ns.route("add", dst="0.0.0.0/0", gateway=gw)

    in_netns(netns, inside)


def loopback_up(netns):
    def up(ns):
        lo = link_index(ns, "lo")
        if lo is not None:
            ns.link("set", index=lo, state="up")

    in_netns(netns, up)
'''

# the same calls, made by the reference or by pyrt_network.netlink; printed as JSON
SCENARIO = '''
import json, sys
which, c1, c2 = sys.argv[1:4]
if which == "reference":
    ref = {}
    exec(compile(REFERENCE, "reference", "exec"), ref)
    nl = type("ref", (), {k: staticmethod(v) for k, v in ref.items() if callable(v)})
else:
    from pyrt_network import netlink as nl
out = {}
out["made"] = [nl.ensure_bridge("pyrtbr0", [("10.213.0.1", 24), ("fd4d:1::1", 64)], 1400),
               nl.ensure_bridge("pyrtbr1", [("10.213.1.1", 24)], None)]
nl.attach(c1, "pyrtv0a", "pyrtbr0", "eth0", [("10.213.0.2", 24), ("fd4d:1::2", 64)],
          "02:42:0a:d5:00:02", 1400, ["10.213.0.1", "fd4d:1::1"])
nl.attach(c1, "pyrtv0b", "pyrtbr1", "eth1", [("10.213.1.2", 24)], "02:42:0a:d5:01:02", None, [])
nl.loopback_up(c2)
# the next start on networks that are up
out["again"] = [nl.ensure_bridge("pyrtbr0", [("10.213.0.1", 24), ("fd4d:1::1", 64)], 1400),
                nl.ensure_bridge("pyrtbr1", [("10.213.1.1", 24)], None)]
errors = []
for call in (lambda: nl.ensure_bridge("pyrtbr-much-too-long", [("10.213.2.1", 24)], None),
             lambda: nl.attach(c2, "pyrtv1a", "pyrtbr9", "eth0", [("10.213.0.3", 24)], "02:42:0a:d5:00:03",
                               None, []),
             lambda: nl.attach(c2, "pyrtv0a", "pyrtbr0", "eth0", [("10.213.0.3", 24)], "02:42:0a:d5:00:03",
                               None, [])):
    try:
        call()
        errors.append(None)
    except Exception as e:
        errors.append([type(e).__name__, str(e)])
out["errors"] = errors
out["host_routes"] = sorted(nl.host_routes())
print(json.dumps(out))
'''

MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _ns() -> str:
    name = f"pyrt-t-{uuid.uuid4().hex[:10]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    return name


def _ip(ns: str, *args: str):
    r = subprocess.run(["ip", "-n", ns, "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(r.stdout or "[]")


def _settled(ns: str) -> bool:
    """No address still in duplicate address detection, every interface that is up
    with its carrier (the snapshots would differ by when they were taken otherwise)."""
    for link in _ip(ns, "addr", "show"):
        if any(a.get("tentative") for a in link.get("addr_info", [])):
            return False
        if "UP" in link["flags"] and link["operstate"] not in ("UP", "UNKNOWN"):
            return False
    return True


def _drop_volatile(obj, keep_macs: set[str]):
    """Without the kernel's timers and indexes and the bridge ids (made of a random MAC
    address); random MAC addresses named "<mac>"."""
    if isinstance(obj, dict):
        return {k: _drop_volatile(v, keep_macs) for k, v in obj.items()
                if k not in ("ifindex", "link_index", "bridge_id", "root_id", "designated_root",
                             "designated_bridge") and "timer" not in k}
    if isinstance(obj, list):
        return [_drop_volatile(v, keep_macs) for v in obj]
    if isinstance(obj, str) and MAC.match(obj) and obj not in keep_macs and obj != "ff:ff:ff:ff:ff:ff":
        return "<mac>"
    return obj


def _snapshot(ns: str, keep_macs: set[str]) -> dict:
    deadline = time.monotonic() + 10
    while not _settled(ns) and time.monotonic() < deadline:
        time.sleep(0.1)
    snap = {"link": _ip(ns, "-d", "link", "show"), "addr": _ip(ns, "addr", "show"),
            "route": _ip(ns, "route", "show"), "route6": _ip(ns, "-6", "route", "show")}
    for link in snap["addr"]:  # a link-local address made of a random MAC address
        for a in link.get("addr_info", []):
            if a["local"].startswith("fe80:") and link.get("address") not in keep_macs:
                a["local"] = "<link-local>"
    return _drop_volatile(snap, keep_macs)


def _run(which: str) -> tuple[dict, dict]:
    """The scenario by ``which``; (its JSON output, the snapshots of its namespaces)."""
    host, c1, c2 = _ns(), _ns(), _ns()
    try:
        code = f"REFERENCE = {REFERENCE!r}\n{SCENARIO}"
        r = subprocess.run(["ip", "netns", "exec", host, sys.executable, "-c", code, which,
                            f"/run/netns/{c1}", f"/run/netns/{c2}"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        keep = {"02:42:0a:d5:00:02", "02:42:0a:d5:01:02"}
        snaps = {"host": _snapshot(host, set()), "c1": _snapshot(c1, keep), "c2": _snapshot(c2, keep)}
        return out, snaps
    finally:
        for ns in (c2, c1, host):
            subprocess.run(["ip", "netns", "del", ns], check=False)


def _by_name(links: list[dict]) -> dict:
    return {link["ifname"]: link for link in links}


def test_the_attachment_is_the_one_iproute_made():
    ref_out, ref = _run("reference")
    out, new = _run("pyrt")
    assert out == ref_out
    assert out["made"] == [True, True] and out["again"] == [False, False]
    assert out["errors"][0][0] == "PyrtError" and out["errors"][0][1].startswith("cannot create bridge pyrtbr-much-too-long: ")
    assert out["errors"][1] == ["PyrtError", "bridge pyrtbr9 is missing"]
    assert out["errors"][2] == ["NetlinkError", "(17, 'File exists')"]
    assert sorted(out["host_routes"]) == [["10.213.0.0/24", "pyrtbr0"], ["10.213.1.0/24", "pyrtbr1"],
                                          ["fd4d:1::/64", "pyrtbr0"]]
    for ns in ("c1", "c2", "host"):
        for kind in ("link", "addr", "route", "route6"):
            assert new[ns][kind] == ref[ns][kind], (ns, kind)
    # what was compared is the setup asked for, not two empty namespaces
    c1 = _by_name(new["c1"]["link"])
    assert c1["eth0"]["address"] == "02:42:0a:d5:00:02" and c1["eth0"]["mtu"] == 1400
    assert c1["eth1"]["mtu"] == 1500 and c1["eth0"]["linkinfo"]["info_kind"] == "veth"
    assert all(c1[n]["operstate"] in ("UP", "UNKNOWN") for n in ("lo", "eth0", "eth1"))
    addrs = {(a["local"], a["prefixlen"], a.get("noprefixroute", False), a.get("nodad", False))
             for link in new["c1"]["addr"] if link["ifname"] == "eth0" for a in link["addr_info"]}
    assert {("10.213.0.2", 24, False, False), ("fd4d:1::2", 64, False, True)} <= addrs
    assert {(r["dst"], r.get("gateway"), r["dev"], r.get("protocol")) for r in new["c1"]["route"]} == {
        ("default", "10.213.0.1", "eth0", "static"), ("10.213.0.0/24", None, "eth0", "kernel"),
        ("10.213.1.0/24", None, "eth1", "kernel")}
    assert ("default", "fd4d:1::1", "eth0") in {(r["dst"], r.get("gateway"), r["dev"]) for r in new["c1"]["route6"]}
    assert [(x["ifname"], x["operstate"]) for x in new["c2"]["link"]] == [("lo", "UNKNOWN")]
    host = _by_name(new["host"]["link"])
    for veth, bridge, mtu in (("pyrtv0a", "pyrtbr0", 1400), ("pyrtv0b", "pyrtbr1", 1500)):
        assert host[veth]["master"] == bridge and host[veth]["mtu"] == mtu and host[veth]["operstate"] == "UP"
        assert host[veth]["linkinfo"]["info_slave_data"]["hairpin"] is True
    assert host["pyrtbr0"]["mtu"] == 1400 and host["pyrtbr0"]["linkinfo"]["info_kind"] == "bridge"
    br_addrs = [(a["local"], a["prefixlen"]) for link in new["host"]["addr"] if link["ifname"] == "pyrtbr0"
                for a in link["addr_info"] if not a["local"].startswith("<")]
    assert sorted(br_addrs) == [("10.213.0.1", 24), ("fd4d:1::1", 64)]  # once each, after two ensure_bridge


def test_host_routes_are_the_references():
    """The host's own routes, read by both (nothing is changed)."""
    ref = {}
    exec(compile(REFERENCE, "reference", "exec"), ref)
    assert sorted(netlink.host_routes()) == sorted(ref["host_routes"]())
