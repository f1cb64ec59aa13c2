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


def test_df_verbose_lists_each_image_container_and_volume(cli):
    """``system df -v``: docker's four tables, one line per image, container and volume,
    with the same measures as the summary; ``--format json`` and a template over the
    whole."""
    cid = _run(cli, "-d", "--name", "dfv", "-v", "dfvvol:/data", cli.image, "sh", "-c",
               "dd if=/dev/zero of=/data/f bs=1000 count=50; dd if=/dev/zero of=/w bs=1000 "
               "count=120; sleep 300")
    cli("volume", "create", "dfvidle", check=True)
    import time

    for _ in range(100):  # the writes, done in the container's first moments
        r = cli("system", "df", "-v", "--format", "json", check=True)
        doc = json.loads(r.stdout)
        sizes = {v["Name"]: v["Size"] for v in doc["Volumes"]}
        if sizes.get("dfvvol") == "50kB" and doc["Containers"] and \
                _bytes(doc["Containers"][0]["Size"]) >= 120_000:
            break
        time.sleep(0.1)
    assert list(doc) == ["Images", "Containers", "Volumes", "BuildCache"]
    (img,) = doc["Images"]
    assert (img["Repository"], img["Tag"], img["Containers"]) == (cli.image, "latest", "1")
    assert img["SharedSize"] == "0B" and img["UniqueSize"] == img["Size"], img
    (ctr,) = doc["Containers"]
    assert (ctr["ID"], ctr["Names"], ctr["LocalVolumes"]) == (cid[:12], "dfv", "1"), ctr
    assert 120_000 <= _bytes(ctr["Size"]) < 200_000 and ctr["Status"].startswith("Up "), ctr
    assert sorted((v["Name"], v["Links"], v["Size"]) for v in doc["Volumes"]) == [
        ("dfvidle", "0", "0B"), ("dfvvol", "1", "50kB")]
    assert doc["BuildCache"] == []
    out = cli("system", "df", "-v", check=True).stdout
    blocks = out.split("\n\n")
    assert blocks[0] == "Images space usage:" and blocks[2].startswith(
        "Containers space usage:"), out
    lines = out.splitlines()
    head = lines[2]
    assert head.split("   ")[0] == "REPOSITORY" and "SHARED SIZE" in head and \
        head.endswith("CONTAINERS"), out
    assert lines[3].startswith(cli.image) and lines[3].endswith(" 1"), out
    assert "CONTAINER ID" in out and f"{cid[:12]}   " in out and out.count("dfv\n") == 1, out
    assert "VOLUME NAME   LINKS     SIZE\n" in out and "Build cache usage: 0B\n" in out, out
    assert out.endswith("CACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     "
                        "SHARED\n"), out
    r = cli("system", "df", "-v", "--format", "{{len .Volumes}} {{range .Images}}{{.Tag}}{{end}}",
            check=True)
    assert r.stdout == "2 latest\n"
    cli("rm", "-f", "dfv", check=True)


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


def test_prune_filters_until_and_labels(cli):
    """docker's ``--filter until=`` and ``label=``/``label!=`` on system, container, image
    and volume prune: only what matches goes; a bad filter is one line, 125, nothing
    removed."""
    a = _run(cli, "-d", "-l", "team=a", cli.image, "true")
    b = _run(cli, "-d", "-l", "team=b", "-l", "keep", cli.image, "true")
    c = _run(cli, "-d", cli.image, "true")
    for cid in (a, b, c):
        cli("wait", cid, check=True)
    cli("volume", "create", "--label", "team=a", "fva", check=True)
    cli("volume", "create", "fvb", check=True)
    everything = sorted([a, b, c])

    def left():
        return sorted(cli("ps", "-aq", "--no-trunc", check=True).stdout.split())

    for argv, message in ((["system", "prune", "-f", "--filter", "until=soon"], "failed to parse"),
                          (["container", "prune", "-f", "--filter", "name=x"], "invalid filter"),
                          (["system", "prune", "-f", "--volumes", "--filter", "until=1h"],
                           "invalid filter 'until'"),
                          (["volume", "prune", "-f", "--filter", "until=1h"], "invalid filter"),
                          (["image", "prune", "-f", "--filter", "label"], "bad format")):
        r = cli(*argv)
        assert r.returncode == 125 and message in r.stderr, (argv, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and left() == everything
    # until: made just now, so not before an hour ago; before "now" they all are
    r = cli("container", "prune", "-f", "--filter", "until=1h", check=True)
    assert r.stdout == "" and left() == everything
    r = cli("container", "prune", "-f", "--filter", "label=team=a", check=True)
    assert r.stdout.split() == [a] and left() == sorted([b, c])
    r = cli("system", "prune", "-f", "--filter", "label!=keep", check=True)
    assert f"Deleted Containers:\n{c}\n\n" in r.stdout and left() == [b]
    r = cli("volume", "prune", "-f", "-a", "--filter", "label=team=a", check=True)
    assert "fva" in r.stdout and "fvb" not in r.stdout
    assert cli("volume", "ls", "-q", check=True).stdout.split() == ["fvb"]
    # an image: labels are its config's (the demo image has none), until its creation time
    cli("rm", "-f", b, check=True)
    r = cli("image", "prune", "-a", "-f", "--filter", "label=nothing", check=True)
    assert r.stdout == "" and cli("images", "-q", check=True).stdout.strip()
    r = cli("image", "prune", "-a", "-f", "--filter", "until=0s", check=True)
    assert "Deleted: sha256:" in r.stdout and cli("images", "-q", check=True).stdout == ""


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
    ("system", "prune", "--filter", "until=later"),
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
