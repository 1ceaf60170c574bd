"""HTTP errors as a tiny exception tree.

Every problem a client can cause is raised as an :class:`ApiError` subclass carrying its HTTP status
and a machine-readable ``code``; only :func:`oncoserve_runtime.responses.error` renders them. Any
other exception is a server fault and becomes a 500 ``internal_error`` (never the client's doing).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the client can act on.

    Parameters
    ----------
    code:
        ``snake_case`` identifier that clients can branch on.
    message:
        What is wrong and what to fix, in one sentence.
    details:
        Optional JSON-serialisable extra data (e.g. the list of missing genes).
    """

    status: int = 400

    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class BadRequestError(ApiError):
    """400: the request is malformed (not JSON, not base64, no body)."""

    status = 400


class ForbiddenError(ApiError):
    """403: the request names something this function may not read (another bucket)."""

    status = 403


class NotFoundError(ApiError):
    """404: no such route on this function."""

    status = 404


class MethodNotAllowedError(ApiError):
    """405: the route exists but not for this HTTP method."""

    status = 405


class PayloadTooLargeError(ApiError):
    """413: the body, the image or the fetched URL is over its size cap."""

    status = 413


class UnsupportedMediaTypeError(ApiError):
    """415: the bytes are not an image of a supported format."""

    status = 415


class UnprocessableEntityError(ApiError):
    """422: valid JSON, wrong content (missing genes, NaN, wrong types, refused URL)."""

    status = 422


class UpstreamFetchError(ApiError):
    """502: a service the function depends on failed: the image URL (unreachable, timed out, non-2xx),
    S3, or Lambda taking a job's invocation."""

    status = 502


class ServiceUnavailableError(ApiError):
    """503: a part of the deployment this request needs is missing (no input bucket)."""

    status = 503


class ModelUnavailableError(ApiError):
    """503: this function has no (valid) model artifact yet."""

    status = 503
