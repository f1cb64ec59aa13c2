"""Running CNI plugins: one plugin call, and a network configuration list's chain.

The CNI specification (1.0.0, which Debian's containernetworking-plugins 1.1 speak, and
0.4.0 for older lists) says how a runtime calls a plugin: the operation and the
container in environment variables (``CNI_COMMAND``, ``CNI_CONTAINERID``, ``CNI_NETNS``,
``CNI_IFNAME``, ``CNI_PATH``), the plugin's configuration on stdin, a result or an error
as JSON on stdout.  For a list, ADD calls each plugin in order with the previous one's
result as ``prevResult``; DEL calls them in reverse with the result ADD cached; each
plugin gets ``runtimeConfig`` only for the capabilities it declares.
"""
from __future__ import annotations

import json
import os
import subprocess

from pyrt_core.errors import PyrtError

#: how long one plugin call may take
TIMEOUT = 60


class CNIError(PyrtError):
    """A CNI plugin failed (its error's code, message and details)."""


def find_plugin(kind: str, dirs: list[str]) -> str:
    if not kind or "/" in kind or kind.startswith("."):
        raise CNIError(f"invalid CNI plugin type {kind!r}")
    for d in dirs:
        path = os.path.join(d, kind)
        if os.access(path, os.X_OK):
            return path
    raise CNIError(f"CNI plugin {kind!r} not found in {':'.join(dirs)} "
                   "(install containernetworking-plugins or set [cni] plugin_dirs)")


def call(command: str, conf: dict, *, container_id: str, netns: str, ifname: str,
         dirs: list[str]) -> dict | None:
    """Run one plugin for ``command`` (ADD, DEL, CHECK, VERSION); its result (ADD), None
    otherwise.  A failure raises :class:`CNIError` with the plugin's message."""
    path = find_plugin(conf.get("type", ""), dirs)
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
           "CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns,
           "CNI_IFNAME": ifname, "CNI_PATH": ":".join(dirs)}
    try:
        r = subprocess.run([path], input=json.dumps(conf).encode(), env=env,
                           capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CNIError(f"CNI plugin {conf['type']} {command} did not finish in {TIMEOUT} s") from None
    out = r.stdout.decode(errors="replace").strip()
    if r.returncode != 0:
        raise CNIError(f"CNI plugin {conf['type']} {command} failed: {_error_text(out, r.stderr)}")
    if command != "ADD" or not out:
        return None
    try:
        return json.loads(out)
    except ValueError:
        raise CNIError(f"CNI plugin {conf['type']} {command} printed no JSON result: {out[:200]!r}") \
            from None


def _error_text(out: str, err: bytes) -> str:
    try:
        e = json.loads(out)
        text = e.get("msg") or ""
        if e.get("details"):
            text += f" ({e['details']})"
        return text or out
    except ValueError:
        return (out or err.decode(errors="replace")).strip().splitlines()[-1:][0] \
            if (out or err.strip()) else "no message"


def plugin_conf(conflist: dict, plugin: dict, runtime_config: dict,
                prev_result: dict | None) -> dict:
    """The stdin of one plugin of the list: its own configuration with the list's name
    and version, the runtime values of the capabilities it declares, the previous
    result (libcni's buildOneConfig does the same)."""
    conf = dict(plugin)
    conf["name"] = conflist["name"]
    conf["cniVersion"] = conflist.get("cniVersion", "1.0.0")
    caps = plugin.get("capabilities") or {}
    rc = {k: v for k, v in runtime_config.items() if caps.get(k)}
    if rc:
        conf["runtimeConfig"] = rc
    else:
        conf.pop("runtimeConfig", None)
    if prev_result is not None:
        conf["prevResult"] = prev_result
    else:
        conf.pop("prevResult", None)
    return conf


def add_list(conflist: dict, *, container_id: str, netns: str, ifname: str,
             runtime_config: dict, dirs: list[str]) -> dict:
    """ADD for the whole list; the final result.  A plugin's failure raises (the caller
    runs :func:`del_list` to undo what the earlier plugins did, as the spec asks)."""
    result: dict | None = None
    for plugin in conflist["plugins"]:
        out = call("ADD", plugin_conf(conflist, plugin, runtime_config, result),
                   container_id=container_id, netns=netns, ifname=ifname, dirs=dirs)
        if out is not None:
            result = out
    if result is None:
        raise CNIError(f"CNI network {conflist['name']} returned no result")
    return result


def del_list(conflist: dict, *, container_id: str, netns: str | None, ifname: str,
             runtime_config: dict, prev_result: dict | None, dirs: list[str]) -> list[str]:
    """DEL for the whole list, in reverse order; every plugin is called even when one
    fails (DEL must release as much as it can); the failures, one line each."""
    errors = []
    for plugin in reversed(conflist["plugins"]):
        try:
            call("DEL", plugin_conf(conflist, plugin, runtime_config, prev_result),
                 container_id=container_id, netns=netns or "", ifname=ifname, dirs=dirs)
        except PyrtError as e:
            errors.append(str(e))
    return errors
