"""``inspect -f``'s lazy document (cli/containers/inspect_view.py) gives what the full
document gives: each template scripts use, run over both, for records of every kind (a
created container of an image's command, a running one with networks, ports and mounts,
an exited one whose image is gone); and a template of lean fields builds nothing more."""
from __future__ import annotations

import json
import os

import pytest

from pyrt_core.cli.containers.docker_shape import container_inspect
from pyrt_core.cli.containers.inspect_view import LEAN, LazyInspect, config_dict
from pyrt_core.cli.gotemplate import TemplateError, parse
from pyrt_core.config import load_settings
from pyrt_core.engine import Engine
from pyrt_core.models import (Container, ContainerConfig, ContainerState, IdMap, Image,
                              ImageConfig, VolumeSpec)

IMAGE = "sha256:" + "1" * 64
GONE = "sha256:" + "2" * 64

#: templates seen in the wild (issue 16's list first), and the corners of the lazy path:
#: the document used whole, through $, with/range over it, a field it lacks, mixed reads
TEMPLATES = [
    "{{.State.Pid}}", "{{json .Config}}", "{{range .Mounts}}{{.Source}}{{end}}",
    '{{index .Config.Labels "k"}}', "{{.Name}}", "{{.NetworkSettings.IPAddress}}",
    "{{upper .Name}}",
    "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{.State.StartedAt}}",
    "{{.Id}} {{.Created}} {{.Image}} {{.Path}} {{.Args}} {{.RestartCount}} {{.Driver}}",
    "{{json .State}}", "{{json .NetworkSettings}}", "{{json .GraphDriver}}",
    "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}",
    "{{range $p, $b := .NetworkSettings.Ports}}{{$p}}->{{(index $b 0).HostPort}}{{end}}",
    "{{.LogPath}} {{.HostsPath}} {{.ResolvConfPath}} {{.HostnamePath}}",
    "{{.HostConfig.NetworkMode}} {{.HostConfig.Binds}}", "{{.Config.Env}}",
    "{{.Id}} {{.Config.Image}} {{.State.Pid}}", "{{.Config.Image}} {{.Id}}",
    "{{json .}}", "{{.}}", "{{$.State.Status}}", "{{with .State}}{{.Status}}{{end}}",
    "{{range $k, $v := .}}{{$k}} {{end}}", "{{len .}}", '{{index . "Name"}}',
    "{{.Nope}}", "{{.State.Nope}}", "{{if .State.Running}}up{{else}}down{{end}}",
    "{{$x := .}}{{$x.Name}}", "{{.Pyrt.ImageName}} {{.Mounts}}",
    "{{.HostConfig.Tmpfs}}", "{{json .HostConfig.Tmpfs}}", "{{json .HostConfig}}",
    "{{json .State.Health}}", "{{.State.Health.Status}}", "{{json .Config.Healthcheck}}",
]


def _engine(tmp_path) -> Engine:
    return Engine(load_settings(root=str(tmp_path / "root"), runroot=str(tmp_path / "run"),
                                storage_driver="vfs", env={}))


def _image(engine) -> None:
    cfg = ImageConfig(entrypoint=["/entry"], cmd=["serve", "--port", "80"], env=["A=1", "PATH=/bin"],
                      working_dir="/srv", user="app", exposed_ports=["80/tcp"],
                      volumes=["/data"], stop_signal="SIGQUIT", labels={"k": "image", "j": "x"})
    img = Image(id=IMAGE, names=["img:latest"], config=cfg, created="2026-01-01T00:00:00Z")
    os.makedirs(os.path.join(engine.settings.root, "images"), exist_ok=True)
    with open(os.path.join(engine.settings.root, "images", "images.json"), "w") as f:
        json.dump({"images": {IMAGE: img.to_dict()}, "names": {"img:latest": IMAGE}}, f)


