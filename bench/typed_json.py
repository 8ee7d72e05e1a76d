"""JSON objects read into dataclasses, checked field by field against the annotations; unknown keys kept.

What each field must hold is derived once per dataclass from its annotations (``str``, ``int``, ``float``,
``bool``, ``X | None``, ``Literal[...]``, ``list[X]``, ``dict[str, X]``, nested dataclasses, ``TypedDict``,
``Any``), so a field added to a dataclass is checked with no second list to keep in step. A union takes the
first of its members whose kind (object, list, string...) the value has. A value of the wrong kind, a missing
required field or a rule the caller adds is a ``Damaged`` error that says where: the record (an item of a list
of dataclasses, e.g. ``cells[3] (pooled/db)``), the field inside it (``endpoints["/db"].histogram``) and what
was expected. Keys a dataclass does not declare go to its ``unknown_fields`` (when it has one) and
``to_json`` writes them back, so a file from a newer writer survives an older one's rewrite.

Not pydantic (installed with FastAPI): its strict mode refuses a dict for a standard-library dataclass,
and its lax mode reads ``"2"`` as ``2``, the very fault this exists to report.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass
from typing import Any, Generic, Literal, TypeVar, Union, get_args, get_origin

UNKNOWN_FIELDS = "unknown_fields"

T = TypeVar("T")
# (field name, value) -> what is wrong with it, or None: the caller's rules for leaves (numbers, strings).
LeafRule = Callable[[str, Any], str | None]
# A built record -> (field, what is wrong), or None: rules across fields of one record.
RecordRule = Callable[[Any], tuple[str, str] | None]

_UNIONS = (Union, types.UnionType)


class Damaged(ValueError):
    """A JSON value that does not match the dataclass it is read into."""

    def __init__(self, record: str, field: str, problem: str) -> None:
        self.record = record  # "" at the top level, else e.g. "cells[3] (pooled/db)"
        self.field = field  # path inside the record, e.g. 'endpoints["/db"].histogram'; "" for the record itself
        self.problem = problem  # e.g. "must be an integer, got a string ('2')"
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"field '{self.field}'" if self.field else ""
        return ": ".join(part for part in (self.record, f"{where} {self.problem}".strip()) if part)


class _At(tuple[Any, ...]):
    """Where a value sits: one step (a field, a key, an item, a record of a list) from where its parent sits.

    One is made per value read and almost none is ever shown, so a step only links to its parent; the
    record and the path (``cells[3] (pooled/db)``, ``endpoints["/db"].histogram``) are spelled out when a
    value is refused (``damaged``). A bare tuple made with ``tuple.__new__``: spelling the path of every value
    as it was read cost a third of reading a 1,000-cell file. ``name``: the innermost field's own name.
    """

    __slots__ = ()

    # (parent, step, argument, name); the top level is the empty tuple.
    @property
    def name(self) -> str:
        return str(self[3]) if self else ""

    def field(self, name: str) -> _At:
        return _new(_At, (self, _FIELD, name, name))

    def key(self, key: str) -> _At:
        return _new(_At, (self, _KEY, key, self[3] if self else ""))

    def item(self, index: int) -> _At:
        return _new(_At, (self, _ITEM, index, self[3] if self else ""))

    def record_item(self, index: int, label: str) -> _At:
        return _new(_At, (self, _RECORD, (index, label), ""))

    def located(self) -> tuple[str, str]:
        """The record ("" at the top level) and the path inside it."""
        if not self:
            return "", ""
        parent, step, argument, _ = self
        record, path = parent.located()
        if step == _FIELD:
            return record, f"{path}.{argument}" if path else argument
        if step == _KEY:
            return record, f'{path}["{argument}"]'
        if step == _ITEM:
            return record, f"{path}[{argument}]"
        index, label = argument
        where = f"{path}[{index}]{f' ({label})' if label else ''}"
        return (f"{record}: {where}" if record else where), ""

    def damaged(self, problem: str) -> Damaged:
        return Damaged(*self.located(), problem)


_new = tuple.__new__
_FIELD, _KEY, _ITEM, _RECORD = range(4)
_TOP = _new(_At, ())


@dataclass(frozen=True)
class _Kind:
    """What one annotation accepts, compiled once: a one-level test, a reader for values that pass it."""

    expected: str  # e.g. "an integer or null"
    fits: Callable[[Any], bool]
    read: Callable[[Any, _At], Any]

    def checked(self, value: Any, at: _At) -> Any:
        if not self.fits(value):
            raise at.damaged(f"must be {self.expected}, got {_json_kind(value)}")
        return self.read(value, at)


def _as_is(value: Any, at: _At) -> Any:
    return value


_ANY = _Kind("any JSON value", lambda value: True, _as_is)
_SCALARS: dict[Any, tuple[str, Callable[[Any], bool]]] = {
    type(None): ("null", lambda value: value is None),
    bool: ("true or false", lambda value: isinstance(value, bool)),
    int: ("an integer", lambda value: isinstance(value, int) and not isinstance(value, bool)),
    float: ("a number", lambda value: isinstance(value, int | float) and not isinstance(value, bool)),
    str: ("a string", lambda value: isinstance(value, str)),
}


@dataclass(frozen=True)
class _Field:
    name: str
    kind: _Kind
    required: bool


@dataclass(frozen=True)
class _Schema:
    fields: tuple[_Field, ...]
    names: frozenset[str]
    keeps_unknown: bool  # the dataclass has an ``unknown_fields`` to keep undeclared keys in


class Reader(Generic[T]):
    """Reads JSON into ``cls`` (a dataclass), checking every declared field; build once, read many.

    ``labels``: fields whose string values name a record in an error (e.g. variant, scenario).
    ``leaf_rule`` sees every scalar of a typed field (values under ``Any`` are not looked at);
    ``record_rules`` see each record of their class (a dataclass or a ``TypedDict``) once it is built.
    ``field_shapes``: for a free-form field (``dict[str, Any]``), the shape its readers rely on, as a type
    (typically a ``TypedDict``): checked when read, the value kept as found.
    """

    def __init__(
        self,
        cls: type[T],
        *,
        labels: Sequence[str] = (),
        leaf_rule: LeafRule | None = None,
        record_rules: Mapping[type, RecordRule] | None = None,
        field_shapes: Mapping[tuple[type, str], Any] | None = None,
    ) -> None:
        self.cls = cls
        self.labels = tuple(labels)
        self.leaf_rule = leaf_rule
        self.record_rules = dict(record_rules or {})
        self.field_shapes = dict(field_shapes or {})
        self._kinds: dict[Any, _Kind] = {}
        self._schemas: dict[type, _Schema] = {}

    def read(self, raw: object) -> T:
        """``raw`` (parsed JSON) as ``cls``. Raises ``Damaged`` at the first value that does not fit; ``raw``
        is never modified (values under ``Any`` are shared with it, not copied)."""
        built: T = self._kind(self.cls).checked(raw, _TOP)
        return built

    def _record(self, cls: type, raw: dict[str, Any], at: _At) -> Any:
        schema = self._schema(cls)
        values: dict[str, Any] = {}
        for field in schema.fields:
            here = at.field(field.name)
            if field.name in raw:
                values[field.name] = field.kind.checked(raw[field.name], here)
            elif field.required:
                raise here.damaged(f"is missing (expected {field.kind.expected})")
        if schema.keeps_unknown:
            values[UNKNOWN_FIELDS] = {key: value for key, value in raw.items() if key not in schema.names}
        return self._ruled(cls, cls(**values), at)

    def _ruled(self, shape: Any, built: Any, at: _At) -> Any:
        """``built`` once the caller's rule for ``shape`` (if any) found nothing wrong with it."""
        rule = self.record_rules.get(shape)
        found = rule(built) if rule else None
        if found:
            raise at.field(found[0]).damaged(found[1])
        return built

    def _schema(self, cls: type) -> _Schema:
        if cls not in self._schemas:
            hints = typing.get_type_hints(cls)
            declared = dataclasses.fields(cls)
            fields = tuple(
                _Field(
                    f.name,
                    self._kind(self.field_shapes.get((cls, f.name), hints[f.name])),
                    f.default is MISSING and f.default_factory is MISSING,
                )
                for f in declared
                if f.name != UNKNOWN_FIELDS
            )
            keeps_unknown = any(f.name == UNKNOWN_FIELDS for f in declared)
            self._schemas[cls] = _Schema(fields, frozenset(f.name for f in fields), keeps_unknown)
        return self._schemas[cls]

    def _kind(self, hint: Any) -> _Kind:
        if hint not in self._kinds:
            self._kinds[hint] = self._compile(hint)
        return self._kinds[hint]

    def _compile(self, hint: Any) -> _Kind:
        origin, args = get_origin(hint), get_args(hint)
        if hint is Any or hint is object:
            return _ANY
        if hint in _SCALARS:
            expected, fits = _SCALARS[hint]
            return _Kind(expected, fits, self._leaf if hint is not type(None) else _as_is)
        if origin in _UNIONS:
            options = [self._kind(option) for option in args]
            if len(options) == 2 and options[1].expected == "null" and options[0].fits(None) is False:
                # ``X | None``, the commonest union here: one test instead of a search through the options.
                inner = options[0]
                return _Kind(
                    f"{inner.expected} or null",
                    lambda v: v is None or inner.fits(v),
                    lambda value, at: None if value is None else inner.read(value, at),
                )

            def read_union(value: Any, at: _At) -> Any:
                return next(option for option in options if option.fits(value)).read(value, at)

            return _Kind(
                " or ".join(o.expected for o in options), lambda v: any(o.fits(v) for o in options), read_union
            )
        if origin is Literal:
            return _Kind("one of " + ", ".join(map(repr, args)), lambda value: value in args, _as_is)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return _Kind("an object", _is_object, lambda value, at: self._record(hint, value, at))
        if typing.is_typeddict(hint):
            return _Kind("an object", _is_object, self._read_typeddict(hint))
        if hint is dict or origin is dict:
            values = self._kind(args[1]) if args else _ANY
            if values is _ANY:
                return _Kind("an object", _is_object, _as_is)
            return _Kind(
                "an object",
                _is_object,
                lambda value, at: {key: values.checked(item, at.key(key)) for key, item in value.items()},
            )
        if hint is list or origin is list:
            items = self._kind(args[0]) if args else _ANY
            if items is _ANY:
                return _Kind("a list", _is_list, _as_is)
            if args and dataclasses.is_dataclass(args[0]):
                return _Kind("a list", _is_list, self._read_records(items))
            return _Kind(
                "a list", _is_list, lambda value, at: [items.checked(item, at.item(i)) for i, item in enumerate(value)]
            )
        return _ANY  # a form this reader does not know (tuple, enum...): accepted as is, unchecked

    def _read_typeddict(self, hint: Any) -> Callable[[Any, _At], Any]:
        keys = {name: self._kind(key_hint) for name, key_hint in typing.get_type_hints(hint).items()}
        required: frozenset[str] = hint.__required_keys__

        def read_typeddict(value: dict[str, Any], at: _At) -> Any:
            out = dict(value)  # keys the shape does not name are kept as they are
            for name, kind in keys.items():
                if name in value:
                    out[name] = kind.checked(value[name], at.field(name))
                elif name in required:
                    raise at.field(name).damaged(f"is missing (expected {kind.expected})")
            return self._ruled(hint, out, at)

        return read_typeddict

    def _read_records(self, records: _Kind) -> Callable[[Any, _At], Any]:
        def read_records(value: list[Any], at: _At) -> list[Any]:
            return [records.checked(item, at.record_item(i, self._label(item))) for i, item in enumerate(value)]

        return read_records

    def _leaf(self, value: Any, at: _At) -> Any:
        problem = self.leaf_rule(at.name, value) if self.leaf_rule else None
        if problem:
            raise at.damaged(problem)
        return value

    def _label(self, raw: object) -> str:
        if not isinstance(raw, dict):
            return ""
        return "/".join(raw[name] for name in self.labels if isinstance(raw.get(name), str))


def _is_object(value: Any) -> bool:
    return isinstance(value, dict)


def _is_list(value: Any) -> bool:
    return isinstance(value, list)


def _json_kind(value: Any) -> str:
    """The JSON kind of ``value``, with the value itself when it is short."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        keys = ", ".join(repr(key) for key in list(value)[:3])
        return f"an object (keys {keys}{', ...' if len(value) > 3 else ''})" if value else "an empty object"
    if isinstance(value, list):
        return "a list"
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(type(value), "a value")
    shown = repr(value)
    return f"{kind} ({shown})" if len(shown) <= 40 else kind


def to_json(value: Any) -> Any:
    """``value`` as plain JSON data: dataclasses as objects, their ``unknown_fields`` written back after the rest."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != UNKNOWN_FIELDS}
        unknown = getattr(value, UNKNOWN_FIELDS, {})
        out.update({key: item for key, item in unknown.items() if key not in out})
        return out
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value
