"""pyrt_core.records: the plain value classes of the runtime's hot path (the config
types' Record/FrozenRecord are tested with them in test_runtime_config.py) and the
engine's models' base, Model (models.py: what attrs' @define/@frozen gave them)."""
from __future__ import annotations

import copy
import pickle

import pytest

from pyrt_core.records import MISSING, Model, asdict, evolve, field, field_spec, fields
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


# -- Model (the engine's data types, models.py) --------------------------------------------


def _as_list(v):
    return list(v) if v is not None else None


class Span(Model, frozen=True):
    start: int
    end: int = 0


class Box(Model):
    name: str
    args: list[str] | None = field(default=None, converter=_as_list)
    tags: list[str] = field(factory=list)
    spans: list[Span] = field(factory=list)
    meta: dict = field(factory=dict)
    count: int = 0

    @property
    def size(self) -> int:
        return len(self.tags)


def test_model_fields_defaults_factories_and_converters():
    assert fields(Box) == ("name", "args", "tags", "spans", "meta", "count")
    b = Box("x", ("a", "b"))
    assert (b.name, b.args, b.tags, b.count, b.size) == ("x", ["a", "b"], [], 0, 0)
    assert Box("y").tags is not Box("y").tags  # a factory makes one per instance
    assert Box("y", args=None).args is None  # the converter sees the default too
    assert field_spec(Box, "name").default is MISSING and field_spec(Box, "tags").factory is list
    assert field_spec(Span, "end").default == 0
    with pytest.raises(TypeError, match="a default or a factory"):
        field(default=[], factory=list)


def test_model_refuses_bad_arguments():
    with pytest.raises(TypeError, match="missing the field 'name'"):
        Box()
    with pytest.raises(TypeError, match="two values for 'name'"):
        Box("x", name="y")
    with pytest.raises(TypeError, match="unexpected field 'nmae'"):
        Box("x", nmae="y")
    with pytest.raises(TypeError, match="takes 6 fields, 7 given"):
        Box("x", None, [], [], {}, 0, "extra")
    with pytest.raises(TypeError, match="follows one with a default"):
        class Bad(Model):  # noqa: F841
            a: int = 0
            b: int


def test_model_equality_repr_and_hash():
    assert Box("x", tags=["a"]) == Box(name="x", tags=["a"])
    assert Box("x") != Box("y") and Box("x") != Span(1)
    assert Box("x").__eq__(("x",)) is NotImplemented
    assert repr(Span(1, 2)) == "Span(start=1, end=2)"
    assert repr(Box("x")) == "Box(name='x', args=None, tags=[], spans=[], meta={}, count=0)"
    assert hash(Span(1, 2)) == hash(Span(1, 2)) and len({Span(1), Span(1), Span(2)}) == 2
    with pytest.raises(TypeError, match="unhashable"):
        hash(Box("x"))  # mutable: as attrs' @define


def test_model_mutable_is_slotted_frozen_is_immutable():
    b = Box("x")
    b.count = 3
    assert b.count == 3
    with pytest.raises(AttributeError):
        b.cuont = 3  # a typo is an error: __slots__
    s = Span(1)
    with pytest.raises(AttributeError, match="immutable"):
        s.start = 2
    with pytest.raises(AttributeError, match="immutable"):
        del s.end


def test_model_asdict_evolve_copy_pickle():
    b = Box("x", tags=["t"], spans=[Span(1, 2)], meta={"k": (Span(3),)})
    d = asdict(b)
    assert d == {"name": "x", "args": None, "tags": ["t"], "spans": [{"start": 1, "end": 2}],
                 "meta": {"k": [{"start": 3, "end": 0}]}, "count": 0}
    assert d["tags"] is not b.tags  # attrs' asdict: new collections
    flat = asdict(b, recurse=False)
    assert flat["spans"] is b.spans and list(flat) == list(fields(Box))
    e = evolve(b, count=2, args=("z",))
    assert (e.count, e.args, e.name, b.count) == (2, ["z"], "x", 0)
    with pytest.raises(TypeError):
        evolve(b, nope=1)
    assert evolve(Span(1), end=5) == Span(1, 5)
    for obj in (b, Span(1, 2)):
        assert copy.copy(obj) == obj and copy.deepcopy(obj) == obj
        assert pickle.loads(pickle.dumps(obj)) == obj
    deep = copy.deepcopy(b)
    assert deep.tags is not b.tags


class Base(Model):
    a: int


class Derived(Base):
    b: int = 1


def test_model_subclass_adds_fields():
    assert fields(Derived) == ("a", "b")
    d = Derived(5)
    assert (d.a, d.b) == (5, 1) and repr(d) == "Derived(a=5, b=1)"
    assert Derived(5) != Base(5)
