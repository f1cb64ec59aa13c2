"""The plugin's hooks, on fake trees, through a real plugin manager (no root)."""
import os

import pytest

from pyrt_core.testing import machine  # noqa: E402

machine.skip_unless("distribution", "pyrt-cgroups")

from pyrt_cgroups import cgfs, detect
from pyrt_cgroups import plugin as cgplugin
from pyrt_cgroups.testing import fake_hybrid, fake_v2
from pyrt_core.config import load_settings
from pyrt_core.errors import UsageError
from pyrt_core.plugins import make_plugin_manager
from pyrt_core.runtime.config import DeviceRule, Resources

MiB = 1 << 20


@pytest.fixture
def pm():
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(cgplugin, name="cgroups")
    return pm


@pytest.fixture
def host(tmp_path, monkeypatch):
    mountinfo, fs = fake_hybrid(tmp_path)
    monkeypatch.setattr(detect, "MOUNTINFO", mountinfo)
    monkeypatch.setattr(cgfs, "REAL", fs)
    monkeypatch.delenv("PYRT_CGROUP_MANAGER", raising=False)
    fs.root = os.path.join(str(tmp_path), "cgroup")
    return fs


def test_validate_names_the_manager_before_the_core_none(pm, host):
    assert pm.hook.pyrt_resources_validate(resources=Resources()) == "cgroupfs-v1"
    assert pm.hook.pyrt_resources_validate(resources=Resources(memory_limit=64 * MiB)) == "cgroupfs-v1"


def test_validate_refuses_bad_values(pm, host):
    with pytest.raises(UsageError, match="6MiB"):
        pm.hook.pyrt_resources_validate(resources=Resources(memory_limit=MiB))
    with pytest.raises(UsageError, match="requested CPUs are not available"):
        pm.hook.pyrt_resources_validate(resources=Resources(cpuset_cpus="0-9"))


def test_disabled_manager_hands_over_to_none_and_refuses_limits(pm, host, monkeypatch):
    monkeypatch.setenv("PYRT_CGROUP_MANAGER", "none")
    assert pm.hook.pyrt_resources_validate(resources=Resources(devices=[DeviceRule(False)])) == "none"
    with pytest.raises(UsageError, match="cgroups are disabled"):
        pm.hook.pyrt_resources_validate(resources=Resources(pids_limit=4))
    assert pm.hook.pyrt_resources_apply(container_id="x", pid=1, resources=Resources(),
                                        cgroups_path="pyrt-x", self_join=False) == {"manager": "none"}


def test_no_cgroups_on_host(pm, tmp_path, monkeypatch):
    p = tmp_path / "mountinfo"
    p.write_text("22 1 0:21 / /proc rw - proc proc rw\n")
    monkeypatch.setattr(detect, "MOUNTINFO", str(p))
    monkeypatch.delenv("PYRT_CGROUP_MANAGER", raising=False)
    assert pm.hook.pyrt_resources_validate(resources=Resources()) == "none"
    with pytest.raises(UsageError, match="no cgroup hierarchy mounted"):
        pm.hook.pyrt_resources_validate(resources=Resources(memory_limit=64 * MiB))
    info = cgplugin.pyrt_info()["cgroups"]
    assert info["manager"] == "none" and "no cgroup hierarchy" in info["reason"]


def test_apply_then_release(pm, host):
    rules = [DeviceRule(False), DeviceRule(True, "c", 1, 3, "rwm")]
    r = Resources(memory_limit=32 * MiB, pids_limit=7, devices=rules)
    rec = pm.hook.pyrt_resources_apply(container_id="abc", pid=4242, resources=r,
                                       cgroups_path="pyrt-abc", self_join=False)
    assert rec["manager"] == "cgroupfs-v1" and rec["path"] == "/pyrt/pyrt-abc"
    mem = rec["paths"]["memory"]
    assert mem == f"{host.root}/memory/pyrt/pyrt-abc"
    assert open(f"{mem}/memory.limit_in_bytes").read() == str(32 * MiB)
    assert open(f"{mem}/cgroup.procs").read().split() == ["4242"]
    assert host.writes_to("devices.deny")[0] == "a"
    # limits are written before the process joins
    first_proc = next(i for i, (p, _) in enumerate(host.writes) if p.endswith("cgroup.procs"))
    last_limit = max(i for i, (p, _) in enumerate(host.writes) if p.endswith(("pids.max", "devices.allow")))
    assert last_limit < first_proc
    assert cgplugin.oom_killed(rec) is False
    # the process exited (the fake kernel needs telling)
    for d in rec["paths"].values():
        open(f"{d}/cgroup.procs", "w").close()
    assert pm.hook.pyrt_resources_release(container_id="abc", record=rec) is True
    assert not os.path.exists(f"{host.root}/memory/pyrt")


def test_cgroup_parent_path(pm, host):
    rec = pm.hook.pyrt_resources_apply(container_id="abc", pid=1, resources=Resources(),
                                       cgroups_path="/tenant/a/pyrt-abc", self_join=False)
    assert rec["paths"]["pids"] == f"{host.root}/pids/tenant/a/pyrt-abc"
    assert sorted(rec["created"]) == sorted(
        f"{host.root}/{h}/tenant{s}" for h in ("cpuset", "cpu,cpuacct", "memory", "devices",
                                                "freezer", "blkio", "pids") for s in ("", "/a"))
    for d in rec["paths"].values():
        open(f"{d}/cgroup.procs", "w").close()
    assert pm.hook.pyrt_resources_release(container_id="abc", record=rec) is True
    assert not os.path.exists(f"{host.root}/pids/tenant")


