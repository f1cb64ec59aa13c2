"""The process and namespace flags of `pyrt run`/`create` (cli/run_flags.py), each proven
by its effect in a real container, each bad value by one line, exit 125 and nothing
created."""
import json
import os
import time

import pytest


@pytest.fixture
def cli(detached_cli):
    return detached_cli


def refused(cli, *args, message: str, command: str = "run") -> None:
    """``pyrt run ARGS`` fails with one line holding ``message``, exit 125, nothing made."""
    before = cli("ps", "-a", "-q").stdout
    r = cli(command, *args)
    assert r.returncode == 125, (args, r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and message in r.stderr, (args, r.stderr)
    assert cli("ps", "-a", "-q").stdout == before, args


def inspect(cli, ref: str) -> dict:
    return json.loads(cli("inspect", ref, check=True).stdout)[0]


# -- --init ----------------------------------------------------------------------------


def test_init_is_pid_1_and_passes_the_exit_code(cli):
    r = cli("run", "--rm", "--init", cli.image, "sh", "-c",
            "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$; exit 7")
    assert r.returncode == 7, r.stderr
    first, second = r.stdout.splitlines()[:2]
    assert first.split()[:5] == ["/run/pyrt-init", "--", "sh", "-c", "cat"]
    assert second != "1"  # the command is the init's child


def test_init_reaps_orphans(cli):
    # an exec'd shell starts a grandchild that outlives its parent: orphaned, it is
    # reparented to PID 1, and only a PID 1 that reaps leaves no <defunct> entry behind
    script = ("sh -c 'sleep 0.2 & exit 0'; sleep 1; "
              "for s in /proc/[0-9]*/stat; do cut -d' ' -f3 $s; done | grep -c Z || true")
    with_init = cli("run", "-d", "--init", cli.image, "sleep", "600", check=True).stdout.strip()
    r = cli("exec", with_init, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0"]
    # without --init, `sleep` as PID 1 never waits: the orphan stays a zombie
    bare = cli("run", "-d", cli.image, "sleep", "600", check=True).stdout.strip()
    r = cli("exec", bare, "sh", "-c", script)
    assert r.stdout.split() == ["1"], r.stdout
    cli("rm", "-f", with_init, bare, check=True)


def test_init_forwards_stop_signal(cli):
    # `sleep` as PID 1 ignores SIGTERM (no handler): stop waits for the timeout; under
    # the init, the signal reaches it and it ends at once
    cid = cli("run", "-d", "--init", cli.image, "sleep", "600", check=True).stdout.strip()
    t = time.monotonic()
    cli("stop", "-t", "8", cid, check=True)
    assert time.monotonic() - t < 5
    ins = inspect(cli, cid)
    assert ins["State"]["ExitCode"] == 143 and ins["HostConfig"]["Init"] is True
    assert inspect(cli, cli("create", cli.image, "true", check=True).stdout.strip()
                   )["HostConfig"]["Init"] is None


def test_init_bad_values(cli, tmp_path):
    refused(cli, "--init-path", "relative/x", cli.image, "true",
            message="invalid --init-path 'relative/x': it must be an absolute path")
    refused(cli, "--init", "--init-path", str(tmp_path / "nope"), cli.image, "true",
            message="No such file or directory")
    plain = tmp_path / "plain"
    plain.write_text("#!/bin/sh\n")
    plain.chmod(0o644)
    refused(cli, "--init-path", str(plain), cli.image, "true", message="not executable",
            command="create")
    plain.chmod(0o757)
    refused(cli, "--init-path", str(plain), cli.image, "true",
            message="writable by another user")
    refused(cli, "--init-path", str(tmp_path), cli.image, "true", message="not a regular file")


# -- --ulimit ----------------------------------------------------------------------------


def test_ulimit(cli):
    r = cli("run", "--rm", "--ulimit", "nofile=1234:2345", "--ulimit", "core=-1",
            "--ulimit", "nproc=300", cli.image, "sh", "-c",
            "ulimit -n; ulimit -Hn; grep -E '^Max (open files|core file size|processes)' "
            "/proc/self/limits")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["1234", "2345"]
    limits = {" ".join(ln.split()[:-3]): ln.split()[-3:-1] for ln in lines[2:]}
    assert limits["Max core file size"] == ["unlimited", "unlimited"]
    assert limits["Max processes"] == ["300", "300"]
    assert limits["Max open files"] == ["1234", "2345"]
    cid = cli("create", "--ulimit", "nofile=10:20", cli.image, "true", check=True).stdout.strip()
    assert inspect(cli, cid)["HostConfig"]["Ulimits"] == [{"Name": "nofile", "Soft": 10, "Hard": 20}]


def test_ulimit_bad_values(cli):
    for value, message in (("nofiles=1", "invalid ulimit type: nofiles"),
                           ("nofile", "expected NAME=SOFT[:HARD]"),
                           ("nofile=x", "the limits must be integers"),
                           ("nofile=20:10", "soft limit must be less than or equal to hard"),
                           ("nofile=-2", "the limits must be integers >= 0")):
        refused(cli, "--ulimit", value, cli.image, "true", message=message)


# -- --sysctl -----------------------------------------------------------------------------


def test_sysctl(cli):
    r = cli("run", "--rm", "--network", "none", "--sysctl", "net.ipv4.ip_forward=1",
            "--sysctl", "kernel.shmmni=1234", "--sysctl", "fs.mqueue.msg_max=42",
            "--sysctl", "kernel.domainname=example.test", cli.image, "sh", "-c",
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni "
            "/proc/sys/fs/mqueue/msg_max /proc/sys/kernel/domainname")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "1234", "42", "example.test"]
    with open("/proc/sys/kernel/shmmni") as f:
        assert f.read().strip() != "1234"
    cid = cli("create", "--sysctl", "kernel.msgmax=9000", cli.image, "true",
              check=True).stdout.strip()
    assert inspect(cli, cid)["HostConfig"]["Sysctls"] == {"kernel.msgmax": "9000"}


def test_sysctl_bad_values(cli):
    for args, message in ((("--sysctl", "kernel.pid_max=1000"), "not in a kernel namespace"),
                          (("--sysctl", "vm.swappiness=1"), "not in a kernel namespace"),
                          (("--sysctl", "kernel.hostname=x"), "use --hostname"),
                          (("--sysctl", "net.ipv4.ip_forward"), "expected KEY=VALUE"),
                          (("--sysctl", "net..x=1"), "not a sysctl name"),
                          (("--network", "host", "--sysctl", "net.ipv4.ip_forward=1"),
                           "not allowed with --network host"),
                          (("--ipc", "host", "--sysctl", "kernel.shmmax=1"),
                           "shares its IPC namespace"),
                          (("--uts", "host", "--sysctl", "kernel.domainname=x"),
                           "shares its UTS namespace")):
        refused(cli, *args, cli.image, "true", message=message)


# -- --shm-size ---------------------------------------------------------------------------


def _df_kib(out: str) -> int:
    return int(out.splitlines()[-1].split()[1])


def test_shm_size(cli):
    r = cli("run", "--rm", cli.image, "df", "-k", "/dev/shm")
    assert r.returncode == 0, r.stderr
    assert _df_kib(r.stdout) == 65536  # docker's 64m
    r = cli("run", "--rm", "--shm-size", "128m", cli.image, "sh", "-c", "df -k /dev/shm")
    assert _df_kib(r.stdout) == 131072
    cid = cli("create", "--shm-size", "1g", cli.image, "true", check=True).stdout.strip()
    assert inspect(cli, cid)["HostConfig"]["ShmSize"] == 1 << 30
    refused(cli, "--shm-size", "lots", cli.image, "true", message="invalid value for --shm-size")
    refused(cli, "--shm-size", "0", cli.image, "true", message="greater than 0")
    refused(cli, "--ipc", "host", "--shm-size", "1m", cli.image, "true",
            message="conflicting options: --shm-size and --ipc host")


# -- --oom-score-adj ----------------------------------------------------------------------


def _has_cap_sys_resource() -> bool:
    with open("/proc/self/status") as f:
        eff = next(int(ln.split()[1], 16) for ln in f if ln.startswith("CapEff:"))
    return bool(eff >> 24 & 1)


def test_oom_score_adj(cli):
    r = cli("run", "--rm", "--oom-score-adj", "500", cli.image, "cat", "/proc/1/oom_score_adj")
    assert (r.returncode, r.stdout) == (0, "500\n"), r.stderr
    r = cli("run", "--rm", "--oom-score-adj", "-300", cli.image, "cat", "/proc/1/oom_score_adj")
    if _has_cap_sys_resource():
        assert r.stdout == "-300\n", r.stderr
    else:  # lowering it needs CAP_SYS_RESOURCE, which this machine's root lacks: one line
        assert r.returncode == 125 and r.stderr.count("\n") == 1
        assert "setting oom_score_adj to -300 (lowering it needs CAP_SYS_RESOURCE)" in r.stderr
    cid = cli("create", "--oom-score-adj", "7", cli.image, "true", check=True).stdout.strip()
    assert inspect(cli, cid)["HostConfig"]["OomScoreAdj"] == 7
    refused(cli, "--oom-score-adj", "1001", cli.image, "true", message="range is [-1000, 1000]")
    refused(cli, "--oom-score-adj", "x", cli.image, "true", message="is not an integer")


# -- --group-add --------------------------------------------------------------------------


def test_group_add(cli):
    # names from the image's /etc/group (read inside its root), numbers as given
    groups = cli("run", "--rm", cli.image, "cat", "/etc/group", check=True).stdout
    name, gid = next((ln.split(":")[0], ln.split(":")[2]) for ln in groups.splitlines()
                     if ln.split(":")[2] not in ("0", ""))
    r = cli("run", "--rm", "--group-add", name, "--group-add", "4321", cli.image, "id", "-G")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", gid, "4321"]
    cid = cli("create", "--group-add", "4321", cli.image, "true", check=True).stdout.strip()
    assert inspect(cli, cid)["HostConfig"]["GroupAdd"] == ["4321"]
    refused(cli, "--group-add", "a:b", cli.image, "true", message="a group name or number")
    refused(cli, "--group-add", "99999999999", cli.image, "true", message="out of range")
    r = cli("run", "--rm", "--group-add", "nosuchgroup", cli.image, "true")
    # docker's 125 (a daemon error to its CLI, which maps only not-found to 127 and
    # EACCES/EISDIR to 126); podman says 126
    assert r.returncode == 125 and "unable to find group nosuchgroup" in r.stderr


# -- --cidfile ----------------------------------------------------------------------------


def test_cidfile(cli, tmp_path):
    path = tmp_path / "cid"
    cid = cli("create", "--cidfile", str(path), cli.image, "true", check=True).stdout.strip()
    assert path.read_text() == cid
    assert inspect(cli, cid)["HostConfig"]["ContainerIDFile"] == str(path)
    refused(cli, "--cidfile", str(path), cli.image, "true",
            message=f"Container ID file found, make sure the other container isn't running "
                    f"or delete {path}")
    assert path.read_text() == cid  # untouched
    for mode in ("run", "run -d"):
        p = tmp_path / ("cid-" + mode.replace(" ", ""))
        r = cli(*mode.split(), "--cidfile", str(p), cli.image, "true")
        assert r.returncode == 0, r.stderr
        ids = cli("ps", "-aq", "--no-trunc").stdout.split()
        assert p.read_text() in ids
    # a create that fails leaves no id file
    p = tmp_path / "failed"
    r = cli("run", "--cidfile", str(p), "--pull", "never", "no/such-image", "true")
    assert r.returncode == 125 and not p.exists()


# -- --annotation -------------------------------------------------------------------------


def test_annotation(cli):
    cid = cli("run", "-d", "--annotation", "com.example.k=v 1", "--annotation", "a=",
              cli.image, "sleep", "60", check=True).stdout.strip()
    ins = inspect(cli, cid)
    assert ins["HostConfig"]["Annotations"] == {"com.example.k": "v 1", "a": ""}
    # in the runtime's config (config.json of the bundle), beside pyrt's own
    with open(os.path.join(cli.runroot, "containers", cid, "config.json")) as f:
        annotations = json.load(f)["annotations"]
    assert annotations["com.example.k"] == "v 1" and annotations["a"] == ""
    assert annotations["io.pyrt.name"] == ins["Name"].lstrip("/")
    cli("rm", "-f", cid, check=True)
    refused(cli, "--annotation", "novalue", cli.image, "true", message="expected KEY=VALUE")
    refused(cli, "--annotation", "io.pyrt.image=x", cli.image, "true", message="pyrt's own")


# -- --ipc, --pid, --uts, --cgroupns --------------------------------------------------------


READ_NS = "for t in pid ipc uts cgroup; do readlink /proc/self/ns/$t; done"


def _ns(cli, cid: str) -> list[str]:
    return cli("exec", cid, "sh", "-c", READ_NS, check=True).stdout.split()


def test_namespaces_host(cli):
    host = [os.readlink(f"/proc/self/ns/{t}") for t in ("pid", "ipc", "uts", "cgroup")]
    r = cli("run", "--rm", "--pid", "host", "--ipc", "host", "--uts", "host",
            "--cgroupns", "host", cli.image, "sh", "-c",
            READ_NS + "; hostname; echo $HOSTNAME; cat /proc/1/comm")
    assert r.returncode == 0, r.stderr
    out = r.stdout.split()
    assert out[:4] == host
    assert out[4] == out[5] == os.uname().nodename
    with open("/proc/1/comm") as f:
        assert out[6] == f.read().strip()  # the host's PID 1 is seen
    r = cli("run", "--rm", cli.image, "sh", "-c", READ_NS)
    assert all(a != b for a, b in zip(r.stdout.split(), host))


def test_namespaces_of_another_container(cli):
    donor = cli("run", "-d", "--name", "donor", "--ipc", "shareable", cli.image,
                "sleep", "600", check=True).stdout.strip()
    theirs = _ns(cli, donor)
    r = cli("run", "--rm", "--pid", "container:donor", "--ipc", "container:donor",
            "--uts", "container:donor", "--cgroupns", "container:donor", cli.image, "sh", "-c",
            READ_NS + "; cat /proc/1/cmdline | tr '\\0' ' '")
    assert r.returncode == 0, r.stderr
    out = r.stdout.split()
    assert out[:4] == theirs
    assert out[4:6] == ["sleep", "600"]  # the donor's processes are seen
    ins = inspect(cli, cli("create", "--pid", "container:donor", cli.image, "true",
                           check=True).stdout.strip())
    assert ins["HostConfig"]["PidMode"] == f"container:{donor}"
    assert inspect(cli, donor)["HostConfig"]["IpcMode"] == "shareable"


def test_ipc_shareable_shares_dev_shm(cli):
    # POSIX shared memory is files in /dev/shm: joining the IPC namespace shares it too
    # (docker's ShmPath), while a private container has its own
    donor = cli("run", "-d", "--name", "shmdonor", "--ipc", "shareable", "--shm-size", "32m",
                cli.image, "sleep", "600", check=True).stdout.strip()
    cli("exec", donor, "sh", "-c", "echo from-donor > /dev/shm/seg", check=True)
    r = cli("run", "--rm", "--ipc", "container:shmdonor", cli.image, "sh", "-c",
            "cat /dev/shm/seg; echo from-joiner > /dev/shm/back; df -k /dev/shm")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "from-donor" and _df_kib(r.stdout) == 32768
    assert cli("exec", donor, "cat", "/dev/shm/back", check=True).stdout == "from-joiner\n"
    r = cli("run", "--rm", cli.image, "ls", "/dev/shm", check=True)
    assert r.stdout == ""
    # a restart gets a fresh one (the old tmpfs was unmounted: the leak guard checks)
    cli("stop", "-t", "0", donor, check=True)
    cli("start", donor, check=True)
    assert cli("exec", donor, "ls", "/dev/shm", check=True).stdout == ""
    cli("rm", "-f", donor, check=True)


def test_namespace_bad_values(cli):
    cli("create", "--name", "stopped", cli.image, "true", check=True)
    private = cli("run", "-d", "--name", "private", cli.image, "sleep", "600",
                  check=True).stdout.strip()
    for args, message in ((("--pid", "container:stopped"),
                           "cannot join the pid namespace of container stopped: it is not running"),
                          (("--pid", "container:nosuch"), "no such container: nosuch"),
                          (("--pid", "private:x"), "invalid --pid 'private:x'"),
                          (("--ipc", "sharable"), "invalid --ipc 'sharable'"),
                          (("--ipc", "container:private"), "it is not shareable"),
                          (("--uts", "host", "--hostname", "x"),
                           "conflicting options: hostname and the UTS mode"),
                          (("--cgroupns", "container:"), "invalid --cgroupns")):
        refused(cli, *args, cli.image, "true", message=message)
    cli("rm", "-f", private, check=True)


def test_ipc_none_has_no_dev_shm(cli):
    r = cli("run", "--rm", "--ipc", "none", cli.image, "sh", "-c",
            "grep -c ' /dev/shm ' /proc/mounts || true")
    assert (r.returncode, r.stdout) == (0, "0\n"), r.stderr


# -- exec --env-file, exec --privileged -----------------------------------------------------


def test_exec_env_file_and_privileged(cli, tmp_path):
    cid = cli("run", "-d", cli.image, "sleep", "600", check=True).stdout.strip()
    env = tmp_path / "env"
    env.write_text("# a comment\nA=from file\nB=2\n")
    r = cli("exec", "--env-file", str(env), "-e", "B=flag", cid, "sh", "-c", 'echo "$A/$B"')
    assert (r.returncode, r.stdout) == (0, "from file/flag\n"), r.stderr
    probe = "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status"
    plain = cli("exec", cid, "sh", "-c", probe, check=True).stdout
    priv = cli("exec", "--privileged", cid, "sh", "-c", probe, check=True).stdout
    with open("/proc/self/status") as f:
        ours = next(ln.split()[1] for ln in f if ln.startswith("CapBnd:"))
    fields = dict(ln.split(":") for ln in priv.splitlines())
    assert fields["CapEff"].strip() == ours and fields["Seccomp"].strip() == "0"
    assert fields["NoNewPrivs"].strip() == "0"
    plain_fields = dict(ln.split(":") for ln in plain.splitlines())
    assert plain_fields["Seccomp"].strip() == "2" and plain_fields["CapEff"].strip() != ours
    r = cli("exec", "--env-file", str(tmp_path / "nope"), cid, "true")
    assert r.returncode == 125 and r.stderr.count("\n") == 1 and "cannot read env file" in r.stderr
