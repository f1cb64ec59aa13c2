"""pyrt's Go text/template subset (cli/gotemplate.py): the templates docker users write,
Go's printing and errors, docker's functions and table directive."""
import subprocess
import sys

import pytest

from pyrt_core.cli.gotemplate import TemplateError, parse, printable, render, render_rows, tabwrite

INSPECT = {
    "Id": "4f1b2c3d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcdef",
    "Name": "/web",
    "Path": "sleep", "Args": ["300"],
    "State": {"Status": "running", "Running": True, "Paused": False, "Pid": 4242, "ExitCode": 0,
              "StartedAt": "2024-05-01T10:00:00.000000Z", "Health": None},
    "Config": {"Hostname": "4f1b2c3d4e5f", "Env": ["PATH=/usr/bin:/bin", "A=1"],
               "Cmd": ["sleep", "300"], "Entrypoint": None, "Image": "busybox",
               "Labels": {"com.example.version": "1.0", "tier": "front"},
               "ExposedPorts": {"80/tcp": {}}, "Tty": False},
    "HostConfig": {"Binds": ["/srv:/data:ro"], "Memory": 536870912, "NanoCpus": 1500000000,
                   "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                   "PortBindings": {}, "CapAdd": None, "Privileged": False},
    "Mounts": [{"Type": "bind", "Source": "/srv", "Destination": "/data", "RW": False},
               {"Type": "volume", "Name": "pgdata", "Source": "/var/lib/pyrt/volumes/pgdata/_data",
                "Destination": "/var/lib/postgresql/data", "RW": True}],
    "NetworkSettings": {"IPAddress": "", "Ports": {},
                        "Networks": {"bridge": {"IPAddress": "172.17.0.2", "Gateway": "172.17.0.1",
                                                "MacAddress": "02:42:ac:11:00:02"}}},
    "RestartCount": 0,
}


@pytest.mark.parametrize("template, expected", [
    # from docker's documentation and everyday scripts
    ("{{.State.Pid}}", "4242"),
    ("{{.Name}}", "/web"),
    ("{{.Id}}", INSPECT["Id"]),
    ("{{.State.Status}}", "running"),
    ("{{.State.Running}}", "true"),
    ("{{.State.Paused}}", "false"),
    ("{{.RestartCount}}", "0"),
    ("{{json .Config.Labels}}", '{"com.example.version":"1.0","tier":"front"}'),
    ("{{json .State.Health}}", "null"),
    ("{{json .Args}}", '["300"]'),
    ('{{index .Config.Labels "tier"}}', "front"),
    ('{{index .Config.Labels "com.example.version"}}', "1.0"),
    ('{{index .Config.Labels "missing"}}', ""),
    ("{{.Config.Labels.tier}}", "front"),
    ("{{.Config.Labels.missing}}", "<no value>"),
    ("{{.NoSuchField}}", "<no value>"),
    ("{{.NoSuchField.Deeper}}", "<no value>"),
    ("{{range .Mounts}}{{.Source}} {{end}}", "/srv /var/lib/pyrt/volumes/pgdata/_data "),
    ("{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}}{{end}}{{end}}", "pgdata"),
    ("{{range $i, $m := .Mounts}}{{$i}}={{$m.Destination}};{{end}}",
     "0=/data;1=/var/lib/postgresql/data;"),
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "172.17.0.2"),
    ("{{range $net, $conf := .NetworkSettings.Networks}}{{$net}} {{$conf.Gateway}}{{end}}",
     "bridge 172.17.0.1"),
    ("{{(index .NetworkSettings.Networks \"bridge\").MacAddress}}", "02:42:ac:11:00:02"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}\n{{end}}",
     "com.example.version=1.0\ntier=front\n"),
    ("{{range $p, $conf := .Config.ExposedPorts}}{{$p}} {{end}}", "80/tcp "),
    ("{{.Config.Env}}", "[PATH=/usr/bin:/bin A=1]"),
    ("{{range .Config.Env}}{{println .}}{{end}}", "PATH=/usr/bin:/bin\nA=1\n"),
    ("{{join .Config.Cmd \" \"}}", "sleep 300"),
    ("{{join .Config.Env \",\"}}", "PATH=/usr/bin:/bin,A=1"),
    ("{{.Config.Cmd}}", "[sleep 300]"),
    ("{{.Config.Entrypoint}}", "<nil>"),
    ("{{.Config.Labels}}", "map[com.example.version:1.0 tier:front]"),
    ("{{.HostConfig.Binds}}", "[/srv:/data:ro]"),
    ("{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
     "on-failure:3"),
    ("{{.HostConfig.Memory}}", "536870912"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if not .State.Running}}down{{else if .State.Paused}}paused{{else}}up{{end}}", "up"),
    ("{{if and .State.Running (not .State.Paused)}}ok{{end}}", "ok"),
    ("{{if or .State.Paused .HostConfig.Privileged}}x{{else}}y{{end}}", "y"),
    ("{{if eq .State.Status \"running\" \"paused\"}}alive{{end}}", "alive"),
    ("{{if ne .State.ExitCode 0}}failed{{else}}fine{{end}}", "fine"),
    ("{{if gt .State.Pid 1}}big{{end}}", "big"),
    ("{{if lt (len .Mounts) 3}}few{{end}}", "few"),
    ("{{with .State}}{{.Status}}/{{.Pid}}{{end}}", "running/4242"),
    ("{{with .State.Health}}{{.Status}}{{else}}no health{{end}}", "no health"),
    ("{{with $x := .State.Pid}}{{$x}}{{end}}", "4242"),
    ("{{$name := .Name}}{{range .Mounts}}{{$name}}{{end}}", "/web/web"),
    ("{{$.Name}}", "/web"),
    ("{{range .Mounts}}{{$.Name}}:{{.Destination}} {{end}}", "/web:/data /web:/var/lib/postgresql/data "),
    ("{{.Name | upper}}", "/WEB"),
    ("{{.State.Status | title}}", "Running"),
    ("{{\"Hello\" | lower}}", "hello"),
    ("{{.Name | printf \"%q\"}}", '"/web"'),
    ("{{printf \"%s:%d\" .Name .State.Pid}}", "/web:4242"),
    ("{{printf \"%-6s|\" \"ab\"}}", "ab    |"),
    ("{{printf \"%5d|%05d\" 42 42}}", "   42|00042"),
    ("{{printf \"%v %t\" .Args true}}", "[300] true"),
    ("{{printf \"%.2f\" 1.5}}", "1.50"),
    ("{{printf \"%x\" 255}}", "ff"),
    ("{{print .State.Pid .State.ExitCode}}", "4242 0"),
    ("{{print \"a\" \"b\" 1 2}}", "ab1 2"),
    ("{{println \"x\" 1}}", "x 1\n"),
    ("{{len .Config.Env}}", "2"),
    ("{{len .Name}}", "4"),
    ("{{index .Args 0}}", "300"),
    ("{{slice .Id 0 12}}", "4f1b2c3d4e5f"),
    ("{{truncate .Id 12}}", "4f1b2c3d4e5f"),
    ("{{pad .Name 2 1}}|", "  /web |"),
    ("{{split \"a:b:c\" \":\"}}", "[a b c]"),
    ("{{index (split .Config.Image \":\") 0}}", "busybox"),
    ("{{json .HostConfig.RestartPolicy}}", '{"Name":"on-failure","MaximumRetryCount":3}'),
    ("{{json .NetworkSettings.Ports}}", "{}"),
    ("{{/* a comment */}}x", "x"),
    ("a {{- \" b \" -}} c", "a b c"),
    ("{{- .Name -}}\n", "/web"),
    ("line1\n  {{- .Name}}", "line1/web"),
    ("{{range .Mounts}}{{if .RW}}{{continue}}{{end}}{{.Destination}}{{end}}", "/data"),
    ("{{range .Mounts}}{{.Destination}}{{break}}{{end}}", "/data"),
    ("{{range .NoSuch}}x{{else}}empty{{end}}", "empty"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{define \"T\"}}[{{.}}]{{end}}{{template \"T\" .Name}}", "[/web]"),
    ("{{block \"B\" .State.Pid}}<{{.}}>{{end}}", "<4242>"),
    ("{{`raw \\n`}}", "raw \\n"),
    ("{{\"tab\\there\"}}", "tab\there"),
    ("{{'a'}}", "97"),
    ("{{1.5}} {{1e6}} {{0x10}} {{-3}}", "1.5 1e+06 16 -3"),
    ("{{true}} {{false}}", "true false"),
    ("{{html \"<a&b>\"}}", "&lt;a&amp;b&gt;"),
    ("{{urlquery \"a b&c\"}}", "a+b%26c"),
    ("{{js \"it's\"}}", "it\\'s"),
    ("{{.}}", None),  # map printing of the whole document, checked below
])
def test_real_world_templates(template, expected):
    out = render(template, INSPECT)
    if expected is None:
        assert out.startswith("map[Args:[300] Config:map[")
    else:
        assert out == expected