def test_busy_cgroup_is_refused(pm, host):
    rec = pm.hook.pyrt_resources_apply(container_id="abc", pid=4242, resources=Resources(),
                                       cgroups_path="pyrt-abc", self_join=False)
    with pytest.raises(UsageError, match="already holds processes"):
        pm.hook.pyrt_resources_apply(container_id="abc", pid=4243, resources=Resources(),
                                     cgroups_path="pyrt-abc", self_join=False)
    for d in rec["paths"].values():
        open(f"{d}/cgroup.procs", "w").close()
    cgplugin.pyrt_resources_release("abc", rec)


def test_release_of_other_managers_records(pm, host):
    assert cgplugin.pyrt_resources_release("x", {"manager": "none"}) is None
    assert cgplugin.pyrt_resources_release("x", {}) is None
    assert pm.hook.pyrt_resources_release(container_id="x", record={"manager": "none"}) is True


def test_record_functions(host):
    rec = cgplugin.pyrt_resources_apply("abc", 4242, Resources(memory_limit=64 * MiB), "pyrt-abc", False)
    mem = rec["paths"]["memory"]
    open(f"{mem}/memory.oom_control", "w").write("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert cgplugin.oom_killed(rec) is True
    assert cgplugin.stats(rec)["memory"]["oom_kill"] == 1
    assert cgplugin.freeze(rec) is True and cgplugin.thaw(rec) is True
    assert cgplugin.update(rec, Resources(pids_limit=3)) is True
    assert open(f"{rec['paths']['pids']}/pids.max").read() == "3"
    with pytest.raises(UsageError):
        cgplugin.update(rec, Resources(memory_limit=1))
    assert cgplugin.oom_killed({"manager": "none"}) is None
    for d in rec["paths"].values():
        open(f"{d}/cgroup.procs", "w").close()
    cgplugin.pyrt_resources_release("abc", rec)


def test_info(host):
    info = cgplugin.pyrt_info()["cgroups"]
    assert info["manager"] == "cgroupfs-v1" and info["cgroup version"] == "v1 (hybrid)"
    assert "memory" in info["controllers"] and info["parent"] == "/pyrt"


def test_v2_host(pm, tmp_path, monkeypatch):
    mountinfo, fs = fake_v2(tmp_path)
    monkeypatch.setattr(detect, "MOUNTINFO", mountinfo)
    monkeypatch.setattr(cgfs, "REAL", fs)
    monkeypatch.delenv("PYRT_CGROUP_MANAGER", raising=False)
    assert pm.hook.pyrt_resources_validate(resources=Resources(pids_limit=5)) == "cgroupfs-v2"
    assert cgplugin.pyrt_info()["cgroups"]["cgroup version"] == "v2"
    with pytest.raises(UsageError, match="oom-kill-disable"):
        pm.hook.pyrt_resources_validate(resources=Resources(memory_limit=64 * MiB,
                                                            disable_oom_killer=True))


def test_plugin_module_is_import_cheap():
    import subprocess
    import sys

    code = ("import sys; import pyrt_cgroups.plugin; "
            "print(sorted(m for m in sys.modules if m.startswith('pyrt_cgroups')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['pyrt_cgroups', 'pyrt_cgroups.plugin']"


def test_oom_hook_answers_for_its_own_records_only(host):
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(cgplugin, name="cgroups")
    pm.check_pending()
    rec = cgplugin.pyrt_resources_apply("abc", 4242, Resources(), "pyrt-abc", False)
    try:
        assert pm.hook.pyrt_resources_oom_killed(container_id="abc", record=rec) is False
        # a record of the core's "none" manager is answered by the core, not by us
        assert cgplugin.pyrt_resources_oom_killed("x", {"manager": "none"}) is None
        assert pm.hook.pyrt_resources_oom_killed(container_id="x", record={"manager": "none"}) is False
    finally:
        for d in rec["paths"].values():
            open(f"{d}/cgroup.procs", "w").close()
        cgplugin.pyrt_resources_release("abc", rec)


def test_api_accepts_an_oci_resources_dict():
    from pyrt_cgroups.api import as_resources

    r = as_resources({"memory": {"limit": 64 << 20}, "pids": {"limit": 5},
                      "devices": [{"allow": False, "access": "rwm"}]})
    assert (r.memory_limit, r.pids_limit, r.devices[0].allow) == (64 << 20, 5, False)


# -- what the plugin declares to the core -------------------------------------------------

def test_the_cgroups_table_is_pyrt_cgroups_declaration(tmp_path):
    """The core reads ``[cgroups]`` of pyrt.toml only because this distribution's
    pyrt.config entry point declares it (PYRT_CGROUP_MANAGER)."""
    def toml(text):
        p = tmp_path / "pyrt.toml"
        p.write_text(text)
        return str(p)

    cfg = toml('[cgroups]\nmanager = "cgroupfs-v2"\n')
    assert load_settings(config=cfg, env={}).plugin_env == {"PYRT_CGROUP_MANAGER": "cgroupfs-v2"}
    assert load_settings(config=cfg, env={"PYRT_CGROUP_MANAGER": "none"}).plugin_env == {
        "PYRT_CGROUP_MANAGER": "none"}
    with pytest.raises(UsageError, match="cgroups.manager must be a string"):
        load_settings(config=toml("[cgroups]\nmanager = 3\n"), env={})


def test_the_plugin_declares_its_warm_up():
    # create and start import these ahead of time (pyrt_core.runtime.lifecycle.warm_up)
    assert cgplugin.WARM_UP
    for hook, modules in cgplugin.WARM_UP.items():
        assert hasattr(cgplugin, hook), hook
        for m in modules:
            __import__(m)
