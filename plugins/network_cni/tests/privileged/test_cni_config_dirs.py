"""A network the operator brings as a conflist of a CNI configuration directory
(``/etc/cni/net.d`` by default; here a temporary one named by PYRT_CNI_CONFIG_DIRS):
pyrt lists it, runs its plugins for a container, and never writes or removes it."""
import json
import os

import pytest

from pyrt_core.errors import UsageError
from pyrt_core.testing import nettools
from pyrt_core.testing.netharness import NetworkHarness, entry, ipv4_of, ns_interfaces


@pytest.fixture
def harness(tmp_path, monkeypatch):
    before = nettools.host_state()
    etc = tmp_path / "net.d"
    etc.mkdir()
    monkeypatch.setenv("PYRT_NETWORK_BACKEND", "cni")
    monkeypatch.setenv("PYRT_CNI_CONFIG_DIRS", str(etc))
    from pyrt_core.plugins import make_plugin_manager

    (tmp_path / "root").mkdir()
    (tmp_path / "run").mkdir()
    h = NetworkHarness(make_plugin_manager(), str(tmp_path / "root"), str(tmp_path / "run"), ())
    h.etc = etc
    yield h
    errors = h.cleanup()
    left = nettools.new_since(before)
    assert not errors and not left, (errors, left)


def test_a_conflist_of_the_config_dir_serves_a_container(harness, tmp_path):
    subnet = harness.free_subnet()
    conf = {"cniVersion": "1.0.0", "name": "pyrt-t-ptp", "plugins": [
        {"type": "ptp", "ipMasq": False,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                  "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(tmp_path / "ipam")}}]}
    path = harness.etc / "10-ptp.conflist"
    path.write_text(json.dumps(conf))
    stamp = (path.read_bytes(), os.stat(path).st_mtime_ns)
    listed = {n["Name"]: n for n in harness.listed()}
    assert listed["pyrt-t-ptp"]["ReadOnly"] is True
    assert listed["pyrt-t-ptp"]["IPAM"]["Config"][0]["Subnet"] == subnet
    ns = harness.netns()
    cid, record = harness.setup(ns, ["pyrt-t-ptp"])
    ep = entry(record, "pyrt-t-ptp")
    assert [f'{ep["IPAddress"]}/{ep["IPPrefixLen"]}'] == ipv4_of(ns_interfaces(ns)["eth0"])
    with pytest.raises(UsageError, match="remove the file yourself"):
        harness.hook("remove", name="pyrt-t-ptp")
    harness.teardown(cid, ns, record)
    assert ns_interfaces(ns) == {}
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == stamp
    assert sorted(os.listdir(harness.etc)) == ["10-ptp.conflist"]
