"""Build a Lambda handler from routes: the request/response lifecycle every function shares.

A function's ``app.py`` only says *what* to predict; this module does the rest: routing, model
availability, body parsing and schema validation, response shaping, logging, metrics, tracing,
and the guarantee that nothing a client sends produces a 500.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

from aws_lambda_powertools.metrics import MetricUnit

from . import responses
from .errors import ApiError, MethodNotAllowedError, NotFoundError
from .job_routes import job_routes
from .jobs import is_job_event, run_job_step
from .model import ModelHandle
from .observability import logger, metrics, tracer
from .requests import parse_body, validate_body
from .routes import Route
from .service_routes import service_routes
from .upload_routes import takes_s3_inputs, upload_route

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


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


def handler_routes(task: str, routes: list[Route]) -> list[Route]:
    """``routes``, the upload and job routes when some of them take S3 inputs, and the metadata and
    health routes, under their common prefix (``/brain``)."""
    prefixes = {route.prefix for route in routes}
    if len(prefixes) != 1:
        raise ValueError(f"a function's routes share one prefix, got {sorted(prefixes)}")
    prefix = prefixes.pop()
    slides = any(route.path.endswith("/slide") for route in routes)
    from_s3 = [route for route in routes if takes_s3_inputs(route)]
    uploads = [upload_route(task, prefix, slides=slides), *job_routes(task, from_s3)] if from_s3 else []
    return [*routes, *uploads, *service_routes(task, prefix)]


def build_lambda_handler(task: str, model: ModelHandle, routes: list[Route]) -> LambdaHandler:
    """Return ``lambda_handler(event, context)`` serving ``routes`` with ``model``, and ``GET
    <prefix>/model`` and ``GET <prefix>/health`` (see :mod:`.service_routes`). The routes it serves
    are the handler's ``routes`` attribute: the contract ``openapi.yaml`` is generated from."""
    served = handler_routes(task, routes)
    by_path = {route.path: route for route in served}
    job_routes_by_name = {route.name: route for route in routes if takes_s3_inputs(route)}  # what a job may run
    folder = served[0].prefix.strip("/")

    @logger.inject_lambda_context(log_event=False, clear_state=True)
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        logger.append_keys(task=task)
        metrics.add_dimension(name="task", value=task)
        if is_job_event(event):  # an asynchronous invocation a job queued, not an API request
            return run_job_step(event, folder, job_routes_by_name, model.get(), context.aws_request_id)
        try:
            if not isinstance(event, dict):
                raise NotFoundError("unknown_route", "The event is not an API Gateway proxy event.")
            route = _route_for(event, by_path)
            bundle = model.get()
            logger.append_keys(route=route.path, model_version=bundle.info["version"])
            body: dict[str, Any] = dict(event.get("pathParameters") or {}) if route.path_parameters else {}
            if route.schema is not None:
                body = parse_body(event, route.schema, route.binary_types)
                validate_body(body, route.schema)
            result = route.predict(body, bundle)
            response = responses.ok({"task": task, "model": bundle.info, **result}, status=route.status)
            if route.method == "POST":  # metadata and health probes are not predictions
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

    lambda_handler.routes = served  # type: ignore[attr-defined]
    lambda_handler.model = model  # type: ignore[attr-defined]  (python -m contract reads its contract type)
    lambda_handler.task = task  # type: ignore[attr-defined]
    return lambda_handler
