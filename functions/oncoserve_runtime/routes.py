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
    :data:`.error_codes.EVERY_ROUTE`) are the published contract; ``summary`` titles it in the docs.
    ``status`` is a success's HTTP status (202 for work accepted, not done); ``path_parameters`` name
    the ``{name}`` segments of ``path`` with their schemas. A route with ``merge_chunks`` scores one
    object in parts (``body.chunk`` {index, count}) and that function adds the parts' answers up to
    the whole object's: a job splits such an object into chunks rather than grouping objects.
    ``job_chunk_size`` (default, most) bounds the objects one job invocation takes through the route,
    so that a chunk ends well inside the function's timeout."""

    path: str
    schema: Mapping[str, Any] | None
    predict: Predict
    method: str = "POST"
    binary_types: tuple[str, ...] = ()
    response: Mapping[str, Any] | None = None
    errors: tuple[str, ...] = ()
    summary: str = ""
    status: int = 200
    path_parameters: Mapping[str, Mapping[str, Any]] | None = None
    merge_chunks: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None
    job_chunk_size: tuple[int, int] = (20, 100)  # ~3 s and ~13 s of skin's 130 ms requests

    @property
    def prefix(self) -> str:
        """``/brain`` of ``/brain/predict``: the task's part of the API."""
        return "/" + self.path.strip("/").split("/", 1)[0]

    @property
    def name(self) -> str:
        """``predict`` of ``/brain/predict``, ``jobs_id`` of ``/brain/jobs/{id}``: unique on its function."""
        return "_".join(part.strip("{}") for part in self.path.strip("/").split("/")[1:])

    @property
    def all_errors(self) -> tuple[str, ...]:
        """Every code this route can answer: its own, the JSON body's (a POST) and every route's."""
        body_errors = error_codes.JSON_BODY if self.schema is not None else ()
        codes = (*body_errors, *self.errors, *error_codes.EVERY_ROUTE)
        return tuple(dict.fromkeys(codes))
