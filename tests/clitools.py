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

    def cleanup(self):
        """Remove every container left, then unmount anything under the root."""
        r = self("ps", "-aq", "--no-trunc")
        for cid in r.stdout.split():
            self("rm", "-f", cid)
        unmount_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.runroot, ignore_errors=True)


def unmount_under(path):
    path = os.path.realpath(str(path))
    with open("/proc/self/mountinfo") as f:
        mps = [line.split()[4] for line in f]
    for mp in sorted((m for m in mps if m == path or m.startswith(path + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
