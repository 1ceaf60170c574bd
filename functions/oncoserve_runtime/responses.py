"""Shape API Gateway (REST, payload v1) proxy responses: the only place that renders JSON bodies."""

from __future__ import annotations

import json
from typing import Any

from .errors import ApiError

JSON_HEADERS = {"Content-Type": "application/json"}


def ok(body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    """Render a successful response. ``allow_nan=False``: a NaN in a result is a bug, not output."""
    return {
        "statusCode": status,
        "headers": dict(JSON_HEADERS),
        "body": json.dumps(body, allow_nan=False, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def error(err: ApiError) -> dict[str, Any]:
    """Render ``{"error": {"code", "message"[, "details"]}}`` with the error's status."""
    payload: dict[str, Any] = {"code": err.code, "message": err.message}
    if err.details:
        payload["details"] = err.details
    return ok({"error": payload}, status=err.status)


def internal_error() -> dict[str, Any]:
    """A server fault; the cause is logged, never echoed to the client."""
    return ok(
        {"error": {"code": "internal_error", "message": "Unexpected server error; it has been logged."}},
        status=500,
    )
