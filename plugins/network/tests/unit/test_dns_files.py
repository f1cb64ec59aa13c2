"""pyrt_network.dns without a daemon: what goes into aardvark-dns's files, what is
refused, how the pid file and the kernel's socket table are read.  The daemon itself is
tested in tests/privileged/test_dns.py."""
from __future__ import annotations

import os

import pytest

from pyrt_core.errors import UsageError
from pyrt_core.testing import machine

dns = machine.import_plugin_module("pyrt_network.dns", "pyrt-network")

NET = {"Name": "front", "Id": "f" * 64, "Internal": False,
       "IPAM": {"Config": [{"Subnet": "10.89.0.0/24", "Gateway": "10.89.0.1"},
                           {"Subnet": "fd89::/64", "Gateway": "fd89::1"}]}}


@pytest.fixture
def no_daemon(monkeypatch):
    """Record what would be done to the daemon instead of doing it."""
    calls = []
    monkeypatch.setattr(dns, "_sync", lambda runroot, instance, changed, focus=None: calls.append(
        (instance, changed)))
    return calls


def _file(runroot, name="front", instance="aardvark-dns"):
    with open(os.path.join(runroot, "networks", instance, "net_" + name)) as f:
        return f.read()


def test_attach_writes_netavarks_format(tmp_path, no_daemon):
    run = str(tmp_path)
    got = dns.attach("/r", run, NET, "ABC123", ["10.89.0.2", "fd89::2"],
                     ["Web", "alias.one", "web", "abc123"], dns_servers=["192.0.2.53"])
    assert got == ["10.89.0.1", "fd89::1"]
    assert _file(run) == ("10.89.0.1,fd89::1\n"
                          "abc123 10.89.0.2 fd89::2 web,alias.one,abc123 192.0.2.53\n")
    dns.attach("/r", run, NET, "def456", ["10.89.0.3"], ["db"])
    dns.attach("/r", run, NET, "abc123", ["10.89.0.2"], ["web"])  # replaced, kept first
    assert _file(run) == "10.89.0.1,fd89::1\nabc123 10.89.0.2  web\ndef456 10.89.0.3  db\n"
    assert no_daemon == [("aardvark-dns", True)] * 3
    # nothing half-written is left where aardvark-dns reads
    assert sorted(os.listdir(tmp_path / "networks" / "aardvark-dns")) == ["net_front"]
    assert os.listdir(tmp_path / "networks" / "aardvark-dns.staging") == []
    mode = os.stat(tmp_path / "networks" / "aardvark-dns").st_mode & 0o777
    assert mode == 0o700


def test_detach_and_network_removed(tmp_path, no_daemon):
    run = str(tmp_path)
    dns.attach("/r", run, NET, "abc123", ["10.89.0.2"], ["web"])
    dns.attach("/r", run, NET, "def456", ["10.89.0.3"], ["db"])
    dns.detach("/r", run, "front", "abc123")
    assert _file(run) == "10.89.0.1,fd89::1\ndef456 10.89.0.3  db\n"
    dns.detach("/r", run, "front", "abc123")  # nothing to do: no reload
    dns.detach("/r", run, "front", "def456")
    assert os.listdir(tmp_path / "networks" / "aardvark-dns") == []
    assert no_daemon == [("aardvark-dns", True)] * 4
    dns.attach("/r", run, NET, "abc123", ["10.89.0.2"], ["web"])
    dns.network_removed("/r", run, "front")
    assert os.listdir(tmp_path / "networks" / "aardvark-dns") == []
    dns.detach("/r", str(tmp_path / "never"), "front", "abc123")
    assert not (tmp_path / "never").exists()


def test_internal_networks_get_the_instance_that_never_forwards(tmp_path, no_daemon):
    run = str(tmp_path)
    dns.attach("/r", run, {**NET, "Internal": True}, "abc123", ["10.89.0.2"], ["web"])
    assert _file(run, instance="aardvark-dns-internal").endswith("abc123 10.89.0.2  web\n")
    assert dns.INSTANCES["aardvark-dns-internal"] == {"AARDVARK_NO_PROXY": "1"}
    # the same name re-created as a plain network moves to the forwarding instance
    dns.attach("/r", run, NET, "def456", ["10.89.0.3"], ["db"])
    assert not os.path.exists(tmp_path / "networks" / "aardvark-dns-internal" / "net_front")
    assert _file(run) == "10.89.0.1,fd89::1\ndef456 10.89.0.3  db\n"


