"""pack_paths / pack_overlay_diff: tar output read back with tarfile and apply_layer."""
from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest

from pyrt_core.testing import machine

from pyrt_core.errors import StorageError
from pyrt_core.archive.pack import pack_overlay_diff, pack_paths
from pyrt_core.archive.unpack import apply_layer
from pyrt_core.storage.driver import Change


CONTENT: dict[str, bytes] = {}


def read_tar(chunks) -> list[tarfile.TarInfo]:
    """Members of the tar; regular files' data lands in CONTENT[name]."""
    data = b"".join(chunks)
    assert len(data) % 512 == 0
    CONTENT.clear()
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        members = tf.getmembers()
        for m in members:
            if m.isreg():
                CONTENT[m.name] = tf.extractfile(m).read()
    return members


@pytest.fixture
def tree(tmp_path):
    r = tmp_path / "tree"
    (r / "etc/apt").mkdir(parents=True)
    (r / "etc/apt/sources.list").write_text("deb x\n")
    os.chmod(r / "etc/apt/sources.list", 0o640)
    (r / "bin").mkdir()
    (r / "bin/tool").write_bytes(b"\x7fELF" + os.urandom(3000))
    os.chmod(r / "bin/tool", 0o4755)
    os.link(r / "bin/tool", r / "bin/tool2")
    os.symlink("tool", r / "bin/alias")
    os.mkfifo(r / "etc/fifo", 0o600)
    os.utime(r / "etc/apt/sources.list", ns=(1_600_000_000_900_000_000,) * 2)
    return r


def test_pack_entries_and_metadata(tree):
    changes = [Change(p, "A") for p in ("/bin", "/bin/alias", "/bin/tool", "/bin/tool2", "/etc",
                                         "/etc/apt", "/etc/apt/sources.list", "/etc/fifo")]
    members = read_tar(pack_paths(str(tree), reversed(changes)))
    by = {m.name: m for m in members}
    names = [m.name for m in members]
    assert names.index("etc") < names.index("etc/apt") < names.index("etc/apt/sources.list")
    assert by["etc"].isdir() and by["bin/alias"].issym() and by["bin/alias"].linkname == "tool"
    assert by["bin/tool"].isreg() and by["bin/tool"].mode == 0o4755
    assert by["bin/tool2"].islnk() and by["bin/tool2"].linkname == "bin/tool"
    src = by["etc/apt/sources.list"]
    assert CONTENT[src.name] == b"deb x\n" and src.mode == 0o640 and src.mtime == 1_600_000_000
    assert by["etc/fifo"].isfifo()
    assert by["bin/tool"].uid == os.geteuid()
    assert all(not n.startswith("/") for n in names)


def test_pack_deletions_are_whiteouts(tree):
    members = read_tar(pack_paths(str(tree), [Change("/etc/gone", "D"), Change("/top", "D")]))
    assert [m.name for m in members] == ["etc/.wh.gone", ".wh.top"]
    assert all(m.isreg() and m.size == 0 for m in members)


def test_pack_long_names_and_big_files_in_chunks(tmp_path):
    r = tmp_path / "t"
    long_dir = r / ("d" * 150)
    long_dir.mkdir(parents=True)
    (long_dir / ("f" * 120)).write_bytes(b"long")
    os.symlink("x" * 200, r / "longlink")
    big = os.urandom(3 << 20)
    (r / "big").write_bytes(big)
    changes = [Change("/" + "d" * 150, "A"), Change("/" + "d" * 150 + "/" + "f" * 120, "A"),
               Change("/longlink", "A"), Change("/big", "A")]
    chunks = list(pack_paths(str(r), changes))
    assert max(len(c) for c in chunks) <= 2 << 20 and len(chunks) >= 3
    by = {m.name: m for m in read_tar(chunks)}
    assert CONTENT["d" * 150 + "/" + "f" * 120] == b"long"
    assert by["longlink"].linkname == "x" * 200
    assert CONTENT["big"] == big
    out = tmp_path / "out"
    assert apply_layer(io.BytesIO(b"".join(chunks)), str(out)) == len(big) + 4
    assert (out / "big").read_bytes() == big


def test_pack_refuses_paths_under_symlinked_parent(tmp_path):
    r = tmp_path / "t"
    r.mkdir()
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("k")
    os.symlink(str(secret), r / "link")
    with pytest.raises(StorageError, match="symlink"):
        b"".join(pack_paths(str(r), [Change("/link/key", "A")]))


