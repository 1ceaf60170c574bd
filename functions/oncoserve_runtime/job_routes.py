"""``POST <prefix>/jobs`` and ``GET <prefix>/jobs/{id}``: batches and whole slides as asynchronous jobs.

Every function whose routes take ``{"s3": …}`` inputs gets them (see :mod:`.handler`); the work
itself is :mod:`.jobs`.
"""

from __future__ import annotations

from typing import Any

from . import response_schemas as rs
from .jobs import DEFAULT_PARTS, JOB_ID_PATTERN, MAX_JOB_ITEMS, MAX_PARTS, job_status, submit_job
from .routes import Route
from .s3_objects import S3_REFERENCE_SCHEMA

_COUNT = {"type": "integer", "minimum": 0}
JOB_ID_SCHEMA = {"type": "string", "pattern": JOB_ID_PATTERN, "description": "The id POST …/jobs answered."}
_ERRORS = ("s3_access_denied", "s3_unavailable", "s3_not_configured")


def job_request_schema(routes: list[Route]) -> dict[str, Any]:
    names = [route.name for route in routes]
    chunked = [route.name for route in routes if route.merge_chunks]
    sizes = {route.name: route.job_chunk_size for route in routes if not route.merge_chunks}
    bucket = S3_REFERENCE_SCHEMA["properties"]["bucket"]
    key = S3_REFERENCE_SCHEMA["properties"]["key"]
    return {
        "type": "object",
        "properties": {
            "route": {"enum": names, "description": "The route each object goes through, with `options` as its request."},
            "inputs": {"type": "object", "description": "Objects of the input bucket: every one under `prefix`, or the `keys`.",
                       "properties": {"bucket": bucket, "prefix": {"type": "string", "maxLength": 1024},
                                      "keys": {"type": "array", "items": key, "minItems": 1, "maxItems": MAX_JOB_ITEMS}},
                       "required": ["bucket"], "additionalProperties": False},
            "options": {"type": "object", "description": "The route's own options (e.g. `ood`, `modality`, `explain`, `mpp`), "
                        "sent with every object; checked before the job starts."},
            "chunk_size": {"type": "integer", "minimum": 1, "maximum": max(most for _, most in sizes.values()) if sizes else 1,
                           "description": "Objects per invocation, so that one ends well inside the timeout; default / most: "
                                          + (", ".join(f"{name} {d} / {m}" for name, (d, m) in sizes.items()) or "none") + "."},
            "chunks": {"type": "integer", "minimum": 1, "maximum": MAX_PARTS,
                       "description": f"Parts each object is scored in, one invocation each (default {DEFAULT_PARTS}); "
                                      f"routes {', '.join(chunked) or 'none'} only."},
            "max_concurrency": {"type": "integer", "minimum": 1, "maximum": 1000,
                                "description": "Invocations of this job at once (capped by the deployment's JobMaxConcurrency)."},
        },
        "required": ["route", "inputs"],
        "additionalProperties": False,
    }


_SUMMARY = {"type": "object", "properties": {
    "items": _COUNT, "succeeded": _COUNT, "failed": _COUNT,
    "labels": {"type": "object", "additionalProperties": _COUNT, "description": "Answered objects per label."},
    "errors": {"type": "object", "additionalProperties": _COUNT, "description": "Refused objects per error code."}},
    "required": ["items", "succeeded", "failed", "labels", "errors"], "additionalProperties": False}

_JOB = {"type": "object", "properties": {
    "id": JOB_ID_SCHEMA,
    "route": {"type": "string"},
    "status": {"enum": ["running", "completed"], "description": "completed: every object has its answer or error."},
    "created_at": {"type": "string", "format": "date-time"},
    "items": _COUNT,
    "chunks": {"type": "object", "properties": {"total": _COUNT, "done": _COUNT}, "required": ["total", "done"],
               "additionalProperties": False},
    "max_concurrency": _COUNT,
    "summary": _SUMMARY,
    "result": {"type": "object", "description": "result.json: every object's answer (as its route answers) or error.",
               "properties": {"url": {"type": "string", "description": "Presigned GET, no API key needed."},
                              "expires_in_s": {"type": "integer", "minimum": 1}, "s3": S3_REFERENCE_SCHEMA},
               "required": ["url", "expires_in_s", "s3"], "additionalProperties": False}},
    "required": ["id", "route", "status", "created_at", "items", "chunks", "max_concurrency"], "additionalProperties": False}


def job_routes(task: str, routes: list[Route]) -> list[Route]:
    """The job routes over ``routes`` (those that take S3 inputs, under one prefix)."""
    by_name = {route.name: route for route in routes}
    prefix = routes[0].prefix
    folder = prefix.strip("/")
    return [
        Route(f"{prefix}/jobs", job_request_schema(routes), lambda body, _model: submit_job(folder, body, by_name),
              status=202, response=rs.answer(task, {"job": _JOB}, ["job"], "The job, accepted and started."),
              errors=(*_ERRORS, "too_many_job_items", "no_job_inputs", "job_start_failed"),
              summary="Run a route over many objects of the input bucket (a batch, or a slide in parts) as a job"),
        Route(f"{prefix}/jobs/{{id}}", None, lambda body, _model: job_status(folder, body.get("id", "")), method="GET",
              path_parameters={"id": JOB_ID_SCHEMA},
              response=rs.answer(task, {"job": _JOB}, ["job"], "The job's progress; once completed, its summary and results."),
              errors=(*_ERRORS, "job_not_found"), summary="A job's progress and, once completed, its results"),
    ]