def _records(engine) -> list[str]:
    store = engine.containers
    net = {"mode": "networks",
           "attachments": [{"network": "pyrt", "aliases": ["web"], "ipv4": "10.213.0.5"},
                           {"network": "back"}],
           "ports": [{"container_port": 80, "protocol": "tcp", "host_port": 8080, "host_ip": ""}],
           "dns": ["10.213.0.1"]}
    record = {"networks": {"pyrt": {"IPAddress": "10.213.0.5", "IPPrefixLen": 24,
                                    "Gateway": "10.213.0.1", "MacAddress": "02:42:0a:d5:00:05"}},
              "ports": [{"container_port": 80, "protocol": "tcp", "host_port": 8080, "host_ip": ""}]}
    made = [
        Container(id="a" * 64, name="created1", image_id=IMAGE, image_name="img:latest",
                  created="2026-01-02T00:00:00Z", storage_driver="vfs",
                  config=ContainerConfig(image="img:latest", labels={"k": "mine"}, env=["B=2"]),
                  monitor="conmon"),
        Container(id="b" * 64, name="running1", image_id=IMAGE, image_name="img:latest",
                  created="2026-01-03T00:00:00Z", storage_driver="vfs",
                  config=ContainerConfig(
                      image="img:latest", command=["sh", "-c", "sleep 1"], entrypoint=[],
                      network="pyrt", networking=net, expose=["53/udp"], tty=True,
                      interactive=True, detach=True, restart_policy="always",
                      volumes=[VolumeSpec("/host/a", "/a", readonly=True),
                               VolumeSpec("vol1", "/v", type="volume"),
                               VolumeSpec("", "/t", type="tmpfs"),
                               VolumeSpec.parse_tmpfs("/run:size=64m,mode=1777")],
                      healthcheck={"Test": ["CMD-SHELL", "true"], "Interval": 30_000_000_000},
                      userns=True, uidmaps=[IdMap(0, 100000, 65536)],
                      gidmaps=[IdMap(0, 100000, 1), IdMap(1, 200000, 2)]),
                  state=ContainerState(status="running", pid=4242, started_at="2026-01-03T00:00:01Z",
                                       run=2, restart_count=1, network=record),
                  cgroup_manager="cgroupfs", monitor="conmon", runtime="/usr/bin/pyrt-runtime"),
        Container(id="c" * 64, name="exited1", image_id=GONE, image_name="gone:1",
                  created="2026-01-04T00:00:00Z", storage_driver="vfs",
                  config=ContainerConfig(image="gone:1", entrypoint=["/bin/x"], hostname="h",
                                         healthcheck={"Test": ["CMD", "false"]}),
                  state=ContainerState(status="exited", exit_code=3, error="boom",
                                       started_at="2026-01-04T00:00:01Z",
                                       finished_at="2026-01-04T00:00:02Z", oom_killed=True)),
    ]
    for c in made:
        store.save(c)
        store.reserve_name(c.name, c.id)
    with open(os.path.join(store.path(made[1].id), "health.json"), "w") as f:
        json.dump({"Status": "healthy", "FailingStreak": 0, "Run": 2,
                   "Log": [{"Start": "s", "End": "e", "ExitCode": 0, "Output": "ok"}]}, f)
    # a record of an earlier pyrt: volumes as the first -v wrote them (source, destination,
    # readonly), no networking, no labels
    old = made[1].to_dict()
    old.update(id="d" * 64, name="old1")
    old["config"]["volumes"] = [{"source": "/h", "destination": "/c", "readonly": False},
                                {"source": "/r", "destination": "/ro", "readonly": True}]
    for key in ("networking", "labels", "expose", "devices", "cap_add"):
        del old["config"][key]
    for key in ("network", "paused", "error"):
        del old["state"][key]
    old["config"]["a_later_field"] = {"x": 1}  # a newer pyrt's: the model ignores it
    os.makedirs(store.path(old["id"]))
    with open(os.path.join(store.path(old["id"]), "container.json"), "w") as f:
        json.dump(old, f)
    store.reserve_name("old1", old["id"])
    return [c.id for c in made] + [old["id"]]


