"""pyrt_core.testing.machine: in CI a skip must name a machine fact the machine lacks."""
import os

import pytest

from pyrt_core.testing import machine

pytest_plugins = ["pytester"]

INNER = '''
import os
import pytest
from pyrt_core.testing import machine

HAVE = "root" if os.geteuid() == 0 else "unprivileged"


def test_tool_missing():
    pytest.skip("frobnicate is not installed")


def test_fact_lacking():
    machine.skip_unless("vm-tier")   # this session is not in the VM tier


def test_fact_claimed_but_present():
    pytest.skip(machine.reason(HAVE))


@machine.needs("distribution", "pyrt-core")
def test_fact_present_runs():
    pass


@pytest.mark.skipif(True, reason="a condition nobody explained")
def test_skipif_without_fact():
    pass
'''
INNER_MODULE_SKIP = '''
import pytest
pytest.importorskip("no_such_module_anywhere")


def test_never():
    pass
'''


def _run(pytester, ci):
    pytester.makeconftest('pytest_plugins = ["pyrt_core.testing.machine"]')
    pytester.makepyfile(test_inner=INNER, test_modskip=INNER_MODULE_SKIP)
    env = {"CI": "true"} if ci else {"CI": ""}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "--continue-on-collection-errors")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_outside_ci_every_skip_is_a_skip(pytester):
    r = _run(pytester, ci=False)
    r.assert_outcomes(passed=1, skipped=5)


def test_in_ci_only_a_lacking_machine_fact_may_skip(pytester):
    r = _run(pytester, ci=True)
    out = r.stdout.str()
    # a skip in a test's call fails it; one at setup (a skipif marker) or at collection
    # (module level) is an error
    r.assert_outcomes(passed=1, skipped=1, failed=2, errors=2)
    assert "FAILED test_inner.py::test_tool_missing" in out
    assert "FAILED test_inner.py::test_fact_claimed_but_present" in out
    assert "ERROR test_inner.py::test_skipif_without_fact" in out
    assert "ERROR test_modskip.py" in out
    assert "without naming a machine fact" in out and "but this machine has it" in out
    assert "SKIPPED [1] test_inner.py" in out and "machine fact 'vm-tier'" in out


def test_reason_round_trip():
    assert machine.reason("cgroup-v1").startswith("machine fact 'cgroup-v1': ")
    assert machine._why_not_allowed(machine.reason("vm-tier")) is None or machine.has("vm-tier")
    assert "unknown machine fact" in machine._why_not_allowed("machine fact 'no-such': x")
    with pytest.raises(KeyError):
        machine.has("no-such")
