"""An API-Gateway-like front door on loopback: API-key check, usage plan, HTTP ⇄ proxy event, routing.

Behaves as the deployed REST API does where a client can tell: 403 ``{"message": "Forbidden"}``
without a valid ``x-api-key``; 403 ``Missing Authentication Token`` for unknown routes; 413 above
10 MB; 429 ``Too Many Requests`` / ``Limit Exceeded`` past the usage plan's rate, burst or daily
quota; 502 ``Internal server error`` when a function crashes or answers no proxy response; 504
``Endpoint request timed out`` when the integration takes longer than its timeout; everything else
is the function's own answer. A request is always answered, whatever goes wrong behind it.
``GET /docs`` and ``/openapi.json`` (see :mod:`.docs`) are local only and need no key.
(``sam local start-api`` enforces neither API keys nor usage plans, hence this server.)
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping

from .docs import DocsSite
from .events import new_request_id, proxy_event
from .usage_plan import QUOTA_EXCEEDED, THROTTLED, UsagePlan

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024
# An invoker returns the function's result; it raises TimeoutError when the integration timed out.
Invoker = Callable[[dict[str, Any]], dict[str, Any]]
_ERROR_TYPES = {THROTTLED: "TooManyRequestsException", QUOTA_EXCEEDED: "LimitExceededException"}


class Gateway(ThreadingHTTPServer):
    """Routes ``(METHOD, path)`` to an invoker; ``api_keys`` are the accepted x-api-key values."""

    daemon_threads = True
    request_queue_size = 128  # listen backlog: 32 clients connecting at once must not overflow it

    def __init__(self, port: int, routes: Mapping[tuple[str, str], Invoker], api_keys: list[str],
                 usage_plan: UsagePlan | None = None, binary_media_types: tuple[str, ...] = ()) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.routes = dict(routes)
        self.api_keys = [key.encode() for key in api_keys]
        self.usage_plan = usage_plan
        self.binary_media_types = binary_media_types
        self.docs: DocsSite | None = None  # /docs and /openapi.json, when set (local only, no key)

    def find_route(self, method: str, path: str) -> tuple[Invoker, str, dict[str, str]] | None:
        """(invoker, route template, path parameters) for ``method path``: an exact route, else one whose
        ``{name}`` segments match (each one whole segment, as API Gateway matches them)."""
        if (method, path) in self.routes:
            return self.routes[(method, path)], path, {}
        for (route_method, template), invoker in self.routes.items():
            if route_method != method or "{" not in template:
                continue
            pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template))
            found = re.fullmatch(pattern, path)
            if found:
                return invoker, template, {name: urllib.parse.unquote(value) for name, value in found.groupdict().items()}
        return None

    def key_is_valid(self, presented: str | None) -> bool:
        if not presented:
            return False
        # Constant-time comparison: no timing oracle on the key.
        return any(hmac.compare_digest(presented.encode(), key) for key in self.api_keys)


class _Handler(BaseHTTPRequestHandler):
    server: Gateway
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        print(f"[gateway] {self.address_string()} {format % args}", flush=True)

    def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", getattr(self, "_request_id", ""))
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has headers only
            self.wfile.write(body)

    def _message(self, status: int, message: str) -> None:
        self._send(status, json.dumps({"message": message}).encode())

    def _handle(self) -> None:
        self._request_id = new_request_id()
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left; nobody to answer
        except Exception as exc:  # never a dropped connection: answer as API Gateway would
            print(f"[gateway] {self._request_id}: {type(exc).__name__}: {exc}", flush=True)
            self.close_connection = True
            self._message(502, "Internal server error")

    def _route(self) -> None:
        path, _, query_string = self.path.partition("?")
        query = urllib.parse.parse_qs(query_string, keep_blank_values=True) or None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return self._message(400, "Invalid Content-Length")
        if length > API_GATEWAY_MAX_BODY:
            # Drain what the client sends (so it reads our answer, not a broken pipe), then refuse.
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(1 << 20, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
            self.close_connection = True
            return self._message(413, "Request Too Long")
        body = self.rfile.read(length) if length else b""
        page = self.server.docs.answer(path) if self.server.docs and self.command == "GET" else None
        if page:
            return self._send(200, page[1], {"Content-Type": page[0]})
        found = self.server.find_route(self.command, path)
        if found is None:
            # API Gateway answers unknown routes like this, before any authorisation.
            return self._message(403, "Missing Authentication Token")
        invoker, resource, path_parameters = found
        api_key = self.headers.get("x-api-key")
        if not self.server.key_is_valid(api_key):
            return self._message(403, "Forbidden")
        refusal = self.server.usage_plan.admit(api_key) if self.server.usage_plan else None
        if refusal:
            return self._send(429, json.dumps({"message": refusal}).encode(),
                              {"x-amzn-ErrorType": _ERROR_TYPES[refusal]})
        headers = {name: value for name, value in self.headers.items()}
        media_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        binary = media_type in self.server.binary_media_types
        try:
            text_body: str | None = None if binary or not body else body.decode("utf-8")
        except UnicodeDecodeError:
            binary = True
        # Binary media types and bodies that are not text travel base64-encoded, as API Gateway sends them.
        event = proxy_event(path, body if binary else text_body, method=self.command, headers=headers,
                            base64_body=binary, request_id=self._request_id, api_key=api_key, query=query,
                            resource=resource, path_parameters=path_parameters)
        try:
            result = invoker(event)
        except TimeoutError:
            return self._message(504, "Endpoint request timed out")
        if not isinstance(result, dict) or "statusCode" not in result:
            # A crashed function or a malformed integration response: API Gateway says 502.
            return self._message(502, "Internal server error")
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode()
        self._send(int(result["statusCode"]), data, result.get("headers") or {})

    def __getattr__(self, name: str) -> Any:
        # Every method (TRACE, QUERY, …) reaches the router: API Gateway answers one it has no route
        # for with 403 Missing Authentication Token, where http.server would answer 501.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)
