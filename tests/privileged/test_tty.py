"""Terminals: `run -it`, `exec -it`, `run -dit` + `attach`, driven through a pty we own
(raw mode, window size changes, ctrl-c going to the container, detach keys)."""
import time

import pytest

from pyrt_core.testing.lifecycle import state
from pyrt_core.testing.terminal import Term


@pytest.fixture
def cli(detached_cli):
    return detached_cli


def test_run_it(cli):
    t = Term(cli.argv("run", "-it", "--rm", "--name", "tty1", cli.image, "sh"), rows=24, cols=80)
    try:
        t.send(b"tty; stty size; echo TERM=$TERM; echo mark$((0+1))\n")
        out = t.expect(b"mark1\r\n", 20)
        assert b"24 80" in out and b"TERM=xterm" in out
        t.resize(30, 100)
        time.sleep(0.3)
        t.send(b"stty size; echo mark$((1+1))\n")
        assert b"30 100" in t.expect(b"mark2\r\n")
        # raw mode: ctrl-c reaches the container's terminal, not pyrt
        t.send(b"sleep 30; echo after-sleep\n")
        time.sleep(0.5)
        t.send(b"\x03")
        t.send(b"echo alive; echo mark$((1+2))\n")
        out = t.expect(b"mark3\r\n")
        assert b"alive" in out and t.p.poll() is None
        t.send(b"exit 3\n")
        assert t.wait() == 3
    finally:
        t.close()


def test_exec_it(cli):
    cli("run", "-d", "--name", "box", cli.image, "sleep", "1000", check=True)
    t = Term(cli.argv("exec", "-it", "box", "sh"), rows=40, cols=120)
    try:
        t.send(b"stty size; tty; cat /proc/1/cmdline; echo; echo ma$((0))rk\n")
        out = t.expect(b"ma0rk\r\n")
        assert b"40 120" in out and b"sleep" in out
        t.send(b"exit 5\n")
        assert t.wait() == 5
    finally:
        t.close()
    assert state(cli, "box")["Running"]


def test_detached_tty_attach_and_detach(cli):
    cid = cli("run", "-dit", "--name", "dd", cli.image, "sh", check=True).stdout.strip()
    assert len(cid) == 64
    t = Term(cli.argv("attach", "dd"), rows=50, cols=132)
    try:
        time.sleep(0.5)
        t.send(b"stty size; echo ma$((0))rk\n")
        assert b"50 132" in t.expect(b"ma0rk\r\n")
        t.send(b"\x10\x11")  # ctrl-p ctrl-q: detach, the container keeps running
        assert t.wait() == 0
    finally:
        t.close()
    assert state(cli, "dd")["Running"]
    assert "ma0rk" in cli("logs", "dd").stdout
    t = Term(cli.argv("attach", "dd"))
    try:
        time.sleep(0.5)
        t.send(b"exit 9\n")
        assert t.wait() == 9
    finally:
        t.close()
    assert state(cli, "dd")["ExitCode"] == 9
