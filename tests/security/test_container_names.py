"""Container names: ``--name .`` and ``--name ..`` were accepted far enough to write a
record, whose clean-up then failed (readlink of names/. is EINVAL) and whose recovery
failed in every later command ("recovery failed").  Now a name is checked as docker
does before anything exists (docker's message, exit 125), and a bad name record left
by an older pyrt is handled (or skipped with a warning), never fatal."""
from __future__ import annotations

import json
import os

import pytest

from hostile import one_line_error

BAD = [".", "..", "a", "-x", ".x", "a/b", "../../etc", "x y"]


@pytest.mark.parametrize("how", [("run", "--rm"), ("run", "-d"), ("create",)])
@pytest.mark.parametrize("name", BAD)
def test_bad_names_are_refused_before_anything_exists(demo_cli, how, name):
    cli = demo_cli
    r = cli(*how, f"--name={name}", cli.image, "true")
    one_line_error(r, 125, f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                           "are allowed")
    r = cli("ps", "-a")
    assert r.returncode == 0 and r.stderr == "" and r.stdout.count("\n") == 1, r.stderr
    store = os.path.join(cli.root, "containers")
    assert sorted(os.listdir(store)) == ["names"] and os.listdir(os.path.join(store, "names")) == []


def test_docker_names_work(demo_cli):
    cli = demo_cli
    cli("create", "--name", "/slashed", cli.image, "true", check=True)  # docker drops the /
    cli("create", "--name", "a.b_c-1", cli.image, "true", check=True)
    names = sorted(json.loads(cli("inspect", n, check=True).stdout)[0]["Name"]
                   for n in ("slashed", "a.b_c-1"))
    assert names == ["/a.b_c-1", "/slashed"]  # docker shows the name with its "/"


@pytest.mark.parametrize("bad_name, status", [(".", "creating"), ("..", "creating"),
                                               ("..", "exited"), ("a/b", "created")])
def test_a_bad_name_record_of_an_older_pyrt_does_not_break_later_commands(demo_cli, bad_name,
                                                                          status):
    # what the old `run --name ..` left: a record with that name, in "creating"
    cli = demo_cli
    cid = cli("create", "--name", "victim", cli.image, "true", check=True).stdout.strip()
    path = os.path.join(cli.root, "containers", cid, "container.json")
    with open(path) as f:
        rec = json.load(f)
    rec["name"], rec["state"]["status"] = bad_name, status
    with open(path, "w") as f:
        json.dump(rec, f)
    os.unlink(os.path.join(cli.root, "containers", "names", "victim"))
    r = cli("ps", "-a")
    assert r.returncode == 0 and "recovery failed" not in r.stderr, r.stderr
    if status == "creating":  # recovery finishes the old create's clean-up
        assert "removed half-created container" in r.stderr and cid[:12] not in r.stdout
    else:
        assert cid[:12] in r.stdout
        cli("rm", cid[:12], check=True)
    assert cli("ps", "-aq").stdout == ""
    cli("run", "--rm", "--name", "after", cli.image, "true", check=True)
    names = os.path.join(cli.root, "containers", "names")
    assert os.path.isdir(names) and os.listdir(names) == []
    assert os.path.isdir(os.path.join(cli.root, "containers"))


def test_a_record_recovery_cannot_handle_is_skipped_with_a_warning(demo_cli):
    # a half-created record whose lock cannot be taken (its lock file is a directory):
    # recovery used to raise, so every container command printed "recovery failed"
    cli = demo_cli
    cid = cli("create", "--name", "stuck", cli.image, "true", check=True).stdout.strip()
    d = os.path.join(cli.root, "containers", cid)
    with open(os.path.join(d, "container.json")) as f:
        rec = json.load(f)
    rec["state"]["status"] = "creating"
    with open(os.path.join(d, "container.json"), "w") as f:
        json.dump(rec, f)
    os.unlink(os.path.join(d, "lock"))
    os.mkdir(os.path.join(d, "lock"))
    r = cli("ps", "-a")
    assert r.returncode == 0 and "recovery failed" not in r.stderr, r.stderr
    assert f"pyrt: recovery: skipped container {cid[:12]} ('stuck')" in r.stderr
    cli("run", "--rm", "--name", "still-works", cli.image, "true", check=True)
    os.rmdir(os.path.join(d, "lock"))  # repaired: the next recovery removes it
    r = cli("ps", "-aq")
    assert r.returncode == 0 and r.stdout == "" and "removed half-created" in r.stderr
