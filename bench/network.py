#!/usr/bin/env python3
"""Networking beside podman: start cost on a bridge, throughput and connection rate
through a published port, and the 50th container's start against the 1st.

Run as root from the repository (after scripts/quickstart or a dev install, with
Debian's iperf3 and apache2-utils), holding the test lock (the default bridge and
nftables table are the host's):

    flock /tmp/pyrt-test.lock .venv/bin/python bench/network.py [--runs 10] [--containers 50]

1. ``run --rm IMAGE true``: pyrt on its default network (the ``bridge``: a veth on
   ``pyrt0``, nftables) against ``podman run --rm`` on podman's default network
   (netavark); ``--network none`` of both beside them (the bridge's own cost is the
   difference).  The engines take turns run by run; medians and ratios.
2. TCP throughput host -> container through a published port (``-p
   127.0.0.1:PORT:5201``): Debian's ``iperf3 -s`` in the container, ``iperf3 -c
   127.0.0.1`` on the host, ``--seconds`` each, the engines taking turns.
3. Connection rate: ``ab -n N -c C`` (apache2-utils, a new connection per request) to
   busybox ``httpd`` in the container through ``-p``, taking turns.
4. ``run -d`` of N containers on one network, each publishing a port: the 1st's start
   time against the Nth's (flat when nothing grows per container), the engines taking
   turns, with N more ``run -d --network none`` of pyrt's among them as a control
   (what grows without a network is the host's load, not the network's).

The image: busybox (Debian's busybox-static) plus the host's ``iperf3`` with the shared
libraries it loads, built offline with umoci (``pyrt_core.testing.imagebuilder``, as
the test fixtures build theirs), loaded into pyrt and copied into podman's store with
``podman pull oci:``.

Traffic goes only to 127.0.0.1.  Both stores are temporary directories; at the end
every container is removed, pyrt's default network too (its bridge and nftables
table), podman's store is reset after its exit commands finished, and with
``leakcheck`` (the shared tool) a snapshot before and a comparison after check that
nothing is left.  ``--compare PYTHONPATH`` adds the same pyrt with another source tree
first on the path (part 1 only): before/after figures from one run.  The floor: the
interpreter's bare start (``python -c pass``), printed beside the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import ENGINE_ENV as ENV  # bench/ is on sys.path when run as a script
from benchlib import cleanup_work, interpreter_start, settle
from benchlib import timed_output as timed

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LEAKCHECK = "/work/shared/tools/leakcheck"
TRAP = ["sh", "-c", 'trap "exit 0" TERM; sleep 100000 & wait']
#: podman on this machine (docs: machine.md): no CAP_SYS_RESOURCE, hybrid cgroups
PODMAN_OPTS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000"]
#: interpreter starts of ``pyrt run --rm`` (docs/lifecycle.md)
STARTS = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def libraries(binary: str) -> list[str]:
    """The shared libraries ``binary`` loads (ldd), the dynamic loader included."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/"):
            libs.append(path)
    return libs


