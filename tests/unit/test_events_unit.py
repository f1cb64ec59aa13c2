"""The event journal (pyrt_core.events) and ``pyrt events``' logic (cli/events.py):
docker's time syntax, its filters, the template fields, a journal that stays bounded,
whole lines from concurrent writers, and one that another user could write refused."""
import json
import os
import time

import pytest

from pyrt_core import events
from pyrt_core.cli import events as cli_events
from pyrt_core.errors import UsageError


def _read(root) -> list[dict]:
    return [json.loads(x) for x in events.lines(str(root), replay=True, follow=False)]


def test_emit_writes_dockers_shape(tmp_path):
    events.emit(str(tmp_path), "container", "start", "c" * 64, {"name": "web", "image": "busy"})
    events.emit(str(tmp_path), "volume", "create", "data", {"driver": "local"})
    c, v = _read(tmp_path)
    assert c["status"] == "start" and c["id"] == "c" * 64 and c["from"] == "busy"
    assert c["Type"] == "container" and c["Action"] == "start" and c["scope"] == "local"
    assert c["Actor"] == {"ID": "c" * 64, "Attributes": {"name": "web", "image": "busy"}}
    assert c["time"] == c["timeNano"] // 10**9 and abs(c["time"] - time.time()) < 5
    assert "status" not in v and v["Actor"]["Attributes"] == {"driver": "local"}
    st = os.stat(events.journal_path(str(tmp_path)))
    assert st.st_mode & 0o777 == 0o600
    assert os.stat(events.journal_dir(str(tmp_path))).st_mode & 0o777 == 0o700


def test_journal_rotates_and_stays_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "MAX_SIZE", 4096)
    for i in range(400):
        events.emit(str(tmp_path), "volume", "create", f"v{i}")
    path = events.journal_path(str(tmp_path))
    assert os.path.getsize(path) <= 4096 + 400 and os.path.getsize(path + ".1") <= 4096 + 400
    assert sorted(os.listdir(events.journal_dir(str(tmp_path)))) == [
        "events.lock", "events.log", "events.log.1"]
    got = [e["Actor"]["ID"] for e in _read(tmp_path)]
    # the newest events, in order, with no gap: the rotated file then the current one
    assert got == [f"v{i}" for i in range(400 - len(got), 400)] and len(got) > 20


def test_concurrent_writers_leave_whole_lines(tmp_path, monkeypatch):
    """Many processes appending at once (and rotating): every line is one whole event."""
    monkeypatch.setattr(events, "MAX_SIZE", 64 * 1024)
    pids = []
    for w in range(8):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                for i in range(150):
                    events.emit(str(tmp_path), "container", "start", f"{w}-{i}",
                                {"pad": "x" * (w * 37)})
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    raw = list(events.lines(str(tmp_path), replay=True, follow=False))
    docs = [json.loads(x) for x in raw]  # no torn or interleaved line
    ids = [d["Actor"]["ID"] for d in docs]
    assert len(ids) == len(set(ids))
    for w in range(8):  # each writer's events in its order
        mine = [int(i.split("-")[1]) for i in ids if i.startswith(f"{w}-")]
        assert mine == sorted(mine)
    if not os.path.exists(events.journal_path(str(tmp_path)) + ".1"):
        assert len(ids) == 8 * 150


def test_a_journal_others_can_write_is_neither_written_nor_read(tmp_path):
    root = str(tmp_path)
    events.emit(root, "volume", "create", "a")
    path = events.journal_path(root)
    os.chmod(path, 0o622)
    events.emit(root, "volume", "create", "b")  # dropped, no error
    with pytest.raises(events.UntrustedJournal, match="writable by group or others"):
        list(events.lines(root, replay=True, follow=False))
    os.chmod(path, 0o600)
    assert [e["Actor"]["ID"] for e in _read(tmp_path)] == ["a"]
    from pyrt_core import trusted

    os.chmod(events.journal_dir(root), 0o777)
    trusted._dirs.clear()  # (a directory's chain is checked once per process)
    events.emit(root, "volume", "create", "c")  # dropped
    with pytest.raises(events.UntrustedJournal, match="directory is not trusted"):
        list(events.lines(root, replay=True, follow=False))
    os.chmod(events.journal_dir(root), 0o700)
    trusted._dirs.clear()
    assert [e["Actor"]["ID"] for e in _read(tmp_path)] == ["a"]
    os.rename(path, path + ".real")
    os.symlink(path + ".real", path)
    events.emit(root, "volume", "create", "d")  # O_NOFOLLOW: not through a symlink
    with pytest.raises(events.UntrustedJournal, match="symbolic link"):
        list(events.lines(root, replay=True, follow=False))
    assert open(path + ".real").read().count("\n") == 1


def test_a_torn_last_line_is_not_an_event(tmp_path):
    root = str(tmp_path)
    events.emit(root, "volume", "create", "a")
    with open(events.journal_path(root), "ab") as f:
        f.write(b'{"Type":"volume","Act')
    got = list(events.lines(root, replay=True, follow=False))
    assert len(got) == 1 and json.loads(got[0])["Actor"]["ID"] == "a"  # the line being written waits


