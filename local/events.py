"""API Gateway REST (payload v1) proxy events, shaped as ``sam local generate-event apigateway
aws-proxy`` shapes them, so the same files serve ``sam local invoke -e``, the emulator and tests."""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
STAGE = "v1"

_BASE_EVENT: dict[str, Any] = {
    "body": None,
    "resource": "/",
    "path": "/",
    "httpMethod": "POST",
    "isBase64Encoded": False,
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": None,
    "stageVariables": None,
    "headers": {},
    "multiValueHeaders": {},
    "requestContext": {
        "accountId": "123456789012",
        "resourceId": "123456",
        "stage": STAGE,
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "requestTime": "09/Apr/2015:12:34:56 +0000",
        "requestTimeEpoch": 1428582896000,
        "identity": {"sourceIp": "127.0.0.1", "userAgent": "oncoserve-local", "apiKey": None},
        "path": "/",
        "resourcePath": "/",
        "httpMethod": "POST",
        "apiId": "oncoserve-local",
        "protocol": "HTTP/1.1",
    },
}


def proxy_event(
    path: str,
    body: bytes | str | None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    base64_body: bool = False,
    request_id: str | None = None,
    api_key: str | None = None,
    query: dict[str, list[str]] | None = None,
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A proxy event for ``method path`` with ``body`` (text, or base64 when ``base64_body``) and the
    query string's parameters (``query``: name → values, as ``urllib.parse.parse_qs`` gives them).
    ``resource`` is the route's template (``/brain/jobs/{id}``) when it has ``path_parameters``."""
    event = copy.deepcopy(_BASE_EVENT)
    headers = {"Content-Type": "application/json", **(headers or {})}
    if isinstance(body, bytes):
        if base64_body:
            body = base64.b64encode(body).decode("ascii")
        else:
            body = body.decode("utf-8")
    event.update(
        body=body,
        resource=resource or path,
        path=path,
        pathParameters=path_parameters or None,
        httpMethod=method,
        isBase64Encoded=base64_body,
        headers=headers,
        multiValueHeaders={k: [v] for k, v in headers.items()},
    )
    if query:
        event.update(queryStringParameters={k: v[-1] for k, v in query.items()}, multiValueQueryStringParameters=query)
    context = event["requestContext"]
    context.update(path=f"/{STAGE}{path}", resourcePath=resource or path, httpMethod=method)
    if request_id is not None:
        context["requestId"] = request_id
        context["requestTimeEpoch"] = int(time.time() * 1000)
    context["identity"]["apiKey"] = api_key
    return event


def json_event(path: str, payload: Any, **kwargs: Any) -> dict[str, Any]:
    return proxy_event(path, json.dumps(payload, allow_nan=True), **kwargs)


def new_request_id() -> str:
    return str(uuid.uuid4())


def load_event(relative: str) -> dict[str, Any]:
    """Read ``events/<relative>`` (the file ``sam local invoke -e`` uses)."""
    return json.loads((EVENTS_DIR / relative).read_text())