def build_image(layout: str) -> str:
    """An OCI layout (tag ``netbench``): scripts/build-demo-image's busybox, then a layer
    with ``/www/index.html`` and the host's iperf3 with its libraries at the same paths
    (``pyrt_core.testing.imagebuilder``: umoci)."""
    sys.path.append(os.path.join(REPO, "core", "src"))  # (after bench/: its inspect.py)
    from pyrt_core.testing import imagebuilder as ib

    subprocess.run([os.path.join(REPO, "scripts/build-demo-image"), layout, "base"], check=True,
                   stdout=subprocess.DEVNULL)
    iperf3 = shutil.which("iperf3") or "iperf3"

    def add(rootfs: str) -> None:
        for src in [iperf3] + libraries(iperf3):
            dest = os.path.join(rootfs, src.lstrip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy2(os.path.realpath(src), dest)
        os.makedirs(os.path.join(rootfs, "www"))
        with open(os.path.join(rootfs, "www", "index.html"), "w") as f:
            f.write("<html><body>pyrt bench</body></html>\n" + "x" * 512 + "\n")

    ib.build_oci_layout(layout, None, tag="netbench", base_tag="base", extra_layers=[add],
                        cmd=("/bin/sh",), env=("PATH=/usr/sbin:/usr/bin:/sbin:/bin",))
    ib.run(["umoci", "rm", "--image", f"{layout}:base"])  # one image in the layout: `load`
    ib.run(["umoci", "gc", "--layout", layout])
    return "netbench"


class Engine:
    """One engine's argv prefix and image, and the ids it made (removed at the end)."""

    def __init__(self, name: str, base: list[str], image: str, env: dict | None = None,
                 opts: list[str] | None = None):
        self.name, self.base, self.image = name, base, image
        self.env = env or ENV
        self.opts = opts or []
        self.ids: list[str] = []

    def run_rm(self, net: list[str]) -> list[str]:
        return self.base + ["run", "--rm"] + net + self.opts + [self.image, "true"]

    def run_d(self, args: list[str], cmd: list[str]) -> tuple[float, str]:
        dt, out = timed(self.base + ["run", "-d"] + self.opts + args + [self.image] + cmd, self.env)
        cid = out.split()[-1]
        self.ids.append(cid)
        return dt, cid

    def rm(self, cid: str) -> None:
        subprocess.run(self.base + ["rm", "-f", cid], capture_output=True, env=self.env)
        if cid in self.ids:
            self.ids.remove(cid)

    def rm_all(self) -> None:
        if self.ids:
            subprocess.run(self.base + ["rm", "-f"] + self.ids, capture_output=True, env=self.env)
        self.ids = []


def start_cost(variants: dict[str, tuple[Engine, list[str]]], runs: int) -> dict[str, float]:
    """``run --rm IMAGE true`` of each variant, taking turns; medians."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    for eng, net in variants.values():  # warm the caches
        timed(eng.run_rm(net), eng.env)
    for _ in range(runs):
        for k, (eng, net) in variants.items():
            times[k].append(timed(eng.run_rm(net), eng.env)[0])
    return {k: statistics.median(v) for k, v in times.items()}


def wait_port(port: int, timeout: float = 15.0) -> None:
    """Until something answers on 127.0.0.1:``port`` (DNAT'd: refused until the
    server in the container listens)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing answers on 127.0.0.1:{port}") from None
            time.sleep(0.1)


def iperf(port: int, seconds: int) -> float:
    """Bits per second received by the server, ``iperf3 -c 127.0.0.1 -p port``."""
    for attempt in range(50):
        r = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-J"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"]
        time.sleep(0.2)  # the server not listening yet, or busy with the probe
    raise SystemExit(f"iperf3 to 127.0.0.1:{port} failed: {r.stdout[-500:]} {r.stderr.strip()}")


def throughput(engines: list[Engine], rounds: int, seconds: int) -> dict[str, list[float]]:
    ports, cids = {}, {}
    for e in engines:
        ports[e.name] = free_port()
        _, cids[e.name] = e.run_d(["-p", f"127.0.0.1:{ports[e.name]}:5201"], ["iperf3", "-s"])
    out: dict[str, list[float]] = {e.name: [] for e in engines}
    try:
        for e in engines:
            iperf(ports[e.name], 1)  # warm up (and wait for the server)
        for _ in range(rounds):
            for e in engines:
                out[e.name].append(iperf(ports[e.name], seconds))
    finally:
        for e in engines:
            e.rm(cids[e.name])
    return out