def test_pack_missing_path(tmp_path):
    with pytest.raises(StorageError, match="vanished"):
        b"".join(pack_paths(str(tmp_path), [Change("/nope", "C")]))


def test_pack_empty_changes_is_an_empty_tar(tmp_path):
    data = b"".join(pack_paths(str(tmp_path), []))
    assert data == bytes(1024)
    assert apply_layer(io.BytesIO(data), str(tmp_path / "x")) == 0


def _overlay_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add(name, typ=tarfile.REGTYPE, data=b""):
            ti = tarfile.TarInfo(name)
            ti.type, ti.size, ti.mtime = typ, len(data), 1_600_000_000
            ti.mode = 0o755 if typ == tarfile.DIRTYPE else 0o644
            tf.addfile(ti, io.BytesIO(data) if data else None)
        add("etc", tarfile.DIRTYPE)
        add("etc/.wh.motd")
        add("etc/hostname", data=b"h\n")
        add("var", tarfile.DIRTYPE)
        add("var/cache", tarfile.DIRTYPE)
        add("var/cache/.wh..wh..opq")
        add("var/cache/fresh", data=b"f")
        add(".wh.tmp")
    return buf.getvalue()


@pytest.mark.privileged
def test_pack_overlay_diff_round_trip(tmp_path):
    diff = tmp_path / "diff"
    diff.mkdir()
    apply_layer(io.BytesIO(_overlay_tar()), str(diff), whiteouts="overlay")
    assert stat.S_ISCHR(os.lstat(diff / "etc/motd").st_mode)
    assert os.getxattr(diff / "var/cache", "trusted.overlay.opaque") == b"y"
    members = read_tar(pack_overlay_diff(str(diff)))
    names = [m.name for m in members]
    assert sorted(names) == sorted([".wh.tmp", "etc", "etc/.wh.motd", "etc/hostname", "var",
                                    "var/cache", "var/cache/.wh..wh..opq", "var/cache/fresh"])
    # parents first; the opaque marker right after its directory
    assert names.index("etc") < names.index("etc/.wh.motd")
    assert names.index("var/cache") + 1 == names.index("var/cache/.wh..wh..opq")
    assert names.index("var/cache/.wh..wh..opq") < names.index("var/cache/fresh")
    by = {m.name: m for m in members}
    assert CONTENT["etc/hostname"] == b"h\n"
    assert by["etc/.wh.motd"].isreg() and by[".wh.tmp"].isreg()
    # and once more through apply_layer: same overlay dir again
    again = tmp_path / "again"
    apply_layer(io.BytesIO(b"".join(pack_overlay_diff(str(diff)))), str(again), whiteouts="overlay")
    assert sorted(os.listdir(again)) == ["etc", "tmp", "var"]
    assert os.getxattr(again / "var/cache", "trusted.overlay.opaque") == b"y"


def test_pack_overlay_diff_user_xattr_opaque_and_whiteout_device(tmp_path):
    """Unprivileged: user.overlay.opaque (rootless overlay) and, where the
    kernel allows it (>= 5.8), an unprivileged 0:0 whiteout device."""
    diff = tmp_path / "diff"
    (diff / "d").mkdir(parents=True)
    (diff / "d/f").write_text("x")
    machine.skip_unless("user-xattrs")
    os.setxattr(diff / "d", "user.overlay.opaque", b"y")
    try:
        os.mknod(diff / "gone", stat.S_IFCHR | 0o600, 0)
        have_wh = True
    except PermissionError:
        have_wh = False
    names = [m.name for m in read_tar(pack_overlay_diff(str(diff)))]
    expected = ["d", "d/.wh..wh..opq", "d/f"]
    if have_wh:
        expected.append(".wh.gone")
    assert sorted(names) == sorted(expected)
    assert names.index("d") < names.index("d/.wh..wh..opq") < names.index("d/f")


def test_pack_is_lazy_generator(tmp_path):
    gen = pack_paths(str(tmp_path), [Change("/missing", "A")])
    # nothing happens until iterated
    with pytest.raises(StorageError):
        next(gen)


def test_pack_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        next(pack_paths(str(tmp_path), [], whiteout_source="aufs"))
    with pytest.raises(ValueError):
        next(pack_paths(str(tmp_path), [Change("/x", "Z")]))
