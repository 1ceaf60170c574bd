"""openapi.yaml is valid, complete and in sync with the functions' routes and error codes."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from contract.__main__ import OPENAPI_FILE, render
from contract.openapi import build_document
from local.events import EVENTS_DIR
from local.template import function_specs
from oncoserve_runtime import errors, error_codes

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


@pytest.fixture(scope="module")
def document():
    return build_document()


def test_the_committed_file_is_what_the_code_generates(document):
    assert OPENAPI_FILE.read_text() == render(document), "openapi.yaml is stale: run `make openapi`"


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    validate(yaml.safe_load(OPENAPI_FILE.read_text()))


def test_every_template_route_is_an_operation_behind_the_api_key(document):
    assert document["components"]["securitySchemes"]["ApiKey"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert document["security"] == [{"ApiKey": []}]
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert operations == {route for spec in function_specs() for route in spec.routes}
    for item in document["paths"].values():
        for operation in item.values():
            assert {"403", "429", "500", "503"} <= set(operation["responses"])
            assert {"200", "202"} & set(operation["responses"])  # answered, or (a job) accepted
            assert "security" not in operation  # nothing opts out of the key


def _raised_codes() -> dict[str, set[str]]:
    """code → exception classes that raise it, from every ``SomethingError("code", ...)`` in functions/
    (the API's errors; a ``ValueError("...")`` is a bug's message, not a code)."""
    found: dict[str, set[str]] = {}
    for path in FUNCTIONS_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and hasattr(errors, node.func.id)
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.setdefault(node.args[0].value, set()).add(node.func.id)
    return found


def test_every_raised_code_is_in_the_catalogue_with_its_status():
    raised = _raised_codes()
    assert len(raised) > 30  # the scan finds the codes at all
    for code, classes in raised.items():
        assert code in error_codes.CATALOGUE, f"{code} is raised but not in error_codes.CATALOGUE"
        for name in classes:
            assert getattr(errors, name).status == error_codes.CATALOGUE[code].status, (code, name)


def _documented_codes(operation: dict, status: int) -> set[str]:
    response = operation["responses"].get(str(status))
    if response is None:
        return set()
    schema = response["content"]["application/json"]["schema"]
    return {code for option in schema.get("oneOf", [schema]) if "error" in option.get("properties", {})
            for code in option["properties"]["error"]["properties"]["code"]["enum"]}


def _event_cases():
    for folder in sorted([*EVENTS_DIR.glob("*/expected.json"), *EVENTS_DIR.glob("generated/*/expected.json")]):
        for name, outcome in json.loads(folder.read_text()).items():
            event = json.loads((folder.parent / name).read_text())
            # the route's template (/brain/jobs/{id}) where it has path parameters
            yield pytest.param(event["httpMethod"], event["resource"], outcome, id=f"{folder.parent.name}/{name}")


@pytest.mark.parametrize("method, path, outcome", list(_event_cases()))
def test_every_event_outcome_is_documented(document, method, path, outcome):
    operation = document["paths"].get(path, {}).get(method.lower())
    if operation is None:
        # Wrong method or path sent to a function directly: API Gateway would answer 403 itself.
        assert outcome["code"] in ("method_not_allowed", "unknown_route")
        return
    assert str(outcome["status"]) in operation["responses"]
    if "code" in outcome:
        assert outcome["code"] in _documented_codes(operation, outcome["status"])
