"""--runtime's lookup (monitor.ociruntime.resolve) and the config file's [runtimes]."""
import os

import pytest

from pyrt_core.config import load_settings
from pyrt_core.errors import UsageError
from pyrt_core.monitor import ociruntime as oc


def _prog(d, name="rt", mode=0o755):
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(p, mode)
    return p


def test_names_of_pyrts_own_runtime():
    assert all(oc.is_pyrt(n) for n in ("", None, "pyrt", "pyrt-runtime"))
    assert not oc.is_pyrt("runc")


def test_unknown_name_relative_path_and_blank_are_refused():
    with pytest.raises(UsageError, match="unknown or invalid runtime name: nosuch"):
        oc.resolve("nosuch", {})
    with pytest.raises(UsageError, match="a runtime name or an absolute path"):
        oc.resolve("bin/runc", {})
    with pytest.raises(UsageError, match="invalid --runtime"):
        oc.resolve("a b", {})


def test_absolute_path_resolved_through_symlinks(tmp_path):
    p = _prog(str(tmp_path / "bin"))
    link = tmp_path / "link"
    os.symlink(p, link)
    assert oc.resolve(str(link), {}) == p


def test_config_table_first_present_candidate(tmp_path):
    p = _prog(str(tmp_path / "bin"))
    assert oc.resolve("mine", {"mine": ["/nonexistent/x", p]}) == p
    assert oc.resolve("mine", {"mine": p}) == p
    with pytest.raises(UsageError, match="none of its paths exist"):
        oc.resolve("mine", {"mine": ["/nonexistent/x"]})


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o644])
def test_writable_or_not_executable_file_refused(tmp_path, mode):
    p = _prog(str(tmp_path / "bin"), mode=mode)
    with pytest.raises(UsageError, match="refusing the OCI runtime"):
        oc.resolve(p, {})


def test_file_in_writable_directory_refused(tmp_path):
    d = tmp_path / "open"
    p = _prog(str(d))
    os.chmod(d, 0o777)
    from pyrt_core import trusted

    trusted.forget()
    with pytest.raises(UsageError, match="writable by group and others"):
        oc.resolve(p, {})


def test_state_directory_per_runtime():
    assert oc.root_for("/run/pyrt", "runc") == "/run/pyrt/runtimes/runc"
    assert oc.root_for("/run/pyrt", "/opt/x/crun") == "/run/pyrt/runtimes/crun"


def test_config_file_runtimes_table(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('[runtimes]\nrunc = "/usr/sbin/runc"\nkata = ["/a/kata", "/b/kata"]\n')
    s = load_settings(config=str(conf), env={})
    assert s.runtimes == {"runc": "/usr/sbin/runc", "kata": ["/a/kata", "/b/kata"]}
    for bad in ('[runtimes]\nrunc = 3\n', '[runtimes]\nrunc = "runc"\n', '[runtimes]\nrunc = []\n',
                'runtimes = "x"\n'):
        conf.write_text(bad)
        with pytest.raises(UsageError, match="runtimes"):
            load_settings(config=str(conf), env={})
