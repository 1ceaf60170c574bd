"""Build ``openapi.yaml`` (OpenAPI 3.1) from the routes the functions serve.

One source of truth: each function's ``lambda_handler.routes`` carry the request schema the
handler validates with, the answer's schema and the error codes the route can give; the template
says which function serves which path and what the usage plan is; ``events/`` gives the examples.
API Gateway's own answers (key, usage plan, size, integration) are added to every operation.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from local.events import EVENTS_DIR
from local.template import FunctionSpec, function_specs, load_template
from local.usage_plan import Limits

from .apps import load_function_app, quiet_powertools

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024
API_GATEWAY_PAYLOAD_BYTES = 10 * 1024 * 1024
# Answered examples up to a 60 kB colour DICOM; refused ones only when short (they show the rule, not data).
MAX_EXAMPLE_BYTES = {True: 80_000, False: 2_000}

GATEWAY_ANSWERS = {
    403: ('"Forbidden": no or an invalid x-api-key. "Missing Authentication Token": no such route '
          "(API Gateway answers unknown paths and methods so, before any key check)."),
    413: f"Over API Gateway's {API_GATEWAY_PAYLOAD_BYTES // 2**20} MB request limit: \"Request Too Long\".",
    429: '"Too Many Requests": over the usage plan\'s rate or burst; retry with backoff. "Limit Exceeded": '
         "the key's daily quota is spent; retrying today will not help.",
    502: '"Internal server error": the function crashed or timed out without an answer.',
    504: '"Endpoint request timed out": no answer within API Gateway\'s 29 s.',
}
_STATUS_TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
                  413: "Payload too large", 415: "Unsupported media type", 422: "Unprocessable content",
                  429: "Too many requests", 500: "Server error", 502: "Bad gateway", 503: "Model unavailable",
                  504: "Gateway timeout"}


def served_routes() -> list[tuple[FunctionSpec, Any]]:
    """(function, route) for every route of the template, from the function that serves it."""
    quiet_powertools()
    pairs = []
    for spec in function_specs():
        app = load_function_app(spec.task)
        by_key = {(route.method, route.path): route for route in app.lambda_handler.routes}
        if set(by_key) != set(spec.routes):
            raise ValueError(f"{spec.logical_id}: template routes {sorted(spec.routes)} but the function serves "
                             f"{sorted(by_key)}")
        pairs += [(spec, by_key[key]) for key in spec.routes]
    return pairs


def _not_json(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def _examples(spec: FunctionSpec, route: Any) -> dict[str, dict[str, Any]]:
    """JSON request examples from the committed events of this route (``events/<task>/``); a raw
    file body's bytes cannot be an inline example."""
    folder = EVENTS_DIR / spec.task
    expected = json.loads((folder / "expected.json").read_text())
    examples: dict[str, dict[str, Any]] = {}
    for name in sorted(expected):
        event = json.loads((folder / name).read_text())
        if (event["httpMethod"], event["path"]) != (route.method, route.path) or not event.get("body"):
            continue
        outcome = expected[name]
        if len(event["body"]) > MAX_EXAMPLE_BYTES[outcome["status"] == 200]:
            continue
        summary = "answered 200" if outcome["status"] == 200 else f"refused {outcome['status']} {outcome['code']}"
        if (event.get("headers") or {}).get("Content-Type", "application/json") != "application/json":
            continue
        try:
            value = json.loads(event["body"], parse_constant=_not_json)
        except ValueError:
            continue  # a deliberately broken body cannot be shown as JSON
        if isinstance(value, dict):
            examples[name.removesuffix(".json")] = {"summary": f"events/{spec.task}/{name}: {summary}", "value": value}
    return examples


def _error_schema(codes: list[str]) -> dict[str, Any]:
    from oncoserve_runtime import response_schemas

    schema = copy.deepcopy(response_schemas.ERROR_BODY)
    schema["properties"]["error"]["properties"]["code"] = {"enum": codes}
    return schema


def _responses(route: Any) -> dict[str, Any]:
    from oncoserve_runtime import error_codes, response_schemas

    by_status: dict[int, list[str]] = {}
    for code in route.all_errors:
        by_status.setdefault(error_codes.CATALOGUE[code].status, []).append(code)
    responses: dict[str, Any] = {str(route.status): {"description": route.response.get("description", "OK"),
                                         "content": {"application/json": {"schema": copy.deepcopy(dict(route.response))}}}}
    for status in sorted({*by_status, *GATEWAY_ANSWERS}):
        codes = by_status.get(status, [])
        lines = [f"- `{code}`: {error_codes.CATALOGUE[code].meaning}" for code in codes]
        if status in GATEWAY_ANSWERS:
            lines.append(f"- API Gateway: {GATEWAY_ANSWERS[status]}")
        schemas = ([_error_schema(codes)] if codes else []) + (
            [copy.deepcopy(response_schemas.GATEWAY_MESSAGE)] if status in GATEWAY_ANSWERS else [])
        schema = schemas[0] if len(schemas) == 1 else {"oneOf": schemas}
        responses[str(status)] = {"description": f"{_STATUS_TITLES[status]}.\n\n" + "\n".join(lines),
                                  "content": {"application/json": {"schema": schema}}}
    return responses


