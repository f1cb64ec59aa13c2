import os

import pytest

from pyrt_core.config import load_settings
from pyrt_core.errors import UsageError


def _toml(tmp_path, text):
    p = tmp_path / "pyrt.toml"
    p.write_text(text)
    return str(p)


def test_defaults_without_anything(monkeypatch, tmp_path):
    monkeypatch.setattr("pyrt_core.config.SYSTEM_CONFIG", str(tmp_path / "absent.toml"))
    s = load_settings(env={})
    assert (s.root, s.runroot, s.storage_driver, s.config_file) == ("/var/lib/pyrt", "/run/pyrt", None, None)


def test_precedence_flag_over_env_over_file(tmp_path):
    cfg = _toml(tmp_path, '[storage]\ndriver = "btrfs"\nroot = "/srv/a"\noptions = ["overlay.x=1"]\n')
    s = load_settings(config=cfg, env={})
    assert (s.storage_driver, s.root) == ("btrfs", "/srv/a")
    assert s.storage_driver_source.startswith("config file")
    s = load_settings(config=cfg, env={"PYRT_STORAGE_DRIVER": "vfs", "PYRT_ROOT": "/srv/b"})
    assert (s.storage_driver, s.root) == ("vfs", "/srv/b")
    assert s.storage_driver_source == "environment PYRT_STORAGE_DRIVER"
    s = load_settings(config=cfg, env={"PYRT_STORAGE_DRIVER": "vfs"}, storage_driver="overlay", root="/srv/c")
    assert (s.storage_driver, s.root) == ("overlay", "/srv/c")
    assert s.storage_driver_source == "flag --storage-driver"


def test_config_file_from_environment(tmp_path):
    cfg = _toml(tmp_path, '[storage]\ndriver = "vfs"\n[plugins]\ndisabled = ["x"]\n')
    s = load_settings(env={"PYRT_CONFIG": cfg})
    assert s.storage_driver == "vfs" and s.disabled_plugins == ["x"]
    s = load_settings(env={"PYRT_CONFIG": cfg, "PYRT_DISABLE_PLUGINS": "a, b"})
    assert s.disabled_plugins == ["a", "b"]


def test_driver_options_are_split_by_prefix():
    s = load_settings(env={}, storage_opts=["overlay.mountopt=nodev", "btrfs.min_space=1G", "size=10G",
                                            "dm.basesize=20G"])
    assert s.driver_options("overlay") == {"mountopt": "nodev", "size": "10G"}
    assert s.driver_options("devicemapper") == {"basesize": "20G", "size": "10G"}


@pytest.mark.parametrize("text", ["[storage\n", "storage = 3\n"])
def test_bad_config_file_is_a_usage_error(tmp_path, text):
    with pytest.raises(UsageError):
        load_settings(config=_toml(tmp_path, text), env={})


