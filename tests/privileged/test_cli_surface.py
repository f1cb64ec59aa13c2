"""The everyday command line a docker user types (issue 16): inspect in docker's shape and
its -f templates, ps/images filters and formats, labels, paused containers, rename,
management aliases, and the logs of a container run in the foreground; through real
containers."""
import json
import os

import pytest

from pyrt_core.testing.lifecycle import inspect, wait_for


@pytest.fixture
def cli(detached_cli):
    return detached_cli


def _lines(r):
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_inspect_format_on_a_running_container(cli, tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    cid = cli("run", "-d", "--network", "none", "--name", "web", "-l", "tier=front", "-l", "com.example.v=1",
              "-e", "A=1", "-v", f"{src}:/data:ro", cli.image, "sleep", "300",
              check=True).stdout.strip()
    pid = inspect(cli, "web")["State"]["Pid"]
    assert pid > 0 and os.path.exists(f"/proc/{pid}")

    def f(template, *refs):
        return cli("inspect", "-f", template, *(refs or ("web",)), check=True).stdout

    assert f("{{.State.Pid}}") == f"{pid}\n"
    assert f("{{.Name}}") == "/web\n"
    assert f("{{.Id}}") == cid + "\n"
    assert f("{{.State.Status}} {{.State.Running}}") == "running true\n"
    assert f('{{index .Config.Labels "tier"}}') == "front\n"
    assert f('{{index .Config.Labels "com.example.v"}}') == "1\n"
    assert f("{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}}{{end}}") == f"{src}:/data:false\n"
    assert f("{{json .Config.Labels}}") == '{"com.example.v":"1","tier":"front"}\n'
    config = json.loads(f("{{json .Config}}"))
    assert config["Cmd"] == ["sleep", "300"] and "A=1" in config["Env"] and config["Image"] == cli.image
    assert f("{{if .State.Running}}up{{else}}down{{end}} {{.Config.Cmd | len}}") == "up 2\n"
    assert f("{{.HostConfig.Binds}}") == f"[{src}:/data:ro]\n"
    assert f("{{.Name | upper}}") == "/WEB\n"
    assert f('{{join .Args ","}}') == "300\n" and f("{{.Path}}") == "sleep\n"
    # one line per object, containers and images alike
    assert f("{{.Name}}", "web", "web") == "/web\n/web\n"
    assert cli("inspect", "-f", "{{.Id}}", cli.image, check=True).stdout.startswith("sha256:")
    # the full document: docker's top-level keys, pyrt's own under Pyrt
    doc = inspect(cli, "web")
    for key in ("Id", "Created", "Path", "Args", "State", "Image", "Name", "RestartCount",
                "Driver", "Mounts", "Config", "HostConfig", "NetworkSettings", "LogPath"):
        assert key in doc, key
    for key in ("Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid",
                "ExitCode", "Error", "StartedAt", "FinishedAt"):
        assert key in doc["State"], key
    assert doc["HostConfig"]["NetworkMode"] == "none" and doc["Pyrt"]["Monitor"] == "conmon"
    assert doc["Config"]["Labels"] == {"com.example.v": "1", "tier": "front"}


def test_bad_templates_are_one_line_and_125(cli):
    cli("create", "--name", "idle", cli.image, "true", check=True)
    for argv in (("inspect", "-f", "{{.State.Pid", "idle"), ("inspect", "-f", "{{nosuch .}}", "idle"),
                 ("ps", "-a", "--format", "{{.ID"), ("images", "--format", "{{end}}")):
        r = cli(*argv)
        assert r.returncode == 125, argv
        assert r.stderr.startswith("Error: template parsing error: template: ") and \
            r.stderr.count("\n") == 1, r.stderr
        assert r.stdout == ""
    r = cli("ps", "-a", "--filter", "colour=red")
    assert r.returncode == 125 and r.stderr == "Error: invalid filter 'colour'\n"
    r = cli("ps", "--filter", "status=sleepy")
    assert r.returncode == 125 and "invalid filter 'status=sleepy'" in r.stderr


def test_ps_filters_and_formats(cli):
    first = cli("create", "--name", "c1", "-l", "team=a", cli.image, "true", check=True).stdout.strip()
    cli("run", "--name", "c2", "-l", "team=b", cli.image, "sh", "-c", "exit 3", check=False)
    cli("run", "-d", "--name", "c3", "-l", "team=a", "-l", "run", cli.image, "sleep", "300", check=True)
    last = cli("create", "--name", "c4", cli.image, "true", check=True).stdout.strip()

    def names(*argv):
        return _lines(cli("ps", *argv, "--format", "{{.Names}}"))

    assert names() == ["c3"]
    assert names("-a") == ["c4", "c3", "c2", "c1"]  # newest first, as docker
    assert names("-a", "--filter", "label=team=a") == ["c3", "c1"]
    assert names("-a", "--filter", "label=team") == ["c3", "c2", "c1"]
    assert names("-a", "--filter", "label=team=a", "--filter", "label=run") == ["c3"]
    assert names("--filter", "status=exited") == ["c2"]  # status lists stopped ones too
    assert names("--filter", "status=created") == ["c4", "c1"]
    assert names("-a", "--filter", "exited=3") == ["c2"]
    assert names("-a", "--filter", "exited=0") == []
    assert names("-a", "--filter", "name=c[12]") == ["c2", "c1"]
    assert names("-a", "--filter", "name=^/c3$") == ["c3"]
    assert names("-a", "--filter", f"id={first[:10]}") == ["c1"]
    assert names("-a", "--filter", f"ancestor={cli.image}") == ["c4", "c3", "c2", "c1"]
    assert names("-a", "--filter", "ancestor=no/such") == []
    assert names("-a", "--filter", "before=c3") == ["c2", "c1"]
    assert names("-a", "--filter", "since=c2") == ["c4", "c3"]
    assert names("-n", "2") == ["c4", "c3"] and names("-l") == ["c4"]
    assert _lines(cli("ps", "-lq")) == [last[:12]]
    assert _lines(cli("ps", "-lq", "--no-trunc")) == [last]
    # docker's ps fields, json one object a line
    rows = [json.loads(x) for x in _lines(cli("ps", "-a", "--format", "json"))]
    assert [r["Names"] for r in rows] == ["c4", "c3", "c2", "c1"]
    by = {r["Names"]: r for r in rows}
    assert set(by["c3"]) == {"Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes",
                             "Mounts", "Names", "Networks", "Ports", "RunningFor", "Size",
                             "State", "Status"}
    assert by["c3"]["State"] == "running" and by["c3"]["Status"].startswith("Up ")
    assert by["c3"]["Labels"] == "run=,team=a" and by["c3"]["Command"] == '"sleep 300"'
    assert by["c2"]["State"] == "exited" and by["c2"]["Status"].startswith("Exited (3) ")
    assert by["c1"]["Status"] == "Created" and by["c1"]["ID"] == first[:12]
    # a table with docker's headers, aligned; a method of the row: .Label
    table = _lines(cli("ps", "-a", "--format", "table {{.ID}}\\t{{.Names}}\\t{{.Label \"team\"}}"))
    assert table[0].split() == ["CONTAINER", "ID", "NAMES", "LABEL"]
    assert table[1].split() == [last[:12], "c4"] and table[2].split() == [by["c3"]["ID"], "c3", "a"]
    assert table[0].index("NAMES") == table[2].index(" c3 ") + 1  # (not a "c3" of the id)
    assert _lines(cli("ps", "-a", "--filter", "name=c2", "--format", "{{.Names}}: {{.Status | lower}}"))[0] \
        .startswith("c2: exited (3) ")
    # the default table, and --size
    out = _lines(cli("ps", "-a", "-s"))
    assert out[0].split()[-1] == "SIZE" and "PORTS" in out[0]
    # management aliases
    assert _lines(cli("container", "ls", "-a", "--format", "{{.Names}}")) == ["c4", "c3", "c2", "c1"]
    assert _lines(cli("container", "list", "-q")) == [by["c3"]["ID"]]
    assert cli("container", "inspect", "-f", "{{.Name}}", "c1", check=True).stdout == "/c1\n"
    r = cli("container", "inspect", cli.image)
    assert r.returncode == 125 and "no such container" in r.stderr
    assert cli("container", "rm", "c1", check=True).stdout == "c1\n"
    assert "c1" not in names("-a")


def test_paused_container_shows_paused(cli):
    cli("run", "-d", "--name", "frozen", cli.image, "sleep", "300", check=True)
    cli("pause", "frozen", check=True)
    try:
        [row] = [json.loads(x) for x in _lines(cli("ps", "--format", "json"))]
        assert row["State"] == "paused" and row["Status"].startswith("Up ") and \
            row["Status"].endswith(" (Paused)")
        assert cli("inspect", "-f", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
                   "frozen", check=True).stdout == "paused true true\n"
        assert _lines(cli("ps", "--filter", "status=paused", "-q")) == [row["ID"]]
        assert _lines(cli("ps", "--filter", "status=running", "-q")) == []
    finally:
        cli("unpause", "frozen", check=True)
    assert cli("inspect", "-f", "{{.State.Status}}", "frozen", check=True).stdout == "running\n"


def test_logs_of_a_foreground_container(cli):
    r = cli("run", "--name", "fg", cli.image, "sh", "-c", "echo out; echo err >&2; printf tail")
    assert (r.returncode, r.stdout, r.stderr) == (0, "out\ntail", "err\n")
    lg = cli("logs", "fg")
    assert (lg.returncode, lg.stdout, lg.stderr) == (0, "out\ntail", "err\n")
    lines = [json.loads(x) for x in _lines(cli("logs", "--format", "json", "fg"))]
    assert sorted((x["stream"], x["log"]) for x in lines) == [
        ("stderr", "err\n"), ("stdout", "out\n"), ("stdout", "tail")]
    assert all(x["time"].endswith("Z") for x in lines)
    # a second run appends, as docker's log of a restarted container
    assert cli("start", "-a", "fg").returncode == 0
    assert cli("logs", "fg", check=True).stdout.count("out\n") == 2


def test_logs_of_a_foreground_tty_container(cli):
    from pyrt_core.testing.terminal import Term

    term = Term(cli.argv("run", "-t", "--name", "tt", cli.image, "echo", "on-a-tty"))
    term.expect(b"on-a-tty")
    assert term.wait() == 0
    assert cli("logs", "tt", check=True).stdout.replace("\r", "") == "on-a-tty\n"


def test_rename(cli):
    cid = cli("run", "-d", "--name", "old", cli.image, "sleep", "300", check=True).stdout.strip()
    cli("create", "--name", "taken", cli.image, "true", check=True)
    assert cli("rename", "old", "new").returncode == 0
    assert cli("inspect", "-f", "{{.Name}} {{.State.Running}}", "new", check=True).stdout == "/new true\n"
    assert cli("inspect", "old").returncode != 0
    for new, msg in (("taken", "already in use"), ("new", "same name"), ("a/b", "Invalid container name"),
                     ("x", "Invalid container name"), ("..", "Invalid container name")):
        r = cli("rename", "new", new)
        assert r.returncode == 125 and msg in r.stderr and r.stderr.count("\n") == 1, (new, r.stderr)
    assert cli("container", "rename", cid[:12], "again", check=True).returncode == 0
    assert cli("stop", "-t", "1", "again", check=True).returncode == 0  # its exit is recorded
    assert cli("inspect", "-f", "{{.Name}} {{.State.Status}}", cid, check=True).stdout == "/again exited\n"
    cli("create", "--name", "old", cli.image, "true", check=True)  # the old name is free again


def test_images_filters_and_formats(cli):
    iid = cli("images", "-q", "--no-trunc", check=True).stdout.split()[0]
    cli("tag", cli.image, "other/name:v1", check=True)
    rows = [json.loads(x) for x in _lines(cli("images", "--format", "json"))]
    assert {(r["Repository"], r["Tag"]) for r in rows} == {("demo/busybox", "latest"), ("other/name", "v1")}
    assert set(rows[0]) >= {"Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
                            "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize"}
    assert _lines(cli("images", "--filter", "reference=other/*", "--format", "{{.Repository}}:{{.Tag}}")) \
        == ["other/name:v1"]
    assert _lines(cli("images", "--filter", "reference=demo/busybox:latest", "-q")) == [iid[7:19]]
    assert _lines(cli("images", "--filter", "dangling=true", "-q")) == []
    assert _lines(cli("images", "--filter", "dangling=false", "-q")) == [iid[7:19]]
    assert _lines(cli("images", "--filter", "label=nosuch", "-q")) == []
    table = _lines(cli("image", "ls", "--format", "table {{.Repository}}\\t{{.ID}}"))
    assert table[0].split() == ["REPOSITORY", "IMAGE", "ID"] and len(table) == 3
    assert cli("image", "inspect", "-f", "{{.Id}} {{.Os}}", "other/name:v1", check=True).stdout == \
        f"{iid} linux\n"
    assert cli("image", "rm", "other/name:v1").returncode == 0
    r = cli("images", "--filter", "dangling=maybe")
    assert r.returncode == 125 and "invalid filter 'dangling=maybe'" in r.stderr
