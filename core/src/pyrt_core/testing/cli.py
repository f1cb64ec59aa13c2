"""Helpers for tests that drive the installed `pyrt` command line."""
import os
import shutil
import subprocess


class PyrtCLI:
    """Runs the installed `pyrt` console script against a private root and run root."""

    def __init__(self, root, runroot, driver=None):
        import sys

        self.exe = os.path.join(os.path.dirname(sys.executable), "pyrt")
        self.root, self.runroot, self.driver = str(root), str(runroot), driver

    def argv(self, *args):
        base = [self.exe, "--root", self.root, "--runroot", self.runroot]
        if self.driver:
            base += ["--storage-driver", self.driver]
        return base + [str(a) for a in args]

    def __call__(self, *args, check=False, input=None, timeout=60, env=None):
        r = subprocess.run(self.argv(*args), capture_output=True, text=True, input=input,
                           timeout=timeout, env=env)
        if check and r.returncode != 0:
            raise AssertionError(f"pyrt {' '.join(map(str, args))} -> {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def remove_running(self, timeout=60):
        """`pyrt rm -f` every running container: the engine's own way to end one (a
        container restarting under its policy may show up again: a few rounds)."""
        for _ in range(3):
            running = self("ps", "-q", "--no-trunc", timeout=timeout).stdout.split()
            if not running:
                return
            for cid in running:
                self("rm", "-f", cid, timeout=timeout)

    def cleanup(self, guard=None, timeout=60):
        """End what the test left, in an order that cannot hide a leak of the engine:

        1. `pyrt rm -f` the running containers (the engine's own path), then remove the
           store's networks (`network rm`, `network prune --all`: the default one too);
        2. ``guard.check(...)`` (the leak guard, pyrt_core.testing.leaks): with nothing
           running, the kernel must look as it did when the test started, so a mount,
           cgroup, loop device or process the engine left is reported here, before
           anything below removes it;
        3. `pyrt rm -f` the stopped containers;
        4. the safety net: unmount what is still mounted under the root and run root,
           and report it (to ``guard``; without one, raise AssertionError once done).
        """
        self.remove_running(timeout)
        # the store's networks (kept by design, as docker keeps docker0) through the
        # engine's own commands, before the guard looks: their bridge and table are the
        # host's; a veth, rule or resolver a container's removal left is still reported
        net_error = None
        try:
            self.remove_networks(timeout)
        except AssertionError as e:  # reported once the rest is cleaned
            net_error = e
        if guard is not None:
            guard.check(f"left when the test ended, its running containers removed by "
                        f"`pyrt rm -f`, before the clean-up of the store {self.root}")
        for cid in self("ps", "-aq", "--no-trunc", timeout=timeout).stdout.split():
            self("rm", "-f", cid, timeout=timeout)
        left = unmount_under(self.root) + unmount_under(self.runroot)
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.runroot, ignore_errors=True)
        if left:
            what = "mounted under the store after `pyrt rm -f` of every container (unmounted by the safety net)"
            if guard is None:
                raise AssertionError(f"{what}: {left}")
            guard.report(what, ["mount " + m for m in left])
        if net_error is not None:
            raise net_error


    def remove_networks(self, timeout=60):
        """Remove the store's networks, the default one too (a network plugin makes it on
        first use and keeps it, as docker keeps docker0; `network rm` refuses it, `network
        prune --all` removes it): its bridge and firewall table are the host's, and would
        outlive the store.  Only when a network plugin kept
        state in this store (no extra `pyrt` run otherwise)."""
        if not os.path.isdir(os.path.join(self.root, "networks")):
            return
        names = self("network", "ls", "--format", "{{.Name}}", timeout=timeout).stdout.split()
        for name in names:
            if name == "bridge":
                continue  # docker's pre-defined network: `network rm` refuses it
            r = self("network", "rm", name, timeout=timeout)
            if r.returncode != 0:
                raise AssertionError(f"`pyrt network rm {name}` failed at clean-up: "
                                     f"{(r.stderr or r.stdout).strip()}")
        if "bridge" in names:  # pyrt's `prune --all`: the default one too
            self("network", "prune", "--all", "--force", timeout=timeout)
            left = self("network", "ls", "--format", "{{.Name}}", timeout=timeout).stdout.split()
            if left:
                raise AssertionError(f"networks left after `pyrt network prune --all`: {left}")


def unmount_under(path):
    """Lazily unmount everything at or below ``path``; return the mount points found."""
    path = os.path.realpath(str(path))
    with open("/proc/self/mountinfo") as f:
        mps = [line.split()[4] for line in f]
    found = sorted((m for m in mps if m == path or m.startswith(path + "/")), key=len, reverse=True)
    for mp in found:
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
    return found
