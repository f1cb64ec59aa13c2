"""--detach-keys, -a/--attach and --sig-proxy values (cli.containers.terminal): docker's syntax."""
import pytest

from pyrt_core.cli.containers.terminal import parse_attach, parse_bool, parse_detach_keys
from pyrt_core.errors import UsageError


@pytest.mark.parametrize("text, keys", [
    (None, None), ("", None), ("ctrl-p,ctrl-q", b"\x10\x11"), ("ctrl-a,d", b"\x01d"),
    ("ctrl-@", b"\x00"), ("ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", b"\x1b\x1c\x1d\x1e\x1f"),
    ("CTRL-X", b"\x18"), ("a,b,c", b"abc"),
])
def test_detach_keys(text, keys):
    assert parse_detach_keys(text) == keys


@pytest.mark.parametrize("text", ["ctrl-1", "ctrl-", "ctrl-pq", "p,,q", "alt-x", "ctrl-p,"])
def test_bad_detach_keys(text):
    with pytest.raises(UsageError, match="invalid detach keys"):
        parse_detach_keys(text)


def test_attach_streams():
    assert parse_attach([]) is None
    assert parse_attach(["STDOUT", "stderr"]) == {"stdout", "stderr"}
    with pytest.raises(UsageError, match="valid streams are STDIN, STDOUT and STDERR"):
        parse_attach(["stdio"])


def test_bool_values():
    assert parse_bool("true", "--sig-proxy") and not parse_bool("FALSE", "--sig-proxy")
    assert parse_bool("1", "--x") and not parse_bool("0", "--x")
    with pytest.raises(UsageError, match="expected true or false"):
        parse_bool("busybox", "--sig-proxy")
