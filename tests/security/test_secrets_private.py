"""Another local user reads the secrets of a container: ``-e SECRET=...`` is kept in the
container's record (container.json) and in its bundle's config.json.  The run root's
containers/ directory was 0755 and config.json 0644, so anyone who knew a container's
id (conmon's command line shows it) could read its environment.

Now containers/ is 0700 under the store root and under the run root, so are the
bundles (conmon and the runtime run as root; the runtime opens a bundle's bind sources
before it enters a user namespace), container.json and config.json are 0600, and a
store an older pyrt made is tightened the next time pyrt opens it.  The attack: as nobody (setpriv --reuid 65534), read every
file under the store root and the run root, which are world-traversable here as
/var/lib/pyrt and /run/pyrt are on a real host.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from pyrt_core.testing.cli import PyrtCLI

SECRET = "s3cr3t-" + os.urandom(6).hex()

# runs as nobody with the system's python: lists every file it can reach whose content
# holds the secret.  Directories it may traverse but not list (0711) are searched with
# the names it can guess: the container ids (conmon's command line shows them, see
# /proc/*/cmdline; the test also passes those of containers that ran earlier) and the
# files pyrt keeps per container.  Never blocks: reads are O_NONBLOCK, regular files only.
SCAN = r"""
import os, re, stat, sys
secret, ids, tops = sys.argv[1].encode(), set(sys.argv[2].split(",")), sys.argv[3:]
for pid in os.listdir("/proc"):
    try:
        ids.update(re.findall(rb"\b[0-9a-f]{64}\b", open(f"/proc/{pid}/cmdline", "rb").read()))
    except OSError:
        pass
ids = {i.decode() if isinstance(i, bytes) else i for i in ids if i}
FILES = ("config.json", "container.json", "state.json", "ctr.log", "hosts", "hostname",
         "resolv.conf", "conmon.log", "runtime.log", "pidfile", "conmon.pid", "lock")
found, seen = [], set()

def read(p):
    if p in seen:
        return
    seen.add(p)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode) and secret in os.read(fd, 1 << 24):
            found.append(p)
    except OSError:
        pass
    finally:
        os.close(fd)

for top in tops:
    dirs = []
    for d, subdirs, files in os.walk(top, onerror=lambda e: None):
        dirs.append(d)
        for n in files:
            read(os.path.join(d, n))
    for d in dirs + [os.path.join(top, "containers"), os.path.join(top, "runtime")]:
        for i in ids:
            read(os.path.join(d, i))
            for n in FILES:
                read(os.path.join(d, i, n))
print("\n".join(found))
"""


def _as_nobody(cli) -> list[str]:
    # (read as root, not with `pyrt ps`: any pyrt command would tighten an old store)
    ids = ",".join(e for e in os.listdir(os.path.join(cli.root, "containers")) if len(e) == 64)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "/usr/bin/python3", "-c", SCAN, SECRET, ids, cli.root, cli.runroot],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [p for p in r.stdout.splitlines() if p]


@pytest.fixture
def world_cli(demo_layout, no_leaks):
    """A pyrt whose store root and run root lie in world-traversable directories (0755,
    as an administrator might make /var/lib/pyrt and /run/pyrt), with the demo image."""
    if not shutil.which("setpriv") or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs setpriv (util-linux) and /usr/bin/python3")
    base = tempfile.mkdtemp(prefix="pyrt-secrets-", dir="/tmp")
    os.chmod(base, 0o755)
    for d in ("root", "run"):
        os.mkdir(os.path.join(base, d), 0o755)
        os.chmod(os.path.join(base, d), 0o755)
    cli = PyrtCLI(os.path.join(base, "root"), os.path.join(base, "run"))
    cli.image = cli("load", "-q", "-i", demo_layout, check=True).stdout.split()[0]
    try:
        yield cli
    finally:
        from pyrt_core.testing.lifecycle import conmon_pids, wait_for

        cli.remove_running()
        wait_for(lambda: conmon_pids(cli) == [], timeout=10, what="conmon to exit")
        cli.cleanup(no_leaks)
        shutil.rmtree(base, ignore_errors=True)


def _containers_with_the_secret(cli):
    env = ["-e", f"SECRET={SECRET}"]
    cli("run", "--rm", *env, cli.image, "true", check=True)
    cli("run", "--name", "fg", *env, cli.image, "true", check=True)  # exited, kept
    cli("create", "--name", "made", *env, cli.image, "true", check=True)
    cid = cli("run", "-d", "--name", "bg", *env, cli.image, "sleep", "1000",
              check=True).stdout.strip()
    # the secret is there, for root
    assert SECRET in open(os.path.join(cli.runroot, "containers", cid, "config.json")).read()
    return cid


def test_nobody_cannot_read_container_secrets(world_cli):
    cli = world_cli
    _containers_with_the_secret(cli)
    assert _as_nobody(cli) == []
    cli("stop", "-t", "0", "bg", check=True)
    cli("start", "bg", check=True)  # a restart writes the bundle again
    assert _as_nobody(cli) == []


def test_a_store_made_by_an_older_pyrt_is_tightened(world_cli):
    # what the old code left: containers/ 0755 under both roots, container.json and
    # config.json 0644 (the records' directories were 0700, the bundles' 0711)
    cli = world_cli
    cid = _containers_with_the_secret(cli)
    for top, name, dir_mode in ((os.path.join(cli.root, "containers"), "container.json", 0o700),
                                (os.path.join(cli.runroot, "containers"), "config.json", 0o711)):
        os.chmod(top, 0o755)
        for e in os.listdir(top):
            if os.path.exists(os.path.join(top, e, name)):
                os.chmod(os.path.join(top, e), dir_mode)
                os.chmod(os.path.join(top, e, name), 0o644)
    assert _as_nobody(cli) != []  # the old layout leaks
    cli("ps", check=True)  # any container command opens the store
    assert _as_nobody(cli) == []
    bundle = os.path.join(cli.runroot, "containers", cid)
    assert stat.S_IMODE(os.stat(os.path.dirname(bundle)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(bundle, "config.json")).st_mode) == 0o600


def test_a_user_namespaced_container_still_gets_its_bundle_files(world_cli):
    # the bundle is 0700 and the container's root is an unprivileged host uid (100000):
    # the runtime opens the bind sources (hosts, hostname, resolv.conf) before it enters
    # the user namespace, so nothing needs a path into the bundle
    cli = world_cli
    r = cli("run", "--rm", "--userns", "private", "-e", f"SECRET={SECRET}", cli.image,
            "cat", "/etc/hosts", "/etc/hostname")
    assert r.returncode == 0 and "localhost" in r.stdout, r.stderr
    cli("run", "-d", "--name", "un", "--userns", "private", cli.image, "sleep", "1000",
        check=True)
    r = cli("exec", "un", "cat", "/etc/resolv.conf", "/etc/hostname")
    assert r.returncode == 0, r.stderr
    assert _as_nobody(cli) == []
