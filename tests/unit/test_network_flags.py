"""docker's network flags of run/create (cli/containers/network_flags), the engine's
resolution of the default network (engine.network), and the files and views made from
a network record (containers.spec, cli/containers/ports).  No kernel involved."""
import types

import pytest

from pyrt_core.cli.containers.run import container_config_from_args
from pyrt_core.cli.main import build_parser
from pyrt_core.containers import spec
from pyrt_core.engine import network
from pyrt_core.errors import NotFoundError, UsageError
from pyrt_core.models import Container, ContainerConfig, ImageConfig
from pyrt_core.netmodel import ContainerNetworking


def cfg(*argv):
    return container_config_from_args(build_parser().parse_args(["run", *argv, "img"]))


def net(*argv):
    return ContainerNetworking.from_dict(cfg(*argv).networking)


def test_no_network_flag_leaves_the_choice_to_the_engine():
    c = cfg()
    assert c.network == "default" and net().mode == "networks" and net().attachments == []


def test_publish_expose_and_several_networks():
    c = cfg("-p", "8080:80", "-p", "127.0.0.1::53/udp", "--expose", "90-91", "-P",
            "--network", "front", "--net", "back", "--ip", "10.1.2.3", "--network-alias", "db",
            "--mac-address", "02:42:AC:11:00:02")
    n = ContainerNetworking.from_dict(c.networking)
    assert c.network == "front" and n.networks == ["front", "back"]
    first, second = n.attachments
    assert first.ipv4 == "10.1.2.3" and first.aliases == ("db",) and first.mac == "02:42:ac:11:00:02"
    assert second.ipv4 is None and second.aliases == () and second.mac is None
    assert [(p.host_port, p.container_port, p.protocol, p.host_ip) for p in n.ports] == [
        (8080, 80, "tcp", ""), (0, 53, "udp", "127.0.0.1")]
    assert c.expose == ["90/tcp", "91/tcp"] and c.publish_all


def test_dns_and_hosts_flags():
    n = net("--dns", "192.0.2.53", "--dns-search", "corp.example", "--dns-option", "ndots:2",
            "--add-host", "a.example:192.0.2.1", "--add-host", "b=2001:db8::1",
            "--add-host", "gw:host-gateway")
    assert n.dns == ["192.0.2.53"] and n.dns_search == ["corp.example"]
    assert n.dns_options == ["ndots:2"]
    assert n.extra_hosts == ["a.example:192.0.2.1", "b:2001:db8::1", "gw:host-gateway"]


@pytest.mark.parametrize("mode", ["none", "host"])
def test_special_modes(mode):
    c = cfg("--network", mode)
    assert c.network == mode and c.networking["mode"] == mode


def test_host_mode_discards_ports_with_a_warning():
    warned = []
    from pyrt_core.cli.containers.network_flags import networking_from_args

    args = build_parser().parse_args(["run", "--network", "host", "-p", "80", "img"])
    mode, n, _, publish_all = networking_from_args(args, warn=warned.append)
    assert mode == "host" and n.ports == [] and not publish_all
    assert warned == ["WARNING: Published ports are discarded when using host network mode"]


def test_container_mode():
    c = cfg("--network", "container:web")
    assert c.networking["mode"] == "container" and c.networking["container"] == "web"


@pytest.mark.parametrize("argv, words", [
    (["--network", "none", "-p", "80"], "conflicting options: port publishing"),
    (["--network", "none", "-P"], "conflicting options: port publishing"),
    (["--network", "container:x", "-p", "80"], "conflicting options: port publishing"),
    (["--network", "container:x", "--dns", "192.0.2.1"], "conflicting options: dns"),
    (["--network", "container:x", "--add-host", "a:192.0.2.1"], "custom host-to-IP mapping"),
    (["--network", "container:x", "-h", "x"], "conflicting options: hostname"),
    (["--network", "container:x", "--expose", "80"], "port exposing"),
    (["--network", "container:"], "container's name or id"),
    (["--network", "host", "--network", "a"], "cannot be combined"),
    (["--network", "a", "--network", "a"], "given twice"),
    (["--network", "bad/name"], "invalid network name"),
    (["--ip", "10.0.0.1"], "user defined networks only"),
    (["--network", "bridge", "--ip", "10.0.0.1"], "user defined networks only"),
    (["--network", "host", "--ip", "10.0.0.1"], "user defined networks only"),
    (["--network-alias", "x"], "user-defined networks"),
    (["--network", "n", "--ip", "::1"], "not an IPv4 address"),
    (["--network", "n", "--ip6", "10.0.0.1"], "not an IPv6 address"),
    (["--mac-address", "zz:42:ac:11:00:02"], "six hex pairs"),
    (["--mac-address", "01:00:5e:00:00:01"], "multicast"),
    (["--network", "host", "--mac-address", "02:42:ac:11:00:02"], "conflicting options"),
    (["--dns", "resolver"], "invalid --dns"),
    (["--add-host", "nohost"], "NAME:IP"),
    (["--add-host", "a:notanip"], "not an IP address"),
    (["-p", "70000"], "container port"),
    (["--expose", "80/icmp"], "protocol"),
])
def test_bad_values(argv, words):
    with pytest.raises(UsageError, match=words):
        cfg(*argv)


