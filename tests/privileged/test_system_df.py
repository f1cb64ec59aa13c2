"""``pyrt system df`` and ``pyrt system prune`` against a real store (issue 16): docker's
columns and counts, sizes that are the bytes containers and volumes wrote, prune's
prompt (declined: nothing removed), ``-f``, ``-a``, ``--volumes`` and the reclaimed
space it reports."""
import json

import pytest

HEADER = "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE"


@pytest.fixture
def cli(detached_cli):
    return detached_cli


def _bytes(text: str) -> float:
    """docker's human size (``16.43MB``, ``212B``) back to bytes."""
    for n, unit in enumerate(("kB", "MB", "GB")):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * 1000 ** (n + 1)
    assert text.endswith("B"), text
    return float(text[:-1])


def _df(cli) -> dict:
    r = cli("system", "df", "--format", "json", check=True)
    return {d["Type"]: d for d in map(json.loads, r.stdout.splitlines())}


def _run(cli, *argv):
    return cli("run", "--network", "none", *argv, check=True).stdout.strip()


def test_df_counts_what_exists_and_what_could_go(cli):
    df = _df(cli)
    assert list(df) == ["Images", "Containers", "Local Volumes", "Build Cache"]
    img = df["Images"]
    assert (img["TotalCount"], img["Active"]) == ("1", "0")
    assert _bytes(img["Size"]) > 500_000 and img["Reclaimable"] == img["Size"] + " (100%)"
    assert df["Containers"] == {"Type": "Containers", "TotalCount": "0", "Active": "0",
                                "Size": "0B", "Reclaimable": "0B"}
    # a stopped container that wrote 200 kB, a running one, a volume holding 300 kB
    _run(cli, "--name", "dfstopped", cli.image, "dd", "if=/dev/zero", "of=/blob", "bs=1000",
         "count=200")
    _run(cli, "-d", "--name", "dfrunning", cli.image, "sleep", "300")
    cli("volume", "create", "dfvol", check=True)
    _run(cli, "--rm", "-v", "dfvol:/data", cli.image, "dd", "if=/dev/zero", "of=/data/f",
         "bs=1000", "count=300")
    df = _df(cli)
    img, ctr, vol = df["Images"], df["Containers"], df["Local Volumes"]
    assert (img["TotalCount"], img["Active"], img["Reclaimable"]) == ("1", "1", "0B (0%)")
    assert (ctr["TotalCount"], ctr["Active"]) == ("2", "1")
    assert 200_000 <= _bytes(ctr["Size"]) < 260_000, ctr
    rec, pct = ctr["Reclaimable"].split()
    assert 200_000 <= _bytes(rec) <= _bytes(ctr["Size"]) and pct.endswith("%)"), ctr
    # the same measure as inspect -s and ps -s (docker's SizeRw)
    size_rw = int(cli("inspect", "-s", "-f", "{{.SizeRw}}", "dfstopped", check=True).stdout)
    assert 200_000 <= size_rw < 260_000
    assert vol == {"Type": "Local Volumes", "TotalCount": "1", "Active": "0", "Size": "300kB",
                   "Reclaimable": "300kB (100%)"}
    # docker's table and a template
    out = cli("system", "df", check=True).stdout.splitlines()
    assert out[0] == HEADER and out[1].startswith("Images          1         1         ")
    assert out[4] == "Build Cache     0         0         0B        0B"
    r = cli("system", "df", "--format", "{{.Type}}={{.TotalCount}}", check=True)
    assert r.stdout == "Images=1\nContainers=2\nLocal Volumes=1\nBuild Cache=0\n"
    r = cli("system", "df", "--format", "table {{.Type}}\t{{.Active}}", check=True)
    assert r.stdout.splitlines()[0].split() == ["TYPE", "ACTIVE"]


