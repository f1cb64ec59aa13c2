"""The check that lets a container's start adopt a network that is up (bench/network.py):
the network's ``fwd_in`` element, as libnftables' JSON lists it."""
from __future__ import annotations

from pyrt_core.testing import machine

machine.import_plugin_module("pyrt_network.rules", "pyrt-network")
from pyrt_network import rules  # noqa: E402

NET = "ab" * 32


def listing(*elems) -> dict:
    return {"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
                         {"map": {"family": "inet", "name": "fwd_in", "table": "pyrt",
                                  "type": "ifname", "handle": 5, "map": "verdict",
                                  "elem": list(elems)}}]}


def test_the_element_that_network_commands_adds_is_found():
    cmds = rules.network_commands("pyrt", NET, "pyrt0", ["10.213.0.0/24"], False, ["10.213.0.1"])
    [elem] = [c["add"]["element"]["elem"][0] for c in cmds
              if "element" in c.get("add", {}) and c["add"]["element"]["name"] == "fwd_in"]
    assert rules.network_in_place(listing(["pyrt-x", {"jump": {"target": "n-other-i"}}], elem),
                                  NET, "pyrt0")
    assert rules.network_chains(NET)[0] == elem[1]["jump"]["target"]


def test_another_networks_element_or_none_is_not_taken():
    ci = rules.network_chains(NET)[0]
    assert not rules.network_in_place(listing(["pyrt0", {"jump": {"target": "n-" + "cd" * 12 + "-i"}}]),
                                      NET, "pyrt0")  # the same bridge name, an older network's
    assert not rules.network_in_place(listing(["pyrt1", {"jump": {"target": ci}}]), NET, "pyrt0")
    assert not rules.network_in_place(listing(), NET, "pyrt0")
    assert not rules.network_in_place({"nftables": [{"metainfo": {}}]}, NET, "pyrt0")
    assert not rules.network_in_place(None, NET, "pyrt0")


def test_the_network_removal_deletes_the_element_first():
    """(a removal killed half way leaves no element behind that claims the network up)"""
    first = rules.network_delete_commands("pyrt", NET, "pyrt0", ["10.213.0.0/24"], False, ["10.213.0.1"])[0]
    assert first == {"delete": {"element": {"family": "inet", "table": "pyrt", "name": "fwd_in",
                                            "elem": ["pyrt0"]}}}
