"""The leak guard can fail: a pytest session of planted leaks, run with this suite's
own fixtures (pyrt_core.testing.fixtures), must report each of them.

The planted leaks are ones the fixtures' safety nets remove (a mount under a
``pyrt_cli`` store: what an engine that forgot to unmount a root filesystem leaves),
and ones the inner session's module fixture removes after the guard looked (a
process in another pid namespace, a mount outside any store, and in the host's network
namespace an interface, an nftables table and a socket listening off loopback: what a
network plugin could leave), so this test leaves nothing behind itself.
"""

pytest_plugins = ["pytester"]

INNER_CONFTEST = 'pytest_plugins = ["pyrt_core.testing.fixtures"]'

INNER_TESTS = '''
import os, signal, subprocess
import pytest

pytestmark = pytest.mark.privileged
planted = []


TAG = os.urandom(3).hex()
DUMMY = "pyrtlh" + TAG  # holds the listener's address; made before any test's snapshot


def free_address():
    """A 10.x.y.1 no route of the host covers (the listener binds it, nothing is sent)."""
    import ipaddress
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                            text=True).stdout.split()
    nets = [ipaddress.ip_network(w, strict=False) for w in routes if w[0].isdigit() and "/" in w]
    for x in range(250, 200, -1):
        a = ipaddress.ip_address(f"10.{x}.254.1")
        if not any(a in n for n in nets):
            return str(a)
    pytest.skip("machine fact: no free 10.x.254.1 address for the planted listener")


@pytest.fixture(scope="module", autouse=True)
def remove_planted():
    """Runs after the guard of every test of the module: removes what they planted."""
    addr = free_address()
    # a veth pair (both ends here; the kernel may lack the dummy driver)
    subprocess.run(["ip", "link", "add", DUMMY, "type", "veth", "peer", "name", DUMMY + "p"],
                   check=True)
    subprocess.run(["ip", "addr", "add", addr + "/32", "dev", DUMMY], check=True)
    subprocess.run(["ip", "link", "set", DUMMY, "up"], check=True)
    planted.append(("address", addr))
    yield
    for kind, what in planted:
        if kind == "mount":
            subprocess.run(["umount", "-l", what], check=False)
        elif kind == "link":
            subprocess.run(["ip", "link", "del", what], check=False)
        elif kind == "table":
            subprocess.run(["nft", "delete", "table", "inet", what], check=False)
        elif kind == "socket":
            what.close()
        elif kind == "process":  # end the namespace's pid 1 first: unshare reaps it, then exits
            with open(f"/proc/{what.pid}/task/{what.pid}/children") as f:
                for child in f.read().split():
                    os.kill(int(child), signal.SIGKILL)
            what.wait()
    subprocess.run(["ip", "link", "del", DUMMY], check=False)


def test_clean_run(pyrt_cli):
    r = pyrt_cli("info")
    assert r.returncode == 0, r.stderr


def test_mount_left_in_the_store(pyrt_cli):
    """What an engine leaves when it forgets to unmount a container's rootfs: the
    pyrt_cli safety net unmounts it; the guard must have seen it first."""
    r = pyrt_cli("info")
    assert r.returncode == 0, r.stderr
    target = os.path.join(pyrt_cli.root, "storage", "planted", "merged")
    os.makedirs(target)
    subprocess.run(["mount", "-t", "tmpfs", "planted", target], check=True)


def test_mount_left_outside(tmp_path):
    target = tmp_path / "m"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "planted", str(target)], check=True)
    planted.append(("mount", str(target)))


def test_process_left_in_a_pid_namespace():
    p = subprocess.Popen(["unshare", "--pid", "--fork", "sleep", "300"])
    planted.append(("process", p))
    import time
    deadline = time.monotonic() + 10
    me = os.readlink("/proc/self/ns/pid")
    def in_other_ns():
        for pid in os.listdir("/proc"):
            try:
                if pid.isdigit() and os.readlink(f"/proc/{pid}/ns/pid") != me:
                    return True
            except OSError:
                pass
    while not in_other_ns() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_interface_left():
    """What a network plugin leaves when it forgets a veth or a bridge."""
    name = "pyrtlk" + TAG
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
                   check=True)
    planted.append(("link", name))


def test_nft_table_left():
    """What a network plugin leaves when it forgets its firewall table."""
    name = "pyrt-leak-" + TAG
    subprocess.run(["nft", "add", "table", "inet", name], check=True)
    planted.append(("table", name))


def test_listener_left():
    """What a network plugin leaves when it forgets a resolver: a socket listening on an
    address that is not loopback (the module's dummy interface's)."""
    import socket
    addr = next(what for kind, what in planted if kind == "address")
    s = socket.socket()
    s.bind((addr, 0))
    s.listen(1)
    planted.append(("socket", s))
'''


def test_the_guard_reports_every_planted_leak(pytester):
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_planted=INNER_TESTS)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    out = r.stdout.str()
    teardown_errors = {line.split(" at teardown of ")[1].split()[0].rstrip("_ ")
                       for line in out.splitlines() if " at teardown of " in line}
    assert teardown_errors == {"test_mount_left_in_the_store", "test_mount_left_outside",
                               "test_process_left_in_a_pid_namespace", "test_interface_left",
                               "test_nft_table_left", "test_listener_left"}, out
    # the store's mount was reported before the fixture's clean-up removed it, by path
    assert "left when the test ended" in out and "planted/merged" in out, out
    assert "in another pid namespace" in out, out
    # the host network namespace's: an interface, an nftables table, a listening socket
    assert "link pyrtlk" in out and "nft inet pyrt-leak-" in out, out
    assert "listen tcp 10." in out, out
    assert r.parseoutcomes().get("passed") == 7, out