def test_missing_config_file(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_settings(config=str(tmp_path / "nope.toml"), env={})


def test_relative_root_refused():
    with pytest.raises(UsageError, match="absolute"):
        load_settings(root="relative/dir", env={})


def test_bad_storage_option():
    s = load_settings(env={}, storage_opts=["novalue"])
    with pytest.raises(UsageError, match="KEY=VALUE"):
        s.driver_options("vfs")


@pytest.fixture
def declared(tmp_path, monkeypatch):
    """A plugin declaring the table [demo] (a pyrt.config entry point): key ``mode`` goes
    to PYRT_DEMO_MODE."""
    from pyrt_core import entrypoints

    (tmp_path / "demo_decl.py").write_text('SECTION = {"mode": "PYRT_DEMO_MODE"}\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = entrypoints.EntryPoint("demo", "demo_decl:SECTION", "pyrt.config", "pyrt-demo", "1")
    monkeypatch.setattr(entrypoints, "entry_points",
                        lambda group: [ep] if group == "pyrt.config" else [])


def test_plugin_tables_come_from_the_plugins_declarations(tmp_path, declared, monkeypatch):
    cfg = _toml(tmp_path, '[demo]\nmode = "fast"\nother = 1\n[nobody]\nx = 2\n')
    # keys the plugin does not declare and tables no plugin declares are left alone
    assert load_settings(config=cfg, env={}).plugin_env == {"PYRT_DEMO_MODE": "fast"}
    # the environment wins over the file
    assert load_settings(config=cfg, env={"PYRT_DEMO_MODE": "slow"}).plugin_env == {
        "PYRT_DEMO_MODE": "slow"}
    with pytest.raises(UsageError, match="demo.mode must be a string"):
        load_settings(config=_toml(tmp_path, "[demo]\nmode = 3\n"), env={})
    with pytest.raises(UsageError, match=r"\[demo\] must be a table"):
        load_settings(config=_toml(tmp_path, "demo = 3\n"), env={})


def test_no_plugin_table_no_entry_point_read(tmp_path, monkeypatch):
    from pyrt_core import entrypoints

    def no_index(group):
        raise AssertionError("the entry points were read")

    monkeypatch.setattr(entrypoints, "entry_points", no_index)
    core_only = _toml(tmp_path, '[storage]\ndriver = "vfs"\n[containers]\npids_limit = 5\n')
    assert load_settings(config=core_only, env={}).plugin_env == {}


def test_default_pids_limit_from_the_config_file(tmp_path, monkeypatch):
    monkeypatch.setattr("pyrt_core.config.SYSTEM_CONFIG", str(tmp_path / "absent.toml"))
    assert load_settings(env={}).pids_limit == 2048  # podman's default
    assert load_settings(config=_toml(tmp_path, "[containers]\npids_limit = 100\n"),
                         env={}).pids_limit == 100
    assert load_settings(config=_toml(tmp_path, "[containers]\npids_limit = -1\n"),
                         env={}).pids_limit == -1
    for bad in ('"100"', "true", "-2", "1.5"):
        with pytest.raises(UsageError, match="containers.pids_limit"):
            load_settings(config=_toml(tmp_path, f"[containers]\npids_limit = {bad}\n"), env={})


def _engine_with_manager(tmp_path, manager, pids_limit=2048, refuse=False):
    """An Engine whose resource plugin answers ``manager`` (or refuses a pids limit)."""
    from pyrt_core.config import Settings
    from pyrt_core.engine import Engine

    seen = []

    class Hook:
        @staticmethod
        def pyrt_resources_validate(resources):
            seen.append(resources.pids_limit)
            if refuse or (manager == "none" and not resources.is_empty()):
                raise UsageError("no pids controller")
            return manager

    class PM:
        hook = Hook()

    e = Engine(Settings(root=str(tmp_path / "r"), runroot=str(tmp_path / "rr"),
                        pids_limit=pids_limit), PM())
    return e, seen


@pytest.mark.parametrize("manager, refuse, resources, limit, want", [
    ("cgroupfs-v1", False, {}, 2048, {"pids": {"limit": 2048}}),
    ("cgroupfs-v1", False, {"memory": {"limit": 1 << 30}}, 100,
     {"memory": {"limit": 1 << 30}, "pids": {"limit": 100}}),
    ("cgroupfs-v1", False, {"pids": {"limit": -1}}, 2048, {"pids": {"limit": -1}}),  # -1/0 win
    ("cgroupfs-v1", False, {"pids": {"limit": 7}}, 2048, {"pids": {"limit": 7}}),
    ("cgroupfs-v1", False, {}, -1, {}),  # no default wanted
    ("cgroupfs-v2", True, {}, 2048, {}),  # no pids controller: no default, no error
    ("none", False, {}, 2048, {}),  # no resource plugin: never refused for a default
])
def test_the_default_pids_limit_is_the_engines(tmp_path, manager, refuse, resources, limit, want):
    from pyrt_core.engine.create import default_pids_limit
    from pyrt_core.models import ContainerConfig

    e, _ = _engine_with_manager(tmp_path, manager, limit, refuse)
    c = ContainerConfig(image="x", resources=dict(resources))
    default_pids_limit(e, c)
    assert c.resources == want


def test_engine_hands_the_plugin_settings_to_the_plugins(tmp_path, declared, monkeypatch):
    from pyrt_core.engine import Engine

    # set, then deleted: monkeypatch then removes what the engine exports at teardown
    # (a bare delenv of an absent variable records nothing, and the engine's value
    # would reach every later test's pyrt-runtime)
    monkeypatch.setenv("PYRT_DEMO_MODE", "unset-by-the-test")
    monkeypatch.delenv("PYRT_DEMO_MODE")
    cfg = _toml(tmp_path, '[demo]\nmode = "none"\n')
    Engine(load_settings(config=cfg, env={}, root=str(tmp_path / "r")))
    import os

    assert os.environ["PYRT_DEMO_MODE"] == "none"


# -- the OCI runtime configuration (pyrt_core.runtime.spec.from_spec) ------------------

from pyrt_core.runtime import config as rc  # noqa: E402
from pyrt_core.runtime import spec as rspec  # noqa: E402
from pyrt_core.runtime.hooks import run_hooks  # noqa: E402
from pyrt_core.errors import RuntimeError_  # noqa: E402


def _spec(**over):
    spec = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/"},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "uts"}]}}
    for key, value in over.items():
        if key.startswith("linux_"):
            spec["linux"][key[6:]] = value
        elif key.startswith("process_"):
            spec["process"][key[8:]] = value
        else:
            spec[key] = value
    return spec


def _cfg(**over):
    return rspec.from_spec(_spec(**over), "c1", "/bundle")


def test_hooks_are_resolved_per_phase():
    hooks = {"prestart": [{"path": "/bin/a", "args": ["a", "-x"], "env": ["K=V"], "timeout": 3}],
             "createRuntime": [{"path": "/bin/b"}], "createContainer": [{"path": "/bin/c"}],
             "startContainer": [{"path": "/bin/d"}], "poststart": [{"path": "/bin/e"}],
             "poststop": [{"path": "/bin/f"}, {"path": "/bin/g"}]}
    h = _cfg(hooks=hooks).hooks
    assert h.prestart == [rc.Hook("/bin/a", ("a", "-x"), ("K=V",), 3)]
    assert [x.path for x in h.create_runtime + h.create_container + h.start_container] == \
        ["/bin/b", "/bin/c", "/bin/d"]
    assert [x.path for x in h.poststart + h.poststop] == ["/bin/e", "/bin/f", "/bin/g"]
    assert _cfg().hooks == rc.Hooks()


@pytest.mark.parametrize("hooks, message", [
    ({"prestart": [{"path": "relative"}]}, "absolute"),
    ({"prestart": [{}]}, "absolute"),
    ({"prestart": [{"path": "/x", "timeout": 0}]}, "positive integer"),
    ({"prestart": [{"path": "/x", "timeout": "5"}]}, "positive integer"),
    ({"prestart": [{"path": "/x", "args": "a b"}]}, "list of strings"),
    ({"poststop": {"path": "/x"}}, "must be a list"),
    ({"preStart": [{"path": "/x"}]}, "unknown hook phase"),
    ([], "must be an object"),
])
def test_bad_hooks_are_refused(hooks, message):
    with pytest.raises(UsageError, match=message):
        _cfg(hooks=hooks)


def test_domainname_personality_and_runtime_options():
    c = _cfg(domainname="example.org", linux_personality={"domain": "LINUX32"})
    assert (c.domainname, c.personality, c.no_pivot, c.console_socket) == \
        ("example.org", "LINUX32", False, None)
    assert _cfg(linux_personality={"domain": "LINUX", "flags": []}).personality == "LINUX"
    with pytest.raises(UsageError, match="LINUX or LINUX32"):
        _cfg(linux_personality={"domain": "SVR4"})
    with pytest.raises(UsageError, match="64 bytes"):
        _cfg(domainname="x" * 65)
    with pytest.raises(UsageError, match="hostname"):
        _cfg(hostname=7)


def test_devices_are_validated_and_allowed_in_the_device_cgroup():
    devs = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600},
            {"path": "/dev/fifo", "type": "p"}]
    c = _cfg(linux_devices=devs, linux_resources={"devices": [{"allow": False, "access": "rwm"}]})
    assert c.devices[0] == rc.Device("/dev/fuse", "c", 10, 229, 0o600)
    rules = [(r.allow, r.type, r.major, r.minor) for r in c.resources.devices]
    assert rules[0] == (False, "a", None, None)
    assert (True, "c", 10, 229) in rules            # the configured device
    assert (True, "c", 1, 3) in rules               # /dev/null, a default device
    assert not any(r[1] == "p" for r in rules)      # a FIFO is no device-cgroup matter
    # without device rules nothing is restricted, so nothing is added
    assert _cfg(linux_devices=devs).resources.devices == []
    for bad, message in [({"path": "dev/x", "type": "c", "major": 1, "minor": 1}, "absolute"),
                         ({"path": "/dev/x", "type": "z", "major": 1, "minor": 1}, "type"),
                         ({"path": "/dev/x", "type": "c"}, "major and minor"),
                         ({"path": "/dev/x", "type": "b", "major": "x", "minor": 1}, "non-numeric")]:
        with pytest.raises(UsageError, match=message):
            _cfg(linux_devices=[bad])


