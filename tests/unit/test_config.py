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


def test_cgroup_manager_from_file_and_environment(tmp_path):
    cfg = _toml(tmp_path, '[cgroups]\nmanager = "cgroupfs-v2"\n')
    assert load_settings(config=cfg, env={}).cgroup_manager == "cgroupfs-v2"
    assert load_settings(config=cfg, env={"PYRT_CGROUP_MANAGER": "none"}).cgroup_manager == "none"
    with pytest.raises(UsageError, match="cgroups.manager"):
        load_settings(config=_toml(tmp_path, "[cgroups]\nmanager = 3\n"), env={})


def test_engine_hands_the_cgroup_manager_to_the_plugin(tmp_path, monkeypatch):
    from pyrt_core.engine import Engine

    monkeypatch.delenv("PYRT_CGROUP_MANAGER", raising=False)
    cfg = _toml(tmp_path, '[cgroups]\nmanager = "none"\n')
    Engine(load_settings(config=cfg, env={}, root=str(tmp_path / "r")))
    import os

    assert os.environ["PYRT_CGROUP_MANAGER"] == "none"