def test_prune_asks_then_removes_what_nothing_uses(cli):
    stopped = _run(cli, "-d", "--name", "prstopped", "-v", "/anon", cli.image, "true")
    running = _run(cli, "-d", "--name", "prrunning", cli.image, "sleep", "300")
    cli("wait", stopped, check=True)
    cli("volume", "create", "prnamed", check=True)
    before = cli("ps", "-aq", "--no-trunc", check=True).stdout.split()
    # declined (and end of input): nothing removed
    for answer in ("n\n", "", "whatever\n"):
        r = cli("system", "prune", "--volumes", input=answer)
        assert r.returncode == 0 and r.stderr == ""
        assert r.stdout.startswith(
            "WARNING! This will remove:\n  - all stopped containers\n"), r.stdout
        assert "  - all anonymous volumes not used by at least one container\n" in r.stdout
        assert "  - all dangling images\n\nAre you sure you want to continue? [y/N] " in r.stdout
        assert "Deleted" not in r.stdout and "Total reclaimed" not in r.stdout
        assert cli("ps", "-aq", "--no-trunc", check=True).stdout.split() == before
    anon = [n for n in cli("volume", "ls", "-q", check=True).stdout.split() if n != "prnamed"]
    assert len(anon) == 1
    r = cli("system", "prune", "--volumes", input="y\n", check=True)
    assert f"Deleted Containers:\n{stopped}\n\n" in r.stdout
    assert f"Deleted Volumes:\n{anon[0]}\n\n" in r.stdout  # the anonymous one only
    assert "Deleted Images" not in r.stdout  # the image is in use, and named
    assert r.stdout.splitlines()[-1].startswith("Total reclaimed space: ")
    assert cli("ps", "-aq", "--no-trunc", check=True).stdout.split() == [running]
    assert cli("volume", "ls", "-q", check=True).stdout.split() == ["prnamed"]
    # -a: an image no container uses goes too; the running container's stays
    cli("tag", cli.image, "prune/other:1", check=True)
    cli("rmi", cli.image, check=True)  # (untag: prune/other:1 remains)
    r = cli("system", "prune", "-a", "-f", check=True)
    assert "Deleted Images" not in r.stdout  # still used by the running container
    assert r.stdout == "Total reclaimed space: 0B\n"
    cli("rm", "-f", running, check=True)
    r = cli("system", "prune", "-af", check=True)
    lines = r.stdout.splitlines()
    assert lines[:2] == ["Deleted Images:", "untagged: docker.io/prune/other:1"] or \
        lines[:2] == ["Deleted Images:", "untagged: prune/other:1"], lines
    assert lines[2].startswith("deleted: sha256:") and lines[3] == ""
    assert lines[4].startswith("Total reclaimed space: ") and \
        _bytes(lines[4].split(": ")[1]) > 500_000, lines
    df = _df(cli)
    assert df["Images"]["TotalCount"] == "0" and df["Images"]["Size"] == "0B"


def test_prune_removes_dangling_images_without_all(cli):
    cid = _run(cli, "-d", cli.image, "true")
    cli("wait", cid, check=True)
    names = json.loads(cli("inspect", "--type", "image", cli.image, check=True).stdout)
    names = names[0]["RepoTags"] if isinstance(names, list) else names["RepoTags"]
    for n in names:
        cli("rmi", "-f", n, check=True)  # in use: untagged, kept (dangling)
    assert _df(cli)["Images"]["TotalCount"] == "1"
    r = cli("system", "prune", "-f", check=True)
    assert f"Deleted Containers:\n{cid}\n\nDeleted Images:\ndeleted: sha256:" in r.stdout
    assert _df(cli)["Images"]["TotalCount"] == "0"


@pytest.mark.parametrize("argv", [
    ("system", "df", "--format", "{{.Type"),
    ("system", "prune", "--filter", "until=1h"),
    ("system", "prune", "--al"),
])
def test_bad_values_are_one_line_and_125(cli, argv):
    before = cli("ps", "-aq", check=True).stdout
    r = cli(*argv, input="y\n")
    assert r.returncode == 125 and r.stdout == "", r
    # one line (argparse's refusals add docker's "See 'pyrt --help'.")
    assert r.stderr.startswith("Error: ") and (
        r.stderr.count("\n") == 1 or r.stderr.endswith("\nSee 'pyrt --help'.\n")), r.stderr
    assert cli("ps", "-aq", check=True).stdout == before
