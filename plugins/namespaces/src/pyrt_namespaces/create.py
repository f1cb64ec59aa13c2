"""create: a container's init process in new namespaces, stopped before exec.

The parent's side (this module), the plan made before forking (:mod:`.plans`) and the
children's steps (:mod:`.container_init`), in runc's order (see
shared/reference/isolation.md)::

    caller (subreaper)          intermediate child               grandchild (PID 1)
    ------------------          ------------------               ------------------
    fork ------------------->   fchdir(rootfs)
                                [unshare(USER)] -- "userns" -->
    write uid/gid maps <------- wait "maps"; become root
                                setns(joined), unshare(mnt,uts,ipc,net,pid,time)
                                [time offsets]
                                fork --------------------------> wait "go"
    "pid N" <------------------ report pid; _exit(0)
    reap it; place_process(N)
    "go" [+ what to join] ------------------------------------> [join its cgroups],
                                                                 oom_score_adj,
                                                                 [unshare(CGROUP)], hostname,
                                                                 domainname, mounts, devices
    run prestart, createRuntime <------------------------------ "hooks" (if any)
    "hooks done" ---------------------------------------------> createContainer hooks,
                                                                 pivot_root (or MS_MOVE+chroot)
    console master to the socket <----------------------------- "console" + fd (if asked)
                                                                 lo, sysctls, read-only and
                                                                 masked paths, rlimits
    "created" <----------------------------------------------- wait "start"
    start(): "start" -----------------------------------------> startContainer hooks,
                                                                 personality, user, caps,
                                                                 cwd, execve
    EOF (exec done) or "error CODE TEXT" <---------------------

The grandchild is reparented to the caller when the intermediate exits, because
the caller is a child subreaper; the caller reaps it with waitpid.
"""
from __future__ import annotations

import os

from pyrt_core.errors import RuntimeError_

# imported before the fork: the children's steps, with every module they use
from . import channel, container_init, userns
from .handle import NamespacedProcess
from .parent import (failure, fork_child, kill_and_reap, reap, send_console, subreaper_begin,
                     subreaper_end)
from .plans import console_socket, create_plan, oci_state


def _warn_no_mount_namespace(config) -> None:
    skipped = [what for what, items in (("mounts", config.mounts),
                                        ("masked paths", config.masked_paths),
                                        ("read-only paths", config.readonly_paths))
               if items]
    if config.root_readonly:
        skipped.append("a read-only root")
    if skipped:
        import sys

        sys.stderr.write(f"pyrt: warning: container {config.id} has no mount namespace: it "
                         f"shares the host's mounts, so its {', '.join(skipped)} are not "
                         "applied (they would change the host)\n")


def create(config, stdio, place_process, join_resources=None) -> NamespacedProcess:
    """Create the container's init process in new namespaces, stopped before exec.

    With ``join_resources`` (see the hook spec, pyrt_isolation_create), the init
    process is offered to move itself into its cgroups: what ``place_process``
    returns then goes with "go", and the init passes it to ``join_resources``."""
    opened: list[int] = []
    try:
        plan = create_plan(config, stdio, opened)
        if plan.new_user or plan.user_fd is not None:
            # in a user namespace the init is no longer the host's root: the cgroup files
            # (the host root's) are not its to open; the parent places it
            join_resources = None
        if join_resources is not None:
            plan = plan._replace(join_resources=join_resources)
        if not plan.own_mounts:
            _warn_no_mount_namespace(config)
        subreaper_begin()
        try:
            middle, sock = fork_child(container_init.intermediate, plan)
        except BaseException:
            subreaper_end()
            raise
    finally:
        for fd in opened:
            os.close(fd)

    what = f"creating container {config.id}"
    pid = None
    try:
        msg = channel.recv(sock)
        if msg == b"userns":
            try:
                userns.write_maps(middle, config.uid_mappings, config.gid_mappings)
            except OSError as e:
                raise RuntimeError_(f"{what}: {e.strerror}") from None
            channel.send(sock, b"maps")
            msg = channel.recv(sock)
        if not msg.startswith(b"pid "):
            status, middle = reap(middle), None
            raise failure(msg, what, status)
        pid = int(msg[4:])
        if join_resources is None:
            place_process(pid)
            channel.send(sock, b"go")
        else:
            todo = place_process(pid, self_join=True)
            if todo:
                from pyrt_core.api import json_dumps as dumps

                channel.send(sock, b"go " + dumps(todo).encode())
            else:
                channel.send(sock, b"go")
        # The intermediate has exited meanwhile; once reaped, its child is ours.
        reap(middle)
        middle = None
        while True:
            msg, fds = channel.recv_fds(sock)
            if msg == b"hooks":
                from pyrt_core.api import run_hooks

                state = oci_state(config, "creating", pid)
                run_hooks(config.hooks.prestart, state, "prestart")
                run_hooks(config.hooks.create_runtime, state, "createRuntime")
                channel.send(sock, b"hooks done")
            elif msg == b"console" and fds:
                for fd in fds[1:]:
                    os.close(fd)
                if config.on_console is not None:
                    config.on_console(fds[0])  # theirs now
                else:
                    try:
                        send_console(console_socket(config), fds[0])
                    finally:
                        os.close(fds[0])
            elif msg == b"created":
                break
            else:
                for fd in fds:
                    os.close(fd)
                status, pid = reap(pid), None
                raise failure(msg, what, status)
    except BaseException:
        kill_and_reap(middle)
        kill_and_reap(pid)
        os.close(sock)
        raise
    finally:
        subreaper_end()
    return NamespacedProcess(pid, sock)
