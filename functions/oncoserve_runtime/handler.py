"""Build a Lambda handler from routes: the request/response lifecycle every function shares.

A function's ``app.py`` only says *what* to predict; this module does the rest: routing, model
availability, body parsing and schema validation, response shaping, logging, metrics, tracing,
and the guarantee that nothing a client sends produces a 500.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from aws_lambda_powertools.metrics import MetricUnit

from . import responses
from .errors import ApiError, MethodNotAllowedError, NotFoundError
from .model import ModelBundle, ModelHandle
from .observability import logger, metrics, tracer
from .requests import parse_body, validate_body

Predict = Callable[[dict[str, Any], ModelBundle], dict[str, Any]]
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    """``POST path``: validate the body against ``schema``, then ``predict(body, model)``. A route
    with ``binary_types`` also takes a raw file of those media types as the body."""

    path: str
    schema: Mapping[str, Any]
    predict: Predict
    method: str = "POST"
    binary_types: tuple[str, ...] = ()


def _route_for(event: dict[str, Any], routes: Mapping[str, Route]) -> Route:
    # REST API proxy events carry the route template in `resource` and the request path in `path`.
    path = event.get("resource") or event.get("path") or ""
    route = routes.get(path) or routes.get(event.get("path") or "")
    if route is None:
        raise NotFoundError("unknown_route", f"No route {path!r} on this function; see the API docs.")
    method = (event.get("httpMethod") or "").upper()
    if method != route.method:
        raise MethodNotAllowedError("method_not_allowed", f"Use {route.method} {route.path}.")
    return route


def build_lambda_handler(task: str, model: ModelHandle, routes: list[Route]) -> LambdaHandler:
    """Return ``lambda_handler(event, context)`` serving ``routes`` with ``model``."""
    by_path = {route.path: route for route in routes}

    @logger.inject_lambda_context(log_event=False, clear_state=True)
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        logger.append_keys(task=task)
        metrics.add_dimension(name="task", value=task)
        try:
            if not isinstance(event, dict):
                raise NotFoundError("unknown_route", "The event is not an API Gateway proxy event.")
            route = _route_for(event, by_path)
            bundle = model.get()
            logger.append_keys(route=route.path, model_version=bundle.metadata["version"])
            body = parse_body(event, dict(route.schema), route.binary_types)
            validate_body(body, dict(route.schema))
            result = route.predict(body, bundle)
            response = responses.ok({"task": task, "model": bundle.info, **result})
            metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=1)
        except ApiError as err:
            logger.info("request refused", extra={"status": err.status, "error_code": err.code})
            metrics.add_metric(name="ClientErrors" if err.status < 500 else "ServerErrors", unit=MetricUnit.Count, value=1)
            response = responses.error(err)
        except Exception:  # noqa: BLE001 - the one place a server fault becomes a 500, logged in full
            logger.exception("unexpected error")
            metrics.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
            response = responses.internal_error()
        latency_ms = (time.perf_counter() - started) * 1000.0
        metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=latency_ms)
        logger.info("request done", extra={"status": response["statusCode"], "latency_ms": round(latency_ms, 2)})
        return response

    return lambda_handler