@pytest.mark.parametrize("names", [["we b"], ["web,db"], ["web\nx 1.2.3.4  evil"], [""],
                                   [".web"], ["-web"], ["a..b"], ["x" * 64], ["w\u00e9b"]])
def test_names_that_could_break_the_file_are_refused(tmp_path, no_daemon, names):
    with pytest.raises(UsageError, match="invalid name"):
        dns.attach("/r", str(tmp_path), NET, "abc123", ["10.89.0.2"], names)
    assert no_daemon == []


@pytest.mark.parametrize("kwargs, match", [
    ({"container_id": "abc 123"}, "invalid container id"),
    ({"ips": ["10.89.0.2 x"]}, "invalid address"),
    ({"ips": []}, "has no address"),
    ({"names": []}, "has no name"),
    ({"dns_servers": ["8.8.8.8,1.1.1.1"]}, "invalid DNS server"),
    ({"network": {**NET, "Name": "a/b"}}, "invalid network name"),
])
def test_bad_input_is_refused_before_anything_is_written(tmp_path, no_daemon, kwargs, match):
    args = {"network": NET, "container_id": "abc123", "ips": ["10.89.0.2"],
            "names": ["web"], **kwargs}
    with pytest.raises(UsageError, match=match):
        dns.attach("/r", str(tmp_path), **args)
    assert not (tmp_path / "networks").exists() or not os.listdir(
        tmp_path / "networks" / "aardvark-dns")


def test_gateway_defaults_to_the_subnets_first_address():
    net = {"Name": "n", "IPAM": {"Config": [{"Subnet": "10.90.0.0/16"}]}}
    assert dns._gateways(net) == ["10.90.0.1"]
    with pytest.raises(dns.DNSError, match="no gateway"):
        dns._gateways({"Name": "n", "IPAM": {"Config": []}})


def test_a_file_another_user_could_write_is_not_read(tmp_path, no_daemon):
    run = str(tmp_path)
    dns.attach("/r", run, NET, "abc123", ["10.89.0.2"], ["web"])
    path = tmp_path / "networks" / "aardvark-dns" / "net_front"
    os.chmod(path, 0o666)
    with pytest.raises(dns.DNSError, match="not a file only pyrt can have written"):
        dns.attach("/r", run, NET, "def456", ["10.89.0.3"], ["db"])


def test_a_directory_others_can_write_is_refused(tmp_path, no_daemon):
    (tmp_path / "networks").mkdir(mode=0o700)
    (tmp_path / "networks" / "aardvark-dns").mkdir()
    os.chmod(tmp_path / "networks" / "aardvark-dns", 0o777)
    with pytest.raises(dns.DNSError, match="not a private directory"):
        dns.attach("/r", str(tmp_path), NET, "abc123", ["10.89.0.2"], ["web"])


def test_running_pid_trusts_only_an_aardvark_serving_this_directory(tmp_path):
    run = str(tmp_path)
    conf = tmp_path / "networks" / "aardvark-dns"
    conf.mkdir(parents=True, mode=0o700)
    assert dns.running_pid(run) is None
    (conf / "aardvark.pid").write_text(str(os.getpid()))  # alive, but not aardvark-dns
    os.chmod(conf / "aardvark.pid", 0o644)
    assert dns.running_pid(run) is None
    (conf / "aardvark.pid").write_text("not a pid")
    assert dns.running_pid(run) is None


def test_the_kernels_udp_table_is_read(monkeypatch):
    """/proc/net/udp{,6} rows: each 32-bit word of the address in host order."""
    rows = {
        "/proc/net/udp": "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
                         "retrnsmt   uid  timeout inode\n"
                         "  1: 01005A0A:0035 00000000:0000 07 00000000:00000000 00:00000000 "
                         "00000000     0        0 4242 2 0000000000000000 0\n",
        "/proc/net/udp6": "  sl  local_address remote_address st tx_queue rx_queue tr tm->when "
                          "retrnsmt   uid  timeout inode\n"
                          "  2: 000089FD000000000000000001000000:0035 "
                          "00000000000000000000000000000000:0000 07 00000000:00000000 "
                          "00:00000000 00000000     0        0 4343 2 0000000000000000 0\n",
    }
    import builtins
    import io

    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda p, *a, **k: io.StringIO(rows[p])
                        if p in rows else real_open(p, *a, **k))
    assert dns._udp_sockets() == {("10.90.0.1", 53): 4242, ("fd89::1", 53): 4343}
