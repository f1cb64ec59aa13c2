"""Attacks through pyrt's caches: root's pyrt must not act on a cache another user wrote.

pyrt keeps an index of the installed entry points and, per hook, the plan the lean hook
caller follows (module, function, arguments: ``pyrt_core.hookcall``) under
``$XDG_CACHE_HOME/pyrt``.  A user who controls that directory (root started with the
user's environment, ``sudo -E``; ``XDG_CACHE_HOME`` in the user's home or in a /tmp path
the user made first) writes the files root reads.  Here the "user" is uid 65534 and the
payloads are harmless: a marker file, a plugin entry that shows up in ``pyrt info``, the
Zen of Python printed by importing ``this``, a device opened inside a container.

The genuine files come from the installed pyrt itself (a full plugin load with a private,
root-owned cache), run with the interpreter and ``sys.path`` of the console scripts, so
the planted files carry exactly the names ``pyrt`` and ``pyrt-runtime`` look for.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from test_runtime_cli import rt, run, spec  # noqa: F401  (rt: the runtime fixture)

BIN = os.path.dirname(sys.executable)
INDEX = ("entry-index-", "entry-points-")  # the entry-point index, now and before issue 13
NOBODY = 65534
# a block device every host here has (loop, major 7): opening it from a container must be
# refused by the device cgroup (EPERM), whether mknod itself is allowed or not
OPEN_A_DEVICE = ("echo STARTED; mknod /dev/pwn b 7 0 && exec 3</dev/pwn && echo OPENED")


def _interpreter() -> str:
    with open(os.path.join(BIN, "pyrt")) as f:
        return f.readline()[2:].strip()


def _as_console_script(code: str, env: dict) -> str:
    """Run ``code`` as the console scripts run: same interpreter, same ``sys.path``."""
    prog = f"import sys\nsys.path[0] = {BIN!r}\n{code}"
    return subprocess.run([_interpreter(), "-c", prog], env=env, capture_output=True, text=True,
                          check=True, cwd="/").stdout


def _env(cache: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYRT_DISABLE_PLUGINS", "PYRT_CGROUP_MANAGER")}
    env.update(XDG_CACHE_HOME=str(cache), **extra)
    return env


@pytest.fixture
def genuine(tmp_path) -> dict:
    """The files a full plugin load writes: {file name: parsed JSON}."""
    cache = tmp_path / "root-cache"
    _as_console_script("from pyrt_core.plugins import make_plugin_manager\n"
                       "make_plugin_manager()\n", _env(cache))
    d = cache / "pyrt"
    out = {name: json.loads((d / name).read_text()) for name in os.listdir(d)
           if name.endswith(".json") and not name.startswith(".")}
    assert any(n.startswith("hooks-") for n in out) and any(n.startswith(INDEX) for n in out)
    return out


def _named(files: dict, prefix) -> tuple[str, dict]:
    [(name, data)] = [(n, d) for n, d in files.items() if n.startswith(prefix)]
    return name, data


def _users_cache(tmp_path, files: dict, mode: int = 0o755) -> str:
    """A cache directory of uid 65534 holding ``files`` (name -> JSON)."""
    home = tmp_path / "home-of-nobody"
    d = home / ".cache" / "pyrt"
    d.mkdir(parents=True)
    for name, data in files.items():
        (d / name).write_text(json.dumps(data))
    for dirpath, dirnames, filenames in os.walk(home):
        os.chown(dirpath, NOBODY, NOBODY)
        os.chmod(dirpath, mode)
        for n in filenames:
            os.chown(os.path.join(dirpath, n), NOBODY, NOBODY)
    return str(home / ".cache")


def _index_entries(index: dict, group: str) -> list:
    """The mutable list of ``group``'s entries in an entry-point index, whatever its layout:
    ``{group: [[name, value, dist, version], ...]}`` or ``{"dists": [[name, version, path,
    [[group, name, value], ...]], ...]}``."""
    if "dists" in index:
        return [e for d in index["dists"] for e in d[3] if e[0] == group]
    return index.get(group, [])


def _drop_plugin(index: dict, name: str, whole_distribution: bool = False) -> None:
    """Leave the plugin ``name`` out of an index: its entry, or its distribution's record."""
    if "dists" in index:
        if whole_distribution:
            index["dists"][:] = [d for d in index["dists"]
                                 if not any(e[:2] == ["pyrt.plugins", name] for e in d[3])]
        for d in index["dists"]:
            d[3][:] = [e for e in d[3] if not (e[0] == "pyrt.plugins" and e[1] == name)]
    else:
        index["pyrt.plugins"] = [e for e in index["pyrt.plugins"] if e[0] != name]


