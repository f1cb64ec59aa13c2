import pytest

from pyrt_core.errors import PluginError, UsageError
from pyrt_core.plugins import make_plugin_manager

from .fakedist import make_dist, on_path

GOOD = """
from pyrt_core.hookspecs import hookimpl

@hookimpl
def pyrt_info():
    return {"good": {"hello": "world"}}
"""
BROKEN = "raise ImportError('libfoo.so.1 missing')\n"
MISSPELT = """
from pyrt_core.hookspecs import hookimpl

@hookimpl
def pyrt_infoo():
    return {}
"""


def test_loads_blocks_and_reports_failures(tmp_path):
    make_dist(tmp_path, "pyrt-good", "1.2", {"pyrt.plugins": {"good": "good_plugin"}}, {"good_plugin.py": GOOD})
    make_dist(tmp_path, "pyrt-broken", "0.1", {"pyrt.plugins": {"broken": "broken_plugin"}}, {"broken_plugin.py": BROKEN})
    make_dist(tmp_path, "pyrt-other", "0.3", {"pyrt.plugins": {"other": "good_plugin"}}, {})
    with on_path(tmp_path):
        pm = make_plugin_manager(blocked=["other"])
        recs = {r.name: r for r in pm.records}
        assert recs["good"].status == "loaded" and recs["good"].distribution == "pyrt-good"
        assert recs["good"].version == "1.2"
        assert recs["broken"].status == "failed"
        assert "libfoo.so.1 missing" in recs["broken"].reason
        assert recs["other"].status == "blocked"
        assert {"good": {"hello": "world"}} in pm.hook.pyrt_info()
        assert pm.is_blocked("other")


def test_misspelt_hook_is_caught(tmp_path):
    make_dist(tmp_path, "pyrt-typo", "1", {"pyrt.plugins": {"typo": "typo_plugin"}}, {"typo_plugin.py": MISSPELT})
    with on_path(tmp_path):
        with pytest.raises(PluginError, match="pyrt_infoo"):
            make_plugin_manager()


def test_core_none_manager_refuses_device_rules_unless_no_cgroups_was_chosen(monkeypatch):
    # without a resource manager nothing would enforce a container's device rules
    from pyrt_core.runtime.config import DeviceRule, Resources

    monkeypatch.delenv("PYRT_CGROUP_MANAGER", raising=False)
    pm = make_plugin_manager(load_entry_points=False)
    deny = Resources(devices=[DeviceRule(False), DeviceRule(True, "c", 1, 3, "rwm")])
    with pytest.raises(UsageError, match="without its device cgroup.*PYRT_CGROUP_MANAGER=none"):
        pm.hook.pyrt_resources_validate(resources=deny)
    for value in ("auto", "cgroupfs-v1", ""):
        monkeypatch.setenv("PYRT_CGROUP_MANAGER", value)
        with pytest.raises(UsageError):
            pm.hook.pyrt_resources_validate(resources=deny)
    assert pm.hook.pyrt_resources_validate(resources=Resources(devices=[DeviceRule(True)])) == "none"
    monkeypatch.setenv("PYRT_CGROUP_MANAGER", "none")  # the operator's explicit choice
    assert pm.hook.pyrt_resources_validate(resources=deny) == "none"


@pytest.mark.parametrize("rules,restricts", [
    ([], False),
    ([(True, "a", "rwm")], False),                       # --privileged
    ([(False, "a", "rwm")], True),                       # runc spec's default
    ([(False, "a", "rwm"), (True, "c", "rwm")], True),   # docker's: deny all, allow some
    ([(True, "c", "rwm")], True),                        # laid over "deny all"
    ([(False, "a", "rwm"), (True, "a", "rwm")], False),  # later rules win
    ([(True, "a", "rwm"), (False, "b", "r")], True),
    ([(True, "a", "rw")], True),                         # not every access: over "deny all"
])
def test_which_device_rules_need_enforcing(rules, restricts):
    from pyrt_core.runtime.config import DeviceRule, Resources

    r = Resources(devices=[DeviceRule(a, t, None, None, acc) for a, t, acc in rules])
    assert r.restricts_devices() is restricts


def test_core_none_manager_refuses_limits():
    from pyrt_core.runtime.config import Resources

    pm = make_plugin_manager(load_entry_points=False)
    assert pm.hook.pyrt_resources_validate(resources=Resources()) == "none"
    with pytest.raises(UsageError, match="pyrt-cgroups"):
        pm.hook.pyrt_resources_validate(resources=Resources(memory_limit=1 << 20))
    assert pm.hook.pyrt_resources_apply(container_id="x", pid=1, resources=Resources(),
                                        cgroups_path=None, self_join=False) == {"manager": "none"}
