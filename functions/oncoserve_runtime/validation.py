"""JSON Schema validation, compiled once per schema, with large numeric arrays checked in bulk.

The route schemas are the API contract (they are published in ``openapi.yaml``). fastjsonschema
checks them, but item by item in Python: a 7,129-probe profile cost ~6 ms that way, most of a
leukemia request. So the validator compiles each schema once and takes the per-item rules of the
top-level properties that hold many numbers or strings (``items`` of an array,
``additionalProperties`` of a mapping) out of the compiled code and checks them with NumPy and
built-ins instead: the same rules, the same ``invalid_request`` answer naming the field and rule.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable

import fastjsonschema
import numpy as np

from .errors import UnprocessableEntityError

_NUMBER_TYPES = {int, float}  # bool is its own type: type(True) is not int


@dataclass(frozen=True)
class _BulkRule:
    """The item schema of one top-level property, checked over all its items at once (in C: map,
    set, min and NumPy; a Python loop over 7,129 items would cost what this module saves)."""

    name: str
    container: str  # "array" (items) or "object" (additionalProperties)
    item: dict[str, Any]

    def check(self, body: dict[str, Any]) -> None:
        value = body.get(self.name)
        if self.container == "array" and isinstance(value, list):
            items = value
        elif self.container == "object" and isinstance(value, dict):
            items = list(value.values())
        else:
            return  # the structural schema has already refused a wrong container
        if items:
            problem = self._numbers(items) if self.item.get("type") == "number" else self._strings(items)
            if problem:
                index, message, rule = problem
                field = (f"body.{self.name}[{index}]" if self.container == "array"
                         else f"body.{self.name}.{list(value)[index]}")
                raise UnprocessableEntityError("invalid_request", f"{field} {message}",
                                               details={"field": field, "rule": rule})

    def _numbers(self, items: list[Any]) -> tuple[int, str, str] | None:
        if not set(map(type, items)) <= _NUMBER_TYPES:
            return next(i for i, v in enumerate(items) if type(v) not in _NUMBER_TYPES), "must be number", "type"
        try:
            values = np.asarray(items, dtype=np.float64)
        except OverflowError:  # an integer literal beyond float range: over any maximum
            values = np.asarray([v if abs(v) < 1e308 else (math.inf if v > 0 else -math.inf) for v in items])
        for rule, too_far, text in (("minimum", values < self.item.get("minimum", -math.inf), "bigger than or equal to"),
                                    ("maximum", values > self.item.get("maximum", math.inf), "smaller than or equal to")):
            if too_far.any():
                return int(np.flatnonzero(too_far)[0]), f"must be {text} {self.item[rule]}", rule
        return None

    def _strings(self, items: list[Any]) -> tuple[int, str, str] | None:
        if set(map(type, items)) != {str}:
            return next(i for i, v in enumerate(items) if type(v) is not str), "must be string", "type"
        shortest = self.item.get("minLength", 0)
        # minLength 1 (the usual rule) is "no empty string": a C-level scan, twice as fast as len() of each.
        if shortest and ("" in items if shortest == 1 else min(map(len, items)) < shortest):
            index = next(i for i, v in enumerate(items) if len(v) < shortest)
            return index, f"must be longer than or equal to {shortest} characters", "minLength"
        return None


_BULK_KEYWORDS = {"type", "minimum", "maximum", "minLength", "description"}


def _split_bulk_rules(schema: dict[str, Any]) -> tuple[dict[str, Any], list[_BulkRule]]:
    """A copy of ``schema`` without the bulk-checkable item rules, and those rules."""
    structural = copy.deepcopy(schema)
    rules = []
    for name, prop in structural.get("properties", {}).items():
        for container, keyword in (("array", "items"), ("object", "additionalProperties")):
            item = prop.get(keyword)
            if (prop.get("type") == container and isinstance(item, dict)
                    and item.get("type") in ("number", "string") and set(item) <= _BULK_KEYWORDS):
                rules.append(_BulkRule(name, container, item))
                prop[keyword] = True
    return structural, rules


class CompiledSchema:
    """``check(body)`` raises ``invalid_request`` naming the field and rule, as the schema says."""

    def __init__(self, schema: dict[str, Any]) -> None:
        structural, self._bulk = _split_bulk_rules(schema)
        self._structural: Callable[[Any], Any] = fastjsonschema.compile(structural)

    def check(self, body: dict[str, Any]) -> None:
        try:
            self._structural(body)
        except fastjsonschema.JsonSchemaValueException as exc:
            field = (exc.name or "data").replace("data", "body", 1)
            rule = (exc.message or "is invalid")
            # fastjsonschema prefixes the message with the field name; keep one copy of it.
            rule = rule.replace(exc.name or "", "", 1).strip() if exc.name else rule
            raise UnprocessableEntityError("invalid_request", f"{field} {rule}".strip(),
                                           details={"field": field, "rule": exc.rule})
        for bulk in self._bulk:
            bulk.check(body)


_COMPILED: dict[int, tuple[dict[str, Any], CompiledSchema]] = {}


def compiled(schema: dict[str, Any]) -> CompiledSchema:
    """The schema compiled once (route schemas live as long as the process)."""
    entry = _COMPILED.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = (schema, CompiledSchema(schema))
        _COMPILED[id(schema)] = entry
    return entry[1]
