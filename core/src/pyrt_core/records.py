"""Value classes without attrs, for the OCI runtime's hot path.

Style: the project's data types are attrs classes (:mod:`pyrt_core.models`); these
bases are the measured exception for the types ``pyrt-runtime create`` builds on
every call (the rule: docs/architecture.md, "The hot path"): the runtime's config
types (:mod:`pyrt_core.runtime.config`, :mod:`pyrt_core.runtime.seccomp_config`), the
entry points of the plugin index, and the namespaces and cgroups plugins' plans and
records.  attrs costs ~30 ms of imports there (typing, inspect, re, enum) and
``typing.NamedTuple`` ~10 ms, on a command whose whole budget is runc's ~40 ms
(``python -c "import pyrt_core.runtime.config"``, median of 30: 51 ms with attrs,
11 ms without; ``python -c pass``: 10 ms).  Keep this module free of imports.

* :class:`Record` / :class:`FrozenRecord`: what attrs' ``@define`` / ``@frozen``
  gave the runtime's config types (:mod:`pyrt_core.runtime.config`).  The
  subclass lists its fields in ``__slots__`` (in ``__init__`` order) and
  writes its ``__init__``; the base gives ``==`` by value and a repr, and the
  frozen one immutability and a hash.  :func:`evolve` is ``attrs.evolve``.
* :class:`TupleRecord`: what ``typing.NamedTuple`` gave the namespaces plugin's
  plans.  A subclass declares its fields as annotations, in order, with
  defaults as class attributes::

      class PreparedMount(TupleRecord):
          mount: object
          source_fd: int | None = None

  Instances take the fields by position or by name and have NamedTuple's
  ``_fields``, ``_replace``, ``_asdict``, iteration (unpacking), equality,
  hashing and repr; setting or deleting an attribute raises AttributeError.
"""
from __future__ import annotations


class Record:
    """Base of the mutable config types (attrs' ``@define``): ``==`` by value of the
    fields (the subclass's ``__slots__``, in ``__init__`` order), a repr, unhashable."""

    __slots__ = ()

    def _values(self) -> tuple:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{self.__class__.__name__}({fields})"


class FrozenRecord(Record):
    """Base of the immutable config types (attrs' ``@frozen``): hashable; setting or
    deleting a field raises AttributeError.  ``__init__`` stores with :meth:`_set`."""

    __slots__ = ()

    def _set(self, *values) -> None:
        for k, v in zip(self.__slots__, values, strict=True):
            object.__setattr__(self, k, v)

    def __setattr__(self, name, value):
        raise AttributeError(f"{self.__class__.__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name):
        raise AttributeError(f"{self.__class__.__name__} is immutable: cannot delete {name!r}")

    def __hash__(self) -> int:
        return hash((self.__class__, self._values()))

    def __reduce__(self):  # copy and pickle: through __init__, as __setattr__ refuses
        return self.__class__, self._values()


def evolve(obj, **changes):
    """A copy of the config object ``obj`` with ``changes`` (what ``attrs.evolve`` did)."""
    values = {k: getattr(obj, k) for k in obj.__slots__}
    unknown = changes.keys() - values.keys()
    if unknown:
        raise TypeError(f"{obj.__class__.__name__} has no field {', '.join(sorted(unknown))}")
    values.update(changes)
    return obj.__class__(**values)


_MISSING = object()


class TupleRecord:
    """NamedTuple's replacement (see the module docstring)."""

    _fields: tuple = ()
    _defaults: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fields = list(cls._fields)
        defaults = dict(cls._defaults)
        for name in cls.__dict__.get("__annotations__", {}):
            if name in fields:
                raise TypeError(f"{cls.__name__}: field {name!r} is declared twice")
            fields.append(name)
            default = cls.__dict__.get(name, _MISSING)
            if default is not _MISSING:
                defaults[name] = default
            elif defaults:
                raise TypeError(f"{cls.__name__}: field {name!r} without a default "
                                "follows one with a default")
        cls._fields = tuple(fields)
        cls._defaults = defaults

    def __init__(self, *args, **kwargs):
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__} takes {len(fields)} fields, "
                            f"{len(args)} given")
        values = dict(zip(fields, args))
        for name, value in kwargs.items():
            if name in values or name not in fields:
                why = "given twice" if name in values else "not a field"
                raise TypeError(f"{type(self).__name__}: {name!r} is {why}")
            values[name] = value
        if len(values) < len(fields):
            for name in fields:
                if name not in values:
                    default = self._defaults.get(name, _MISSING)
                    if default is _MISSING:
                        raise TypeError(f"{type(self).__name__}: missing field {name!r}")
                    values[name] = default
        d = self.__dict__
        for name in fields:
            d[name] = values[name]

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def __iter__(self):
        d = self.__dict__
        return iter([d[name] for name in self._fields])

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return tuple(self) == tuple(other)

    def __hash__(self):
        return hash(tuple(self))

    def __repr__(self):
        d = self.__dict__
        return f"{type(self).__name__}({', '.join(f'{n}={d[n]!r}' for n in self._fields)})"

    def _asdict(self) -> dict:
        return dict(zip(self._fields, self))

    def _replace(self, **changes):
        """A copy with some fields changed (ValueError for a name that is not a field)."""
        values = self._asdict()
        for name in changes:
            if name not in values:
                raise ValueError(f"{type(self).__name__}: {name!r} is not a field")
        values.update(changes)
        return type(self)(**values)
