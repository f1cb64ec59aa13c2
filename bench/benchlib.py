"""What several benchmarks share: running and timing the engines' commands (with
bytecode cached), podman in a private store beside pyrt, removing a work directory with
whatever is still mounted under it, and running a benchmark inside the VM tier
(scripts/test-vm's Debian kernel under qemu TCG, through virtme-ng's ``vng``)."""
from __future__ import annotations

import glob
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the engines' environment: Python may cache bytecode, as an installed package does (pip
#: byte-compiles it); the shell's PYTHONDONTWRITEBYTECODE would time the compiler too
ENGINE_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(cmd: list[str]) -> str:
    """``cmd``'s output; a failure ends the benchmark with its error."""
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENGINE_ENV)
    if r.returncode != 0:
        shown = " ".join(cmd[:8]) + (" ..." if len(cmd) > 8 else "")
        raise SystemExit(f"{shown} failed ({r.returncode}): {r.stderr.strip()[:300]}")
    return r.stdout


def timed(cmd: list[str]) -> float:
    """Seconds ``cmd`` takes (its output discarded); a failure ends the benchmark."""
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENGINE_ENV)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        shown = " ".join(cmd[:8]) + (" ..." if len(cmd) > 8 else "")
        raise SystemExit(f"{shown} failed ({r.returncode}): {r.stderr.decode().strip()[:300]}")
    return dt


def timed_output(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    """Seconds ``cmd`` takes and its output; a failure ends the benchmark."""
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env or ENGINE_ENV)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return dt, r.stdout.strip()


def interpreter_start(program: str, runs: int = 20) -> tuple[str, float]:
    """The interpreter of ``program``'s ``#!`` line and its median start doing nothing."""
    import statistics

    with open(program, "rb") as f:
        first = f.readline().decode(errors="replace")
    interpreter = first[2:].strip().split()[0] if first.startswith("#!") else sys.executable
    times = [timed_output([interpreter, "-c", "pass"])[0] for _ in range(runs)]
    return interpreter, statistics.median(times)


def store_processes(marker: str) -> list[int]:
    """Processes whose command line mentions ``marker`` (a store's directory)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    out.append(int(pid))
        except OSError:
            continue
    return out


def settle(work: str, timeout: float = 30.0) -> None:
    """Wait until no process of the bench's stores runs (podman's and pyrt's exit commands
    run after the CLI returned, and podman's mounts the store's overlay directory again)."""
    deadline = time.monotonic() + timeout
    while store_processes(work) and time.monotonic() < deadline:
        time.sleep(0.1)


def podman_command(work: str, storage_driver: str, runtime: str | None = None) -> list[str]:
    """podman's command line with a private store under ``work`` (``podman-root``,
    ``podman-run``): nothing of the host's podman is read or changed."""
    base = ["podman", "--root", os.path.join(work, "podman-root"),
            "--runroot", os.path.join(work, "podman-run")]
    if runtime:
        base += ["--runtime", runtime]
    return base + ["--storage-driver", storage_driver]


def podman_reset(base: list[str]) -> None:
    """Remove what podman made in the store of ``base``: its containers (at once), then
    everything else (``system reset``); the caller then removes the work directory with
    :func:`cleanup_work`, which unmounts what podman left mounted under it."""
    subprocess.run(base + ["rm", "-af", "-t", "0"], capture_output=True)
    subprocess.run(base + ["system", "reset", "-f"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def cleanup_work(work: str) -> None:
    """Unmount anything left under ``work`` (overlay mounts of podman/pyrt), deepest
    first, then remove it."""
    with open("/proc/self/mountinfo") as f:
        mps = [line.split()[4] for line in f]
    for mp in sorted((m for m in mps if m.startswith(work)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
    shutil.rmtree(work, ignore_errors=True)


def run_in_vm(script: str, argv: list[str], prefix: str, setup: str = "",
              env_vars: str = "") -> int:
    """Boot the VM tier once, run ``bench/<script> argv`` inside with this interpreter
    (after the shell commands ``setup``), print its output and return its exit code."""
    vng = os.path.join(REPO, ".venv-vm", "bin", "vng")
    if not os.path.exists(vng):
        vng = shutil.which("vng") or ""
    if not vng:
        raise SystemExit("no vng (virtme-ng): run scripts/test-vm once to set up the VM tier")
    kernels = sorted(glob.glob("/boot/vmlinuz-*-amd64"))
    if not kernels:
        raise SystemExit("no Debian kernel in /boot (apt-get install linux-image-amd64)")
    out = tempfile.mkdtemp(prefix=prefix)
    args = " ".join(shlex.quote(a) for a in argv)
    command = (f"{setup}cd {REPO}; PYTHONDONTWRITEBYTECODE=1 {env_vars}{sys.executable} "
               f"bench/{script} {args} > {out}/out.txt 2>&1; echo $? > {out}/rc")
    env = dict(os.environ, PATH=os.path.dirname(vng) + ":" + os.environ.get("PATH", ""))
    t = time.monotonic()
    try:
        subprocess.run([vng, "--run", kernels[-1], "--user", "root", "--disable-kvm", "--memory", "2G",
                        "--cpus", "2", f"--rwdir={out}", "--cwd", REPO, "--exec", command],
                       env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=3600,
                       start_new_session=True)
        with open(os.path.join(out, "out.txt")) as f:
            print(f.read(), end="")
        print(f"(VM boot + run: {time.monotonic() - t:.0f} s)")
        with open(os.path.join(out, "rc")) as f:
            return int(f.read())
    except FileNotFoundError:
        print("the VM run did not report", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(out, ignore_errors=True)
