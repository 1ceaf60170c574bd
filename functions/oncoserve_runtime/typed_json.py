"""Read JSON into frozen dataclasses, strictly, and describe those dataclasses as JSON Schema.

One set of type hints serves both directions: the runtime reads ``model.json`` with
:func:`from_json` at cold start (a missing, unknown or mistyped key is an error naming its path),
and ``python -m contract`` writes ``functions/model.schema.json`` with :func:`json_schema`, so the
schema CI checks and the reader the functions run cannot disagree.

Supported hints: ``str``, ``int``, ``float``, ``bool``, ``Any``, ``X | None`` (an optional key),
``tuple[X, ...]``, ``dict[str, X]``, ``Literal[...]`` and nested dataclasses. A field's
``metadata={"schema": {...}}`` adds constraints to the written schema (patterns, bounds).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


class ContractError(ValueError):
    """A value that does not fit its declared type; ``path`` is where, e.g. ``output.threshold``."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or 'the document'}: {problem}")
        self.path, self.problem = path, problem


def _optional(hint: Any) -> Any | None:
    """``X`` for ``X | None``, else None."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        rest = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(rest) == 1 and len(typing.get_args(hint)) == 2:
            return rest[0]
    return None


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_json(cls: type[T], value: Any, path: str = "") -> T:
    """``value`` (parsed JSON) as an instance of dataclass ``cls``; :class:`ContractError` if it does not fit."""
    return _read(cls, value, path)


def _read(hint: Any, value: Any, path: str) -> Any:
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return _read_dataclass(hint, value, path)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if value not in args:
            raise ContractError(path, f"expected one of {list(args)}, got {value!r}")
        return value
    inner = _optional(hint)
    if inner is not None:
        return None if value is None else _read(inner, value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise ContractError(path, "expected an array")
        return tuple(_read(args[0], item, f"{path}[{i}]") for i, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ContractError(path, "expected an object")
        return {key: _read(args[1], item, f"{path}.{key}") for key, item in value.items()}
    return _read_scalar(hint, value, path)


def _read_scalar(hint: type, value: Any, path: str) -> Any:
    # bool is an int in Python, and JSON writes 1.0 as 1: accept what the JSON type allows.
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and type(value) is hint:
        return value
    raise ContractError(path, f"expected {_NAMES.get(hint, hint)}, got {type(value).__name__}")


def _read_dataclass(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise ContractError(path, "expected an object")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ContractError(path, f"unknown key(s) {unknown}")
    hints, kwargs = _hints(cls), {}
    for name, field in fields.items():
        where = f"{path}.{name}" if path else name
        if name in value:
            kwargs[name] = _read(hints[name], value[name], where)
        elif not _has_default(field):
            raise ContractError(where, "required key missing")
    return cls(**kwargs)


def _has_default(field: dataclasses.Field) -> bool:
    return field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def json_schema(hint: Any, defs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON Schema (2020-12) that :func:`from_json` enforces for ``hint``.

    With ``defs``, each dataclass is written once into it, by class name, and referred to as
    ``#/$defs/<name>`` (a document's shared parts then read once, not once per use)."""
    if hint is Any:
        return {}
    if dataclasses.is_dataclass(hint):
        if defs is None:
            return _dataclass_schema(hint, None)
        if hint.__name__ not in defs:
            defs[hint.__name__] = {}  # reserved first: a dataclass may refer to itself
            defs[hint.__name__] = _dataclass_schema(hint, defs)
        return {"$ref": f"#/$defs/{hint.__name__}"}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return {"enum": list(args)} if len(args) > 1 else {"const": args[0]}
    inner = _optional(hint)
    if inner is not None:
        return _nullable(json_schema(inner, defs))
    if origin is tuple:
        return {"type": "array", "items": json_schema(args[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": json_schema(args[1], defs)}
    return {"type": _JSON_TYPES[hint]}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema.get("type"), str):
        return {**schema, "type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def _dataclass_schema(cls: type, defs: dict[str, Any] | None) -> dict[str, Any]:
    hints = _hints(cls)
    properties, required = {}, []
    for field in dataclasses.fields(cls):
        properties[field.name] = {**json_schema(hints[field.name], defs), **field.metadata.get("schema", {})}
        if not _has_default(field):
            required.append(field.name)
    schema: dict[str, Any] = {"type": "object"}
    doc = (cls.__doc__ or "").strip()
    if doc and not doc.startswith(f"{cls.__name__}("):  # dataclasses invent a signature docstring
        schema["description"] = " ".join(doc.split())
    return {**schema, "required": required, "properties": properties, "additionalProperties": False}
