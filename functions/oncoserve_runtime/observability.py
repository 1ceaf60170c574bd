"""Powertools logger, metrics and tracer, configured once for every function.

Events are never logged: bodies carry images and expression profiles (patient data). What is
logged: task, route, model version, input shape, latency, request id, error code.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "oncoserve")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "OncoServe")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


class _NoTracer:
    """Stand-in when X-Ray cannot load (aws-xray-sdk needs botocore, which the AWS base image has)."""

    def capture_lambda_handler(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        return handler

    def capture_method(self, method: Callable[..., Any]) -> Callable[..., Any]:
        return method

    def put_annotation(self, key: str, value: Any) -> None:
        return None


def _make_tracer() -> Any:
    try:
        from aws_lambda_powertools import Tracer

        return Tracer(service=SERVICE)
    except ImportError:
        logger.info("X-Ray tracing disabled: aws_xray_sdk/botocore not importable in this image")
        return _NoTracer()


tracer = _make_tracer()
