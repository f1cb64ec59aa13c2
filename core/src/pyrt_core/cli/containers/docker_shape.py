"""``pyrt inspect``'s JSON for a container, in docker's shape (moby's ``ContainerJSON``), so
that scripts written for ``docker inspect`` (and its ``-f`` templates) read pyrt's.

docker's ``Config`` is the container's effective configuration (the image's settings
merged with the flags: ``Env`` with the image's variables, ``Cmd``/``Entrypoint`` as they
run, the image's labels under the container's), ``HostConfig`` what the flags asked of the
host.  What docker has no field for and pyrt's tests and users need (the cgroup manager,
the monitor, the OCI runtime, pyrt's own record of the flags) is under ``Pyrt``.
"""
from __future__ import annotations

from .network_settings import network_settings

#: docker's time for "never" (Go's zero time.Time)
ZERO_TIME = "0001-01-01T00:00:00Z"


def docker_status(c) -> str:
    """docker's State.Status: created, running, paused, restarting, removing, exited, dead."""
    s = c.state
    if s.status in ("running", "starting"):
        return "paused" if s.paused else "running"
    return {"creating": "created"}.get(s.status, s.status)


def state(c, engine=None) -> dict:
    """docker's ``State`` of ``c`` (the model ``Container`` or the record's lean view:
    ``inspect -f '{{.State.Pid}}'`` reads it from the lean view, cli/containers/inspect_view.py);
    with ``engine``, ``Health`` too for a container with a health check."""
    s = c.state
    running = s.status in ("running", "starting")
    out = {
        "Status": docker_status(c), "Running": running, "Paused": running and s.paused,
        "Restarting": False, "OOMKilled": s.oom_killed, "Dead": False,
        "Pid": s.pid if running else 0, "ExitCode": s.exit_code, "Error": s.error,
        "StartedAt": s.started_at or ZERO_TIME, "FinishedAt": s.finished_at or ZERO_TIME,
    }
    health = _health(engine, c) if engine is not None else None
    if health is not None:
        out["Health"] = health
    return out


def _image_config(engine, c, cache: dict):
    """The image's config (an empty one when the image is gone: ``rmi -f``), read from the
    image index (images/configview.py: not the image store, which needs the storage driver
    and with it the plugin manager)."""
    from ...images.configview import image_config

    if c.image_id not in cache:
        cache[c.image_id] = image_config(engine.settings.root, c.image_id)
    return cache[c.image_id]


def _args(cfg, icfg) -> list[str]:
    if cfg.entrypoint is not None:
        return list(cfg.entrypoint) + list(cfg.command or [])
    return list(icfg.entrypoint or []) + (list(cfg.command) if cfg.command else list(icfg.cmd or []))


def _mounts(cfg) -> tuple[list, list]:
    """(Mounts, HostConfig.Binds) from the container's volumes."""
    mounts, binds = [], []
    for v in cfg.volumes or []:
        if (getattr(v, "type", "bind") or "bind") == "tmpfs":
            continue  # docker lists tmpfs mounts in HostConfig.Tmpfs, not Binds
        src, dst = getattr(v, "source", ""), getattr(v, "destination", "")
        ro = bool(getattr(v, "readonly", False))
        mounts.append({"Type": getattr(v, "type", "bind") or "bind", "Source": src,
                       "Destination": dst, "Mode": "ro" if ro else "", "RW": not ro,
                       "Propagation": "rprivate"})
        binds.append(f"{src}:{dst}" + (":ro" if ro else ""))
    return mounts, binds


def _with_network(host: dict, c) -> dict:
    """HostConfig with its networking fields from the container's networking
    (cli/containers/ports.py: NetworkMode, PortBindings, PublishAllServers, Dns...)."""
    from .ports import host_config

    net = host_config(c)
    host.update(net)
    host["PublishAllPorts"] = net.pop("PublishAllServers", False)
    host.pop("PublishAllServers", None)
    return host