def ab(port: int, requests: int, concurrency: int) -> float:
    r = subprocess.run(["ab", "-q", "-n", str(requests), "-c", str(concurrency),
                        f"http://127.0.0.1:{port}/index.html"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"ab to 127.0.0.1:{port} failed: {r.stderr.strip()}")
    failed = next((int(line.split()[-1]) for line in r.stdout.splitlines()
                   if line.startswith("Failed requests:")), 0)
    if failed:
        raise SystemExit(f"ab to 127.0.0.1:{port}: {failed} failed requests")
    return next(float(line.split()[3]) for line in r.stdout.splitlines()
                if line.startswith("Requests per second:"))


def connection_rate(engines: list[Engine], rounds: int, requests: int,
                    concurrency: int) -> dict[str, list[float]]:
    ports, cids = {}, {}
    for e in engines:
        ports[e.name] = free_port()
        _, cids[e.name] = e.run_d(["-p", f"127.0.0.1:{ports[e.name]}:80"],
                                  ["httpd", "-f", "-p", "80", "-h", "/www"])
    out: dict[str, list[float]] = {e.name: [] for e in engines}
    try:
        for e in engines:
            wait_port(ports[e.name])
            ab(ports[e.name], 200, 1)  # warm up
        for _ in range(rounds):
            for e in engines:
                out[e.name].append(ab(ports[e.name], requests, concurrency))
    finally:
        for e in engines:
            e.rm(cids[e.name])
    return out


def many(engines: list[Engine], n: int) -> dict[str, list[float]]:
    """``run -d -p 80`` of ``n`` containers per engine on its default network, and as a
    control ``run -d --network none`` of ``n`` more of pyrt's, all taking turns; each
    start's time.  The control tells what grows with the number of containers without
    any network (the host's load: 2n..3n more processes, cgroups, mounts) from what
    the network adds.  Removed after."""
    variants = [(e.name, e, ["-p", "80"]) for e in engines]
    variants += [(f"{e.name} --network none (control)", e, ["--network", "none"])
                 for e in engines if e.name == "pyrt"]
    out: dict[str, list[float]] = {name: [] for name, _e, _a in variants}
    try:
        for i in range(n):
            for name, e, args in variants:
                out[name].append(e.run_d(args, TRAP)[0])
            if i in (0, n - 1):
                out.setdefault("pyrt's nftables rules (base chains, all)", []).append(pyrt_rules())
    finally:
        for e in engines:
            e.rm_all()
    return out


BASE_CHAINS = ("prerouting", "output", "postrouting", "forward", "input")


def pyrt_rules() -> tuple[int, int]:
    """Rules in pyrt's tables (``inet pyrt``, ``inet pyrt-*``): in the base chains (a
    fixed number when nothing is per container there), and in all."""
    r = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True)
    tables = [t["table"]["name"] for t in json.loads(r.stdout or "{}").get("nftables", [])
              if "table" in t and t["table"]["family"] == "inet"
              and (t["table"]["name"] == "pyrt" or t["table"]["name"].startswith("pyrt-"))]
    base = total = 0
    for name in tables:
        r = subprocess.run(["nft", "-j", "list", "table", "inet", name], capture_output=True, text=True)
        for x in json.loads(r.stdout or "{}").get("nftables", []):
            if "rule" in x:
                total += 1
                base += x["rule"]["chain"] in BASE_CHAINS
    return base, total


