"""Shared helpers of the lifecycle, recovery and terminal tests."""
import json
import os
import time


def inspect(cli, ref):
    r = cli("inspect", "--type", "container", ref)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


def state(cli, ref):
    return inspect(cli, ref)["State"]


def wait_for(pred, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def store_pids(cli, is_ours) -> list[int]:
    """Live (not zombie) processes of this store: ``is_ours(argv)`` on their command line,
    which names the store's run root."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if st != "Z" and cli.runroot.encode() in b" ".join(argv) and is_ours(argv):
            out.append(int(pid))
    return out


def conmon_pids(cli):
    """conmon processes started for this store (their command line names the run root)."""
    return store_pids(cli, lambda argv: bool(argv) and argv[0].endswith(b"conmon"))


def leftovers(cli):
    """Run-state entries and mounts that no running container explains."""
    out = []
    for sub in ("containers", "runtime", "socket"):
        d = os.path.join(cli.runroot, sub)
        if os.path.isdir(d):
            out += [f"{sub}/{x}" for x in os.listdir(d)]
    with open("/proc/self/mountinfo") as f:
        out += [line.split()[4] for line in f if cli.root in line.split()[4]]
    return out


def read_until(master: int, needle: bytes, timeout: float = 15.0) -> bytes:
    """Read a pty's master side until ``needle`` shows (or EOF, or ``timeout``)."""
    import select

    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        if not select.select([master], [], [], 0.2)[0]:
            continue
        try:
            chunk = os.read(master, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out