def _tmpfs(cfg) -> dict | None:
    """HostConfig.Tmpfs: ``--tmpfs`` mounts by path, their options as one string."""
    out = {v.destination: ",".join(v.tmpfs_options or ()) for v in cfg.volumes or []
           if getattr(v, "tmpfs_flag", False)}
    return out or None


def _host_config(c, binds) -> dict:
    cfg = c.config
    res = cfg.resources or {}
    mem, cpu = res.get("memory") or {}, res.get("cpu") or {}
    pids = (res.get("pids") or {}).get("limit")
    quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
    opts = dict(cfg.log_opts or {})
    if cfg.log_size_max and "max-size" not in opts:
        opts["max-size"] = str(cfg.log_size_max)
    return {
        "Binds": binds or None,
        "ContainerIDFile": "",
        "LogConfig": {"Type": cfg.log_driver or "k8s-file", "Config": opts},
        "NetworkMode": cfg.network,
        "PortBindings": {},
        "RestartPolicy": {"Name": cfg.restart_policy, "MaximumRetryCount": cfg.restart_max},
        "AutoRemove": cfg.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": None,
        "CapAdd": cfg.cap_add or None,
        "CapDrop": cfg.cap_drop or None,
        "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None,
        "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
        "Privileged": cfg.privileged,
        "PublishAllPorts": False,
        "ReadonlyRootfs": cfg.read_only,
        "SecurityOpt": cfg.security_opt or None,
        "UTSMode": "", "UsernsMode": "private" if cfg.userns else "",
        "ShmSize": 67108864,
        "Runtime": cfg.runtime or "pyrt",
        "CgroupParent": cfg.cgroup_parent or "",
        "CpuShares": cpu.get("shares") or 0,
        "Memory": mem.get("limit") or 0,
        "NanoCpus": quota * 1_000_000_000 // period if quota > 0 and period else 0,
        "CpuPeriod": period, "CpuQuota": quota,
        "CpusetCpus": cpu.get("cpus") or "", "CpusetMems": cpu.get("mems") or "",
        "BlkioWeight": (res.get("blockIO") or {}).get("weight") or 0,
        "Devices": [{"PathOnHost": d.get("path", ""), "PathInContainer": d.get("path", ""),
                     "CgroupPermissions": "rwm"} for d in cfg.devices or []],
        "MemoryReservation": mem.get("reservation") or 0,
        "MemorySwap": mem.get("swap") or 0,
        "MemorySwappiness": mem.get("swappiness"),
        "OomKillDisable": bool(mem.get("disableOOMKiller")),
        # docker shows null for "no limit" (--pids-limit -1 or 0, or nothing applied it)
        "PidsLimit": pids if isinstance(pids, int) and pids > 0 else None,
        "Ulimits": None,
        "Tmpfs": _tmpfs(cfg),
        **_run_flags_host(cfg),
    }


def _run_flags_host(cfg) -> dict:
    """HostConfig of the process and namespace flags (cli/run_flags.py), docker's names
    (``Annotations``: podman's and docker 24's)."""
    def mode(m, default=""):
        return m or default
    return {
        "Init": True if cfg.init else None,
        "Ulimits": [dict(u) for u in cfg.ulimits] or None,
        "Sysctls": dict(cfg.sysctls) or None,
        "ShmSize": cfg.shm_size or 67108864,
        "OomScoreAdj": cfg.oom_score_adj or 0,
        "GroupAdd": list(cfg.group_add) or None,
        "ContainerIDFile": cfg.cidfile or "",
        "Annotations": dict(cfg.annotations) or None,
        "IpcMode": mode(cfg.ipc_mode, "private"),
        "PidMode": mode(cfg.pid_mode),
        "UTSMode": mode(cfg.uts_mode),
        "CgroupnsMode": mode(cfg.cgroupns_mode, "private"),
    }


