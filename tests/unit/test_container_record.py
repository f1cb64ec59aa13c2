"""The lean view of a container record (pyrt_core.containers.record): what the hot commands
(``ps``, ``rm``, ``stop``, conmon's exit command, the recovery pass) read and write
instead of the attrs models.  It must read as the models do (their defaults for fields an
older record lacks) and write back every key it did not touch (a newer release's fields,
a plugin's), so a ``stop`` or a ``container cleanup`` never drops what ``create`` wrote."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pyrt_core.containers.record import (
    CONFIG_DEFAULTS,
    STATE_DEFAULTS,
    TOP_DEFAULTS,
    ContainerRecord,
)
from pyrt_core.containers.store import ContainerStore
from pyrt_core.models import Container, ContainerConfig, ContainerState
from pyrt_core.records import field_spec, fields

PYRT = os.path.join(os.path.dirname(sys.executable), "pyrt")


def _default(cls, name):
    spec = field_spec(cls, name)
    return spec.factory() if spec.factory is not None else spec.default


def _lean_default(defaults: dict, name: str):
    d = defaults[name]
    return d() if d in (list, dict) else d


def test_state_defaults_are_the_models():
    assert set(fields(ContainerState)) == set(STATE_DEFAULTS)
    for name in fields(ContainerState):
        assert _lean_default(STATE_DEFAULTS, name) == _default(ContainerState, name), name


def test_config_and_top_defaults_are_the_models():
    for name in CONFIG_DEFAULTS:
        assert name in fields(ContainerConfig), \
            f"containers.record names {name!r}, ContainerConfig has not"
        assert _lean_default(CONFIG_DEFAULTS, name) == _default(ContainerConfig, name), name
    for name, value in TOP_DEFAULTS.items():
        assert value == _default(Container, name), name


def _container(cid: str, status: str = "exited", **state) -> Container:
    return Container(id=cid, name=f"r{cid[:5]}", image_id="sha256:" + "0" * 64, image_name="img",
                     created="2026-01-01T00:00:00Z", storage_driver="vfs",
                     config=ContainerConfig(image="img", command=["true"], auto_remove=False),
                     state=ContainerState(status=status, run=1, **state), monitor="conmon")


def _with_unknown_keys(d: dict) -> dict:
    d["from_a_newer_pyrt"] = {"kept": [1, 2]}
    d["config"]["networks_future"] = [{"name": "n1", "aliases": ["a"]}]
    d["state"]["plugin_mark"] = "keep me"
    return d


def test_the_view_reads_as_the_model_and_writes_back_what_it_read(tmp_path):
    store = ContainerStore(str(tmp_path / "root"), str(tmp_path / "run"))
    c = _container("a" * 64, status="running", pid=42)
    d = _with_unknown_keys(c.to_dict())
    del d["state"]["paused"], d["config"]["stop_timeout"]  # an older record
    r = ContainerRecord(d)
    assert (r.id, r.name, r.short_id, r.layer_id, r.image_id) == (c.id, c.name, c.short_id,
                                                                   c.layer_id, c.image_id)
    assert (r.state.status, r.state.pid, r.state.paused, r.config.stop_timeout) == \
        ("running", 42, False, None)
    assert (r.config.command, r.monitor, r.cgroup_manager) == (["true"], "conmon", "none")
    with pytest.raises(AttributeError):
        r.state.no_such_field = 1
    r.state.status, r.state.exit_code = "exited", 3
    store.save(r)
    with open(os.path.join(store.path(c.id), "container.json")) as f:
        back = json.load(f)
    assert back["state"]["status"] == "exited" and back["state"]["exit_code"] == 3
    assert back["from_a_newer_pyrt"] == {"kept": [1, 2]}
    assert back["config"]["networks_future"] == [{"name": "n1", "aliases": ["a"]}]
    assert back["state"]["plugin_mark"] == "keep me"
    # an event hook's Container (Engine.full) is built from the view, unknown fields left out
    from pyrt_core.engine import Engine

    full = Engine.full(r)
    assert full.state.exit_code == 3 and full.config == c.config and full.id == c.id
    # the attrs model reads the record too (it refuses unknown top-level fields: drop that)
    del d["from_a_newer_pyrt"]
    store.save(r)
    full = store.load(c.id)
    assert full is not None and full.state.exit_code == 3 and full.config == c.config


def test_a_damaged_record_is_refused_like_the_models_refuse_it(tmp_path):
    for bad in ([], {"id": "x"}, {**_container("b" * 64).to_dict(), "config": "nope"}):
        with pytest.raises((TypeError, KeyError)):
            ContainerRecord(bad)  # type: ignore[arg-type]


def _run(argv: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    r = subprocess.run([sys.executable, "-X", "importtime", PYRT, *argv], capture_output=True,
                       text=True, env={k: v for k, v in os.environ.items() if k != "PYRT_FAULT"})
    mods = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}
    return r, mods


@pytest.mark.parametrize("command", ["stop", "container cleanup"])
def test_a_lean_write_keeps_every_key_it_did_not_touch(tmp_path, command):
    """``stop`` of a container whose monitor is gone and conmon's exit command each record
    the exit through the lean view: the record's unknown keys survive, and no attrs."""
    root, run = str(tmp_path / "root"), str(tmp_path / "run")
    store = ContainerStore(root, run)
    cid = "c" * 64
    # running, but its monitor and process are gone (pid 0): the exit is recorded here
    c = _container(cid, status="running")
    os.makedirs(store.path(cid), mode=0o700)
    before = _with_unknown_keys(c.to_dict())
    with open(os.path.join(store.path(cid), "container.json"), "w") as f:
        json.dump(before, f)
    os.makedirs(os.path.join(run, "exits"))
    with open(os.path.join(run, "exits", cid), "w") as f:
        f.write("7")  # conmon's exit file
    g = ["--root", root, "--runroot", run, "--storage-driver", "vfs"]
    # the store's first use picks its driver through stevedore (then recorded) and records
    # the hook plans through pluggy: done by an `rm` first, as in test_cli_lean
    store.save(_container("d" * 64))
    r, _ = _run(g + ["rm", "d" * 64])
    assert r.returncode == 0, r.stderr[-2000:]
    argv = g + (["stop", cid] if command == "stop" else ["container", "cleanup", "--run", "1", cid])
    r, mods = _run(argv)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not mods & {"attr", "attrs", "typing", "json", "re", "enum"}, sorted(
        mods & {"attr", "attrs", "typing", "json", "re", "enum"})
    with open(os.path.join(store.path(cid), "container.json")) as f:
        after = json.load(f)
    assert after["state"]["status"] == "exited" and after["state"]["exit_code"] == 7
    assert after["from_a_newer_pyrt"] == before["from_a_newer_pyrt"]
    assert after["config"] == before["config"]  # untouched: every key, every value
    assert after["state"]["plugin_mark"] == "keep me"
    assert set(after) == set(before) and set(after["state"]) == set(before["state"])


def test_the_models_round_trip_through_their_dicts():
    from pyrt_core.models import IdMap, VolumeSpec

    cfg = ContainerConfig(image="img", volumes=[VolumeSpec("/a", "/b", True)],
                          uidmaps=[IdMap(0, 1000, 1)])
    c = Container(id="c" * 64, name="n1", image_id="sha256:x", image_name="img", created="t",
                  storage_driver="vfs", config=cfg)
    d = c.to_dict()
    assert {k: d["config"]["volumes"][0][k] for k in ("source", "destination", "readonly")} == {
        "source": "/a", "destination": "/b", "readonly": True}
    assert Container.from_dict(d) == c
