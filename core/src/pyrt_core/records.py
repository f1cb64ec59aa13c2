"""Value classes without attrs: the OCI runtime's types and the engine's models.

Style: the project declared its data types as attrs classes; the types every container
command builds are plain classes on these bases instead, the measured exception (the
rule: docs/architecture.md, "The hot path"): the runtime's config types
(:mod:`pyrt_core.runtime.config`, :mod:`pyrt_core.runtime.seccomp_config`), the entry
points of the plugin index, the namespaces and cgroups plugins' plans and records, and
the engine's models (:mod:`pyrt_core.models`, :mod:`pyrt_core.netmodel`).  attrs costs
~30 ms of imports there (typing, inspect, re, enum) and ``typing.NamedTuple`` ~10 ms, on
commands whose whole budget is runc's ~40 ms (``python -c "import
pyrt_core.runtime.config"``, median of 30: 51 ms with attrs, 11 ms without; ``python -c
pass``: 10 ms).  Keep this module free of imports.

* :class:`Record` / :class:`FrozenRecord`: what attrs' ``@define`` / ``@frozen``
  gave the runtime's config types (:mod:`pyrt_core.runtime.config`).  The
  subclass lists its fields in ``__slots__`` (in ``__init__`` order) and
  writes its ``__init__``; the base gives ``==`` by value and a repr, and the
  frozen one immutability and a hash.  :func:`evolve` is ``attrs.evolve``.
* :class:`Model`: what attrs' ``@define`` / ``@frozen`` gave the engine's models,
  declared the same way (annotations, defaults, :func:`field` with ``factory`` and
  ``converter``; ``frozen=True`` as a class keyword); :func:`fields`, :func:`asdict`,
  :func:`evolve` are attrs' functions.  Building the classes of :mod:`pyrt_core.models`
  takes ~0.5 ms, against ~20 ms for attrs and its classes.
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

    def _names(self) -> tuple:
        """The fields, in ``__init__`` order: the subclass's ``__slots__`` (a
        :class:`Model`'s ``_fields``)."""
        return self.__slots__

    def _values(self) -> tuple:
        return tuple([getattr(self, k) for k in self._names()])

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._names())
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
    values = {k: getattr(obj, k) for k in obj._names()}
    unknown = changes.keys() - values.keys()
    if unknown:
        raise TypeError(f"{obj.__class__.__name__} has no field {', '.join(sorted(unknown))}")
    values.update(changes)
    return obj.__class__(**values)


_MISSING = object()
#: a field's default when it has none (:func:`field_spec`)
MISSING = _MISSING


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


# -- Model: the engine's data types (what attrs' @define / @frozen gave models.py) --------


class Field:
    """What :func:`field` declares for one field of a :class:`Model`."""

    __slots__ = ("default", "factory", "converter")

    def __init__(self, default, factory, converter) -> None:
        self.default, self.factory, self.converter = default, factory, converter


def field(*, default=_MISSING, factory=None, converter=None):
    """A field of a :class:`Model` with more than a plain default (attrs' ``field``):
    ``factory`` makes the default for each instance (``list``, ``dict``, a class),
    ``converter`` is applied to the value ``__init__`` receives (or to the default)."""
    if default is not _MISSING and factory is not None:
        raise TypeError("a field takes a default or a factory, not both")
    return Field(default, factory, converter)