def _config(c, icfg) -> dict:
    from ...containers.spec import merge_env

    cfg = c.config
    hostname = cfg.hostname or c.id[:12]
    labels = dict(icfg.labels or {})
    labels.update(getattr(cfg, "labels", None) or {})
    out = {
        "Hostname": hostname, "Domainname": "", "User": cfg.user or icfg.user or "",
        "AttachStdin": cfg.interactive and not cfg.detach,
        "AttachStdout": not cfg.detach, "AttachStderr": not cfg.detach,
    }
    if icfg.exposed_ports:
        out["ExposedPorts"] = {p: {} for p in icfg.exposed_ports}
    out.update({
        "Tty": cfg.tty, "OpenStdin": cfg.interactive,
        "StdinOnce": cfg.interactive and not cfg.detach,
        "Env": merge_env(list(icfg.env or []), list(cfg.env or []), hostname, cfg.tty),
        "Cmd": list(cfg.command) if cfg.command else
               (None if cfg.entrypoint is not None else (list(icfg.cmd) if icfg.cmd else None)),
        "Image": cfg.image,
        "Volumes": {v: {} for v in icfg.volumes} if icfg.volumes else None,
        "WorkingDir": cfg.workdir or icfg.working_dir or "",
        "Entrypoint": list(cfg.entrypoint) if cfg.entrypoint is not None else
                      (list(icfg.entrypoint) if icfg.entrypoint else None),
        "OnBuild": None,
        "Labels": {k: labels[k] for k in sorted(labels)},
    })
    stop_signal = cfg.stop_signal or icfg.stop_signal
    if stop_signal:
        out["StopSignal"] = stop_signal
    if cfg.stop_timeout is not None:
        out["StopTimeout"] = cfg.stop_timeout
    hc = getattr(cfg, "healthcheck", None)
    if hc:  # docker's HealthConfig: the flags merged with the image's, zero fields left out
        out["Healthcheck"] = dict(hc)
    return out


def _health(engine, c) -> dict | None:
    """docker's State.Health: only for a container with a check (none for ``NONE``)."""
    from ...health import config as hconf
    from ...health import state as hstate

    if not hconf.enabled(getattr(c.config, "healthcheck", None)):
        return None
    return hstate.docker_shape(hstate.read(engine.settings.root, c.id)) or \
        {"Status": hstate.STARTING if c.state.status in ("running", "starting") else
         hstate.UNHEALTHY, "FailingStreak": 0, "Log": []}


def container_inspect(engine, c, image_configs: dict | None = None) -> dict:
    """docker's ``ContainerJSON`` for ``c`` (``image_configs``: a cache of image configs
    by id, for many containers of one image)."""
    s, cfg = c.state, c.config
    icfg = _image_config(engine, c, image_configs if image_configs is not None else {})
    args = _args(cfg, icfg)
    _, binds = _mounts(cfg)
    from ...engine.volumes import inspect_mounts

    mounts = inspect_mounts(engine, c)  # volumes by name, driver and data path
    bundle = engine.containers.bundle_dir(c.id)
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": state(c, engine),
        "Image": c.image_id,
        "ResolvConfPath": f"{bundle}/resolv.conf",
        "HostnamePath": f"{bundle}/hostname",
        "HostsPath": f"{bundle}/hosts",
        "LogPath": engine.containers.log_path(c.id),
        "Name": "/" + c.name,
        "RestartCount": s.restart_count,
        "Driver": c.storage_driver,
        "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": _with_network(_host_config(c, binds), c),
        "GraphDriver": {"Name": c.storage_driver, "Data": None},
        "Mounts": mounts,
        "Config": _config(c, icfg),
        "NetworkSettings": network_settings(engine, c),
        # pyrt's own, no docker field holds them
        "Pyrt": {
            "ImageName": c.image_name,
            "CgroupManager": c.cgroup_manager,
            # "none": nothing enforced its device rules (the operator chose no cgroups)
            "DeviceCgroup": c.cgroup_manager != "none",
            "Monitor": c.monitor,
            "OCIRuntime": c.runtime,
            "ContainerConfig": cfg.to_dict(),
        },
    }