@pytest.fixture
def engine(tmp_path):
    e = _engine(tmp_path)
    _image(e)
    _records(e)
    return e


def _render(tmpl, obj) -> str:
    try:
        return tmpl.execute(obj)
    except TemplateError as e:
        return f"error: {e}"


@pytest.mark.parametrize("name", ["created1", "running1", "exited1", "old1"])
def test_lazy_document_renders_as_the_full_one(engine, name):
    full = container_inspect(engine, engine.containers.get(name), {})
    for text in TEMPLATES + ["{{json .%s}}" % k for k in LEAN]:
        tmpl = parse(text)
        lazy = LazyInspect(engine, engine.containers.find(name), {})
        assert _render(tmpl, lazy) == _render(tmpl, full), text


@pytest.mark.parametrize("name", ["created1", "running1", "exited1", "old1"])
def test_every_lean_field_is_the_full_documents(engine, name):
    full = container_inspect(engine, engine.containers.get(name), {})
    assert set(LEAN) <= set(full)
    lazy = LazyInspect(engine, engine.containers.find(name), {})
    for key in LEAN:
        assert lazy.template_field(key) == full[key], key
    assert lazy._full is None  # none of them built the whole document
    assert lazy.template_value() == full


def test_lean_template_builds_nothing_more(engine):
    lazy = LazyInspect(engine, engine.containers.find("running1"))
    out = parse("{{.State.Pid}} {{.Name}} {{upper .Name}} {{.NetworkSettings.IPAddress}}"
                "{{.Path}} {{.Args}}").execute(lazy)
    assert out == "4242 /running1 /RUNNING1 10.213.0.5sh [-c sleep 1]"
    assert lazy._full is None
    assert parse("{{.HostConfig.RestartPolicy.Name}} {{range .Mounts}}{{.Destination}} {{end}}"
                 ).execute(lazy) == "always /a /v /t "
    assert lazy._full is None
    assert parse("{{.Pyrt.OCIRuntime}} {{len .Pyrt.ContainerConfig.volumes}}").execute(lazy) == \
        "/usr/bin/pyrt-runtime 4"
    assert lazy._full is None
    assert parse("{{len .}}").execute(lazy) == str(len(LEAN))
    assert lazy._full is not None


@pytest.mark.parametrize("name", ["created1", "running1", "exited1", "old1"])
def test_inspect_prints_the_full_documents_text(engine, name):
    # `inspect NAME` prints the lean document: the same text, key order included
    from pyrt_core.jsonlean import dumps_indented
    from pyrt_core.models import Container

    c = engine.containers.get(name)
    full = container_inspect(engine, c, {})
    lazy = LazyInspect(engine, engine.containers.find(name), {})
    assert dumps_indented([lazy.template_value()], 4, ensure_ascii=False) == \
        json.dumps([full], indent=4, ensure_ascii=False)
    record = engine.containers.find(name)
    assert json.dumps(config_dict(record.config)) == \
        json.dumps(Container.from_dict(record.to_dict()).config.to_dict())


@pytest.mark.parametrize("bad", [{"source": "/h", "destination": "/c", "later": 1},
                                 {"destination": "/c"}, "/h:/c"])
def test_a_volume_the_model_refuses_is_refused_as_before(engine, bad):
    # the lean view gives way to the model, whose error is what inspect always said
    from pyrt_core.models import Container

    record = engine.containers.find("old1")
    record.config._data["volumes"] = [bad]
    with pytest.raises(AttributeError):
        config_dict(record.config)
    with pytest.raises((TypeError, AttributeError)) as model:
        Container.from_dict(record.to_dict())
    with pytest.raises(model.type):
        LazyInspect(engine, record).template_value()


def test_errors_are_the_full_documents(engine):
    for text in ["{{.State.Pid.X}}", "{{.Name 1}}", "{{index .Args 5}}", "{{range .State.Status}}{{end}}"]:
        tmpl = parse(text)
        full = container_inspect(engine, engine.containers.get("exited1"), {})
        lazy = LazyInspect(engine, engine.containers.find("exited1"))
        assert _render(tmpl, lazy) == _render(tmpl, full)
        assert _render(tmpl, lazy).startswith("error: template: :1:")


