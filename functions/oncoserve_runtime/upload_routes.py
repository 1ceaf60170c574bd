"""``POST <prefix>/uploads``: a presigned PUT URL for a file too large for a request body.

Every function whose routes take ``{"s3": …}`` inputs gets it (see :mod:`.handler`); the file then
goes to S3 directly and the prediction request names it, so neither the 6 MB invoke limit nor API
Gateway's 10 MB body limit applies to it.
"""

from __future__ import annotations

from typing import Any

from . import response_schemas as rs
from .routes import Route
from .s3_objects import UPLOAD_REQUEST_SCHEMA, S3_REFERENCE_SCHEMA, presigned_upload


def takes_s3_inputs(route: Route) -> bool:
    return bool(route.schema) and "s3" in route.schema.get("properties", {})


def _answer(task: str) -> dict[str, Any]:
    text = {"type": "string"}
    return rs.answer(task, {
        "upload": {"type": "object", "required": ["url", "method", "headers", "expires_in_s"], "properties": {
            "url": {**text, "description": "Presigned: PUT the file here with exactly these headers."},
            "method": {"const": "PUT"},
            "headers": {"type": "object", "additionalProperties": text},
            "expires_in_s": {"type": "integer", "minimum": 1}}},
        "s3": {**S3_REFERENCE_SCHEMA, "description": "Send this as body.s3 of the prediction once the PUT succeeded."},
    }, ["upload", "s3"], "Where to upload the file, and how to name it in a prediction request.")


def upload_route(task: str, prefix: str, *, slides: bool = False) -> Route:
    """``slides``: the function has a whole-slide route, so TIFF uploads (up to 5 GiB) are taken."""
    return Route(f"{prefix}/uploads", UPLOAD_REQUEST_SCHEMA,
                 lambda body, _model: presigned_upload(prefix.strip("/"), body["content_type"], int(body["bytes"]),
                                                       slides=slides),
                 response=_answer(task), errors=("s3_unavailable", "s3_not_configured"),
                 summary="A presigned upload URL for a file over the 6 MB request limit")
