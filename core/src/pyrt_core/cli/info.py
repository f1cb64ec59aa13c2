"""``pyrt info``: version, plugins, storage drivers, kernel features."""
from __future__ import annotations

import os
import platform


def kernel_features() -> dict:
    feats: dict = {"kernel": platform.release()}
    try:
        feats["namespaces"] = sorted(n for n in os.listdir("/proc/self/ns") if not n.endswith("_for_children"))
    except OSError:
        feats["namespaces"] = []
    try:
        with open("/proc/filesystems") as f:
            fss = {line.split()[-1] for line in f if line.strip()}
    except OSError:
        fss = set()
    feats["overlayfs"] = "overlay" in fss
    feats["btrfs"] = "btrfs" in fss
    feats["device-mapper"] = os.path.exists("/dev/mapper/control")
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        feats["cgroups"] = "v2"
    elif os.path.isdir("/sys/fs/cgroup/unified"):
        feats["cgroups"] = "v1 (hybrid)"
    elif os.path.isdir("/sys/fs/cgroup/memory"):
        feats["cgroups"] = "v1"
    else:
        feats["cgroups"] = "none"
    return feats


def collect(engine) -> dict:
    from .. import __version__
    from ..storage.select import probe_all

    pm = engine.pm
    data: dict = {"version": __version__, "root": engine.settings.root,
                  "runroot": engine.settings.runroot, "config_file": engine.settings.config_file}
    data["plugins"] = [
        {"name": r.name, "distribution": r.distribution, "version": r.version,
         "status": r.status, **({"reason": r.reason} if r.reason else {})}
        for r in pm.records
    ]
    drivers = probe_all(engine.settings)
    selected = None
    selected_error = None
    try:
        selected = engine.driver_name
        status = engine.driver.status()
    except Exception as e:  # show what is wrong instead of failing
        selected_error = str(e)
        status = []
    data["storage"] = {"drivers": drivers, "selected": selected,
                       "selected_by": engine.settings.storage_driver_source if engine.settings.storage_driver else
                       ("store" if selected else None),
                       "status": dict(status)}
    if selected_error:
        data["storage"]["error"] = selected_error
    data["kernel"] = kernel_features()
    from ..engine.volumes import drivers as volume_drivers

    data["volume_drivers"] = volume_drivers(engine)
    data["device_cgroup"] = device_cgroup(pm)
    data["network_backend"] = network_backend(pm)
    data["cache"] = cache_state()
    for section in pm.hook.pyrt_info():
        for k, v in (section or {}).items():
            data.setdefault("plugin_info", {})[k] = v
    return data


def device_cgroup(pm) -> str:
    """Who would enforce a container's device rules: asked as a container that denies
    every device is (the resource managers' validate hook), so the answer is exact."""
    from ..runtime.config import DeviceRule, Resources

    try:
        manager = pm.hook.pyrt_resources_validate(resources=Resources(devices=[DeviceRule(False)]))
    except Exception as e:  # noqa: BLE001 - shown, not fatal
        return f"unavailable: {e}"
    if manager == "none":
        return ('NOT ENFORCED: cgroup manager "none" was chosen (PYRT_CGROUP_MANAGER or '
                '[cgroups] manager); containers run without a device cgroup')
    return f"enforced ({manager})"


def network_backend(pm) -> str:
    """The network backend containers get their networks from (pyrt_network_backend:
    pyrt-network's "bridge", pyrt-network-cni's "cni"), or "none" (loopback only)."""
    try:
        return pm.hook.pyrt_network_backend() or "none"
    except Exception as e:  # noqa: BLE001 - shown, not fatal
        return f"unavailable: {e}"


def cache_state() -> str:
    """Where the entry-point index and hook plans are cached, or why they are not."""
    from .. import entrypoints

    d = entrypoints.cache_dir()
    return d if d else f"none (not trusted: {entrypoints.why_no_cache()})"


def render(d: dict) -> str:
    out = [f"pyrt version {d['version']}", f"Root: {d['root']}", f"Run root: {d['runroot']}"]
    if d.get("config_file"):
        out.append(f"Config file: {d['config_file']}")
    out.append("Plugins:")
    for p in d["plugins"]:
        dist = f"{p['distribution']} {p['version']}" if p.get("distribution") else "-"
        line = f"  {p['name']:<14} {dist:<28} {p['status']}"
        if p.get("reason"):
            line += f": {p['reason']}"
        out.append(line)
    s = d["storage"]
    out.append("Storage drivers:")
    for drv in s["drivers"]:
        mark = "*" if drv["name"] == s["selected"] else " "
        state = "usable" if drv["usable"] else f"not usable: {drv['reason']}"
        out.append(f" {mark}{drv['name']:<14} {state}")
    out.append(f"Storage driver: {s['selected'] or 'none'}" + (f" ({s['error']})" if s.get("error") else ""))
    for k, v in s["status"].items():
        out.append(f"  {k}: {v}")
    out.append(f"Volume drivers: {', '.join(d.get('volume_drivers') or []) or 'none'}")
    out.append(f"Device cgroup: {d['device_cgroup']}")
    out.append(f"Network backend: {d.get('network_backend', 'none')}")
    out.append(f"Plugin cache: {d['cache']}")
    out.append("Kernel:")
    for k, v in d["kernel"].items():
        if isinstance(v, bool):
            v = "yes" if v else "no"
        elif isinstance(v, list):
            v = ", ".join(v)
        out.append(f"  {k}: {v}")
    for name, sec in (d.get("plugin_info") or {}).items():
        out.append(f"{name}:")
        if isinstance(sec, dict):
            for k, v in sec.items():
                out.append(f"  {k}: {', '.join(map(str, v)) if isinstance(v, list) else v}")
    return "\n".join(out) + "\n"
