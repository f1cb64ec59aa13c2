"""Value classes without attrs, for the OCI runtime's hot path and the engine's models.

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


# -- attrs' declarations without attrs: the engine's models ------------------------------
#
# :mod:`pyrt_core.models` (containers, images, the records every engine command reads)
# declares its classes as attrs did -- annotated fields, defaults, ``field(factory=...,
# converter=...)``, ``@define`` / ``@frozen`` -- but through these: importing attrs costs
# ~30 ms (typing, inspect, re, enum) and defining the classes with it ~10 ms more, on
# commands (``ps``, ``rm``, ``stop``, conmon's exit command) whose own work is a few
# milliseconds.  What they give: ``__init__`` (positional or by name, in field order;
# defaults, factories, converters; a TypeError for a missing or unknown field), ``==``
# by value, attrs' repr, a hash and immutability for ``@frozen`` (unhashable ``@define``
# classes, as attrs), :func:`fields` and :func:`asdict` (attrs' recursion into records,
# lists and dicts).  A type checker reads them as dataclass-like (PEP 681).

TYPE_CHECKING = False  # (typing's costs ~3 ms; a type checker treats this name as True)
if TYPE_CHECKING:
    from typing import dataclass_transform
else:
    def dataclass_transform(**_kw):
        return lambda f: f


class Field:
    """One declared field: ``name``, ``default`` (or a ``factory``), a ``converter``."""

    __slots__ = ("name", "default", "factory", "converter")

    def __init__(self, default=_MISSING, factory=None, converter=None, name=""):
        self.name, self.default, self.factory, self.converter = name, default, factory, converter

    def __repr__(self) -> str:
        return f"Field(name={self.name!r})"


def field(*, default=_MISSING, factory=None, converter=None):
    """attrs' ``field``: a default, or a ``factory`` called for each instance, and a
    ``converter`` applied to the value given (or the default)."""
    return Field(default, factory, converter)


def fields(cls) -> tuple:
    """The fields of a class made with :func:`define` or :func:`frozen`, in order."""
    try:
        return cls.__record_fields__
    except AttributeError:
        raise TypeError(f"{cls!r} is not a record class") from None


def _declare(cls, frozen: bool):
    own = []
    for name in cls.__dict__.get("__annotations__", {}):
        value = cls.__dict__.get(name, _MISSING)
        f = value if isinstance(value, Field) else Field(value)
        f.name = name
        own.append(f)
        if value is not _MISSING:
            delattr(cls, name)
    inherited = [f for f in getattr(cls, "__record_fields__", ()) if f.name not in
                 {g.name for g in own}]
    all_fields = tuple(inherited + own)
    seen_default = False
    for f in all_fields:
        if f.default is not _MISSING or f.factory is not None:
            seen_default = True
        elif seen_default:
            raise TypeError(f"{cls.__name__}: field {f.name!r} without a default follows one "
                            "with a default")
    cls.__record_fields__ = all_fields
    cls.__init__ = _make_init(cls.__name__, all_fields, frozen)
    cls.__eq__ = _eq
    cls.__ne__ = _ne
    cls.__repr__ = _repr
    if frozen:
        cls.__setattr__ = _frozen_setattr
        cls.__delattr__ = _frozen_delattr
        cls.__hash__ = _hash
        cls.__reduce__ = _reduce
    else:
        cls.__hash__ = None
    return cls


def _make_init(clsname: str, all_fields: tuple, frozen: bool):
    n = len(all_fields)
    names = {f.name for f in all_fields}

    def __init__(self, *args, **kwargs):
        if len(args) > n:
            raise TypeError(f"{clsname}() takes {n} fields, {len(args)} given")
        for k in kwargs:
            if k not in names:
                raise TypeError(f"{clsname}() got an unexpected keyword argument {k!r}")
        d = self.__dict__
        for i, f in enumerate(all_fields):
            if i < len(args):
                if f.name in kwargs:
                    raise TypeError(f"{clsname}() got multiple values for {f.name!r}")
                v = args[i]
            elif f.name in kwargs:
                v = kwargs[f.name]
            elif f.factory is not None:
                v = f.factory()
            elif f.default is not _MISSING:
                v = f.default
            else:
                raise TypeError(f"{clsname}() missing the field {f.name!r}")
            if f.converter is not None:
                v = f.converter(v)
            d[f.name] = v

    return __init__


def _values(self) -> tuple:
    d = self.__dict__
    return tuple(d[f.name] for f in self.__record_fields__)


def _eq(self, other):
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _ne(self, other):
    result = _eq(self, other)
    return result if result is NotImplemented else not result


def _repr(self) -> str:
    d = self.__dict__
    inner = ", ".join(f"{f.name}={d[f.name]!r}" for f in self.__record_fields__)
    return f"{self.__class__.__qualname__}({inner})"


def _hash(self) -> int:
    return hash((self.__class__, _values(self)))


def _frozen_setattr(self, name, value):
    raise AttributeError(f"{self.__class__.__name__} is immutable: cannot set {name!r}")


def _frozen_delattr(self, name):
    raise AttributeError(f"{self.__class__.__name__} is immutable: cannot delete {name!r}")


def _reduce(self):  # copy and pickle: through __init__, as __setattr__ refuses
    return self.__class__, _values(self)


@dataclass_transform(field_specifiers=(field,))
def define(cls):
    """attrs' ``@define`` for the engine's models (see above)."""
    return _declare(cls, frozen=False)


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen(cls):
    """attrs' ``@frozen``: :func:`define`, immutable and hashable."""
    return _declare(cls, frozen=True)


def asdict(obj, recurse: bool = True) -> dict:
    """attrs' ``asdict``: the fields of ``obj`` by name; with ``recurse`` records inside
    (also in lists, tuples and dicts) become dicts too, and every sequence a list."""
    d = obj.__dict__
    if not recurse:
        return {f.name: d[f.name] for f in obj.__record_fields__}
    return {f.name: _plain(d[f.name]) for f in obj.__record_fields__}


def _plain(v):
    if hasattr(v.__class__, "__record_fields__"):
        return asdict(v)
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {_plain(k): _plain(x) for k, x in v.items()}
    return v
