"""--log-driver / --log-opt (monitor.logdrivers), the journal's wire format, and reading
journalctl's entries back (logs.journal_record)."""
import json
import os
import re
import socket

import pytest

from pyrt_core import logs
from pyrt_core.errors import UsageError
from pyrt_core.monitor import logdrivers as ld


def test_defaults_and_docker_names():
    assert ld.parse(None, []) == ("k8s-file", {}, None, None)
    assert ld.parse("json-file", ["max-size=1k", "max-file=1", "tag={{.Name}}"]) == \
        ("json-file", {"max-size": "1k", "max-file": "1", "tag": "{{.Name}}"}, 1024, "{{.Name}}")
    assert ld.parse("journald", ["tag=x-{{.ID}}"])[3] == "x-{{.ID}}"
    assert ld.parse("none", ["max-size=1k"])[2] is None  # docker ignores none's options


@pytest.mark.parametrize("driver, opts, message", [
    ("syslog", [], "no log driver named 'syslog' is registered"),
    ("journald", ["max-size=1m"], "unknown log opt 'max-size' for journald log driver"),
    ("json-file", ["compress=true"], "unknown log opt 'compress' for json-file log driver"),
    ("k8s-file", ["max-size=lots"], "invalid value for --log-opt max-size"),
    ("k8s-file", ["max-file=0"], "max-file"),
    ("k8s-file", ["max-file=3"], "max-file greater than 1 is not supported"),
    ("k8s-file", ["tag={{.Nope}}"], "{{.Nope}} is not one of"),
    ("k8s-file", ["tag={{.ID"], "unclosed"),
    ("k8s-file", ["max-size"], "expected KEY=VALUE"),
])
def test_bad_driver_or_option(driver, opts, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        ld.parse(driver, opts)


def test_tag_template():
    class C:
        id = "a" * 64
        name = "web"
        image_name = "demo/busybox"
        image_id = "sha256:" + "b" * 64

        class config:
            log_tag = "{{.DaemonName}}/{{.Name}}/{{.ID}}/{{.ImageName}}/{{.ImageID}}"

    assert ld.tag_for(C) == f"pyrt/web/{'a' * 12}/demo/busybox/{'b' * 12}"
    C.config.log_tag = None
    assert ld.tag_for(C) == "a" * 12


def test_conmon_arguments():
    assert ld.conmon_log_args("json-file", "/x/ctr.log") == ["-l", "k8s-file:/x/ctr.log"]
    assert ld.conmon_log_args(None, "/x/ctr.log") == ["-l", "k8s-file:/x/ctr.log"]
    assert ld.conmon_log_args("journald", "/x/ctr.log") == ["-l", "journald:/x/ctr.log"]
    assert ld.conmon_log_args("none", "/x/ctr.log") == ["-l", "none:/x/ctr.log"]


def _parse_native(datagram: bytes) -> dict:
    """journald's native protocol, read back as journald reads it."""
    out = {}
    i = 0
    while i < len(datagram):
        nl = datagram.index(b"\n", i)
        line = datagram[i:nl]
        if b"=" in line:
            k, _, v = line.partition(b"=")
            out[k.decode()] = v
            i = nl + 1
        else:
            n = int.from_bytes(datagram[nl + 1:nl + 9], "little")
            out[line.decode()] = datagram[nl + 9:nl + 9 + n]
            assert datagram[nl + 9 + n:nl + 10 + n] == b"\n"
            i = nl + 10 + n
    return out


def test_journal_writer_sends_the_native_protocol(tmp_path):
    path = str(tmp_path / "journal.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)

    class C:
        id = "c" * 64
        name = "web"
        image_name = "img"
        image_id = "sha256:" + "d" * 64

        class config:
            log_tag = None

    w = ld.JournalWriter(C, socket_path=path)
    w.write("stdout", b"one\ntwo\npart")
    w.write("stderr", b"bad\n")
    w.close()
    got = [_parse_native(server.recv(65536)) for _ in range(4)]
    server.close()
    assert [g["MESSAGE"] for g in got] == [b"one", b"two", b"part", b"bad"]
    assert [g["PRIORITY"] for g in got] == [b"6", b"6", b"6", b"3"]
    assert "CONTAINER_PARTIAL_MESSAGE" in got[2] and "CONTAINER_PARTIAL_MESSAGE" not in got[0]
    assert got[0]["CONTAINER_ID_FULL"] == b"c" * 64 and got[0]["CONTAINER_TAG"] == b"c" * 12
    assert got[0]["SYSLOG_IDENTIFIER"] == b"c" * 12 and got[0]["CONTAINER_NAME"] == b"web"
    assert ld.JournalWriter.encode([("MESSAGE", b"a\nb")]) == \
        b"MESSAGE\n" + (3).to_bytes(8, "little") + b"a\nb\n"


def test_journal_entries_read_back():
    e = {"MESSAGE": "hello", "PRIORITY": "6", "__REALTIME_TIMESTAMP": "1700000000123456"}
    assert logs.journal_record(json.dumps(e).encode()) == \
        ("2023-11-14T22:13:20.123456000+00:00", "stdout", b"hello\n")
    e = {"MESSAGE": [104, 105], "PRIORITY": "3", "CONTAINER_PARTIAL_MESSAGE": "true",
         "__REALTIME_TIMESTAMP": "0"}
    assert logs.journal_record(json.dumps(e).encode())[1:] == ("stderr", b"hi")
    assert logs.journal_command("x", 5, True) == [
        "journalctl", "--no-pager", "--output", "json", "CONTAINER_ID_FULL=x", "--lines", "5",
        "--follow"]


def test_journald_refused_when_not_running(tmp_path):
    assert not ld.journald_running(str(tmp_path / "none"))
    assert ld.journald_running(os.devnull) is False
