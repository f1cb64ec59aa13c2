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
