"""Every answer the functions give to the events in events/ is what openapi.yaml documents:
its status is listed for the operation and its body matches that status's schema."""

from __future__ import annotations

import json
from functools import lru_cache

import jsonschema
import pytest
import yaml

from contract.__main__ import OPENAPI_FILE
from local.events import EVENTS_DIR
from tests.conftest import FakeLambdaContext, load_function_app


@lru_cache(maxsize=None)
def handler(task: str):
    return load_function_app(task).lambda_handler


@lru_cache(maxsize=1)
def document() -> dict:
    return yaml.safe_load(OPENAPI_FILE.read_text())


def _cases():
    for expected in sorted([*EVENTS_DIR.glob("*/expected.json"), *EVENTS_DIR.glob("generated/*/expected.json")]):
        task = expected.parent.name
        for name in json.loads(expected.read_text()):
            yield pytest.param(task, expected.parent / name, id=f"{expected.parent.relative_to(EVENTS_DIR)}/{name}")


@pytest.mark.parametrize("task, event_file", list(_cases()))
def test_answers_match_the_documented_schema(task, event_file):
    event = json.loads(event_file.read_text())
    operation = document()["paths"].get(event["resource"], {}).get(event["httpMethod"].lower())
    if operation is None:
        pytest.skip("not an API route (a wrong method or path sent to the function directly)")
    answer = handler(task)(event, FakeLambdaContext())
    status = str(answer["statusCode"])
    assert status in operation["responses"], f"{status} is not documented for {event['httpMethod']} {event['path']}"
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator(schema).validate(json.loads(answer["body"]))
