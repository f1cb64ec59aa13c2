"""docker's prune --filter (cli.prune_filter): until, label, label!, and its errors."""
from __future__ import annotations

import pytest

from pyrt_core.cli.prune_filter import PruneFilter, rfc3339_ns
from pyrt_core.errors import UsageError

NOW = 1_800_000_000 * 1_000_000_000  # 2027-01-15T08:00:00Z


def test_until_takes_durations_unix_times_and_dates():
    assert PruneFilter.parse(["until=1h"], NOW).until_ns == NOW - 3600 * 10**9
    assert PruneFilter.parse(["until=1700000000"], NOW).until_ns == 1_700_000_000 * 10**9
    assert PruneFilter.parse(["until=2027-01-15T08:00:00Z"], NOW).until_ns == NOW
    f = PruneFilter.parse(["until=10m"], NOW)
    assert f.matches("2027-01-15T07:49:59.999999Z", {})  # before: may go
    assert not f.matches("2027-01-15T07:50:00Z", {})  # not before: kept
    assert not f.matches("", {}) and not f.matches(None, {})  # no time: kept
    assert not PruneFilter.parse([], NOW)  # no filter at all


def test_labels():
    f = PruneFilter.parse(["label=team", "label=env=prod", "label!=keep", "label!=tier=db"], NOW)
    assert f.matches(None, {"team": "a", "env": "prod", "tier": "web"})
    assert not f.matches(None, {"team": "a", "env": "dev"})
    assert not f.matches(None, {"env": "prod"})
    assert not f.matches(None, {"team": "a", "env": "prod", "keep": ""})
    assert not f.matches(None, {"team": "a", "env": "prod", "tier": "db"})
    assert PruneFilter.parse(["label!=a=b"], NOW).matches(None, {})  # absent: other than b


@pytest.mark.parametrize("items, message", [
    (["until"], "bad format of filter"), (["name=x"], "invalid filter 'name'"),
    (["until=1h", "until=2h"], "more than one until"), (["until=soon"], "failed to parse"),
    (["label="], "a label key is needed"), (["label!==v"], "a label key is needed"),
])
def test_bad_filters_are_usage_errors(items, message):
    with pytest.raises(UsageError, match=message):
        PruneFilter.parse(items, NOW)


def test_volumes_have_no_until():
    with pytest.raises(UsageError, match="invalid filter 'until'"):
        PruneFilter.parse(["until=1h"], NOW, volumes=True)
    assert PruneFilter.parse(["label=a"], NOW, volumes=True).labels == ["a"]


def test_record_times():
    assert rfc3339_ns("2027-01-15T08:00:00Z") == NOW
    assert rfc3339_ns("2027-01-15T08:00:00.123456789Z") == NOW + 123456789
    assert rfc3339_ns("2027-01-15T09:00:00.5+01:00") == NOW + 500_000_000
    assert rfc3339_ns("2027-01-15T08:00:00") == NOW  # no zone: UTC, as pyrt writes them
    for bad in ("", None, "yesterday", "2027-01-15 08:00:00Z", "2027-13-45T08:00:00Z"):
        assert rfc3339_ns(bad) is None, bad