@pytest.mark.parametrize("template, message", [
    ("{{.State.Pid", "template parsing error: template: :1: unclosed action"),
    ("{{nosuch .}}", 'template parsing error: template: :1: function "nosuch" not defined'),
    ("{{end}}", "template parsing error: template: :1: unexpected {{end}}"),
    ("{{if .X}}", "template parsing error: template: :1: unexpected EOF"),
    ("{{range .X}}{{else}}{{else}}{{end}}", "expected end; found {{else}}"),
    ("{{$x}}", 'undefined variable "$x"'),
    ("{{\"abc}}", "unterminated quoted string"),
    ("{{break}}", "{{break}} outside {{range}}"),
    ("{{/* never closed", "unclosed comment"),
    ("{{.A | 3}}", "non executable command in pipeline stage 2"),
    ("{{(.A}}", "unclosed left paren"),
])
def test_parse_errors_are_dockers_lines(template, message):
    with pytest.raises(TemplateError) as e:
        parse(template)
    assert message in str(e.value)
    assert "\n" not in str(e.value)
    assert e.value.exit_code == 125


@pytest.mark.parametrize("template, message", [
    ("{{.Name.Foo}}", 'template: :1:2: executing "" at <.Name.Foo>: can\'t evaluate field Foo in type string'),
    ("{{index .Args 5}}", "error calling index: index out of range: 5"),
    ("{{join .Name \",\"}}", "error calling join: wrong type for value; expected []string; got string"),
    ("{{upper 3}}", "expected string; got int"),
    ("{{len 3}}", "len of type int"),
    ("{{eq .Name 3}}", "incompatible types for comparison"),
    ("{{lt .Name 3}}", "incompatible types for comparison"),
    ("{{join .Args}}", "wrong number of args for join: want 2 got 1"),
    ("{{range .Name}}{{end}}", "range can't iterate over /web"),
    ("{{template \"none\"}}", 'template "none" not defined'),
    ("{{3 4}}", "can't give argument to non-function 3"),
])
def test_execution_errors(template, message):
    with pytest.raises(TemplateError) as e:
        render(template, INSPECT)
    assert message in str(e.value)


