"""The everyday command line's logic without containers (issue 16): filters, docker's
durations and formats, labels, management aliases."""
import io
import json

import pytest

from pyrt_core.cli.common import ago, docker_time, human_duration
from pyrt_core.cli.filters import labels_match, parse_filters
from pyrt_core.cli.containers.run import container_config_from_args
from pyrt_core.cli.formatting import print_objects, print_rows
from pyrt_core.cli.main import build_parser, main
from pyrt_core.errors import UsageError


@pytest.mark.parametrize("secs, text", [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (119, "About a minute"), (120, "2 minutes"), (3599, "59 minutes"), (3600, "About an hour"),
    (5400, "2 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"), (14 * 86400, "2 weeks"),
    (60 * 86400, "2 months"), (800 * 86400, "2 years"),
])
def test_human_duration_is_dockers(secs, text):
    assert human_duration(secs) == text


def test_times():
    assert ago("") == "N/A" and ago("0001-01-01T00:00:00Z") == "N/A"
    assert docker_time("2024-05-01T10:00:00.123456Z") == "2024-05-01 10:00:00 +0000 UTC"


def test_filters_parse_docker_style():
    f = parse_filters(["label=a=b", "label=c", "status=exited", "name=^/x$"])
    assert f == {"label": ["a=b", "c"], "status": ["exited"], "name": ["^/x$"]}
    for bad, msg in (("colour=red", "invalid filter 'colour'"), ("status=sleepy", "status=sleepy"),
                     ("label", "bad format of filter"), ("exited=x", "exited=x")):
        with pytest.raises(UsageError, match=msg):
            parse_filters([bad])
    assert labels_match({"a": "b", "c": ""}, ["a=b", "c"])
    assert not labels_match({"a": "b"}, ["a=c"]) and not labels_match({}, ["a"])


def test_labels_flags(tmp_path):
    lf = tmp_path / "labels"
    lf.write_text("# comment\nteam=a\n\nonly-key\nteam=overridden-by-flag\n")
    a = build_parser().parse_args(["run", "--label-file", str(lf), "-l", "team=b", "--label",
                                   "x=1=2", "img"])
    assert container_config_from_args(a).labels == {"team": "b", "only-key": "", "x": "1=2"}
    with pytest.raises(UsageError, match="invalid label"):
        container_config_from_args(build_parser().parse_args(["create", "-l", "=v", "img"]))
    with pytest.raises(UsageError, match="cannot read label file"):
        container_config_from_args(build_parser().parse_args(
            ["create", "--label-file", str(tmp_path / "none"), "img"]))


def test_json_rows_one_object_a_line_without_methods():
    out = io.StringIO()
    print_rows("json", [{"ID": "a", "Label": lambda k: "", "Names": "x"}, {"ID": "b"}], {}, out)
    lines = out.getvalue().splitlines()
    assert [json.loads(x) for x in lines] == [{"ID": "a", "Names": "x"}, {"ID": "b"}]
    assert lines[0] == '{"ID":"a","Names":"x"}'


def test_inspect_objects():
    out = io.StringIO()
    print_objects(None, [{"Id": "a"}], out)
    assert json.loads(out.getvalue()) == [{"Id": "a"}]
    out = io.StringIO()
    print_objects("{{.Id}}\\t", [{"Id": "a"}, {"Id": "b"}], out)  # no escape expansion in inspect
    assert out.getvalue() == "a\\t\nb\\t\n"


@pytest.mark.parametrize("argv, command, func", [
    (["container", "ls", "-a"], "ps", "cmd_ps"), (["container", "list"], "ps", "cmd_ps"),
    (["container", "ps"], "ps", "cmd_ps"), (["container", "rm", "x"], "rm", "cmd_rm"),
    (["container", "inspect", "x"], "inspect", "cmd_inspect"),
    (["container", "run", "img"], "run", "cmd_run"), (["container", "logs", "x"], "logs", "cmd_logs"),
    (["container", "rename", "a", "b"], "rename", "cmd_rename"),
    (["container", "prune"], None, "cmd_container_prune"),
    (["image", "ls"], "images", "cmd_images"), (["image", "list", "-q"], "images", "cmd_images"),
    (["image", "rm", "x"], "rmi", "cmd_rmi"), (["image", "inspect", "x"], "inspect", "cmd_inspect"),
    (["image", "tag", "a", "b"], "tag", "cmd_tag"), (["image", "prune"], None, "cmd_image_prune"),
    (["rename", "a", "b"], "rename", "cmd_rename"),
])
def test_management_aliases(argv, command, func):
    a = build_parser(only=argv[0]).parse_args(argv)
    assert a.func.__name__ == func
    if argv[:2] == ["container", "inspect"]:
        assert a.type == "container"
    if argv[:2] == ["image", "inspect"]:
        assert a.type == "image"


def test_image_pull_is_the_plugins_pull():
    from pyrt_core.testing import machine

    machine.skip_unless("distribution", "pyrt-image-registry", detail="the plugin that brings pull")
    a = build_parser(only="image").parse_args(["image", "pull", "busybox"])
    b = build_parser(only="pull").parse_args(["pull", "busybox"])
    assert a.func is b.func and a._plugin_distribution == b._plugin_distribution


def test_a_bad_template_is_refused_before_any_work(capsys, tmp_path):
    root = tmp_path / "never"
    code = main(["--root", str(root), "--runroot", str(tmp_path / "run"), "ps", "--format", "{{.ID"])
    assert code == 125 and not root.exists()
    assert capsys.readouterr().err == "Error: template parsing error: template: :1: unclosed action\n"
    code = main(["--root", str(root), "--runroot", str(tmp_path / "run"), "inspect", "-f", "{{if}}", "x"])
    assert code == 125 and not root.exists()