class _ModelMeta(type):
    """Makes a :class:`Model` subclass from its annotations: the fields in order, with
    ``__slots__`` (no other attribute can be set: a typo is an error, as with attrs'
    slotted classes) and the defaults kept aside (a slot and a class attribute of the same
    name cannot coexist).  ``frozen=True`` as a class keyword makes it immutable and
    hashable."""

    def __new__(mcls, name, bases, ns, frozen=False):
        if not any(isinstance(b, _ModelMeta) for b in bases):  # Model itself
            return super().__new__(mcls, name, bases, ns)
        own = []
        specs: dict = {}
        for base in reversed(bases):
            specs.update(getattr(base, "_specs", {}))
        inherited = [f for b in bases for f in getattr(b, "_fields", ())]
        for fname, annotation in ns.get("__annotations__", {}).items():
            if isinstance(annotation, str) and annotation.startswith(("ClassVar", "typing.ClassVar")):
                continue
            value = ns.pop(fname, _MISSING)
            if not isinstance(value, Field):
                value = Field(value, None, None)
            specs[fname] = value
            if fname not in inherited:
                own.append(fname)
        fields = tuple(inherited + own)
        seen_default = False
        for fname in fields:
            spec = specs[fname]
            if spec.default is _MISSING and spec.factory is None:
                if seen_default:
                    raise TypeError(f"{name}: field {fname!r} without a default follows one "
                                    "with a default")
            else:
                seen_default = True
        ns["__slots__"] = tuple(own)
        ns["_fields"] = fields
        ns["_specs"] = specs
        frozen = ns["_frozen"] = frozen or any(getattr(b, "_frozen", False) for b in bases)
        cls = super().__new__(mcls, name, bases, ns)
        if frozen:  # FrozenRecord's immutability and hash
            for attr in ("__setattr__", "__delattr__", "__hash__"):
                setattr(cls, attr, FrozenRecord.__dict__[attr])
        return cls


class Model(Record, metaclass=_ModelMeta):
    """Base of the engine's data types (:mod:`pyrt_core.models`), declared like attrs
    classes: fields as annotations in ``__init__`` order, a default as the class
    attribute or :func:`field`::

        class Layer(Model):
            chain_id: str
            parent: str | None = None
            names: list[str] = field(factory=list)

        class IdMap(Model, frozen=True):
            container_id: int
            host_id: int
            size: int

    Instances take the fields by position or by name; they have :class:`Record`'s ``==``
    by value (instances of the same class only) and repr, ``__slots__``, copy and pickle;
    a frozen class's are immutable and hashable, a mutable class's unhashable.
    :func:`fields`, :func:`asdict` and :func:`evolve` are attrs' functions of the same
    names.  The module must use ``from __future__ import annotations`` (the
    annotations are read as strings: no typing import)."""

    __slots__ = ()
    _fields: tuple = ()
    _specs: dict = {}
    _frozen = False

    def __init__(self, *args, **kwargs) -> None:
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}() takes {len(fields)} fields, "
                            f"{len(args)} given")
        specs = self._specs
        setter = object.__setattr__
        taken = 0
        for i, fname in enumerate(fields):
            if i < len(args):
                value = args[i]
                if fname in kwargs:
                    raise TypeError(f"{type(self).__name__}() got two values for {fname!r}")
            elif fname in kwargs:
                value = kwargs[fname]
                taken += 1
            else:
                spec = specs[fname]
                if spec.factory is not None:
                    value = spec.factory()
                elif spec.default is _MISSING:
                    raise TypeError(f"{type(self).__name__}() is missing the field {fname!r}")
                else:
                    value = spec.default
            converter = specs[fname].converter
            setter(self, fname, value if converter is None else converter(value))
        if taken < len(kwargs):
            unknown = sorted(k for k in kwargs if k not in fields)
            raise TypeError(f"{type(self).__name__}() got an unexpected field "
                            f"{', '.join(map(repr, unknown))}")

    def _names(self) -> tuple:
        return self._fields

    def __reduce__(self):  # copy, deepcopy and pickle: through __init__
        return type(self), self._values()


def fields(cls) -> tuple:
    """The names of a :class:`Model` class's fields, in ``__init__`` order (attrs'
    ``fields``, by name)."""
    return cls._fields


def field_spec(cls, name: str) -> Field:
    """What the :class:`Model` class ``cls`` declares for its field ``name``: its
    ``default`` (:data:`MISSING` for none), ``factory`` and ``converter``."""
    return cls._specs[name]


def asdict(obj, recurse: bool = True) -> dict:
    """``attrs.asdict``: a dict of the fields; with ``recurse``, models within (in lists,
    tuples, sets and dicts too) become dicts and every collection a new list or dict."""
    if not recurse:
        return {k: getattr(obj, k) for k in obj._fields}
    return {k: _plain(getattr(obj, k)) for k in obj._fields}


def _plain(value):
    if isinstance(value, Model):
        return asdict(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value
