"""A health check runs a command the image (HEALTHCHECK) or the flags chose, and its
output comes back to the host (State.Health.Log).  Run on the host side (as a naive
daemonless runner could: ``sh -c CMD`` from the runner) it would see every host process
and file and run as root with every capability, outside the container's cgroup: an
image's HEALTHCHECK would be a way out.  pyrt runs each check as an exec into the
container (the init's namespaces, cgroup, user, capabilities, seccomp): these checks look
for a host process and a host file, and compare the check's namespaces, cgroup and
capabilities with the container's init."""
from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from pyrt_core.testing.lifecycle import inspect, wait_for


@pytest.fixture
def cli(detached_cli):
    return detached_cli


def _status(path: str, key: str) -> str:
    with open(path) as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    raise AssertionError(key)


def test_health_check_sees_neither_host_processes_nor_host_files(cli, tmp_path):
    token = secrets.token_hex(8)
    secret = tmp_path / f"host-secret-{token}"
    secret.write_text(f"SECRET-{token}\n")
    marker = subprocess.Popen([f"host-proc-{token}", "1000"], executable="/bin/sleep")
    try:
        # the check prints what a check on the host would reveal: the processes' command
        # lines, the host's file (by its host path), its namespaces, cgroup and caps
        # (the pattern is no match for itself: [c])
        cmd = (f"cat {secret} 2>&1; "
               "echo pidns=$(readlink /proc/self/ns/pid) mntns=$(readlink /proc/self/ns/mnt); "
               "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; "
               "echo cg=$(cat /proc/self/cgroup | tr '\\n' ' ') "
               "init=$(cat /proc/1/cgroup | tr '\\n' ' '); "
               f"echo procs=$(grep -l 'host-pro[c]-{token}' /proc/[0-9]*/cmdline 2>/dev/null)")
        cli("run", "-d", "--name", "probe", "--health-cmd", cmd, "--health-interval", "500ms",
            cli.image, "sh", "-c", "sleep 1000", check=True)
        r = wait_for(lambda: (cli("healthcheck", "run", "probe"),
                              inspect(cli, "probe")["State"]["Health"]["Log"])[1], timeout=15,
                     what="a check's result")
        out = r[-1]["Output"]
        assert "\nprocs=\n" in out, out  # no host process is visible
        assert f"SECRET-{token}" not in out and "No such file" in out, out  # nor the file
        pid = inspect(cli, "probe")["State"]["Pid"]
        for ns in ("pid", "mnt"):
            assert f"{ns}ns={os.readlink(f'/proc/{pid}/ns/{ns}')}" in out, out
        assert f"CapEff:\t{_status(f'/proc/{pid}/status', 'CapEff')}" in out, out
        assert _status(f"/proc/{pid}/status", "CapEff") != _status("/proc/self/status", "CapEff")
        assert "NoNewPrivs:\t1" in out and "Seccomp:\t2" in out, out
        # the init's cgroup (as the container sees it, its cgroup namespace joined too)
        cg = out.split("cg=", 1)[1].split("\nprocs=")[0].strip()
        own, _, init = cg.partition(" init=")
        assert own.strip() and own.strip() == init.strip(), out
    finally:
        marker.kill()
        marker.wait()
