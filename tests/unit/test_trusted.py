"""pyrt_core.trusted: which directories and files pyrt may act on (runs as root and as an
unprivileged user: the cases needing another owner are made by root only)."""
from __future__ import annotations

import os

import pytest

from pyrt_core import trusted
from pyrt_core.testing import machine


@pytest.fixture(autouse=True)
def fresh():
    trusted.forget()
    yield
    trusted.forget()


@pytest.fixture
def base(tmp_path):
    d = tmp_path / "base"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    return d


def test_own_directory_and_file_are_trusted(base):
    assert trusted.why_untrusted_dir(str(base)) is None
    assert trusted.write(str(base / "c" / "f"), b"data")
    assert oct((base / "c").stat().st_mode & 0o777) == "0o700"  # made 0700
    assert trusted.read(str(base / "c" / "f")) == b"data"
    assert oct((base / "c" / "f").stat().st_mode & 0o777) == "0o644"


def test_directory_writable_by_others_or_group_is_not(base):
    (base / "f").write_bytes(b"x")
    for mode, who in ((0o777, "others"), (0o775, "group"), (0o1777, "others")):
        os.chmod(base, mode)
        trusted.forget()
        assert who in trusted.why_untrusted_dir(str(base))
        assert trusted.read(str(base / "f")) is None
        assert not trusted.write(str(base / "g"), b"x")
        assert not (base / "g").exists()


def test_a_sticky_directory_above_is_allowed_but_not_below_a_writable_one(base):
    (base / "mine").mkdir(mode=0o700)
    os.chmod(base, 0o1777)  # as /tmp
    assert trusted.why_untrusted_dir(str(base / "mine")) is None
    os.chmod(base, 0o777)  # not sticky: others could rename "mine" away
    trusted.forget()
    assert "writable by group and others" in trusted.why_untrusted_dir(str(base / "mine"))
    assert not trusted.write(str(base / "mine" / "f"), b"x")


def test_nothing_is_created_under_an_untrusted_directory(base):
    os.chmod(base, 0o777)
    assert trusted.why_untrusted_dir(str(base / "a" / "b"), create=True)
    assert not (base / "a").exists()


def test_symlinks_in_the_path_are_resolved_then_checked(base):
    (base / "real").mkdir(mode=0o700)
    os.symlink(base / "real", base / "link")
    assert trusted.write(str(base / "link" / "f"), b"via link")
    assert trusted.read(str(base / "real" / "f")) == b"via link"


def test_files_must_be_regular_ours_and_not_writable_by_others(base):
    f = base / "f"
    f.write_bytes(b"x")
    os.chmod(f, 0o666)
    assert trusted.read(str(f)) is None
    os.chmod(f, 0o644)
    assert trusted.read(str(f)) == b"x"
    os.symlink(f, base / "link")
    assert trusted.read(str(base / "link")) is None  # O_NOFOLLOW
    os.mkfifo(base / "fifo")
    assert trusted.read(str(base / "fifo")) is None  # and no blocking open
    (base / "dir").mkdir()
    assert trusted.read(str(base / "dir")) is None
    assert trusted.read(str(base / "missing")) is None
    assert trusted.read(str(f), limit=0) is None


def test_write_replaces_a_symlink_instead_of_following_it(base):
    target = base / "target"
    target.write_bytes(b"theirs")
    os.symlink(target, base / "f")
    assert trusted.write(str(base / "f"), b"ours")
    assert target.read_bytes() == b"theirs"
    assert not os.path.islink(base / "f") and trusted.read(str(base / "f")) == b"ours"


def test_write_refuses_a_mode_others_could_write():
    with pytest.raises(ValueError):
        trusted.write("/nonexistent/f", b"x", 0o666)


@machine.needs("root", detail="to give a directory or file to another user")
def test_another_users_directory_or_file_is_not_trusted(base):
    (base / "theirs").mkdir()
    (base / "theirs" / "f").write_bytes(b"x")
    os.chown(base / "theirs", 65534, 65534)
    assert "owned by uid 65534" in trusted.why_untrusted_dir(str(base / "theirs"))
    assert trusted.read(str(base / "theirs" / "f")) is None
    # a directory of root's below another user's: they can swap it, so no
    (base / "theirs" / "roots").mkdir()
    assert "owned by uid 65534" in trusted.why_untrusted_dir(str(base / "theirs" / "roots"))
    # root's directory, another user's file in it
    (base / "f").write_bytes(b"x")
    os.chown(base / "f", 65534, 65534)
    assert trusted.read(str(base / "f")) is None


@machine.needs("unprivileged")
def test_root_owned_directories_are_trusted_by_everyone():
    assert trusted.why_untrusted_dir("/") is None
    assert trusted.why_untrusted_dir("/usr") is None
