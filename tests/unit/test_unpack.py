"""apply_layer / open_layer_stream: whiteouts, metadata, streams, and escapes."""
from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import subprocess
import tarfile

import pytest

from pyrt_core.archive.decompress import open_layer_stream
from pyrt_core.archive.unpack import apply_layer
from pyrt_core.testing import machine

from pyrt_core.errors import LayerError

MTIME = 1_600_000_000


# -- building tars --------------------------------------------------------------
def reg(name, data=b"", mode=0o644, mtime=MTIME, **kw):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), mode, mtime
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, data


def dir_(name, mode=0o755, mtime=MTIME, **kw):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, mode, mtime
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, None


def sym(name, target, mtime=MTIME):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mtime, ti.mode = tarfile.SYMTYPE, target, mtime, 0o777
    return ti, None


def hard(name, target):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mtime = tarfile.LNKTYPE, target, MTIME
    return ti, None


def fifo(name, mode=0o640):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = tarfile.FIFOTYPE, mode, MTIME
    return ti, None


def mktar(*entries, fmt=tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def apply(data: bytes, root, whiteouts="delete") -> int:
    return apply_layer(io.BytesIO(data), str(root), whiteouts=whiteouts)


def listing(root):
    out = {}
    root = str(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[rel] = ("f", stat.S_IMODE(st.st_mode), f.read())
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("o", st.st_mode)
    return out


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    return r


# -- basics -------------------------------------------------------------------------
def test_files_dirs_and_byte_count(root):
    n = apply(mktar(dir_("etc/"), reg("etc/hostname", b"box\n"), reg("bin/sh", b"x" * 3000, mode=0o755)),
              root)
    assert n == 4 + 3000
    assert (root / "etc/hostname").read_bytes() == b"box\n"
    assert stat.S_IMODE(os.stat(root / "bin/sh").st_mode) == 0o755
    # implicit parent
    assert stat.S_IMODE(os.stat(root / "bin").st_mode) == 0o755


def test_large_file_spanning_buffers(root):
    data = os.urandom(1 << 20) * 3 + b"tail"
    assert apply(mktar(reg("big", data)), root) == len(data)
    assert (root / "big").read_bytes() == data


def test_modes_setuid_setgid_sticky(root):
    gid = os.getegid()
    apply(mktar(reg("suid", b"a", mode=0o4755), reg("sgid", b"b", mode=0o2711, gid=gid),
                dir_("tmp/", mode=0o1777), reg("ro", b"c", mode=0o400), dir_("locked/", mode=0o500),
                reg("locked/inner", b"d")), root)
    assert stat.S_IMODE(os.lstat(root / "suid").st_mode) == 0o4755
    assert stat.S_IMODE(os.lstat(root / "sgid").st_mode) == 0o2711
    assert stat.S_IMODE(os.lstat(root / "tmp").st_mode) == 0o1777
    assert stat.S_IMODE(os.lstat(root / "ro").st_mode) == 0o400
    assert stat.S_IMODE(os.lstat(root / "locked").st_mode) == 0o500
    assert (root / "locked/inner").read_bytes() == b"d"
    os.chmod(root / "locked", 0o755)


def test_mtimes_including_directories_and_symlinks(root):
    apply(mktar(dir_("d/", mtime=1000), dir_("d/sub/", mtime=2000), reg("d/sub/f", b"x", mtime=3000),
                sym("d/link", "sub/f", mtime=4000), reg("d/late", b"y", mtime=5000)), root)
    assert os.lstat(root / "d").st_mtime == 1000
    assert os.lstat(root / "d/sub").st_mtime == 2000
    assert os.lstat(root / "d/sub/f").st_mtime == 3000
    assert os.lstat(root / "d/link").st_mtime == 4000
    assert os.lstat(root / "d/late").st_mtime == 5000


def test_pax_subsecond_mtime(root):
    ti, data = reg("f", b"1")
    ti.pax_headers = {"mtime": "1600000000.25"}
    apply(mktar((ti, data)), root)
    assert os.lstat(root / "f").st_mtime_ns == 1_600_000_000_250_000_000


def test_dir_over_dir_updates_metadata_only(root):
    (root / "d").mkdir(mode=0o700)
    (root / "d/keep").write_text("lower")
    apply(mktar(dir_("d/", mode=0o751, mtime=1234), reg("d/new", b"n")), root)
    assert (root / "d/keep").read_text() == "lower"
    assert (root / "d/new").read_bytes() == b"n"
    st = os.lstat(root / "d")
    assert stat.S_IMODE(st.st_mode) == 0o751 and st.st_mtime == 1234


def test_root_entry_sets_root_metadata(root):
    apply(mktar(dir_("./", mode=0o750, mtime=777), reg("./a", b"1")), root)
    st = os.lstat(root)
    assert stat.S_IMODE(st.st_mode) == 0o750 and st.st_mtime == 777
    assert (root / "a").read_bytes() == b"1"


def test_file_replaces_dir_and_dir_replaces_file(root):
    (root / "was_dir/deep").mkdir(parents=True)
    (root / "was_dir/deep/f").write_text("x")
    (root / "was_file").write_text("x")
    apply(mktar(reg("was_dir", b"now a file"), dir_("was_file/"), reg("was_file/child", b"c")), root)
    assert (root / "was_dir").read_bytes() == b"now a file"
    assert (root / "was_file").is_dir() and (root / "was_file/child").read_bytes() == b"c"


def test_existing_symlink_is_replaced_not_followed(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target").write_text("precious")
    os.symlink(str(outside / "target"), root / "f")
    os.symlink(str(outside), root / "d")
    apply(mktar(reg("f", b"new"), dir_("d/", mode=0o700)), root)
    assert not os.path.islink(root / "f") and (root / "f").read_bytes() == b"new"
    assert not os.path.islink(root / "d") and (root / "d").is_dir()
    assert (outside / "target").read_text() == "precious"
    assert os.listdir(outside) == ["target"]


def test_symlinks_and_in_root_symlink_parents_are_followed(root):
    apply(mktar(dir_("usr/bin/"), sym("bin", "usr/bin"), reg("bin/ls", b"ELF"),
                sym("lib", "./usr/../usr/lib"), reg("lib/x.so", b"so")), root)
    assert os.readlink(root / "bin") == "usr/bin"
    assert (root / "usr/bin/ls").read_bytes() == b"ELF"
    assert (root / "usr/lib/x.so").read_bytes() == b"so"
    assert os.path.islink(root / "bin")


def test_hardlinks(root):
    (root / "lower").write_text("from lower")
    apply(mktar(reg("a", b"data", mode=0o750), hard("b", "a"), hard("c", "./lower"),
                dir_("sub/"), hard("sub/d", "/a")), root)
    sa, sb, sd = (os.lstat(root / n) for n in ("a", "b", "sub/d"))
    assert sa.st_ino == sb.st_ino == sd.st_ino and sa.st_nlink == 3
    assert os.lstat(root / "c").st_ino == os.lstat(root / "lower").st_ino


def test_hardlink_to_missing_target_fails(root):
    with pytest.raises(LayerError, match="'b'.*does not exist"):
        apply(mktar(hard("b", "nope")), root)


def test_fifo(root):
    apply(mktar(fifo("run/pipe", mode=0o620)), root)
    st = os.lstat(root / "run/pipe")
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o620


def test_devices_skipped_without_privilege_or_made_as_root(root):
    ti = tarfile.TarInfo("dev/null")
    ti.type, ti.devmajor, ti.devminor, ti.mode = tarfile.CHRTYPE, 1, 3, 0o666
    apply(mktar((ti, None), reg("after", b"ok")), root)
    assert (root / "after").read_bytes() == b"ok"
    if os.geteuid() == 0:
        st = os.lstat(root / "dev/null")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


def test_gnu_format_long_names_and_ustar_prefix(root):
    long = "d" * 120 + "/" + "f" * 120
    data = mktar(reg(long, b"gnu"), sym("l" * 110, "t" * 150), fmt=tarfile.GNU_FORMAT)
    apply(data, root)
    assert (root / long).read_bytes() == b"gnu"
    assert os.readlink(root / ("l" * 110)) == "t" * 150
    name = "p" * 90 + "/" + "q" * 90  # fits ustar prefix+name
    apply(mktar(reg(name, b"ustar"), fmt=tarfile.USTAR_FORMAT), root)
    assert (root / name).read_bytes() == b"ustar"


def test_non_utf8_name(root):
    name = os.fsdecode(b"caf\xe9")
    apply(mktar(reg(name, b"latin1"), fmt=tarfile.GNU_FORMAT), root)
    assert os.path.exists(os.path.join(os.fsencode(str(root)), b"caf\xe9"))


# -- whiteouts -----------------------------------------------------------------------
def _lower(root):
    (root / "etc/skel").mkdir(parents=True)
    (root / "etc/passwd").write_text("p")
    (root / "etc/skel/.bashrc").write_text("b")
    (root / "var/cache/apt").mkdir(parents=True)
    (root / "var/cache/apt/a.bin").write_text("a")
    (root / "var/cache/apt/b.bin").write_text("b")


def test_whiteout_delete_file_and_tree(root):
    _lower(root)
    apply(mktar(reg("etc/.wh.passwd"), reg("etc/.wh.skel"), reg(".wh.missing"),
                reg("nodir/.wh.x")), root)
    assert not (root / "etc/passwd").exists()
    assert not (root / "etc/skel").exists()
    assert not (root / "nodir").exists()  # a whiteout does not create its directory


def test_whiteout_through_in_root_symlink(root):
    _lower(root)
    os.symlink("var/cache", root / "cache")
    apply(mktar(reg("cache/apt/.wh.a.bin")), root)
    assert not (root / "var/cache/apt/a.bin").exists()
    assert (root / "var/cache/apt/b.bin").exists()


def test_whiteout_does_not_remove_same_layer_entry(root):
    apply(mktar(reg("f", b"mine"), reg(".wh.f")), root)
    assert (root / "f").read_bytes() == b"mine"


@pytest.mark.parametrize("marker_first", [True, False])
def test_opaque_delete_mode_keeps_same_layer_entries(root, marker_first):
    _lower(root)
    (root / "var/cache/apt/archives").mkdir()
    (root / "var/cache/apt/archives/old.deb").write_text("old")
    entries = [dir_("var/cache/apt/"), reg("var/cache/apt/new.bin", b"new"),
               reg("var/cache/apt/archives/new.deb", b"n")]
    marker = reg("var/cache/apt/.wh..wh..opq")
    entries = [entries[0], marker] + entries[1:] if marker_first else entries + [marker]
    apply(mktar(*entries), root)
    got = sorted(os.listdir(root / "var/cache/apt"))
    assert got == ["archives", "new.bin"]
    assert os.listdir(root / "var/cache/apt/archives") == ["new.deb"]
    assert (root / "etc/passwd").exists()


def test_opaque_at_root_and_meta_whiteouts_skipped(root):
    _lower(root)
    apply(mktar(reg(".wh..wh.plnk/123"), reg("etc/.wh..wh.aufs"), reg("kept", b"k"),
                reg(".wh..wh..opq")), root)
    assert os.listdir(root) == ["kept"]


def test_invalid_whiteout_refused(root, tmp_path):
    (root / "sub").mkdir()
    with pytest.raises(LayerError, match=r"sub/\.wh\.\.\."):
        apply(mktar(reg("sub/.wh...")), root)
    assert (root / "sub").exists() and (tmp_path / "root").exists()


def test_overlay_mode_whiteouts(root):
    apply(mktar(dir_("etc/"), reg("etc/.wh.passwd"), dir_("var/"), reg("var/.wh..wh..opq"),
                reg("var/new", b"n")), root, whiteouts="overlay")
    assert (root / "var/new").read_bytes() == b"n"
    # Linux >= 5.8 lets anyone make 0:0 whiteout devices; older kernels skip them
    if os.geteuid() == 0 or os.path.lexists(root / "etc/passwd"):
        st = os.lstat(root / "etc/passwd")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    if os.geteuid() == 0:
        assert os.getxattr(root / "var", "trusted.overlay.opaque") == b"y"


# -- streams -------------------------------------------------------------------------
def _stream_apply(blob, root):
    with open_layer_stream(io.BytesIO(blob)) as s:
        return apply_layer(s, str(root))


def test_plain_and_gzip_streams(root, tmp_path):
    tar = mktar(reg("a", b"A" * 5000), reg("b", os.urandom(3 << 20)))
    assert _stream_apply(tar, root) == 5000 + (3 << 20)
    other = tmp_path / "gz"
    assert _stream_apply(gzip.compress(tar), other) == 5000 + (3 << 20)
    assert (other / "b").read_bytes() == (root / "b").read_bytes()


def test_multi_member_gzip(root):
    tar = mktar(reg("a", b"x" * 100000))
    blob = gzip.compress(tar[:10240]) + gzip.compress(tar[10240:])
    _stream_apply(blob, root)
    assert (root / "a").read_bytes() == b"x" * 100000


def test_truncated_gzip(root):
    blob = gzip.compress(mktar(reg("a", os.urandom(200000))))
    with pytest.raises(LayerError, match="truncated"):
        _stream_apply(blob[: len(blob) // 2], root)
    with pytest.raises(LayerError, match="truncated"):
        _stream_apply(blob[:-4], root)  # only the trailer is missing


def test_corrupt_gzip(root):
    blob = bytearray(gzip.compress(mktar(reg("a", b"hello" * 1000))))
    blob[20:30] = b"\xff" * 10
    with pytest.raises(LayerError, match="corrupt|truncated"):
        _stream_apply(bytes(blob), root)


@pytest.mark.parametrize("cut", ["mid_data", "mid_header", "no_end_marker"])
def test_truncated_tar(root, cut):
    tar = mktar(reg("a", b"x" * 2000), reg("b", b"y" * 100))
    assert tar[2560:2561] == b"b"  # header of "b" follows a's 512 + 2048 bytes
    if cut == "mid_data":
        data = tar[:1024]
    elif cut == "mid_header":
        data = tar[:2560 + 100]
    else:
        end = len(tar.rstrip(b"\x00"))
        data = tar[: (end + 511) // 512 * 512]
    with pytest.raises(LayerError, match="truncated"):
        apply(data, root)


def test_garbage_is_not_a_tar(root):
    with pytest.raises(LayerError):
        apply(b"this is not a tar archive at all" * 40, root)


@pytest.mark.skipif(not shutil.which("zstd"), reason="zstd binary not installed")
def test_zstd_via_binary(root, monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_zstandard(name, *a, **k):
        if name == "zstandard":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_zstandard)
    tar = mktar(reg("z", os.urandom(300000)))
    blob = subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True, check=True).stdout
    assert _stream_apply(blob, root) == 300000
    with pytest.raises(LayerError, match="truncated"):
        _stream_apply(blob[: len(blob) // 2], tmp_path / "t")


def test_zstd_via_module(root, tmp_path):
    import zstandard  # a dependency of pyrt-core
    tar = mktar(reg("z", os.urandom(300000)), reg("zeros", bytes(5 << 20)))
    blob = zstandard.ZstdCompressor().compress(tar[:4096]) + zstandard.ZstdCompressor().compress(tar[4096:])
    _stream_apply(blob, root)
    assert (root / "zeros").read_bytes() == bytes(5 << 20)
    with pytest.raises(LayerError, match="truncated"):
        _stream_apply(blob[:-10], tmp_path / "t")


def test_zstd_needs_module_or_binary(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_zstandard(name, *a, **k):
        if name == "zstandard":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_zstandard)
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(LayerError, match="zstandard module or zstd binary"):
        open_layer_stream(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"\0" * 10))


def test_source_errors_pass_through(root):
    class Broken(io.RawIOBase):
        def readable(self):
            return True

        def read(self, n=-1):
            raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        apply_layer(Broken(), str(root))


# -- escapes ---------------------------------------------------------------------------
@pytest.fixture
def jail(tmp_path):
    """(root, check): ``check()`` asserts nothing outside root changed."""
    r = tmp_path / "root"
    r.mkdir()
    outside = tmp_path / "outside"
    (outside / "etc").mkdir(parents=True)
    (outside / "etc/passwd").write_text("root:x:0:0\n")
    (outside / "secret").write_text("s3cret")
    os.chmod(outside, 0o751)

    def snapshot():
        items = {}
        for dirpath, dirnames, filenames in os.walk(tmp_path):
            if dirpath == str(r) or dirpath.startswith(str(r) + os.sep):
                continue
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                if p == str(r):
                    continue
                st = os.lstat(p)
                content = open(p, "rb").read() if stat.S_ISREG(st.st_mode) else None
                items[p] = (st.st_mode, st.st_mtime_ns, st.st_nlink, content)
        st = os.lstat(outside)
        items["<outside>"] = (st.st_mode, st.st_mtime_ns)
        return items

    before = snapshot()

    def check():
        assert snapshot() == before
        assert sorted(os.listdir(tmp_path)) == ["outside", "root"]

    return r, outside, check


def _refused(data, root, match=None):
    with pytest.raises(LayerError) as ei:
        apply(data, root)
    msg = str(ei.value)
    assert "\n" not in msg
    if match:
        assert match in msg, msg
    return msg


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/../x", "./../outside/secret",
                                  "../outside/secret", "a/b/../../../outside/secret"])
def test_dotdot_names_refused(jail, name):
    root, outside, check = jail
    msg = _refused(mktar(reg(name, b"pwned")), root, match=repr(name))
    assert "escapes the root" in msg
    check()


def test_escape_message_is_clear(jail):
    root, _, check = jail
    msg = _refused(mktar(reg("../etc/passwd", b"x")), root)
    assert msg == "layer entry '../etc/passwd' escapes the root"
    check()


def test_absolute_names_are_relative_to_root(jail):
    root, outside, check = jail
    apply(mktar(reg(str(outside / "secret"), b"inside"), reg("/etc/passwd", b"mine")), root)
    assert (root / str(outside / "secret").lstrip("/")).read_bytes() == b"inside"
    assert (root / "etc/passwd").read_bytes() == b"mine"
    check()


def test_write_through_absolute_symlink_refused(jail):
    root, outside, check = jail
    _refused(mktar(sym("link", str(outside / "etc")), reg("link/passwd", b"pwned")), root,
             match="'link/passwd'")
    check()


def test_write_through_symlink_to_host_etc_refused(jail):
    root, _, check = jail
    probe = "/etc/pyrt-unpack-test-must-not-exist"
    assert not os.path.exists(probe)
    try:
        msg = _refused(mktar(sym("link", "/etc"), reg("link/" + os.path.basename(probe), b"x")), root)
        assert "symlink" in msg and "/etc" in msg
        assert not os.path.exists(probe)
    finally:
        if os.path.exists(probe):
            os.unlink(probe)
    check()


def test_dir_through_absolute_symlink_refused(jail):
    root, outside, check = jail
    _refused(mktar(sym("link", str(outside)), dir_("link/newdir/", mode=0o777)), root)
    check()


def test_write_through_climbing_relative_symlink_refused(jail):
    root, outside, check = jail
    _refused(mktar(dir_("a/b/"), sym("a/b/up", "../../.."), reg("a/b/up/outside/secret", b"pwned")),
             root, match="escapes the root through symlink")
    _refused(mktar(sym("up2", "../outside"), reg("up2/new", b"pwned")), root)
    check()


def test_symlink_chain_escape_refused(jail):
    root, outside, check = jail
    # each link looks harmless; together they climb out
    _refused(mktar(dir_("x/y/"), sym("x/y/l1", ".."), sym("x/l2", "y/l1/.."), sym("l3", "x/l2/.."),
                   reg("l3/outside/secret", b"pwned")), root)
    check()


def test_symlink_loop_refused(jail):
    root, _, check = jail
    _refused(mktar(sym("a", "b"), sym("b", "a"), reg("a/f", b"x")), root, match="symbolic links")
    check()


def test_hardlink_escapes_refused(jail):
    root, outside, check = jail
    _refused(mktar(hard("h", "../../etc/passwd")), root, match="'h'")
    _refused(mktar(hard("h2", "../outside/secret")), root)
    _refused(mktar(sym("link", str(outside)), hard("h3", "link/secret")), root)
    _refused(mktar(dir_("d/"), sym("d/up", "../.."), hard("h4", "d/up/outside/secret")), root)
    # an absolute target is relative to the root: missing here, not the host's file
    _refused(mktar(hard("h5", str(outside / "secret"))), root, match="does not exist")
    check()


def test_whiteout_and_opaque_through_escaping_symlink_refused(jail):
    root, outside, check = jail
    _refused(mktar(sym("link", str(outside)), reg("link/.wh.secret")), root)
    _refused(mktar(sym("up", ".."), reg("up/outside/.wh.secret")), root)
    _refused(mktar(sym("l2", str(outside)), reg("l2/.wh..wh..opq")), root)
    check()


def test_overlay_mode_escapes_refused(jail):
    root, outside, check = jail
    with pytest.raises(LayerError):
        apply(mktar(sym("link", str(outside)), reg("link/.wh.secret")), root, whiteouts="overlay")
    with pytest.raises(LayerError):
        apply(mktar(reg("../.wh.secret")), root, whiteouts="overlay")
    check()


def test_deferred_dir_metadata_not_applied_through_replacing_symlink(jail):
    root, outside, check = jail
    # "d" is a directory (mode applied at the end), then replaced by a symlink out
    apply(mktar(dir_("d/", mode=0o700, mtime=5), sym("d", str(outside))), root)
    assert os.readlink(root / "d") == str(outside)
    check()


def test_existing_escaping_symlink_from_lower_layer_refused(jail):
    root, outside, check = jail
    os.symlink(str(outside), root / "lowerlink")
    _refused(mktar(reg("lowerlink/secret", b"pwned")), root)
    os.symlink("../outside", root / "rel")
    _refused(mktar(reg("rel/secret", b"pwned")), root)
    check()


def test_nul_in_pax_name_refused(root):
    ti, data = reg("ok", b"1")
    ti.pax_headers = {"path": "a\x00b"}
    with pytest.raises(LayerError):
        apply(mktar((ti, data)), root)


def test_bad_whiteouts_argument(root):
    with pytest.raises(ValueError):
        apply(mktar(reg("a")), root, whiteouts="bogus")


def test_unprivileged_chown_skipped(root):
    machine.skip_unless("unprivileged")
    apply(mktar(reg("f", b"x", uid=0, gid=0)), root)
    assert os.lstat(root / "f").st_uid == os.geteuid()


def test_parent_that_is_not_a_directory(root):
    (root / "blocker").write_text("file")
    with pytest.raises(LayerError, match="'blocker/child'.*not a directory"):
        apply(mktar(reg("blocker/child", b"x")), root)


def test_size_of_header_only_entries_is_ignored(root):
    """A directory or link header with a non-zero size carries no data."""
    tar = bytearray(mktar(dir_("d/"), reg("d/f", b"data")))
    ti = tarfile.TarInfo("d/")
    ti.type, ti.mode, ti.mtime, ti.size = tarfile.DIRTYPE, 0o755, MTIME, 700
    tar[:512] = ti.tobuf(tarfile.USTAR_FORMAT)
    apply(bytes(tar), root)
    assert (root / "d/f").read_bytes() == b"data"


def _readahead_threads():
    import threading

    return [t for t in threading.enumerate() if t.name == "pyrt-layer-readahead" and t.is_alive()]


def test_gzip_readahead_thread_stops_when_closed_or_dropped():
    import gc
    import time

    blob = gzip.compress(os.urandom(8 << 20))
    s = open_layer_stream(io.BytesIO(blob))
    assert s.read(10)
    s.close()
    assert not _readahead_threads()
    s = open_layer_stream(io.BytesIO(blob))
    s.read(10)
    del s
    gc.collect()
    deadline = time.monotonic() + 5
    while _readahead_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _readahead_threads()


def test_stream_error_is_raised_again_on_next_read():
    blob = gzip.compress(os.urandom(100000))[:-100]
    with open_layer_stream(io.BytesIO(blob)) as s:
        with pytest.raises(LayerError):
            s.read()
        with pytest.raises(LayerError):
            s.read(10)


@pytest.mark.skipif(not shutil.which("zstd"), reason="zstd binary not installed")
def test_zstd_process_killed_when_closed_early(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_zstandard(name, *a, **k):
        if name == "zstandard":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_zstandard)
    blob = subprocess.run(["zstd", "-q", "-c"], input=os.urandom(4 << 20), capture_output=True,
                          check=True).stdout
    s = open_layer_stream(io.BytesIO(blob))
    assert s.read(100)
    proc = s._proc
    s.close()
    assert proc.poll() is not None


def test_a_file_replaces_a_tree_deeper_than_the_recursion_limit(root):
    # a hostile lower layer: 1,100 nested directories (within PATH_MAX); the next layer
    # puts a file where the tree's top was (shutil.rmtree failed with RecursionError)
    deep = [dir_("/".join(["d"] * (i + 1))) for i in range(1100)]
    apply(mktar(*deep), root)
    apply(mktar(reg("d", b"flat")), root)
    assert (root / "d").read_bytes() == b"flat"


def test_the_documented_import_path_for_drivers_is_kept():
    """docs/writing-a-storage-plugin.md named pyrt_core.images.unpack.apply_layer before the
    unpacker moved to pyrt_core.archive: drivers outside this repository may import it there."""
    from pyrt_core.images import unpack as documented

    assert documented.apply_layer is apply_layer