# -- the engine's part: the default network, container:NAME, -P --------------------------------


class FakeHooks:
    def __init__(self, backend):
        self.backend, self.validated = backend, []

    def pyrt_network_backend(self):
        return self.backend

    def pyrt_network_validate(self, networking, root, runroot):
        self.validated.append(networking)
        return True if self.backend else None


def engine(backend=None, containers=None):
    hooks = FakeHooks(backend)
    store = types.SimpleNamespace(get=lambda ref: (containers or {})[ref] if ref in (
        containers or {}) else (_ for _ in ()).throw(NotFoundError(f"no such container: {ref}")))
    settings = types.SimpleNamespace(root="/r", runroot="/rr")
    return types.SimpleNamespace(pm=types.SimpleNamespace(hook=hooks), containers=store,
                                 settings=settings)


def test_default_is_bridge_with_a_backend_and_none_without():
    c = cfg("--dns", "192.0.2.53")
    e = engine("bridge")
    network.resolve(e, c)
    assert c.network == "bridge" and c.networking["attachments"][0]["network"] == "bridge"
    c = cfg("--dns", "192.0.2.53")
    network.resolve(engine(None), c)
    assert c.network == "none" and c.networking["mode"] == "none"
    assert c.networking["dns"] == ["192.0.2.53"]  # still written in its resolv.conf


@pytest.mark.parametrize("argv", [["--network", "bridge"], ["--network", "mine"],
                                  ["-p", "80"], ["-P"]])
def test_without_a_backend_the_hint_names_the_distribution(argv):
    c = cfg(*argv)
    with pytest.raises(UsageError, match="install pyrt-network"):
        network.resolve(engine(None), c)


def test_none_and_host_ask_no_plugin():
    class Refuse:
        def __getattr__(self, name):
            raise AssertionError(f"{name} called")

    e = types.SimpleNamespace(pm=types.SimpleNamespace(hook=Refuse()))
    for mode in ("none", "host"):
        c = cfg("--network", mode)
        network.resolve(e, c)
        network.validate(e, c, None)
        assert c.networking["mode"] == mode
    # a ContainerConfig an earlier pyrt stored (no networking) reads as its mode
    old = ContainerConfig.from_dict({"image": "img", "network": "host"})
    assert old.networking is None and network.networking_dict(old) == {"mode": "host"}


def test_container_mode_resolves_the_id():
    target = types.SimpleNamespace(id="a" * 64)
    c = cfg("--network", "container:web")
    network.resolve(engine("bridge", {"web": target}), c)
    assert c.network == "container:" + "a" * 64 and c.networking["container"] == "a" * 64
    with pytest.raises(NotFoundError, match="no such container"):
        network.resolve(engine("bridge"), cfg("--network", "container:nosuch"))


def test_publish_all_takes_the_image_and_expose_ports():
    c = cfg("-P", "--expose", "90", "-p", "8080:80")
    e = engine("bridge")
    network.resolve(e, c)
    image = types.SimpleNamespace(config=ImageConfig(exposed_ports=["80/tcp", "53/udp"]))
    network.validate(e, c, image)
    ports = [(p["container_port"], p["protocol"], p["host_port"]) for p in c.networking["ports"]]
    assert ports == [(80, "tcp", 8080), (53, "udp", 0), (90, "tcp", 0)]
    assert e.pm.hook.validated and e.pm.hook.validated[0].ports[1].container_port == 53


