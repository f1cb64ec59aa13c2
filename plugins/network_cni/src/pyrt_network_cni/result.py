"""A CNI result as one network of pyrt's network record (docker's EndpointSettings names).

CNI 1.0.0 and 0.4.0 results list the interfaces (``sandbox`` set for those inside the
container's namespace) and the addresses (``interface`` is an index into that list;
0.4.0 adds ``version``).  The container's interface is the one named ``CNI_IFNAME``
in the sandbox; its addresses and MAC are the record's.
"""
from __future__ import annotations

import ipaddress


def endpoint(result: dict, ifname: str, network: str, network_id: str,
             aliases: list[str] | None = None, dns_names: list[str] | None = None) -> dict:
    interfaces = result.get("interfaces") or []
    index = next((i for i, itf in enumerate(interfaces)
                  if itf.get("name") == ifname and itf.get("sandbox")), None)
    mac = interfaces[index].get("mac", "") if index is not None else ""
    ep = {"IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": mac,
          "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "",
          "Aliases": list(aliases or []), "NetworkID": network_id,
          "DNSNames": list(dns_names or [])}
    for ip in result.get("ips") or []:
        if index is not None and ip.get("interface") is not None and ip["interface"] != index:
            continue
        try:
            itf = ipaddress.ip_interface(ip["address"])
        except (KeyError, ValueError):
            continue
        if itf.version == 4 and not ep["IPAddress"]:
            ep["IPAddress"], ep["IPPrefixLen"] = str(itf.ip), itf.network.prefixlen
            ep["Gateway"] = ip.get("gateway", "") or ""
        elif itf.version == 6 and not ep["GlobalIPv6Address"]:
            ep["GlobalIPv6Address"], ep["GlobalIPv6PrefixLen"] = str(itf.ip), itf.network.prefixlen
            ep["IPv6Gateway"] = ip.get("gateway", "") or ""
    return ep


def dns_of(result: dict) -> tuple[list[str], list[str]]:
    """The resolvers and search domains a plugin returned (most return none)."""
    dns = result.get("dns") or {}
    return list(dns.get("nameservers") or []), list(dns.get("search") or [])


def addresses(result: dict) -> list[str]:
    """Every address of the result, without prefix length."""
    out = []
    for ip in result.get("ips") or []:
        try:
            out.append(str(ipaddress.ip_interface(ip["address"]).ip))
        except (KeyError, ValueError):
            continue
    return out