def test_error_position_is_line_and_byte():
    with pytest.raises(TemplateError) as e:
        render("a\nb {{.Name.X}}", INSPECT)
    assert str(e.value).startswith("template: :2:4: executing")


def test_printing_follows_go_fmt():
    assert printable(None) == "<nil>"
    assert printable([1, "a", True, None]) == "[1 a true <nil>]"
    assert printable({"b": 1, "a": [2]}) == "map[a:[2] b:1]"
    assert printable(0.1) == "0.1" and printable(1e21) == "1e+21" and printable(100.0) == "100"
    assert printable(1e20) == "1e+20" and printable(123456.0) == "123456" and printable(1234567.0) == "1.234567e+06"


def test_methods_and_variables_assign():
    row = {"Label": lambda k: {"a": "1"}.get(k, ""), "Names": "x"}
    assert render('{{.Label "a"}}|{{.Label "b"}}', row) == "1|"
    assert render('{{$v := "a"}}{{$v = "b"}}{{$v}}', {}) == "b"
    assert render('{{range $i, $e := .}}{{$i}}{{end}}', ["x", "y"]) == "01"


def test_table_directive_aligns_columns_like_docker():
    rows = [{"ID": "abc", "Names": "x"}, {"ID": "abcdef0123456789", "Names": "longer-name"}]
    out = render_rows("table {{.ID}}\\t{{.Names}}", rows, {"ID": "CONTAINER ID", "Names": "NAMES"})
    assert out == ["CONTAINER ID       NAMES", "abc                x",
                   "abcdef0123456789   longer-name"]
    # a field without a known header is its name in capitals; no table: one line per row
    assert render_rows("table {{.Names}}", rows, {})[0] == "NAMES"
    assert render_rows("{{.ID}}: {{.Names}}", rows) == ["abc: x", "abcdef0123456789: longer-name"]
    # docker's minimum column width is 10, padding 3
    assert tabwrite(["a\tb", "cc\td"]) == ["a         b", "cc        d"]


def test_ps_does_not_import_the_template_engine():
    """`pyrt ps` without --format keeps its start-up: neither the template engine nor the
    formatter's json are imported by the modules it loads."""
    code = ("import sys; import pyrt_core.cli.containers.inventory, pyrt_core.cli.containers.listing,"
            " pyrt_core.cli.formatting, pyrt_core.cli.images;"
            " from pyrt_core.cli.main import build_parser; build_parser(only='ps');"
            " print('pyrt_core.cli.gotemplate' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"