OCI_CONFIGS = [
    None, {}, {"Entrypoint": "/bin/sh", "Cmd": "x"}, {"Entrypoint": [], "Cmd": None},
    {"Env": ["A=1"], "WorkingDir": "/w", "User": "1:2", "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
     "Volumes": {"/b": {}, "/a": {}}, "StopSignal": "SIGINT", "Labels": {"z": "1", "a": "2"}},
    {"Env": None, "WorkingDir": None, "User": None, "ExposedPorts": None, "Volumes": None,
     "Labels": None},
]
FIELDS = ("entrypoint", "cmd", "env", "working_dir", "user", "exposed_ports", "volumes",
          "stop_signal", "labels")


@pytest.mark.parametrize("oci", OCI_CONFIGS)
def test_image_config_view_is_the_models(oci):
    # inspect's Config reads the image index's view (no image store): the same fields
    from pyrt_core.images.configview import ImageConfigView

    view, model = ImageConfigView(oci), ImageConfig.from_oci(oci)
    assert {f: getattr(view, f) for f in FIELDS} == {f: getattr(model, f) for f in FIELDS}


def test_image_config_view_reads_what_the_image_store_reads(engine):
    from pyrt_core.images.configview import image_config

    view, model = image_config(engine.settings.root, IMAGE), engine.images.get(IMAGE).config
    assert {f: getattr(view, f) for f in FIELDS} == {f: getattr(model, f) for f in FIELDS}
    assert model.entrypoint == ["/entry"] and model.labels == {"k": "image", "j": "x"}
    gone = image_config(engine.settings.root, GONE)
    assert {f: getattr(gone, f) for f in FIELDS} == {f: getattr(ImageConfig(), f) for f in FIELDS}


JSON_DOCS = [{"a": [1, 2.5, None, True, {}], "b": "é\"\n\t\u2028<&>", "c": {"x": {"y": []}}},
             [], {}, "x", "ünï", 1.0, 1e300, float("nan"), 0, False, None,
             {1: "a", True: "b", None: "c", 2.5: "d"}, {"o": object, "s": {1}}]


@pytest.mark.parametrize("doc", JSON_DOCS, ids=repr)
def test_template_json_is_jsons(doc):
    # {{json .X}} encodes with json's C encoder without importing json (re, enum)
    from pyrt_core.jsonlean import dumps_text

    assert dumps_text(doc, default=str) == json.dumps(doc, ensure_ascii=False, separators=(",", ":"),
                                                      default=str)
    if "o" not in (doc if isinstance(doc, dict) else {}):
        assert dumps_text(doc) == json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    else:
        with pytest.raises(TypeError):
            dumps_text(doc)


def test_a_lean_field_the_view_cannot_give_comes_from_the_full_document(engine, monkeypatch):
    import pyrt_core.cli.containers.inspect_view as iv

    def needs_the_model(d):
        return d.record.config.volumes[0].destination  # a dict in the lean view

    monkeypatch.setitem(iv.LEAN, "Config", needs_the_model)
    lazy = LazyInspect(engine, engine.containers.find("running1"))
    full = container_inspect(engine, engine.containers.get("running1"), {})
    assert parse("{{json .Config}}").execute(lazy) == parse("{{json .Config}}").execute(full)
    assert lazy._full is not None


def test_volume_defaults_are_the_models():
    from pyrt_core.cli.containers.inspect_view import VOLUME_DEFAULTS
    from pyrt_core.records import MISSING, field_spec, fields

    model = {}
    for name in fields(VolumeSpec):
        spec = field_spec(VolumeSpec, name)
        if spec.factory is None and spec.default is MISSING:
            continue
        model[name] = spec.factory if spec.factory is not None else spec.default
    assert VOLUME_DEFAULTS == model
