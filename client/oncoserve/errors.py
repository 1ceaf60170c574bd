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
        """Throttling and transient server states; never another 4xx, never a spent quota."""
        return self.code == "transport_error" or self.status in (502, 503) or self.code == "throttled"

    @classmethod
    def from_answer(cls, status: int, body: Any) -> "ApiError":
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            return cls(status, str(error.get("code")), str(error.get("message")), error.get("details"))
        message = body.get("message", "") if isinstance(body, dict) else str(body)[:200]
        return cls(status, _GATEWAY_CODES.get((status, message), f"http_{status}"), message)