def _binary_parameters(route: Any) -> list[dict[str, Any]]:
    """A raw file body takes the route's options from the query string."""
    options = {name: prop for name, prop in route.schema["properties"].items() if name not in ("image", "url")}
    return [{"name": name, "in": "query", "required": False, "schema": copy.deepcopy(prop),
             "description": "With a raw file body only (a JSON body carries its options itself)."}
            for name, prop in options.items()]


def _operation(spec: FunctionSpec, route: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{spec.task}_{route.name}",
        "tags": [spec.task],
        "summary": route.summary,
        "responses": _responses(route),
    }
    if route.schema is not None:
        examples = _examples(spec, route)
        content: dict[str, Any] = {"application/json": {"schema": copy.deepcopy(dict(route.schema))}}
        for media_type in route.binary_types:
            content[media_type] = {"schema": {"type": "string", "format": "binary", "contentMediaType": media_type}}
        if examples:
            content["application/json"]["examples"] = examples
        operation["requestBody"] = {
            "required": True, "content": content,
            "description": (f"At most {LAMBDA_PAYLOAD_BYTES // 2**20} MB (Lambda's synchronous payload limit; "
                            f"larger bodies get 413 payload_too_large, over {API_GATEWAY_PAYLOAD_BYTES // 2**20} MB "
                            "API Gateway's own 413)."),
        }
        if route.binary_types:
            operation["parameters"] = _binary_parameters(route)
    if route.path_parameters:
        operation["parameters"] = [{"name": name, "in": "path", "required": True, "schema": copy.deepcopy(dict(schema))}
                                   for name, schema in route.path_parameters.items()]
    return operation


def _description(limits: Limits) -> str:
    return (
        "Five cancer models, each served by its own AWS Lambda container-image function behind one API Gateway "
        "REST API. **Research software, not a medical device**: not for diagnosis or treatment decisions.\n\n"
        "Every route needs the API key in the `x-api-key` header. The usage plan allows "
        f"{limits.rate:g} requests/s (burst {limits.burst}) and {limits.quota_per_day} requests per day per key; "
        "past it, 429. Request bodies: at most 6 MB (Lambda), and API Gateway refuses more than 10 MB itself.\n\n"
        "Errors from the functions are `{\"error\": {\"code\", \"message\", \"details\"?}}`: branch on `code`. "
        "Answers of API Gateway itself are `{\"message\"}`."
    )


def build_document() -> dict[str, Any]:
    template = load_template()
    limits = Limits.from_template(template, environ={})  # the template's plan, not this shell's overrides
    paths: dict[str, dict[str, Any]] = {}
    for spec, route in served_routes():
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(spec, route)
    stage = template["Parameters"]["StageName"]["Default"]
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "OncoServe", "version": API_VERSION, "description": _description(limits),
                 "license": {"name": "Code: see the repository; models: see each model card (several non-commercial)",
                             "identifier": "NOASSERTION"}},
        "servers": [
            {"url": "http://127.0.0.1:3000", "description": "The local API (make serve)"},
            {"url": "https://{restApiId}.execute-api.{region}.amazonaws.com/{stage}",
             "description": "The deployed API (sam deploy; the stack's ApiUrl output)",
             "variables": {"restApiId": {"default": "your-api-id"}, "region": {"default": "eu-west-1"},
                           "stage": {"default": stage}}},
        ],
        "security": [{"ApiKey": []}],
        "tags": [{"name": spec.task, "description": f"functions/{spec.task}/MODEL_CARD.md"} for spec in function_specs()],
        "paths": dict(sorted(paths.items())),
        "components": {"securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
        "x-oncoserve-usage-plan": {"rate_limit_per_s": limits.rate, "burst_limit": limits.burst,
                                   "quota_per_day": limits.quota_per_day},
        "x-oncoserve-payload-limits": {"lambda_bytes": LAMBDA_PAYLOAD_BYTES,
                                       "api_gateway_bytes": API_GATEWAY_PAYLOAD_BYTES},
    }