# -- the files and the views ---------------------------------------------------------------------

RECORD = {"networks": {"bridge": {"IPAddress": "10.213.0.2", "IPPrefixLen": 24,
                                  "Gateway": "10.213.0.1", "MacAddress": "02:42:0a:d5:00:02"}},
          "ports": [{"container_port": 80, "protocol": "tcp", "host_ip": "", "host_port": 8080},
                    {"container_port": 53, "protocol": "udp", "host_ip": "::1", "host_port": 5353}],
          "dns_servers": ["10.213.0.1"], "dns_search": ["net.internal"]}


@pytest.fixture
def host_resolv(monkeypatch, tmp_path):
    f = tmp_path / "resolv.conf"
    f.write_text("nameserver 127.0.0.53\noptions edns0\nsearch host.example\n")
    real_open = open
    monkeypatch.setattr("builtins.open",
                        lambda p, *a, **k: real_open(f if p == "/etc/resolv.conf" else p, *a, **k))
    return f


def test_hosts_file_from_the_record():
    n = {"mode": "networks", "extra_hosts": ["a.example:192.0.2.1", "gw:host-gateway"]}
    text = spec.hosts_file("box", n, RECORD)
    assert "192.0.2.1\ta.example\n" in text and "10.213.0.1\tgw\n" in text
    assert text.endswith("10.213.0.2\tbox\n") and "127.0.1.1" not in text
    assert spec.hosts_file("box", "none").endswith("127.0.1.1\tbox\n")


def test_resolv_conf_rules(host_resolv):
    # the record's resolver and search domain; the host's options kept
    assert spec.resolv_conf({"mode": "networks"}, RECORD) == \
        "options edns0\nsearch net.internal\nnameserver 10.213.0.1\n"
    # --dns wins over the record (its search domains go with it), --dns-option replaces
    assert spec.resolv_conf({"mode": "networks", "dns": ["192.0.2.53"],
                             "dns_options": ["ndots:2"]}, RECORD) == \
        "search host.example\nnameserver 192.0.2.53\noptions ndots:2\n"
    # no resolver left on the default network: docker's fallback
    assert "nameserver 8.8.8.8\nnameserver 8.8.4.4\n" in spec.resolv_conf({"mode": "networks"}, {})
    # none: as before (the host's minus loopback, no fallback)
    assert spec.resolv_conf("none") == "options edns0\nsearch host.example\n"
    assert spec.resolv_conf({"mode": "none", "dns_search": ["."]}) == "options edns0\n"


def _container(networking, record, status="running", **kw):
    c = Container(id="c" * 64, name="box", image_id="i", image_name="img", created="",
                  storage_driver="vfs", config=ContainerConfig(image="img", network="bridge",
                                                               networking=networking, **kw))
    c.state.status, c.state.network = status, record
    return c


def test_inspect_port_and_ps_views(tmp_path):
    from pyrt_core.cli.containers import ports

    n = {"mode": "networks", "attachments": [{"network": "bridge"}],
         "ports": [{"container_port": 80, "protocol": "tcp", "host_ip": "", "host_port": 8080},
                   {"container_port": 53, "protocol": "udp", "host_ip": "::1", "host_port": 0}]}
    c = _container(n, RECORD, expose=["90/tcp"])
    assert ports.ports_map(c) == {"90/tcp": None,
                                  "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                                  "53/udp": [{"HostIp": "::1", "HostPort": "5353"}]}
    assert ports.ports_column(c) == "90/tcp, 0.0.0.0:8080->80/tcp, [::1]:5353->53/udp"
    assert ports.port_bindings(c) == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                      "53/udp": [{"HostIp": "::1", "HostPort": ""}]}
    e = types.SimpleNamespace(settings=types.SimpleNamespace(runroot=str(tmp_path)))
    ns = ports.network_settings(e, c)
    assert ns["IPAddress"] == "10.213.0.2" and ns["Gateway"] == "10.213.0.1"
    assert ns["Networks"]["bridge"]["MacAddress"] == "02:42:0a:d5:00:02"
    stopped = _container(n, {}, status="exited")
    ns = ports.network_settings(e, stopped)
    assert ns["IPAddress"] == "" and ns["Ports"] == {} and ns["Networks"]["bridge"]["IPAddress"] == ""
    assert ports.ports_column(stopped) == ""
