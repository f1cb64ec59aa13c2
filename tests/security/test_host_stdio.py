"""A container run without ``-t`` must not get the caller's terminal or files as its stdio.

With the caller's stdio passed straight through, the container holds host
files: the caller's terminal (it can change the terminal's settings for the
caller's whole session), a file the caller redirected output to (it can
fchmod it, or reopen it through /proc/self/fd and read it back), and the
host's /dev/null given as stdin (it can chmod the machine's /dev/null).
docker and podman give such a container pipes; ``pyrt run``/``exec`` do too.
"""
from __future__ import annotations

import os
import stat
import subprocess

from pyrt_core.testing.terminal import Term

# what the container learns of each of its stdio fds: the identity of the file behind it
# (no change is made: a failing run must not damage the host's /dev/null or terminal)
PROBE = ("for n in 0 1 2; do echo fd$n=$(stat -L -c %d:%i /proc/self/fd/$n) >&2; done; "
         "echo probed >&2")


def identity(path) -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def assert_not_given(stderr: str, path, what: str) -> None:
    assert "probed" in stderr, stderr
    for n in (0, 1, 2):
        assert f"fd{n}={identity(path)}" not in stderr, f"the container got {what} as fd {n}"


def test_redirected_output_file_is_not_handed_over(demo_cli, tmp_path):
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        r = subprocess.run(demo_cli.argv("run", "--rm", demo_cli.image, "sh", "-c",
                                         "echo to-stdout; " + PROBE +
                                         "; chmod 4755 /proc/self/fd/1 2>/dev/null"),
                           stdout=f, stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "to-stdout" in out.read_text()  # the output still arrives
    assert_not_given(r.stderr, out, "the caller's output file")
    assert not os.stat(out).st_mode & stat.S_ISUID, "the container chmod'ed the caller's file"


def test_host_dev_null_is_not_handed_over(demo_cli):
    r = subprocess.run(demo_cli.argv("run", "--rm", demo_cli.image, "sh", "-c", PROBE),
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert_not_given(r.stderr, "/dev/null", "the host's /dev/null")


def test_callers_terminal_is_not_handed_over(detached_cli):
    """Without -t, stdin/stdout/stderr a terminal: the container must not reach it."""
    t = Term(detached_cli.argv("run", "--rm", detached_cli.image, "sh", "-c",
                               PROBE + "; stty -F /proc/self/fd/1 -echo 2>/dev/null && echo stty-ok; "
                               "echo done-$((1+1))"))
    try:
        # stdout and stderr are two pipes: their order on the terminal is not kept
        seen = t.expect(b"done-2")
        if b"probed" not in seen:
            seen += t.expect(b"probed")
        assert t.wait(30) == 0
        out = (seen + t.buf).decode(errors="replace")
    finally:
        t.close()
    assert "stty-ok" not in out, "the container changed the caller's terminal"
    assert "probed" in out


def test_output_and_input_still_flow(demo_cli):
    r = subprocess.run(demo_cli.argv("run", "--rm", "-i", demo_cli.image, "sh", "-c",
                                     "cat; echo err >&2; ls -l /proc/self/fd/0 >&2"),
                       input="from-stdin\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from-stdin\n" and "err" in r.stderr
    r = subprocess.run(demo_cli.argv("run", "--rm", demo_cli.image, "sh", "-c",
                                     "ls -l /proc/self/fd/0; cat; echo eof"),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert "eof" in r.stdout and "/dev/null" in r.stdout  # the container's own /dev/null


def test_exec_without_tty_gets_pipes(detached_cli, tmp_path):
    detached_cli("run", "-d", "--name", "stdio-victim", detached_cli.image, "sleep", "300",
                 check=True)
    out = tmp_path / "exec-out.txt"
    with open(out, "w") as f:
        r = subprocess.run(detached_cli.argv("exec", "stdio-victim", "sh", "-c",
                                             "echo hi; " + PROBE),
                           stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.PIPE,
                           text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "hi" in out.read_text()
    assert_not_given(r.stderr, out, "the caller's output file")
    assert_not_given(r.stderr, "/dev/null", "the host's /dev/null")
    r = detached_cli("exec", "-d", "stdio-victim", "sh", "-c", "sleep 1")
    assert r.returncode == 0, r.stderr
    detached_cli("rm", "-f", "stdio-victim", check=True)
