"""apply_layer / pack / naive diff as root: ownership, devices, xattrs, overlay whiteouts."""
from __future__ import annotations

import io
import os
import stat
import struct
import subprocess
import tarfile


from pyrt_core.archive.changes import compare_trees
from pyrt_core.archive.pack import pack_overlay_diff, pack_paths
from pyrt_core.archive.unpack import apply_layer
from pyrt_core.testing import machine

MTIME = 1_600_000_000
# vfs_cap_data revision 2, effective bit, permitted = CAP_NET_BIND_SERVICE (10)
CAP_NET_BIND = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)


def entry(name, typ=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, linkname="",
          devmajor=0, devminor=0, xattrs=None):
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.mode, ti.uid, ti.gid, ti.mtime = typ, len(data), mode, uid, gid, MTIME
    ti.linkname, ti.devmajor, ti.devminor = linkname, devmajor, devminor
    if xattrs:
        ti.pax_headers = {"SCHILY.xattr." + k: os.fsdecode(v) for k, v in xattrs.items()}
    return ti, (data if typ == tarfile.REGTYPE else None)


def mktar(*entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def apply(data, root, whiteouts="delete"):
    return apply_layer(io.BytesIO(data), str(root), whiteouts=whiteouts)


def test_ownership_and_setuid_survive_chown(tmp_path):
    root = tmp_path / "root"
    apply(mktar(
        entry("home/", tarfile.DIRTYPE, mode=0o755, uid=0, gid=0),
        entry("home/user/", tarfile.DIRTYPE, mode=0o2750, uid=1000, gid=1000),
        entry("home/user/file", data=b"x", mode=0o640, uid=1000, gid=2000),
        entry("usr/bin/sudo", data=b"ELF", mode=0o4755, uid=0, gid=0),
        entry("usr/bin/own", data=b"ELF", mode=0o6755, uid=1234, gid=4321),
        entry("home/user/link", tarfile.SYMTYPE, linkname="file", uid=1000, gid=3000),
        entry("big-ids", data=b"", uid=3_000_000, gid=4_000_000),  # PAX uid/gid records
        entry("pipe", tarfile.FIFOTYPE, mode=0o600, uid=55, gid=66),
    ), root)
    st = os.lstat(root / "home/user")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o2750)
    st = os.lstat(root / "home/user/file")
    assert (st.st_uid, st.st_gid) == (1000, 2000)
    st = os.lstat(root / "usr/bin/own")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 4321, 0o6755)
    assert stat.S_IMODE(os.lstat(root / "usr/bin/sudo").st_mode) == 0o4755
    st = os.lstat(root / "home/user/link")
    assert (st.st_uid, st.st_gid) == (1000, 3000)
    st = os.lstat(root / "big-ids")
    assert (st.st_uid, st.st_gid) == (3_000_000, 4_000_000)
    st = os.lstat(root / "pipe")
    assert (st.st_uid, st.st_gid) == (55, 66)