def _add_plugin(index: dict, name: str, value: str) -> None:
    if "dists" in index:
        dist = next(d for d in index["dists"] if any(e[0] == "pyrt.plugins" for e in d[3]))
        dist[3].append(["pyrt.plugins", name, value])
    else:
        index["pyrt.plugins"].append([name, value, "pyrt-evil", "1.0"])


def _with_system_call(hooks: dict) -> dict:
    """The genuine hook plans, with os.system called first by pyrt_resources_apply on the
    container id (the test's id is a harmless shell command: it makes a marker file)."""
    plan = hooks["calls"]["pyrt_resources_apply"]
    plan["impls"].insert(0, ["os", "system", ["container_id"]])
    return hooks


# -- (a) a user's cache makes root call a function -----------------------------------------

def test_users_hook_plan_naming_os_system_is_not_followed(rt, genuine, tmp_path):
    name, hooks = _named(genuine, "hooks-")
    cache = _users_cache(tmp_path, {name: _with_system_call(hooks)})
    rt.write_config(spec(["true"]))
    cid = "touch pwned-by-hooks"
    rt.ids.append(cid)
    r = rt("create", "--bundle", rt.bundle, cid, env=_env(cache), cwd=str(tmp_path))
    assert not (tmp_path / "pwned-by-hooks").exists(), "root ran os.system from a user's hook plan"
    assert r.returncode == 0, r.stderr  # the plan was ignored: pluggy called the real hooks
    assert rt.record(cid)["resources"]["manager"].startswith("cgroupfs-")


def test_users_entry_point_index_cannot_add_a_plugin(demo_cli, genuine, tmp_path):
    name, index = _named(genuine, INDEX)
    _add_plugin(index, "evil", "os:system")
    cache = _users_cache(tmp_path, {name: index})
    r = demo_cli("info", "--format", "json", env=_env(cache), check=True)
    plugins = {p["name"]: p for p in json.loads(r.stdout)["plugins"]}
    assert "evil" not in plugins, f"root loaded os:system as a plugin: {plugins['evil']}"
    assert plugins["cgroups"]["status"] == "loaded"


def test_users_driver_cache_cannot_pick_the_storage_driver_class(demo_cli, tmp_path):
    # stevedore's own entry-point cache (XDG_CACHE_HOME/python-entrypoints) names the class
    # root instantiates for a storage driver; importing `this` prints the Zen of Python
    cache = tmp_path / "home-of-nobody" / ".cache"
    code = ("from stevedore import _cache\n"
            "import json, os\n"
            "digest, paths = _cache._hash_settings_for_path(tuple(sys.path))\n"
            "d = _cache._build_cacheable_data()\n"
            "d['path_values'] = paths\n"
            "d['groups']['pyrt.storage.drivers'] = [['vfs', 'this:s', 'pyrt.storage.drivers']]\n"
            f"os.makedirs({str(cache / 'python-entrypoints')!r})\n"
            f"open(os.path.join({str(cache / 'python-entrypoints')!r}, digest), 'w')"
            ".write(json.dumps(d))\n")
    _as_console_script(code, _env(tmp_path / "scratch"))
    for dirpath, _, filenames in os.walk(tmp_path / "home-of-nobody"):
        os.chown(dirpath, NOBODY, NOBODY)
        for n in filenames:
            os.chown(os.path.join(dirpath, n), NOBODY, NOBODY)
    root = tmp_path / "fresh-store"
    r = demo_cli("--root", root, "--storage-driver", "vfs", "images", env=_env(cache))
    assert "Beautiful is better than ugly" not in r.stdout + r.stderr, \
        "root imported the module a user's stevedore cache named"
    assert r.returncode == 0, r.stderr


# -- (b) a cache that drops the resource plugin: the container must keep its device cgroup --

def _assert_device_denied(r) -> None:
    assert "OPENED" not in r.stdout, "a container opened a host block device: no device cgroup"
    if r.returncode == 125:  # refused before anything ran
        assert r.stderr.count("\n") == 1 and "device" in r.stderr, r.stderr
    else:
        assert "STARTED" in r.stdout and "Operation not permitted" in r.stderr, (r.stdout, r.stderr)


def test_users_index_dropping_cgroups_leaves_the_device_cgroup(demo_cli, genuine, tmp_path):
    name, index = _named(genuine, INDEX)
    _drop_plugin(index, "cgroups")
    cache = _users_cache(tmp_path, {name: index})
    r = demo_cli("run", "--rm", demo_cli.image, "sh", "-c", OPEN_A_DEVICE, env=_env(cache))
    _assert_device_denied(r)


@pytest.mark.parametrize("mode,whole", [(0o777, False), (0o755, False), (0o755, True)],
                         ids=["world-writable", "entry", "distribution"])
