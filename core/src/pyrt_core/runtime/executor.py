"""Runs an OCI bundle: resolve its config, then drive the hooks.

create: validate resources -> ``pyrt_isolation_create`` (whose
``place_process`` callback calls ``pyrt_resources_apply``) -> a created,
waiting process.  start -> exec.  wait -> exit code.  release ->
``pyrt_resources_release`` with the record ``apply`` returned.
"""
from __future__ import annotations

from ..errors import RuntimeError_
from .config import RuntimeConfig

#: signals a foreground ``pyrt run`` passes on to the container (docker's --sig-proxy),
#: by number: the ``signal`` module (and its enums) is not imported on the runtime's
#: create path, which uses only :meth:`Executor.create`
FORWARDED_SIGNALS = (2, 15, 1, 3, 10, 12)  # INT TERM HUP QUIT USR1 USR2


class forward_signals:
    """Pass the listed signals on to ``process`` while the ``with`` block runs."""

    def __init__(self, process, signals=FORWARDED_SIGNALS):
        self.process, self.signals, self.previous = process, signals, {}

    def _handler(self, signum, frame):
        self.process.kill(signum)

    def __enter__(self):
        import _signal  # signal's C module: signal itself imports enum

        for s in self.signals:
            self.previous[s] = _signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc):
        import _signal

        for s, h in self.previous.items():
            _signal.signal(s, h)
        return False


class Executor:
    """The runtime's engine room; the CLI's ``run`` and the OCI runtime commands use it."""

    def __init__(self, pm):
        self.pm = pm

    def create(self, config: RuntimeConfig, stdio=(0, 1, 2), on_placed=None):
        """Create the container's init process, placed under resource control.

        ``on_placed(record)`` runs as soon as the resource record exists (before
        any user code), so a caller can persist it for recovery.
        Returns ``(process, resources_record)``.
        """
        hook = self.pm.hook
        manager = hook.pyrt_resources_validate(resources=config.resources)
        if manager == "none" and config.resources.restricts_devices():
            from ..device_rules import unenforced_devices_warning

            # validate accepted it: the operator chose no cgroups (device_rules.check_device_rules)
            import sys

            sys.stderr.write(unenforced_devices_warning(config.id) + "\n")
        record: dict = {}

        def place_process(pid: int, self_join: bool = False) -> dict | None:
            r = hook.pyrt_resources_apply(container_id=config.id, pid=pid,
                                          resources=config.resources,
                                          cgroups_path=config.cgroups_path, self_join=self_join)
            record.update(r or {"manager": "none"})
            if record.get("manager", "none") == "none":
                # nothing applied the device rules (whatever validate said): before any
                # code of the container runs, refuse unless the operator chose so
                from ..device_rules import check_device_rules

                check_device_rules(config.resources)
            if on_placed is not None:
                on_placed(dict(record))
            return dict(record) if self_join and record.get("self_join") else None

        def join_resources(todo: dict) -> None:  # in the container's init process
            if not hook.pyrt_resources_join(container_id=config.id, record=todo):
                raise RuntimeError_(f"no resource manager can join {todo.get('manager')!r}")

        try:
            proc = hook.pyrt_isolation_create(config=config, stdio=tuple(stdio),
                                              place_process=place_process,
                                              join_resources=join_resources)
        except BaseException:
            if record:  # placed, then setup failed: the cgroup must not outlive it
                self.release(config.id, record)
            raise
        if proc is None:
            if record:
                self.release(config.id, record)
            raise RuntimeError_("no isolation plugin is installed (install pyrt-namespaces)")
        return proc, record

    def release(self, container_id: str, record: dict) -> None:
        self.pm.hook.pyrt_resources_release(container_id=container_id, record=record)

    def oom_killed(self, container_id: str, record: dict) -> bool:
        return bool(self.pm.hook.pyrt_resources_oom_killed(container_id=container_id, record=record))

    def run(self, config: RuntimeConfig, stdio=(0, 1, 2), on_started=None, on_exited=None,
            on_placed=None) -> int:
        """create + start + wait + release; return the exit code.

        ``on_started(pid, record)`` runs once the user's process is running;
        ``on_exited(code, oom_killed)`` after it was reaped, before release."""
        proc, record = self.create(config, stdio, on_placed)
        try:
            with forward_signals(proc):
                proc.start()
                if on_started is not None:
                    on_started(proc.pid, record)
                code = proc.wait()
            if on_exited is not None:
                on_exited(code, self.oom_killed(config.id, record))
            return code
        except BaseException:
            proc.destroy()
            raise
        finally:
            self.release(config.id, record)
