"""The ``env`` fixture of pyrt-network's privileged tests (bridge_helpers.Env)."""
from __future__ import annotations

import pytest

from bridge_helpers import Env, free_base


@pytest.fixture
def env(tmp_path, monkeypatch):
    base = free_base()
    monkeypatch.setenv("PYRT_NETWORK_POOL", f"{base}/24")
    monkeypatch.delenv("PYRT_NETWORK_BACKEND", raising=False)
    e = Env(str(tmp_path), base)
    yield e
    problems = e.cleanup()
    assert not problems, problems