def fmt_rate(v: float) -> str:
    return f"{v / 1e9:7.2f} Gbit/s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="runs of `run --rm` per variant")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of iperf3 and ab per engine")
    ap.add_argument("--seconds", type=int, default=5, help="length of one iperf3 run")
    ap.add_argument("--requests", type=int, default=5000, help="ab's -n")
    ap.add_argument("--concurrency", type=int, default=10, help="ab's -c")
    ap.add_argument("--containers", type=int, default=50, help="containers on one network (part 4)")
    ap.add_argument("--pool", default="10.213.0.0/16/24",
                    help="pyrt's address pool (PYRT_NETWORK_POOL) for its default network")
    ap.add_argument("--only", default="1234", help="the parts to run (digits)")
    ap.add_argument("--skip-podman", action="store_true")
    ap.add_argument("--pyrt", default=os.path.join(REPO, ".venv/bin/pyrt"))
    ap.add_argument("--compare", metavar="PYTHONPATH", default=None,
                    help="also time `run --rm` of the same pyrt with this PYTHONPATH (the src "
                         "dirs of an older tree from `git archive`): before/after in one run")
    ap.add_argument("--leakcheck", default=LEAKCHECK if os.access(LEAKCHECK, os.X_OK) else
                    shutil.which("leakcheck"),
                    help=f"the leakcheck tool; default: {LEAKCHECK} or leakcheck on PATH")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    for tool, pkg in (("iperf3", "iperf3"), ("ab", "apache2-utils")):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} missing (apt-get install {pkg})")
    snap = None
    if a.leakcheck:
        fd, snap = tempfile.mkstemp(prefix="pyrt-bench-net-leaks-")
        os.close(fd)
        subprocess.run([a.leakcheck, "snapshot", snap], check=True, stdout=subprocess.DEVNULL)
    # a name podman takes as part of an image reference (`pull oci:DIR`: no "-_", no
    # final "_" as mkdtemp's may have)
    work = os.path.join(tempfile.gettempdir(), f"pyrt-bench-net-{os.getpid()}")
    os.mkdir(work, 0o700)
    layout = os.path.join(work, "layout")
    env = dict(ENV, PYRT_NETWORK_POOL=a.pool)
    res: dict = {}
    engines: list[Engine] = []
    pyrt_bases: list[tuple[list[str], dict]] = []
    pbase = None
    finished = False
    leaks = None
    try:
        tag = build_image(layout)
        # -- pyrt
        base = [a.pyrt, "--root", os.path.join(work, "pyrt-root"), "--runroot",
                os.path.join(work, "pyrt-run")]
        iid = timed(base + ["load", "-q", "-i", layout], env)[1].split()[0]
        pyrt = Engine("pyrt", base, iid, env)
        pyrt_bases.append((base, env))
        engines.append(pyrt)
        variants: dict[str, tuple[Engine, list[str]]] = {
            "pyrt (bridge)": (pyrt, []), "pyrt --network none": (pyrt, ["--network", "none"])}
        if a.compare:
            # the same store: two stores' default networks would share the bridge pyrt0
            # and the table inet pyrt, and clash (issue 15's notes)
            cmp = Engine("pyrt (compare)", base, iid, dict(env, PYTHONPATH=a.compare))
            variants["pyrt (compare) (bridge)"] = (cmp, [])
            variants["pyrt (compare) --network none"] = (cmp, ["--network", "none"])
        # -- podman + runc
        if not a.skip_podman and shutil.which("podman") and shutil.which("runc"):
            pbase = ["podman", "--root", os.path.join(work, "podman-root"), "--runroot",
                     os.path.join(work, "podman-run"), "--runtime", "runc", "--storage-driver",
                     "overlay"]
            subprocess.run(pbase + ["pull", "-q", f"oci:{layout}:{tag}"], check=True,
                           stdout=subprocess.DEVNULL)
            img = timed(pbase + ["images", "-q"])[1].split()[0]
            podman = Engine("podman", pbase, img, opts=PODMAN_OPTS)
            engines.append(podman)
            variants["podman+runc (default network)"] = (podman, [])
            variants["podman+runc --network none"] = (podman, ["--network", "none"])
        else:
            print("podman skipped (apt-get install podman runc)")
        if "1" in a.only:
            res["start"] = start_cost(variants, a.runs)
        if "2" in a.only:
            res["iperf"] = throughput(engines, a.rounds, a.seconds)
        if "3" in a.only:
            res["ab"] = connection_rate(engines, a.rounds, a.requests, a.concurrency)
        if "4" in a.only:
            res["many"] = many(engines, a.containers)
        finished = True
    finally:
        for e in engines:
            e.rm_all()
        for b, benv in pyrt_bases:  # the default network (pre-defined: `network rm` refuses
            # it), its bridge and the store's table
            subprocess.run(b + ["network", "prune", "--all", "-f"], capture_output=True, env=benv)
        if pbase:
            settle(work)
            subprocess.run(pbase + ["system", "reset", "-f"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        settle(work)
        cleanup_work(work)
        if snap:
            r = subprocess.run([a.leakcheck, "compare", snap], capture_output=True, text=True)
            leaks = r.stdout.strip() if r.returncode else ""
            os.unlink(snap)
            if not finished:  # (an error on its way out: say it now)
                print("leakcheck: nothing left behind" if not leaks else
                      "leakcheck: the bench left these behind:\n" + leaks, file=sys.stderr)
    interpreter, start = interpreter_start(a.pyrt)
    report(res, a, start, interpreter)
    if leaks is None:
        print("leakcheck: not run (no leakcheck tool; --leakcheck PATH)")
    elif leaks:
        print("leakcheck: the bench left these behind:\n" + leaks)
        return 1
    else:
        print("leakcheck: nothing left behind")
    return 0


def report(res: dict, a, start: float, interpreter: str) -> None:
    if "start" in res:
        st = res["start"]
        peer = st.get("podman+runc (default network)")
        print(f"1. run --rm IMAGE true, median of {a.runs} runs each (ms), engines taking turns:")
        for k, v in st.items():
            ratio = f"   / podman default network = {v / peer:5.2f}" if peer else ""
            print(f"  {k:<34} {v * 1000:8.1f}{ratio}")
        for pre in ("pyrt", "pyrt (compare)", "podman+runc"):
            b = st.get(f"{pre} (bridge)") or st.get(f"{pre} (default network)")
            n = st.get(f"{pre} --network none")
            if b and n:
                print(f"  {pre + ': the network costs':<34} {(b - n) * 1000:8.1f}")
        print(f"  {'floor: interpreter start':<34} {STARTS * start * 1000:8.1f}"
              f"   ({STARTS} x `{interpreter} -c pass`)")
    if "iperf" in res:
        print(f"2. TCP throughput host -> container through -p (iperf3, {a.seconds} s x "
              f"{a.rounds} rounds, taking turns): median (each round)")
        iv = res["iperf"]
        for k, v in iv.items():
            print(f"  {k:<34} {fmt_rate(statistics.median(v))}   "
                  f"({', '.join(f'{x / 1e9:.2f}' for x in v)})")
        if "pyrt" in iv and "podman" in iv:
            print(f"  {'pyrt / podman':<34} {statistics.median(iv['pyrt']) / statistics.median(iv['podman']):7.2f}")
    if "ab" in res:
        print(f"3. connection rate through -p (ab -n {a.requests} -c {a.concurrency}, busybox "
              f"httpd, {a.rounds} rounds, taking turns): median requests/s (each round)")
        av = res["ab"]
        for k, v in av.items():
            print(f"  {k:<34} {statistics.median(v):9.0f}   ({', '.join(f'{x:.0f}' for x in v)})")
        if "pyrt" in av and "podman" in av:
            print(f"  {'pyrt / podman':<34} {statistics.median(av['pyrt']) / statistics.median(av['podman']):9.2f}")
    if "many" in res:
        mv = res["many"]
        n = a.containers
        k5 = min(5, n)
        print(f"4. run -d -p 80 of {n} containers on one network (and {n} --network none of "
              "pyrt's as a control), taking turns (ms): "
              f"container 1, median of the first {k5}, median of the last {k5}, container {n}; "
              "last/first medians")
        rules = mv.pop("pyrt's nftables rules (base chains, all)", None)
        for k, v in mv.items():
            first, last = statistics.median(v[:k5]), statistics.median(v[-k5:])
            print(f"  {k:<34} {v[0] * 1000:7.0f} {first * 1000:7.0f} {last * 1000:7.0f} "
                  f"{v[-1] * 1000:7.0f}   {last / first:5.2f}")
        if rules:
            (b1, t1), (bn, tn) = rules[0], rules[-1]
            print(f"  pyrt's nftables rules with 1 container: {b1} in the base chains ({t1} in "
                  f"all); with {n}: {bn} ({tn})")


if __name__ == "__main__":
    sys.exit(main())
