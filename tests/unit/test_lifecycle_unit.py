"""Lifecycle pieces that need no root: process identity, the log format, restart
policies, signal names, detach keys, the runtime's state, the container lock."""
import io
import json
import os
import subprocess

import pytest

from pyrt_core import logs, procutil
from pyrt_core.cli.containers.run import parse_restart
from pyrt_core.errors import NotFoundError, UsageError
from pyrt_core.monitor.attach import _DetachScanner
from pyrt_core.runtime.cli import RuntimeFailure, parse_signal
from pyrt_core.runtime.state import RuntimeState


def test_identity_survives_pid_reuse_checks():
    me = procutil.identity(os.getpid())
    assert me["pid"] == os.getpid() and me["start"] > 0 and me["boot"]
    assert procutil.alive(os.getpid(), me["start"], me["boot"])
    assert not procutil.alive(os.getpid(), me["start"] + 1, me["boot"])  # another process
    assert not procutil.alive(os.getpid(), me["start"], "another-boot")  # after a reboot
    assert not procutil.alive(0) and not procutil.alive(-1)


def test_zombie_is_not_alive():
    p = subprocess.Popen(["/bin/true"])
    start = None
    while p.poll() is None and start is None:
        start = procutil.start_time(p.pid)
    # once it exited (a zombie until reaped) it no longer counts
    import time

    deadline = time.time() + 10
    while procutil.state(p.pid) not in ("Z", None) and time.time() < deadline:
        time.sleep(0.01)
    assert not procutil.alive(p.pid)
    p.wait()


def test_wait_gone_wakes_at_the_exit_and_checks_identity():
    """stop waits for the exit through a pidfd: it returns as the process exits (not at
    the next poll), times out while it runs, and a recorded identity that is not the
    process's (a reused pid) counts as gone at once."""
    import time

    p = subprocess.Popen(["sleep", "0.2"])
    try:
        start = procutil.start_time(p.pid)
        assert not procutil.wait_gone(p.pid, start, None, 0.02)
        assert procutil.wait_gone(p.pid, start + 1, None, 5.0)  # another process
        t = time.monotonic()
        assert procutil.wait_gone(p.pid, start, None, 5.0)
        assert time.monotonic() - t < 1.0
    finally:
        p.kill()
        p.wait()
    assert procutil.wait_gone(p.pid, start, None, 0.0)  # reaped: gone


def test_k8s_log_lines():
    assert logs.parse_line(b"2024-05-01T10:00:00.123456789+00:00 stdout F hello world\n") == \
        ("2024-05-01T10:00:00.123456789+00:00", "stdout", b"hello world\n")
    assert logs.parse_line(b"2024-05-01T10:00:00.1+00:00 stderr P part") == \
        ("2024-05-01T10:00:00.1+00:00", "stderr", b"part")
    assert logs.parse_line(b"2024-05-01T10:00:00.1+00:00 stdout F\n")[2] == b"\n"
    assert logs.parse_line(b"garbage\n") is None
    assert logs.docker_time("2024-05-01T10:00:00.1+00:00") == "2024-05-01T10:00:00.1Z"


def test_show_tail_timestamps_json(tmp_path):
    p = tmp_path / "ctr.log"
    p.write_bytes(b"T1+00:00 stdout F one\nT2+00:00 stderr P tw\nT3+00:00 stderr F o\n"
                  b"T4+00:00 stdout F three\n")
    out, err = io.BytesIO(), io.BytesIO()
    logs.show(str(p), out, err)
    assert out.getvalue() == b"one\nthree\n" and err.getvalue() == b"two\n"
    out, err = io.BytesIO(), io.BytesIO()
    logs.show(str(p), out, err, tail=2, timestamps=True)
    assert err.getvalue() == b"T2Z two\n" and out.getvalue() == b"T4Z three\n"
    out = io.BytesIO()
    logs.show(str(p), out, io.BytesIO(), fmt="json")
    first = json.loads(out.getvalue().splitlines()[0])
    assert first == {"log": "one\n", "stream": "stdout", "time": "T1Z"}


def test_restart_policies():
    assert parse_restart("no") == ("no", 0)
    assert parse_restart("always") == ("always", 0)
    assert parse_restart("on-failure") == ("on-failure", 0)
    assert parse_restart("on-failure:3") == ("on-failure", 3)
    assert parse_restart("unless-stopped") == ("unless-stopped", 0)
    for bad in ("sometimes", "always:3", "on-failure:x", "on-failure:-1"):
        with pytest.raises(UsageError):
            parse_restart(bad)


