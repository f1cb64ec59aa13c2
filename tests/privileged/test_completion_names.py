"""Completion of names from a real store: the bash and fish scripts list the containers,
images and volumes of the store the command line names (its --root/--runroot)."""
import os
import subprocess

from pyrt_core.testing import machine


def _env(cli, tmp_path):
    return {**os.environ, "PATH": os.path.dirname(cli.exe) + ":/usr/bin:/bin", "HOME": str(tmp_path)}


def test_bash_and_fish_complete_names_of_the_lines_store(demo_cli, tmp_path):
    cli = demo_cli
    cli("create", "--name", "web1", "--network", "none", cli.image, "true", check=True)
    cli("volume", "create", "vol1", check=True)
    store = ["--root", cli.root, "--runroot", cli.runroot]
    script = tmp_path / "pyrt.bash"
    script.write_text(cli("completion", "bash", check=True).stdout)
    lines = [store + ["rm", ""], store + ["volume", "rm", ""], store + ["run", "--rm", ""],
             store + ["start", "w"]]
    body = [f"source {script}",
            't() { COMP_WORDS=(pyrt "$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _pyrt; '
            'echo "${COMPREPLY[*]}"; }']
    body += ["t " + " ".join(f"'{w}'" for w in words) for words in lines]
    env = {**_env(cli, tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    r = subprocess.run(["/bin/bash", "-c", "\n".join(body)], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    got = [line.split() for line in r.stdout.splitlines()]
    assert got[0] == ["web1"]
    assert got[1] == ["vol1"]
    assert "demo/busybox:latest" in got[2]
    assert got[3] == ["web1"]

    if machine.has("program", "fish"):
        fscript = tmp_path / "pyrt.fish"
        fscript.write_text(cli("completion", "fish", check=True).stdout)
        line = " ".join(["pyrt"] + store + ["rm", ""])
        f = subprocess.run(["fish", "-N", "-c", f"source {fscript}; complete -C'{line}'"],
                           capture_output=True, text=True, timeout=120, env=env)
        assert f.returncode == 0, f.stderr
        assert f.stdout.split() == ["web1"]
    cli("rm", "web1", check=True)
    cli("volume", "rm", "vol1", check=True)