@pytest.mark.parametrize("over, message", [
    ({"process_rlimits": [{"type": "NOFILE", "soft": 1, "hard": 1}]}, "RLIMIT_"),
    ({"process_rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}]}, "exceeds"),
    ({"process_rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1}]}, "hard is required"),
    ({"process_oomScoreAdj": 1001}, "-1000..1000"),
    ({"process_user": {"uid": -1}}, "not a valid id"),
    ({"process_user": {"uid": 0, "additionalGids": ["wheel"]}}, "not a valid id"),
    ({"process_user": {"umask": 0o1000}}, "umask"),
    ({"process_env": ["NOEQUALS"]}, "NAME=VALUE"),
    ({"linux_uidMappings": [{"containerID": 0, "hostID": 1000}]}, "non-zero size"),
    ({"linux_namespaces": [{"type": "network", "path": "netns"}]}, "must be absolute"),
    ({"linux_namespaces": [{"type": "mnt"}]}, "unknown namespace"),
    ({"linux_rootfsPropagation": "sideways"}, "rootfsPropagation"),
])
def test_bad_process_and_linux_values_are_refused(over, message):
    with pytest.raises(UsageError, match=message):
        _cfg(**over)


def test_process_values_are_resolved():
    c = _cfg(process_user={"uid": 1000, "gid": 100, "additionalGids": [5, 6], "umask": 0o027},
             process_rlimits=[{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}],
             process_oomScoreAdj=-500, linux_rootfsPropagation="rslave",
             linux_namespaces=[{"type": "mount", "path": "/proc/1/ns/mnt"}])
    p = c.process
    assert (p.uid, p.gid, p.additional_gids, p.umask, p.oom_score_adj) == (1000, 100, [5, 6], 0o027, -500)
    assert p.rlimits == [rc.Rlimit("RLIMIT_NOFILE", 100, 200)]
    assert c.rootfs_propagation == rc.MS_SLAVE | rc.MS_REC
    assert c.namespace("mount") == rc.Namespace("mount", "/proc/1/ns/mnt")


# -- hooks: real programs, the state on their stdin ---------------------------------------

def test_hooks_get_the_state_on_stdin_and_their_args_and_env(tmp_path):
    out = tmp_path / "out"
    hook = rc.Hook("/bin/sh", ("sh", "-c", f'cat > {out}; echo "$0 $1 $K" >> {out}', "zero", "one"),
                   ("K=kv",))
    run_hooks([hook], {"id": "c1", "status": "creating"}, "prestart")
    assert out.read_text() == '{"id": "c1", "status": "creating"}zero one kv\n'


def test_a_failing_hook_names_the_phase_and_the_hook_and_stops_the_rest(tmp_path):
    later = tmp_path / "later"
    bad = rc.Hook("/bin/sh", ("sh", "-c", "echo broken >&2; exit 3"))
    good = rc.Hook("/bin/sh", ("sh", "-c", f"touch {later}"))
    with pytest.raises(RuntimeError_, match=r"^createRuntime hook /bin/sh -c .* exited with "
                                            r"status 3: broken$"):
        run_hooks([bad, good], {}, "createRuntime")
    assert not later.exists()


def test_a_hook_past_its_timeout_is_killed(tmp_path):
    pidfile = tmp_path / "pid"
    hook = rc.Hook("/bin/sh", ("sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"), (), 1)
    with pytest.raises(RuntimeError_, match="poststop hook /bin/sh -c .* timed out after 1s"):
        run_hooks([hook], {}, "poststop")
    # killed and reaped when run_hooks returns (not left to sleep its 30 s)
    assert not os.path.exists(f"/proc/{int(pidfile.read_text())}")


def test_a_missing_hook_program(tmp_path):
    with pytest.raises(RuntimeError_, match="startContainer hook .*/nope failed: No such file"):
        run_hooks([rc.Hook(str(tmp_path / "nope"))], {}, "startContainer")
