"""The API's refusals as one exception that carries its ``code``."""

from __future__ import annotations

from typing import Any

# API Gateway's own answers carry only a message; give each a code a client can branch on.
_GATEWAY_CODES = {
    (403, "Forbidden"): "forbidden",
    (403, "Missing Authentication Token"): "no_such_route",
    (413, "Request Too Long"): "request_too_long",
    (429, "Too Many Requests"): "throttled",
    (429, "Limit Exceeded"): "quota_exceeded",
    (502, "Internal server error"): "bad_gateway",
    (504, "Endpoint request timed out"): "gateway_timeout",
}


class ApiError(Exception):
    """An answer other than 200: ``status``, ``code`` (the API's, e.g. ``missing_genes``), ``message``
    and ``details``. ``code`` is ``transport_error`` when no answer came at all."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details or {}

    @property
    def retryable(self) -> bool:
        """Throttling, a function that crashed or timed out (API Gateway's 502), 503 and lost
        connections. Never another 4xx, a spent quota, or the function's own 502s: those say the
        image URL could not be fetched, and fetching it again is the caller's decision."""
        return self.code in ("throttled", "bad_gateway", "transport_error") or self.status == 503

    @classmethod
    def from_answer(cls, status: int, body: Any) -> "ApiError":
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            return cls(status, str(error.get("code")), str(error.get("message")), error.get("details"))
        message = body.get("message", "") if isinstance(body, dict) else str(body)[:200]
        return cls(status, _GATEWAY_CODES.get((status, message), f"http_{status}"), message)
