"""containers.store: docker's name rule, names that an older pyrt stored unchecked, and
the permissions of records and bundles (they hold the -e values)."""
import json
import os
import stat

import pytest

from pyrt_core.containers.store import ContainerStore, check_name
from pyrt_core.errors import UsageError
from pyrt_core.models import Container, ContainerConfig


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.mark.parametrize("name", ["ab", "a1", "web.1", "x_y-z", "A.", "0--"])
def test_docker_names_are_accepted(name):
    assert check_name(name) == name
    assert check_name("/" + name) == name  # docker drops a leading slash


@pytest.mark.parametrize("name", [".", "..", "a", "/a", "-x", "_x", ".x", "a/b", "a b", "ab\n",
                                  "", "/", "a\x00b", "é1"])
def test_other_names_are_refused_with_dockers_message(name):
    with pytest.raises(UsageError) as e:
        check_name(name)
    assert str(e.value) == (f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                            "are allowed")


def _container(name, cid="a" * 64):
    return Container(id=cid, name=name, image_id="sha256:x", image_name="img", created="",
                     storage_driver="vfs", config=ContainerConfig(image="img", env=["S=1"]))


def test_bad_names_of_an_older_pyrt_release_nothing_and_never_fail(tmp_path):
    store = ContainerStore(str(tmp_path / "root"), str(tmp_path / "run"))
    other = os.path.join(store.names, "ok")
    os.symlink("b" * 64, other)
    for name in (".", "..", "a/b", "", "ok/..", "names"):
        c = _container(name)
        store.save(c)
        store.delete(c)  # the old code raised EINVAL here (and so did every recovery)
        assert not os.path.exists(store.path(c.id))
    assert os.path.isdir(store.names) and os.readlink(other) == "b" * 64


def test_records_and_directories_are_private(tmp_path):
    store = ContainerStore(str(tmp_path / "root"), str(tmp_path / "run"))
    assert _mode(store.dir) == 0o700 and _mode(store.names) == 0o700
    assert _mode(store.rundir) == 0o700
    c = _container("ab")
    store.save(c)
    assert _mode(os.path.join(store.path(c.id), "container.json")) == 0o600


def test_a_store_of_an_older_pyrt_is_tightened_on_access(tmp_path):
    root, run = tmp_path / "root", tmp_path / "run"
    rec = root / "containers" / ("a" * 64)
    bundle = run / "containers" / ("a" * 64)
    rec.mkdir(parents=True)
    bundle.mkdir(parents=True)
    (rec / "container.json").write_text(json.dumps(_container("ab").to_dict()))
    (bundle / "config.json").write_text("{}")
    (bundle / "hosts").write_text("")
    for p, m in ((root / "containers", 0o755), (rec / "container.json", 0o644),
                 (run / "containers", 0o755), (bundle, 0o711), (bundle / "config.json", 0o644),
                 (bundle / "hosts", 0o644)):
        os.chmod(p, m)
    os.symlink("/etc/hostname", run / "containers" / ("b" * 64))  # never followed
    before = _mode("/etc/hostname")
    ContainerStore(str(root), str(run))
    assert _mode(root / "containers") == 0o700 and _mode(rec / "container.json") == 0o600
    assert _mode(run / "containers") == 0o700 and _mode(bundle / "config.json") == 0o600
    assert _mode(bundle / "hosts") == 0o644  # a user-namespaced container reads it (bind-mounted)
    assert _mode("/etc/hostname") == before


def test_an_unreadable_record_is_skipped_with_a_warning(tmp_path, capsys):
    store = ContainerStore(str(tmp_path / "root"), str(tmp_path / "run"))
    store.save(_container("ab"))
    bad = os.path.join(store.dir, "c" * 64)
    os.mkdir(bad)
    with open(os.path.join(bad, "container.json"), "w") as f:
        f.write("{not json")
    assert [c.name for c in store.list()] == ["ab"]
    assert "skipping the unreadable container record cccccccccccc" in capsys.readouterr().err


def test_list_by_status_builds_only_those(tmp_path, monkeypatch):
    """The recovery pass asks for the transitional containers alone: the others' records
    are read but no model is built for them."""
    store = ContainerStore(str(tmp_path / "root"), str(tmp_path / "run"))
    for i, status in enumerate(("created", "running", "exited", "starting")):
        c = _container(f"c{i}", cid=str(i) * 64)
        c.state.status = status
        store.save(c, durable=False)
    built = []
    real = Container.from_dict
    monkeypatch.setattr(Container, "from_dict", classmethod(lambda cls, d: built.append(d["name"]) or real(d)))
    assert sorted(c.name for c in store.list(statuses=("running", "starting"))) == ["c1", "c3"]
    assert sorted(built) == ["c1", "c3"]
    assert len(store.list()) == 4
