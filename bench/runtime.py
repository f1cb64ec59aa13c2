#!/usr/bin/env python3
"""OCI runtime latency: create + start + wait + state + delete of `true`, pyrt-runtime beside runc (and crun).

Run as root from the repository (after scripts/quickstart or a dev install):

    .venv/bin/python bench/runtime.py [--runs 20] [--runtimes pyrt-runtime,runc,crun]
    .venv/bin/python bench/runtime.py --vm [--runs 5]     # in the VM tier (pure cgroup v2)

Every runtime gets the same bundle: a busybox root filesystem (Debian's static busybox,
no image store involved) and the same ``config.json``, ``runc spec``'s default (new pid,
net, ipc, uts and mount namespaces, the usual mounts, masked and read-only paths, the
default capabilities, a device cgroup that denies everything) with ``process.args``
``["true"]``, no terminal and a cgroupsPath per container.  One round is what an engine
does for a short-lived container:

    create --bundle B --pid-file P ID   (stdio: /dev/null)
    start ID
    wait for the container's init to exit (this process is a child subreaper and reaps it,
                                           as conmon and containerd's shim do)
    state ID                            (must say "stopped")
    delete ID

Runtimes take turns (interleaved, the order rotating each round) after one warm-up
round each; the medians of each step and of the whole round are printed, with the ratio
of each runtime's total to runc's.  Then the floor: the start of pyrt-runtime's
interpreter doing nothing (``python -c pass`` with the interpreter of its ``#!``
line), times the four calls of a round, beside runc's whole round.  Runtimes that are missing or refuse this machine
(crun refuses the host's hybrid cgroups) are reported and skipped.

``--vm`` boots Debian's kernel once under qemu (TCG, the VM tier of scripts/test-vm,
with ``.venv-vm/bin/vng``), runs this script inside with the same interpreter and prints
its output: pure cgroup v2 there, where crun runs too.  Software emulation slows
interpreter start-up far more than compiled runtimes, so the VM's figures are a
ranking, not a target.

The bundle and the runtimes' state live on a tmpfs mounted for the run; every
container is deleted (``delete --force`` after a failure), the cgroup parent is removed
and the tmpfs unmounted at the end.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
STEPS = ("create", "start", "wait", "state", "delete")
PR_SET_CHILD_SUBREAPER = 36


def find_runtime(name: str) -> str | None:
    if name == "pyrt-runtime":
        cand = os.path.join(os.path.dirname(sys.executable), "pyrt-runtime")
        if os.access(cand, os.X_OK):
            return cand
        cand = os.path.join(REPO, ".venv", "bin", "pyrt-runtime")
        if os.access(cand, os.X_OK):
            return cand
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


# -- the bundle -------------------------------------------------------------------------


def make_rootfs(path: str) -> None:
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        raise SystemExit("no busybox (apt-get install busybox-static)")
    for d in ("bin", "etc", "tmp", "root", "proc", "sys", "dev"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    os.chmod(os.path.join(path, "tmp"), 0o1777)
    shutil.copy2(busybox, os.path.join(path, "bin", "busybox"))
    for applet in ("sh", "true", "false", "sleep", "echo", "cat"):
        os.symlink("busybox", os.path.join(path, "bin", applet))
    with open(os.path.join(path, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(path, "etc", "group"), "w") as f:
        f.write("root:x:0:\n")


def make_config(bundle: str, runc: str | None) -> dict:
    """runc spec's default, with ``true`` and no terminal."""
    if runc:
        subprocess.run([runc, "spec", "--bundle", bundle], check=True)
        with open(os.path.join(bundle, "config.json")) as f:
            config = json.load(f)
    else:
        raise SystemExit("runc is needed for the reference config and as the baseline "
                         "(apt-get install runc)")
    config["process"]["terminal"] = False
    config["process"]["args"] = ["true"]
    config["root"] = {"path": "rootfs", "readonly": True}
    config["hostname"] = "bench"
    return config


def write_config(bundle: str, config: dict, cgroups_path: str) -> None:
    c = dict(config)
    c["linux"] = dict(config["linux"], cgroupsPath=cgroups_path)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(c, f, indent=1)


# -- one round --------------------------------------------------------------------------


class Failed(Exception):
    pass


