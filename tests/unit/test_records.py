"""pyrt_core.records: the plain value classes of the runtime's hot path (the config
types' Record/FrozenRecord are tested with them in test_runtime_config.py)."""
from __future__ import annotations

import pytest

from pyrt_core.records import TupleRecord as Record


# -- TupleRecord (NamedTuple's replacement) ---------------------------------------------------------------------------------

class Point(Record):
    x: int
    y: int = 0
    label: str | None = None

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


def test_record_fields_defaults_and_replace():
    p = Point(1, label="a")
    assert Point._fields == ("x", "y", "label")
    assert (p.x, p.y, p.label, p.norm1) == (1, 0, "a", 1)
    assert tuple(p) == (1, 0, "a")
    x, y, label = p
    assert (x, y, label) == (1, 0, "a")
    q = p._replace(y=-5)
    assert (q.x, q.y, q.label) == (1, -5, "a") and p.y == 0
    assert p._asdict() == {"x": 1, "y": 0, "label": "a"}
    assert repr(q) == "Point(x=1, y=-5, label='a')"
    with pytest.raises(ValueError):
        p._replace(z=1)


def test_record_equality_hash_and_immutability():
    assert Point(1, 2) == Point(x=1, y=2) and Point(1, 2) != Point(2, 1)
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert Point(1, 2) != (1, 2, None)
    p = Point(1)
    with pytest.raises(AttributeError):
        p.x = 2
    with pytest.raises(AttributeError):
        del p.y


def test_record_refuses_bad_arguments():
    with pytest.raises(TypeError, match="missing field 'x'"):
        Point()
    with pytest.raises(TypeError):
        Point(1, 2, "a", "extra")
    with pytest.raises(TypeError, match="given twice"):
        Point(1, x=2)
    with pytest.raises(TypeError, match="not a field"):
        Point(1, z=2)
    with pytest.raises(TypeError, match="follows one with a default"):
        class Bad(Record):  # noqa: F841
            a: int = 0
            b: int


# -- define / frozen / field: the engine's models without attrs ---------------------------

from pyrt_core.records import asdict, define, field, fields, frozen  # noqa: E402


@frozen
class _Pair:
    a: str
    b: int = 0


@define
class _Box:
    name: str
    items: list = field(factory=list)
    conv: list | None = field(default=None, converter=lambda v: list(v) if v is not None else None)
    pairs: list = field(factory=list)
    flag: bool = False


def test_define_init_defaults_factories_and_converters():
    a, b = _Box("x"), _Box("y")
    assert a.items == [] and a.items is not b.items  # a fresh list each
    assert _Box("x", conv=("p", "q")).conv == ["p", "q"]
    assert _Box("x", [1], None, [], True) == _Box(name="x", items=[1], flag=True)
    assert [f.name for f in fields(_Box)] == ["name", "items", "conv", "pairs", "flag"]
    for bad in (lambda: _Box(), lambda: _Box("x", nope=1), lambda: _Box("x", name="y"),
                lambda: _Box(*range(6))):
        with pytest.raises(TypeError):
            bad()


def test_define_eq_repr_unhashable_and_mutable():
    a = _Box("x", items=[1])
    assert repr(a) == "_Box(name='x', items=[1], conv=None, pairs=[], flag=False)"
    assert a != _Box("x") and a == _Box("x", items=[1]) and a != object()
    a.flag = True
    assert a.flag
    with pytest.raises(TypeError):
        hash(a)


def test_frozen_is_immutable_and_hashable():
    p = _Pair("k", 2)
    assert hash(p) == hash(_Pair("k", 2)) and {p: 1}[_Pair("k", 2)] == 1
    with pytest.raises(AttributeError):
        p.a = "z"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.b  # type: ignore[misc]
    import copy
    import pickle

    assert copy.deepcopy(p) == p and pickle.loads(pickle.dumps(p)) == p


def test_asdict_recurses_as_attrs_does():
    box = _Box("x", pairs=[_Pair("a", 1), _Pair("b")], conv=("t",))
    assert asdict(box) == {"name": "x", "items": [], "conv": ["t"],
                           "pairs": [{"a": "a", "b": 1}, {"a": "b", "b": 0}], "flag": False}
    assert asdict(box, recurse=False)["pairs"][0] is box.pairs[0]


def test_the_models_round_trip_through_their_dicts():
    from pyrt_core.models import Container, ContainerConfig, IdMap, VolumeSpec

    cfg = ContainerConfig(image="img", volumes=[VolumeSpec("/a", "/b", True)],
                          uidmaps=[IdMap(0, 1000, 1)])
    c = Container(id="c" * 64, name="n1", image_id="sha256:x", image_name="img", created="t",
                  storage_driver="vfs", config=cfg)
    d = c.to_dict()
    assert {k: d["config"]["volumes"][0][k] for k in ("source", "destination", "readonly")} == {
        "source": "/a", "destination": "/b", "readonly": True}
    assert Container.from_dict(d) == c