def test_signals():
    assert parse_signal("9") == 9 and parse_signal("TERM") == 15 and parse_signal("SIGHUP") == 1
    assert parse_signal("sigusr1") == 10
    for bad in ("NOPE", "0", "99"):
        with pytest.raises(RuntimeFailure):
            parse_signal(bad)


def test_detach_keys():
    s = _DetachScanner(b"\x10\x11")
    assert s.feed(b"abc") == (b"abc", False)
    assert s.feed(b"x\x10") == (b"x", False)
    assert s.feed(b"y") == (b"\x10y", False)  # not the sequence: passed on
    assert s.feed(b"\x10\x11rest") == (b"", True)
    assert _DetachScanner(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


def test_runtime_state_status(tmp_path):
    st = RuntimeState(str(tmp_path), "abc")
    assert RuntimeState.status(None) == "stopped"
    me = procutil.identity(os.getpid())
    assert RuntimeState.status({"pid": me["pid"], "pid_start": me["start"], "boot": me["boot"]}) == "created"
    assert RuntimeState.status({"pid": me["pid"], "pid_start": me["start"], "boot": me["boot"],
                                "started": True}) == "running"
    assert RuntimeState.status({"pid": me["pid"], "pid_start": me["start"] + 1}) == "stopped"
    os.makedirs(st.dir)  # create() makes it (os.mkdir: "already exists" for a second create)
    st.save({"pid": 1})
    assert st.load() == {"pid": 1}
    st.remove()
    assert not st.exists()
    with pytest.raises(UsageError):
        RuntimeState(str(tmp_path), "../x")


def test_container_lock_and_create_publish(tmp_path):
    from pyrt_core.containers.store import ContainerStore
    from pyrt_core.models import Container, ContainerConfig

    store = ContainerStore(str(tmp_path / "root"), str(tmp_path / "run"))
    cid = store.new_id()
    lk = store.begin_create(cid)
    assert os.path.isdir(os.path.join(store.dir, f".tmp-create-{cid}"))
    c = Container(id=cid, name="n", image_id="sha256:x", image_name="i", created="t",
                  storage_driver="vfs", config=ContainerConfig(image="i"))
    store.publish(c, lk)
    assert store.list()[0].id == cid
    assert store.container_lock(cid, blocking=False) is None  # still held by its creator
    lk.release()
    other = store.container_lock(cid, blocking=False)
    assert other is not None
    other.release()
    store.delete(c)
    with pytest.raises(NotFoundError):
        store.container_lock(cid)
    assert store.list() == []


def test_old_records_still_load():
    from pyrt_core.models import Container

    d = {"id": "a" * 64, "name": "n", "image_id": "x", "image_name": "i", "created": "t",
         "storage_driver": "vfs", "config": {"image": "i"},
         "state": {"status": "exited", "exit_code": 1, "future_field": 3},
         "cgroup_manager": "none"}
    c = Container.from_dict(d)
    assert c.state.exit_code == 1 and c.monitor == "" and c.config.restart_policy == "no"


def _record(cid):
    from pyrt_core.models import Container, ContainerConfig

    return Container(id=cid, name="n", image_id="sha256:x", image_name="i", created="t",
                     storage_driver="vfs", config=ContainerConfig(image="i"))


def test_publish_into_a_prepared_directory(tmp_path):
    # run -d's early monitor: the container's directory (with conmon's log) exists before
    # its record; publish moves the creator's lock, then the record, into it
    from pyrt_core.containers.store import ContainerStore

    store = ContainerStore(str(tmp_path / "root"), str(tmp_path / "run"))
    cid = store.new_id()
    early = store.prepare_dir(cid)
    with open(os.path.join(store.path(cid), "ctr.log"), "w") as f:
        f.write("conmon was here\n")
    assert store.list() == [] and store.container_lock(cid, blocking=False) is None
    lk = store.begin_create(cid)
    store.publish(_record(cid), lk)
    early.release()
    assert [c.id for c in store.list()] == [cid]
    assert store.container_lock(cid, blocking=False) is None  # the creator's lock, still held
    assert open(store.log_path(cid)).read() == "conmon was here\n"
    assert not [n for n in os.listdir(store.dir) if n.startswith(".tmp-")]
    lk.release()
    store.discard_prepared(cid)  # a record: kept
    assert [c.id for c in store.list()] == [cid]


def test_recovery_removes_what_a_killed_run_detached_left(tmp_path):
    from pyrt_core.config import load_settings
    from pyrt_core.engine import Engine
    from pyrt_core.monitor.conmon import Paths

    engine = Engine(load_settings(root=str(tmp_path / "root"), runroot=str(tmp_path / "run"), env={}))
    store = engine.containers
    live, dead = store.new_id(), store.new_id()
    held = store.prepare_dir(live)  # a run -d in progress
    store.prepare_dir(dead).release()  # its creator died
    for cid in (live, dead):
        p = Paths(engine.settings.root, engine.settings.runroot, cid)
        os.makedirs(p.bundle)
        os.makedirs(p.socket_dir, exist_ok=True)
        os.symlink(p.bundle, os.path.join(p.socket_dir, cid))
    actions = engine.recover()
    assert any("unfinished run" in a and dead[:12] in a for a in actions)
    assert sorted(os.listdir(store.dir)) == sorted(["names", live])
    assert os.listdir(store.rundir) == [live]
    assert os.listdir(os.path.join(engine.settings.runroot, "socket")) == [live]
    engine.recover(full=False)
    assert live in os.listdir(store.dir)  # still held: left alone
    held.release()


def test_exit_command_without_exit_file_returns_at_once(tmp_path):
    # conmon runs its exit command even when the runtime's create failed; with no exit
    # file there is nothing to report: it must not take the container's lock
    from pyrt_core.config import load_settings
    from pyrt_core.engine import Engine

    engine = Engine(load_settings(root=str(tmp_path / "root"), runroot=str(tmp_path / "run"), env={}))
    store = engine.containers
    cid = store.new_id()
    lk = store.begin_create(cid)
    store.publish(_record(cid), lk)  # the starter still holds the lock
    assert engine.cleanup(cid, 1) is None
    lk.release()


def test_spawn_failure_is_one_clear_error(tmp_path):
    from pyrt_core.errors import RuntimeError_
    from pyrt_core.monitor.conmon import _spawn_detached

    r, w = os.pipe()
    try:
        with pytest.raises(RuntimeError_, match="cannot run the monitor /nonexistent"):
            _spawn_detached(["/nonexistent"], {}, str(tmp_path), str(tmp_path / "log"), w)
    finally:
        os.close(r)
        os.close(w)


def test_settings_need_no_attrs():
    r = subprocess.run([os.sys.executable, "-c", "import sys, pyrt_core.config, pyrt_core.containers.store, "
                        "pyrt_core.monitor.conmon; print('attr' in sys.modules)"],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr


def test_event_hooks_nobody_implements_load_no_plugins(tmp_path, monkeypatch):
    # `rm` of a stopped container fires pyrt_container_removed: with the recorded plans
    # saying no plugin implements it, the engine's plugin manager (pyrt_core.hookcall)
    # calls nothing and loads no plugin; a stale record builds pluggy's manager
    from pyrt_core import entrypoints, hookcall
    from pyrt_core.config import load_settings
    from pyrt_core.engine import Engine

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert entrypoints.hook_calls() is None  # nothing recorded: load, to be safe
    plugin = tmp_path / "plugin.py"
    plugin.write_text("def pyrt_container_removed(container): pass\n")
    entrypoints.record_hooks({"pyrt_info": None}, [str(plugin)])
    assert entrypoints.hook_calls() == {"pyrt_info": None}

    def engine():
        return Engine(load_settings(root=str(tmp_path / "root"), runroot=str(tmp_path / "run"),
                                    env={}))

    e = engine()
    assert e.pm.hook.pyrt_container_removed(container=None) == []
    assert isinstance(e.pm, hookcall.ObservedPluginManager)  # (the journalled hooks)
    assert isinstance(e.pm.inner, hookcall.LeanPluginManager) and e.pm.inner._full is None
    os.utime(plugin, ns=(1, 1))  # the plugin changed since: the record is stale
    assert entrypoints.hook_calls() is None
    assert not isinstance(engine().pm.inner, hookcall.LeanPluginManager)