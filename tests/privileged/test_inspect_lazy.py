"""``inspect -f`` reads a container's record through its lean view and builds only the
fields the template reads (cli/containers/inspect_view.py); this proves, on real
containers, that what a script gets is what the full document (docker_shape.container_inspect,
``inspect`` without ``-f``) gives for the templates seen in the wild: a running container on
a network (the test network plugin of test_network_core.py, whose host side is a namespace
the test makes) with labels, env, a bind mount, a named volume, a ``--tmpfs`` mount, a
published port and a health check; a created one of the image's command; an exited one.
``inspect`` without ``-f`` prints that document whole (the same text as before)."""
from __future__ import annotations

import json

from pyrt_core.cli.containers.docker_shape import container_inspect
from pyrt_core.cli.gotemplate import parse
from pyrt_core.config import load_settings
from pyrt_core.engine import Engine
from test_network_core import net  # noqa: F401  (the fixture: a network of the test's own)

#: issue 16's templates first, then every top-level field and the usual nested reads
TEMPLATES = [
    "{{json .Config}}", "{{.State.Pid}}", "{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}",
    '{{index .Config.Labels "tier"}}', "{{.NetworkSettings.IPAddress}}", "{{json .HostConfig.Tmpfs}}",
    "{{.Name}}",
    "{{.HostConfig.Tmpfs}}", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Driver}} {{.Mode}}|{{end}}",
    "{{json .Mounts}}", "{{json .HostConfig}}", "{{json .State}}", "{{json .NetworkSettings}}",
    "{{json .State.Health}}", "{{json .Config.Healthcheck}}", "{{json .Config.Labels}}",
    "{{.Config.Env}}", "{{.Config.Cmd}} {{.Config.Entrypoint}} {{.Config.Hostname}} {{.Config.Image}}",
    "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}}/{{$v.IPPrefixLen}} {{end}}",
    "{{json .NetworkSettings.Ports}}", "{{json .HostConfig.PortBindings}}",
    "{{.HostConfig.Binds}} {{.HostConfig.NetworkMode}} {{.HostConfig.RestartPolicy.Name}}",
    "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{.State.StartedAt}} {{.State.FinishedAt}}",
    "{{.Id}} {{.Created}} {{.Image}} {{.Path}} {{.Args}} {{.RestartCount}} {{.Driver}}",
    "{{.LogPath}} {{.HostsPath}} {{.ResolvConfPath}} {{.HostnamePath}} {{.GraphDriver.Name}}",
    "{{if .State.Running}}up{{else}}down{{end}} {{len .Config.Env}}", "{{.Pyrt.OCIRuntime}}",
    "{{json .}}",
]


def _render(engine, template: str, names: list[str]) -> str:
    """The template over the full document of each container, one line each (as the
    CLI prints them)."""
    tmpl, cache = parse(template), {}
    return "".join(tmpl.execute(container_inspect(engine, engine.containers.get(n), cache)) + "\n"
                   for n in names)


def test_inspect_f_gives_the_full_documents_fields(monkeypatch, net, tmp_path):  # noqa: F811
    cli = net
    # the test plugin's network, whatever else is installed (monkeypatch comes before net:
    # its undo runs after net's clean-up, which tears the network down through the plugin)
    monkeypatch.setenv("PYRT_NETWORK_BACKEND", "testveth")
    src = tmp_path / "data"
    src.mkdir()
    cli("run", "-d", "--name", "web", "-l", "tier=front", "-l", "com.example.v=1", "-e", "A=1",
        "-v", f"{src}:/data:ro", "-v", "vol1:/v", "--tmpfs", "/scratch:size=8m", "-p", "8080:80",
        "--hostname", "webhost", "--health-cmd", "true", "--health-interval", "1h",
        cli.image, "sleep", "300", check=True)
    cli("create", "--name", "idle", "--network", "none", cli.image, check=True)
    assert cli("run", "--name", "done", "--network", "none", "--entrypoint", "sh",
               cli.image, "-c", "exit 3").returncode == 3
    names = ["web", "idle", "done"]
    engine = Engine(load_settings(root=cli.root, runroot=cli.runroot))
    # the network's fields are there to compare (not empty on both sides)
    assert cli("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web",
               check=True).stdout == f"{cli.subnet}.2\n"
    for template in TEMPLATES + ["{{json .%s}}" % k for k in json.loads(
            cli("inspect", "web", check=True).stdout)[0]]:
        lazy = cli("inspect", "-f", template, *names, check=True).stdout
        assert lazy == _render(engine, template, names), template
    # `inspect` (JSON) prints the lean document too: container_inspect's text, key order
    # included
    printed = cli("inspect", *names, check=True).stdout
    assert printed == json.dumps([container_inspect(engine, engine.containers.get(n))
                                  for n in names], indent=4, ensure_ascii=False) + "\n"