def call(argv: list[str], err=None) -> str:
    """Run a runtime command; its output, or Failed with its message.  ``create`` hands
    its stdio to the container's init, which lives on: it must not get pipes (whose
    readers would wait for the container), so its errors go to the file ``err``."""
    if err is None:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        out, msg = r.stdout, r.stderr or r.stdout
    else:
        err.seek(0)
        err.truncate()
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        err.seek(0)
        out, msg = "", err.read()
    if r.returncode != 0:
        raise Failed(f"{' '.join(argv)} exited {r.returncode}: {msg.strip()}")
    return out


def reap(pid: int, timeout: float = 30.0) -> None:
    """Wait for the container's init (our child: we are a subreaper)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return  # not ours (reaped elsewhere): poll for it to go away
        if got == pid:
            return
        if time.monotonic() > deadline:
            raise Failed(f"pid {pid} did not exit in {timeout:.0f}s")
        time.sleep(0.0005)


def round_trip(rt: str, root: str, bundle: str, cid: str) -> dict[str, float]:
    pidfile = os.path.join(bundle, f"{cid}.pid")
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        call([rt, "--root", root, "create", "--bundle", bundle, "--pid-file", pidfile, cid], err)
    t1 = time.perf_counter()
    with open(pidfile) as f:
        pid = int(f.read().strip())
    call([rt, "--root", root, "start", cid])
    t2 = time.perf_counter()
    reap(pid)
    t3 = time.perf_counter()
    status = json.loads(call([rt, "--root", root, "state", cid]))["status"]
    t4 = time.perf_counter()
    if status != "stopped":
        raise Failed(f"{rt} state {cid}: {status!r} after its process exited")
    call([rt, "--root", root, "delete", cid])
    t5 = time.perf_counter()
    os.unlink(pidfile)
    t.update(create=t1 - t0, start=t2 - t1, wait=t3 - t2, state=t4 - t3, delete=t5 - t4, total=t5 - t0)
    return t


def force_delete(rt: str, root: str, cid: str) -> None:
    subprocess.run([rt, "--root", root, "delete", "--force", cid], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def reap_all() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# -- the VM tier --------------------------------------------------------------------------


def boot(argv: list[str]) -> int:
    """Run this script inside the VM tier and print what it prints."""
    from benchlib import run_in_vm

    return run_in_vm("runtime.py", ["--in-vm", *argv], "pyrt-bench-rt-vm-", env_vars="HOME=/tmp ")


# -- main -------------------------------------------------------------------------------


def cgroup_parent_dirs(name: str) -> list[str]:
    base = "/sys/fs/cgroup"
    if os.path.exists(os.path.join(base, "cgroup.controllers")):
        return [os.path.join(base, name)]
    return [os.path.join(base, h, name) for h in os.listdir(base)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=None, help="rounds per runtime (default 20; 5 in the VM)")
    ap.add_argument("--runtimes", default="pyrt-runtime,runc,crun")
    ap.add_argument("--vm", action="store_true", help="run in the VM tier (pure cgroup v2), from the host")
    ap.add_argument("--in-vm", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help="print the medians as JSON too")
    ap.add_argument("--no-floor", action="store_true",
                    help="skip measuring pyrt-runtime's bare interpreter start")
    a = ap.parse_args()
    if a.vm:
        return boot([x for x in sys.argv[1:] if x != "--vm"])
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    runs = a.runs if a.runs is not None else (5 if a.in_vm else 20)
    names = [n.strip() for n in a.runtimes.split(",") if n.strip()]
    runtimes: dict[str, str] = {}
    notes: list[str] = []
    for n in names:
        p = find_runtime(n)
        if p:
            runtimes[n] = p
        else:
            notes.append(f"{n}: not installed, skipped")
    runc = runtimes.get("runc") or find_runtime("runc")

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed")
    tag = f"pyrt-bench-rt-{os.getpid()}"
    work = tempfile.mkdtemp(prefix=tag + "-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m,mode=0700", tag, work], check=True)
    samples: dict[str, dict[str, list[float]]] = {}
    try:
        bundle = os.path.join(work, "bundle")
        os.makedirs(bundle)
        make_rootfs(os.path.join(bundle, "rootfs"))
        config = make_config(bundle, runc)
        seq = 0

        def one(name: str) -> dict[str, float]:
            nonlocal seq
            seq += 1
            cid = f"b{seq}-{name}"
            root = os.path.join(work, "state-" + name)
            os.makedirs(root, exist_ok=True)
            write_config(bundle, config, f"/{tag}/{cid}")
            try:
                return round_trip(runtimes[name], root, bundle, cid)
            except BaseException:
                force_delete(runtimes[name], root, cid)
                reap_all()
                raise

        for name in list(runtimes):  # warm-up; drops the runtimes that cannot run here
            try:
                one(name)
            except Failed as e:
                notes.append(f"{name}: skipped, it fails here: {str(e).splitlines()[-1][:300]}")
                del runtimes[name]
        if not runtimes:
            raise SystemExit("no runtime could run the bundle:\n  " + "\n  ".join(notes))
        order = list(runtimes)
        for name in order:
            samples[name] = {s: [] for s in STEPS + ("total",)}
        for i in range(runs):
            k = i % len(order)
            for name in order[k:] + order[:k]:
                if name not in samples:
                    continue
                try:
                    got = one(name)
                except Failed as e:
                    notes.append(f"{name}: dropped, round {i + 1} failed: {str(e).splitlines()[-1][:300]}")
                    del samples[name]
                    continue
                for s, v in got.items():
                    samples[name][s].append(v)
    finally:
        reap_all()
        for d in cgroup_parent_dirs(tag):
            for sub in sorted((os.path.join(dp, x) for dp, dns, _ in os.walk(d) for x in dns),
                              key=len, reverse=True):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass
            try:
                os.rmdir(d)
            except OSError:
                pass
        subprocess.run(["umount", "-l", work], check=False)
        shutil.rmtree(work, ignore_errors=True)

    med = {n: {s: statistics.median(v) for s, v in per.items()} for n, per in samples.items()}
    cg = "cgroup v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "hybrid cgroup v1"
    where = "VM tier, qemu TCG" if a.in_vm else "host"
    print(f"OCI runtime round trip: create + start + wait + state + delete of `true`, "
          f"median of {runs} interleaved runs (ms)")
    print(f"kernel {os.uname().release}, {cg} ({where}); the same bundle and config.json (runc spec's default)")
    for n in names:
        if n in runtimes:
            print(f"  {n}: {runtimes[n]}")
    head = f"{'runtime':<14}" + "".join(f"{s:>9}" for s in STEPS) + f"{'total':>9}"
    base = med.get("runc", {}).get("total")
    if base:
        head += f"{'vs runc':>9}"
    print(head)
    print("-" * len(head))
    ranked = sorted(med, key=lambda n: med[n]["total"])
    for n in ranked:
        row = f"{n:<14}" + "".join(f"{med[n][s] * 1000:9.1f}" for s in STEPS) + f"{med[n]['total'] * 1000:9.1f}"
        if base:
            row += f"{med[n]['total'] / base:8.2f}x"
        print(row)
    if a.in_vm or len(ranked) > 2:
        print("ranking (fastest first): " + " < ".join(ranked))
    floor = None
    if "pyrt-runtime" in runtimes and not a.no_floor:
        floor = interpreter_floor(runtimes["pyrt-runtime"], max(runs, 10))
        print(f"floor: pyrt-runtime's interpreter alone (`{floor['interpreter']} -c pass`, "
              f"median of {floor['runs']}): {floor['start'] * 1000:.1f} ms; the four calls of "
              f"a round: {floor['start'] * 4000:.1f} ms"
              + (f" (runc's whole round: {base * 1000:.1f} ms)" if base else ""))
    for note in notes:
        print("note: " + note)
    if a.json:
        print(json.dumps({"runs": runs, "where": where, "cgroups": cg, "median_s": med,
                          "interpreter_start_s": floor and floor["start"]}, indent=1))
    return 0


def interpreter_floor(runtime: str, runs: int) -> dict:
    """The start of the interpreter named in ``runtime``'s ``#!`` line, doing nothing:
    what each of the four runtime calls costs before any of pyrt's code runs."""
    with open(runtime, "rb") as f:
        first = f.readline().decode(errors="replace")
    interpreter = first[2:].strip().split()[0] if first.startswith("#!") else sys.executable
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([interpreter, "-c", "pass"], check=True)
        times.append(time.perf_counter() - t)
    return {"interpreter": interpreter, "runs": runs, "start": statistics.median(times)}


if __name__ == "__main__":
    sys.exit(main())