def test_char_and_block_devices(tmp_path):
    root = tmp_path / "root"
    apply(mktar(
        entry("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        entry("dev/loop9", tarfile.BLKTYPE, mode=0o660, gid=6, devmajor=7, devminor=9),
    ), root)
    st = os.lstat(root / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(st.st_mode) == 0o666 and st.st_mtime == MTIME
    st = os.lstat(root / "dev/loop9")
    assert stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(7, 9)
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == 6


def test_xattrs_capability_and_user(tmp_path):
    root = tmp_path / "root"
    apply(mktar(
        entry("usr/bin/ping", data=b"ELF", mode=0o755,
              xattrs={"security.capability": CAP_NET_BIND, "user.note": b"hello"}),
        entry("usr/bin/suidcap", data=b"ELF", mode=0o4755, uid=0,
              xattrs={"security.capability": CAP_NET_BIND}),
        entry("etc/", tarfile.DIRTYPE, mode=0o755, xattrs={"user.dir": b"d"}),
    ), root)
    p = root / "usr/bin/ping"
    assert os.getxattr(p, "security.capability") == CAP_NET_BIND
    assert os.getxattr(p, "user.note") == b"hello"
    q = root / "usr/bin/suidcap"
    assert os.getxattr(q, "security.capability") == CAP_NET_BIND
    assert stat.S_IMODE(os.lstat(q).st_mode) == 0o4755
    assert os.getxattr(root / "etc", "user.dir") == b"d"


def test_pack_keeps_capability_devices_and_owners(tmp_path):
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin/ping").write_bytes(b"ELF")
    os.chown(src / "bin/ping", 0, 10)  # before setting the capability: chown clears it
    os.setxattr(src / "bin/ping", "security.capability", CAP_NET_BIND)
    os.mknod(src / "bin/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chown(src / "bin", 1000, 1000)
    os.chown(src / "bin/null", 5_000_000, 7)
    tar = b"".join(pack_paths(str(src), compare_trees(str(src), None)))
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        m = tf.getmember("bin/ping")
        assert os.fsencode(m.pax_headers["SCHILY.xattr.security.capability"]) == CAP_NET_BIND
        assert tf.getmember("bin/null").uid == 5_000_000
    out = tmp_path / "out"
    apply(tar, out)
    assert os.getxattr(out / "bin/ping", "security.capability") == CAP_NET_BIND
    assert os.lstat(out / "bin/ping").st_gid == 10
    assert os.lstat(out / "bin").st_uid == 1000
    st = os.lstat(out / "bin/null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3) and st.st_uid == 5_000_000


def test_naive_diff_sees_owner_and_capability_changes(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for d in (old, new):
        d.mkdir()
        (d / "a").write_text("a")
        (d / "b").write_text("b")
        os.utime(d / "a", ns=(MTIME * 10**9,) * 2)
        os.utime(d / "b", ns=(MTIME * 10**9,) * 2)
    os.chown(new / "a", 1000, 1000)
    os.setxattr(new / "b", "security.capability", CAP_NET_BIND)
    assert [(c.path, c.kind) for c in compare_trees(str(new), str(old))] == [("/a", "C"), ("/b", "C")]


def test_overlay_mode_whiteout_devices_and_opaque(tmp_path):
    diff = tmp_path / "diff"
    apply(mktar(
        entry("etc/", tarfile.DIRTYPE),
        entry("etc/.wh.motd", uid=0),
        entry("var/", tarfile.DIRTYPE),
        entry("var/.wh..wh..opq"),
        entry("var/new", data=b"n"),
        entry(".wh.tmp"),
    ), diff, whiteouts="overlay")
    for p in ("etc/motd", "tmp"):
        st = os.lstat(diff / p)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(diff / "var", "trusted.overlay.opaque") == b"y"
    assert not os.path.lexists(diff / "etc/.wh.motd")
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(b"".join(pack_overlay_diff(str(diff)))))]
    assert {".wh.tmp", "etc/.wh.motd", "var/.wh..wh..opq", "var/new"} <= set(names)


@machine.needs("overlayfs")
def test_overlay_whiteouts_work_in_a_real_mount(tmp_path):
    lower, upper, merged = tmp_path / "lower", tmp_path / "upper", tmp_path / "merged"
    apply(mktar(
        entry("etc/", tarfile.DIRTYPE), entry("etc/motd", data=b"motd"),
        entry("etc/hostname", data=b"h"),
        entry("var/", tarfile.DIRTYPE), entry("var/old1", data=b"1"), entry("var/old2", data=b"2"),
    ), lower)
    apply(mktar(
        entry("etc/.wh.motd"),
        entry("var/", tarfile.DIRTYPE), entry("var/.wh..wh..opq"), entry("var/new", data=b"n"),
    ), upper, whiteouts="overlay")
    merged.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={upper}:{lower}",
                    str(merged)], check=True)
    try:
        assert sorted(os.listdir(merged / "etc")) == ["hostname"]
        assert sorted(os.listdir(merged / "var")) == ["new"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)