NOW = 1_700_000_000 * 10**9


@pytest.mark.parametrize("text, want", [
    ("10m", NOW - 600 * 10**9), ("1h30m", NOW - 5400 * 10**9), ("0s", NOW),
    ("1.5s", NOW - 1_500_000_000), ("1700000000", 1_700_000_000 * 10**9),
    ("1700000000.25", 1_700_000_000 * 10**9 + 250_000_000), ("0", 0),
    ("2023-11-14T22:13:20Z", 1_700_000_000 * 10**9),
    ("2023-11-14T22:13:20.5Z", 1_700_000_000 * 10**9 + 500_000_000),
    ("2023-11-14T23:13:20+01:00", 1_700_000_000 * 10**9),
    ("2023-11-14T22:13Z", 1_700_000_000 * 10**9 - 20 * 10**9),
])
def test_dockers_time_syntax(text, want):
    assert cli_events.parse_time(text, NOW) == want


def test_a_time_without_zone_is_local(monkeypatch):
    monkeypatch.setenv("TZ", "UTC-2")
    time.tzset()
    try:
        assert cli_events.parse_time("2023-11-15T00:13:20", NOW) == 1_700_000_000 * 10**9
        assert cli_events.parse_time("2023-11-15", NOW) == (1_700_000_000 - 800) * 10**9
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("text", ["yesterday", "10 m", "2026-13-45", "1e9", "-", "", "12:00"])
def test_bad_times_are_usage_errors(text):
    with pytest.raises(UsageError, match="failed to parse value as time or duration"):
        cli_events.parse_time(text, NOW)


def _ev(type_, action, aid, **attrs):
    return {"Type": type_, "Action": action, "Actor": {"ID": aid, "Attributes": attrs},
            "scope": "local"}


def test_filters_as_dockers():
    m = cli_events.matches
    from pyrt_core.cli.filters import parse_filters

    c = _ev("container", "start", "abc123", name="web", image="busybox:1", team="a")
    ex = _ev("container", "exec_start: sh -c true", "abc123", name="web")
    v = _ev("volume", "mount", "data", container="abc123")
    i = _ev("image", "tag", "sha256:ff", name="busybox:1")

    def keep(evs, *flt):
        return [e for e in evs if m(e, parse_filters(list(flt), cli_events.FILTER_KEYS))]

    evs = [c, ex, v, i]
    assert keep(evs) == evs
    assert keep(evs, "type=volume") == [v]
    assert keep(evs, "type=volume", "type=image") == [v, i]
    assert keep(evs, "event=start") == [c]
    assert keep(evs, "event=exec_start") == [ex]  # the command after the colon
    assert keep(evs, "container=web") == [c, ex] == keep(evs, "container=abc")  # id prefix
    assert keep(evs, "container=eb") == []
    assert keep(evs, "image=busybox") == [c, i] == keep(evs, "image=busybox:1")
    assert keep(evs, "label=team") == [c] == keep(evs, "label=team=a")
    assert keep(evs, "label=team=b") == []
    assert keep(evs, "volume=data", "event=mount") == [v]


def test_bad_filter_values():
    from pyrt_core.cli.filters import parse_filters

    with pytest.raises(UsageError, match="invalid filter 'colour'"):
        parse_filters(["colour=red"], cli_events.FILTER_KEYS)
    with pytest.raises(UsageError, match="invalid filter 'type=box'"):
        cli_events.check_filters(parse_filters(["type=box"], cli_events.FILTER_KEYS))


def test_template_fields_and_json():
    from pyrt_core.cli import gotemplate

    ev = {"status": "die", "id": "abc", "from": "busy", "Type": "container", "Action": "die",
          "Actor": {"ID": "abc", "Attributes": {"exitCode": "3"}}, "scope": "local",
          "time": 5, "timeNano": 5_000_000_001}

    def run(fmt):
        return gotemplate.parse(fmt).execute(cli_events.template_data(ev))

    assert run("{{.Status}} {{.ID}} {{.From}} {{.Type}} {{.Action}} {{.Actor.ID}} "
               "{{.Actor.Attributes.exitCode}} {{.Scope}} {{.Time}} {{.TimeNano}}") == \
        "die abc busy container die abc 3 local 5 5000000001"
    assert json.loads(run("{{json .}}")) == ev  # docker marshals its json tags
    assert json.loads(run("{{json .Actor.Attributes}}")) == {"exitCode": "3"}
    assert run("{{.Actor.Attributes.nothing}}") == "<no value>"


def test_pretty_line_is_dockers():
    ev = {"Type": "container", "Action": "create", "timeNano": 1_700_000_000_123_456_789,
          "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busy"}}}
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        assert cli_events.pretty(ev) == \
            "2023-11-14T22:13:20.123456789Z container create abc (image=busy, name=web)"
    finally:
        del os.environ["TZ"]
        time.tzset()
