"""Attacks through the event journal (``<root>/events/events.log``, pyrt_core.events):
root's pyrt appends to it from every command and ``pyrt events`` prints what it holds, so
another local user who could write it would forge the events a monitoring script acts on
("container die", "image pull"), or, through a symbolic link or a file of theirs, have
root append to a file they chose.  Here the "user" is uid 65534; the journal must be
neither written nor read, and the command itself goes on (an event is a report)."""
from __future__ import annotations

import json
import os

NOBODY = 65534
FORGED = json.dumps({"Type": "container", "Action": "die", "scope": "local",
                     "Actor": {"ID": "f" * 64, "Attributes": {"name": "forged"}},
                     "time": 1, "timeNano": 1_000_000_000}) + "\n"


def _plant(root: str, dir_owner: int, dir_mode: int, file_owner: int, file_mode: int) -> str:
    d = os.path.join(root, "events")
    os.makedirs(d, exist_ok=True)
    os.chown(d, dir_owner, dir_owner)
    os.chmod(d, dir_mode)
    path = os.path.join(d, "events.log")
    with open(path, "w") as f:
        f.write(FORGED)
    os.chown(path, file_owner, file_owner)
    os.chmod(path, file_mode)
    return path


def _check_refused(pyrt_cli, path: str, why: str) -> None:
    r = pyrt_cli("volume", "create", "evattack")
    assert r.returncode == 0, r.stderr  # the operation goes on
    assert open(path).read() == FORGED  # root appended nothing to their file
    r = pyrt_cli("events", "--since", "0", "--until", "0s")
    assert r.returncode == 125 and r.stdout == "", r  # the forged event is never shown
    assert r.stderr.startswith("Error: ") and why in r.stderr and r.stderr.count("\n") == 1
    pyrt_cli("volume", "rm", "evattack", check=True)


def test_a_journal_directory_another_user_owns(pyrt_cli):
    pyrt_cli("volume", "ls", check=True)  # the store exists, root's
    path = _plant(str(pyrt_cli.root), NOBODY, 0o755, NOBODY, 0o644)
    _check_refused(pyrt_cli, path, f"is owned by uid {NOBODY}")


def test_a_journal_file_another_user_owns(pyrt_cli):
    pyrt_cli("volume", "ls", check=True)
    path = _plant(str(pyrt_cli.root), 0, 0o700, NOBODY, 0o600)
    _check_refused(pyrt_cli, path, f"is owned by uid {NOBODY}")


def test_a_journal_file_everyone_may_write(pyrt_cli):
    pyrt_cli("volume", "ls", check=True)
    path = _plant(str(pyrt_cli.root), 0, 0o700, 0, 0o666)
    _check_refused(pyrt_cli, path, "writable by group or others")


def test_a_symbolic_link_in_place_of_the_journal(pyrt_cli, tmp_path):
    """A link to a file root owns (here a stand-in for /etc/passwd): never appended to."""
    pyrt_cli("volume", "ls", check=True)
    victim = tmp_path / "victim"
    victim.write_text("root:x:0:0::/root:/bin/sh\n")
    d = os.path.join(str(pyrt_cli.root), "events")
    os.makedirs(d, mode=0o700, exist_ok=True)
    os.symlink(str(victim), os.path.join(d, "events.log"))
    pyrt_cli("volume", "create", "evattack", check=True)
    assert victim.read_text() == "root:x:0:0::/root:/bin/sh\n"
    r = pyrt_cli("events", "--since", "0", "--until", "0s")
    assert r.returncode == 125 and "symbolic link" in r.stderr and r.stdout == ""
    pyrt_cli("volume", "rm", "evattack", check=True)