def test_trusted_index_dropping_cgroups_cannot_drop_the_device_cgroup(demo_cli, genuine, tmp_path,
                                                                      mode, whole):
    # even a root-owned cache (it passed the ownership check) without the cgroups plugin
    # must not let a container run without its device rules (0777: a world-writable
    # cache directory of root's, which is no better than a user's).  An entry missing
    # from a distribution's record is seen (its entry_points.txt is read again); a
    # distribution missing altogether is not, and the core's "none" manager refuses
    name, index = _named(genuine, INDEX)
    _drop_plugin(index, "cgroups", whole)
    d = tmp_path / "root-cache-2" / "pyrt"
    d.mkdir(parents=True)
    (d / name).write_text(json.dumps(index))
    os.chmod(d, mode)
    r = demo_cli("run", "--rm", demo_cli.image, "sh", "-c", OPEN_A_DEVICE,
                 env=_env(d.parent))
    _assert_device_denied(r)
    assert (r.returncode == 125) is whole  # rebuilt (cgroups loaded) unless undetectable
    assert demo_cli("ps", "-aq").stdout == ""  # a refused run leaves nothing


def test_trusted_hook_plan_dropping_cgroups_cannot_drop_the_device_cgroup(rt, genuine, tmp_path):
    # the plans name only installed plugins' hooks, but leave pyrt-cgroups out of
    # pyrt_resources_apply (its validate still says cgroupfs): the core's "none" manager
    # takes the container, and must refuse it before it runs
    name, hooks = _named(genuine, "hooks-")
    plan = hooks["calls"]["pyrt_resources_apply"]
    plan["impls"] = [i for i in plan["impls"] if not i[0].startswith("pyrt_cgroups")]
    d = tmp_path / "root-cache-3" / "pyrt"
    d.mkdir(parents=True)
    (d / name).write_text(json.dumps(hooks))
    rules = [{"allow": False, "access": "rwm"}]  # runc spec's default: deny every device
    rt.write_config(spec(["sh", "-c", OPEN_A_DEVICE], devices_rules=rules))
    rt.ids.append("nodevcg")
    r = rt("create", "--bundle", rt.bundle, "nodevcg", env=_env(d.parent))
    if r.returncode == 0:
        r2 = rt("start", "nodevcg")
        st = rt.wait_status("nodevcg", "stopped")
        pytest.fail(f"created without the device cgroup ({rt.record('nodevcg')['resources']}): "
                    f"{r2.stderr} {st}")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "device" in r.stderr, r.stderr
    assert rt("state", "nodevcg").returncode == 1  # nothing left behind


# -- (c) a symlinked cache file is not followed ---------------------------------------------

def test_symlinked_hook_plan_is_not_followed(rt, genuine, tmp_path):
    name, hooks = _named(genuine, "hooks-")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "plan.json"
    planted = json.dumps(_with_system_call(hooks))
    target.write_text(planted)
    os.chown(elsewhere, NOBODY, NOBODY)
    os.chown(target, NOBODY, NOBODY)
    d = tmp_path / "root-cache-4" / "pyrt"
    d.mkdir(parents=True)
    os.symlink(target, d / name)
    rt.write_config(spec(["true"]))
    cid = "touch pwned-by-symlink"
    rt.ids.append(cid)
    r = rt("create", "--bundle", rt.bundle, cid, env=_env(d.parent), cwd=str(tmp_path))
    assert not (tmp_path / "pwned-by-symlink").exists(), "root followed a symlinked hook plan"
    assert r.returncode == 0, r.stderr
    assert target.read_text() == planted  # and did not write through it either


# -- the runtime's state records --------------------------------------------------------------

def test_state_in_a_users_runtime_root_is_not_acted_on(rt, tmp_path):
    # a runtime root another user controls (an engine given --root under /tmp that the user
    # made first): a planted record names a poststop hook, which `delete` would run as root
    marker = tmp_path / "pwned-by-state"
    root = tmp_path / "users-runtime-root"
    (root / "planted").mkdir(parents=True)
    (root / "planted" / "state.json").write_text(json.dumps({
        "id": "planted", "pid": 0, "resources": {"manager": "none"},
        "hooks": {"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"touch {marker}"]}]}}))
    for p in (root, root / "planted", root / "planted" / "state.json"):
        os.chown(p, NOBODY, NOBODY)
    r = rt("--root", str(root), "delete", "planted")
    assert not marker.exists(), "root ran a hook from a record another user wrote"
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "owned by uid 65534" in r.stderr
    # and no container is created there, where its record could be rewritten
    rt.write_config(spec(["true"]))
    r = rt("--root", str(root), "create", "--bundle", rt.bundle, "mine")
    assert r.returncode == 1 and "refusing the runtime root" in r.stderr, r.stderr
    assert not (root / "mine").exists()
