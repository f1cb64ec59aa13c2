"""Health checks' logic: docker's durations, the flags, the merge with the image's
HEALTHCHECK (moby's), and State.Health's rules (moby's daemon/health.go)."""
from __future__ import annotations

import types

import pytest

from pyrt_core.errors import UsageError
from pyrt_core.health import config as hc
from pyrt_core.health import state as hs

S = 1_000_000_000


@pytest.mark.parametrize("text,ns", [
    ("0", 0), ("1s", S), ("500ms", S // 2), ("1m30s", 90 * S), ("1.5s", 3 * S // 2),
    ("2h", 7200 * S), ("10us", 10_000), ("10µs", 10_000), ("7ns", 7), ("-1s", -S),
    ("+3s", 3 * S), (".5s", S // 2), ("1h2m3.5s", 3723 * S + S // 2),
])
def test_parse_duration(text, ns):
    assert hc.parse_duration(text) == ns


@pytest.mark.parametrize("text,msg", [
    ("30", 'time: missing unit in duration "30"'), ("1x", 'time: unknown unit "x" in duration "1x"'),
    ("", 'time: invalid duration ""'), ("s", 'time: invalid duration "s"'),
    ("-", 'time: invalid duration "-"'), ("1s2", 'time: missing unit in duration "1s2"'),
])
def test_parse_duration_errors(text, msg):
    with pytest.raises(hc.DurationError) as e:
        hc.parse_duration(text)
    assert str(e.value) == msg


@pytest.mark.parametrize("ns,text", [
    (0, "0s"), (S, "1s"), (30 * S, "30s"), (90 * S, "1m30s"), (S // 2, "500ms"),
    (3 * S // 2, "1.5s"), (3600 * S, "1h0m0s"), (1500, "1.5µs"),
])
def test_format_duration(ns, text):
    assert hc.format_duration(ns) == text


def _args(**kw):
    base = dict(health_cmd=None, health_interval=None, health_timeout=None,
                health_retries=None, health_start_period=None, health_start_interval=None,
                no_healthcheck=False)
    base.update(kw)
    return types.SimpleNamespace(**base)


def test_from_flags():
    assert hc.from_flags(_args()) is None
    assert hc.from_flags(_args(health_cmd="curl -f x", health_interval="1s",
                               health_retries="2", health_start_interval="300ms")) == {
        "Test": ["CMD-SHELL", "curl -f x"], "Interval": S, "Retries": 2,
        "StartInterval": 300_000_000}
    assert hc.from_flags(_args(no_healthcheck=True)) == {"Test": ["NONE"]}
    assert hc.from_flags(_args(health_interval="0s")) is None  # zeros: no settings
    assert hc.from_flags(_args(health_timeout="2s")) == {"Timeout": 2 * S}


@pytest.mark.parametrize("kw,msg", [
    (dict(health_interval="30"), 'invalid argument "30" for "--health-interval" flag: time: missing unit in duration "30"'),
    (dict(health_timeout="-1s"), "--health-timeout cannot be negative"),
    (dict(health_start_period="10ns"), "--health-start-period cannot be less than 1ms"),
    (dict(health_retries="x"), 'invalid argument "x" for "--health-retries" flag: strconv.ParseInt: parsing "x": invalid syntax'),
    (dict(health_retries="-2"), "--health-retries cannot be negative"),
    (dict(no_healthcheck=True, health_interval="1s"), "--no-healthcheck conflicts with --health-* options"),
])
def test_from_flags_errors(kw, msg):
    with pytest.raises(UsageError) as e:
        hc.from_flags(_args(**kw))
    assert str(e.value) == msg


def test_image_healthcheck_and_merge():
    image = hc.image_healthcheck({"Healthcheck": {"Test": ["CMD", "true"], "Interval": 2 * S,
                                                  "Timeout": 0, "Retries": 5}})
    assert image == {"Test": ["CMD", "true"], "Interval": 2 * S, "Retries": 5}
    assert hc.image_healthcheck({"Healthcheck": {"Test": ["BOGUS", "x"]}}) is None
    assert hc.image_healthcheck({"Healthcheck": "nope"}) is None
    assert hc.image_healthcheck(None) is None
    assert hc.merge(None, image) == image
    assert hc.merge({"Interval": S}, image) == {"Test": ["CMD", "true"], "Interval": S, "Retries": 5}
    assert hc.merge({"Test": ["NONE"]}, image) == {"Test": ["NONE"], "Interval": 2 * S, "Retries": 5}
    assert not hc.enabled(hc.merge({"Test": ["NONE"]}, image))
    assert hc.merge({"Test": ["CMD-SHELL", "x"]}, None) == {"Test": ["CMD-SHELL", "x"]}
    assert hc.effective({"Test": ["CMD", "x"]}) == hc.DEFAULTS
    assert hc.argv({"Test": ["CMD-SHELL", "a b"]}) == ["/bin/sh", "-c", "a b"]
    assert hc.argv({"Test": ["CMD", "a", "b"]}) == ["a", "b"]
    assert not hc.enabled(None) and not hc.enabled({"Test": ["CMD"]})


def test_state_rules(tmp_path):
    root, cid = str(tmp_path), "c" * 64
    (tmp_path / "containers" / cid).mkdir(parents=True)

    def result(code, out=b""):
        return {"Start": "s", "End": "e", "ExitCode": code, "Output": hs.truncate_output(out)}

    hs.begin_run(root, cid, 1)
    assert hs.read(root, cid) == {"Status": "starting", "FailingStreak": 0, "Run": 1, "Log": []}
    # start period: failures logged, not counted
    d = hs.record_result(root, cid, 1, result(1), retries=2, in_start_period=True)
    assert (d["Status"], d["FailingStreak"], len(d["Log"])) == ("starting", 0, 1)
    d = hs.record_result(root, cid, 1, result(1), retries=2, in_start_period=False)
    assert (d["Status"], d["FailingStreak"]) == ("starting", 1)
    d = hs.record_result(root, cid, 1, result(1), retries=2, in_start_period=False)
    assert (d["Status"], d["FailingStreak"]) == ("unhealthy", 2)
    d = hs.record_result(root, cid, 1, result(0, b"ok"), retries=2, in_start_period=False)
    assert (d["Status"], d["FailingStreak"]) == ("healthy", 0)
    # once healthy, a failure in the start period counts (moby: only while starting)
    d = hs.record_result(root, cid, 1, result(1), retries=2, in_start_period=True)
    assert (d["Status"], d["FailingStreak"]) == ("healthy", 1)
    for _ in range(5):
        d = hs.record_result(root, cid, 1, result(0), retries=2, in_start_period=False)
    assert len(d["Log"]) == 5
    # a result of another run is dropped; the end of the run is unhealthy; a new run starts
    assert hs.record_result(root, cid, 2, result(0), retries=2, in_start_period=False) is None
    hs.end_run(root, cid, 1)
    assert hs.status(root, cid) == "unhealthy"
    hs.begin_run(root, cid, 2)
    d = hs.read(root, cid)
    assert (d["Status"], d["FailingStreak"], len(d["Log"])) == ("starting", 0, 5)
    assert hs.docker_shape(d) == {"Status": "starting", "FailingStreak": 0, "Log": d["Log"]}


def test_output_truncated_as_docker():
    assert hs.truncate_output(b"x" * 4096) == "x" * 4096
    assert hs.truncate_output(b"x" * 5000) == "x" * 4096 + "..."
    assert hs.truncate_output(b"\xff") == "\ufffd"
