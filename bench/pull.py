#!/usr/bin/env python3
"""Pull + unpack from a local registry: `pyrt pull` beside `podman pull`, with
`skopeo copy` to an OCI directory as the transfer-only floor.

Run as root from the repository (after a dev install):

    .venv/bin/python bench/pull.py [--runs 3] [--driver overlay] [--rootfs DIR]

The image is a real Debian root filesystem (``debootstrap --variant=minbase
bookworm``, cached in /var/tmp/pyrt-bench/debian-rootfs; apt ``debootstrap``)
split into several gzip layers with umoci, pushed with skopeo to Debian's
``docker-registry`` on 127.0.0.1 (config of our own, data under a temporary
directory, stopped at the end).  Every run starts from an empty store.
Prints the median wall time of each tool, the image's compressed size and
the ratios.  Missing peers are skipped with a note.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

CACHE = "/var/tmp/pyrt-bench"


def debian_rootfs(path: str) -> str:
    if os.path.exists(os.path.join(path, "usr/bin/apt")):
        return path
    if not shutil.which("debootstrap"):
        raise SystemExit("debootstrap is not installed (apt-get install debootstrap)")
    mirror = "http://deb.debian.org/debian"
    for src in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        try:
            lines = [l.split() for l in open(src) if l.strip() and not l.lstrip().startswith("#")]
        except OSError:
            continue
        found = [w for l in lines if l[0] in ("URIs:", "deb") for w in l[1:]
                 if w.startswith("http") and "security" not in w]
        if found:
            mirror = found[0]
            break
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    print(f"debootstrap --variant=minbase bookworm from {mirror} (about a minute) ...", flush=True)
    subprocess.run(["debootstrap", "--variant=minbase", "bookworm", tmp, mirror], check=True,
                   stdout=subprocess.DEVNULL)
    os.rename(tmp, path)
    return path


def build_layout(rootfs: str, layout: str) -> str:
    """Several layers: /usr/lib, the rest of /usr, /var, then everything else."""
    from pyrt_core.testing import imagebuilder as ib

    def copy(parts):
        def step(dest):
            for p in parts:
                src = os.path.join(rootfs, p)
                if os.path.lexists(src):
                    os.makedirs(os.path.dirname(os.path.join(dest, p)), exist_ok=True)
                    subprocess.run(["cp", "-a", src, os.path.join(dest, os.path.dirname(p)) or dest],
                                   check=True)
        return step

    top = [n for n in os.listdir(rootfs) if n not in ("usr", "var", "proc", "sys", "dev")]
    usr = [os.path.join("usr", n) for n in os.listdir(os.path.join(rootfs, "usr")) if n != "lib"]
    steps = [copy(["usr/lib"]), copy(usr), copy(["var"]), copy(top)]
    return ib.build_oci_layout(layout, None, tag="latest", extra_layers=steps, cmd=("/bin/bash",),
                               env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",))


def timed(cmd, env=None) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.decode().strip()[-500:]}")
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--driver", default=None, help="pyrt storage driver (default: automatic)")
    ap.add_argument("--rootfs", default=os.path.join(CACHE, "debian-rootfs"))
    ap.add_argument("--pyrt", default=os.path.join(REPO, ".venv/bin/pyrt"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    from pyrt_core.testing import registry as rf

    rootfs = debian_rootfs(a.rootfs)
    work = tempfile.mkdtemp(prefix="pyrt-bench-pull-", dir="/var/tmp")
    reg = None
    try:
        layout = build_layout(rootfs, os.path.join(work, "layout"))
        reg = rf.Registry(os.path.join(work, "registry"))
        ref = f"{reg.host}/bench/debian:bookworm"
        rf.skopeo_push(f"oci:{layout}:latest", reg.host, "bench/debian:bookworm")
        raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                             capture_output=True, check=True).stdout
        manifest = json.loads(raw)
        csize = sum(l["size"] for l in manifest["layers"])
        usize = int(subprocess.run(["du", "-sb", rootfs], capture_output=True, text=True).stdout.split()[0])
        print(f"image: {len(manifest['layers'])} layers, {csize / 1e6:.1f} MB compressed, "
              f"{usize / 1e6:.1f} MB unpacked")
        results = {}

        def runs(name, make_cmd, cleanup):
            ts = []
            for i in range(a.runs):
                d = tempfile.mkdtemp(prefix="pb", dir="/var/tmp")  # podman wants a short runroot
                ts.append(timed(make_cmd(d)))
                cleanup(d)
            results[name] = statistics.median(ts)
            print(f"{name:<28} {results[name]:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ts)})", flush=True)

        def rm(d):
            subprocess.run(["umount", "-R", "-l", d], stderr=subprocess.DEVNULL)
            shutil.rmtree(d, ignore_errors=True)

        def pyrt_cmd(d):
            cmd = [a.pyrt, "--root", d + "/root", "--runroot", d + "/run"]
            if a.driver:
                cmd += ["--storage-driver", a.driver]
            return cmd + ["pull", "--tls-verify=false", "-q", ref]

        def pyrt_rm(d):
            subprocess.run([a.pyrt, "--root", d + "/root", "--runroot", d + "/run", "rmi", "-f", ref],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            rm(d)

        runs("pyrt pull", pyrt_cmd, pyrt_rm)
        if shutil.which("podman"):
            def podman_cmd(d):
                return ["podman", "--root", d + "/root", "--runroot", d + "/run", "--storage-driver",
                        a.driver or "overlay", "pull", "-q", "--tls-verify=false", ref]

            def podman_rm(d):
                subprocess.run(["podman", "--root", d + "/root", "--runroot", d + "/run", "--storage-driver",
                                a.driver or "overlay", "rmi", "-af"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                subprocess.run(["podman", "--root", d + "/root", "--runroot", d + "/run", "--storage-driver",
                                a.driver or "overlay", "system", "reset", "-f"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                rm(d)

            runs("podman pull", podman_cmd, podman_rm)
        else:
            print("podman not installed: skipped (apt-get install podman)")
        runs("skopeo copy (transfer only)",
             lambda d: ["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false",
                        f"docker://{ref}", f"oci:{d}:latest"], rm)
        p, s = results["pyrt pull"], results["skopeo copy (transfer only)"]
        print(f"\npyrt / skopeo = {p / s:.2f}x (target <= 2x)")
        if "podman pull" in results:
            print(f"pyrt / podman = {p / results['podman pull']:.2f}x (target <= 1x)")
    finally:
        if reg:
            reg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
