"""A route of a function: its path, request and answer contract, and what it does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from . import error_codes
from .model import ModelBundle

Predict = Callable[[dict[str, Any], ModelBundle], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    """``METHOD path``: validate the body against ``schema`` (a POST's JSON body; ``None`` for a GET),
    then ``predict(body, model)``. A route with ``binary_types`` also takes a raw file of those media
    types as the body. ``response`` (the 200 body) and ``errors`` (the codes it can answer, besides
    :data:`.error_codes.EVERY_ROUTE`) are the published contract; ``summary`` titles it in the docs."""

    path: str
    schema: Mapping[str, Any] | None
    predict: Predict
    method: str = "POST"
    binary_types: tuple[str, ...] = ()
    response: Mapping[str, Any] | None = None
    errors: tuple[str, ...] = ()
    summary: str = ""

    @property
    def prefix(self) -> str:
        """``/brain`` of ``/brain/predict``: the task's part of the API."""
        return "/" + self.path.strip("/").split("/", 1)[0]

    @property
    def all_errors(self) -> tuple[str, ...]:
        """Every code this route can answer: its own, the JSON body's (a POST) and every route's."""
        body_errors = error_codes.JSON_BODY if self.schema is not None else ()
        codes = (*body_errors, *self.errors, *error_codes.EVERY_ROUTE)
        return tuple(dict.fromkeys(codes))
