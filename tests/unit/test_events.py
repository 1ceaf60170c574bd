"""Committed events are sam-shaped proxy events, each with an expectation, and in sync with the generator."""

import json

import pytest

from local import make_events
from local.events import EVENTS_DIR
from local.template import function_specs

SAM_EVENT_KEYS = {"body", "resource", "path", "httpMethod", "isBase64Encoded", "headers", "requestContext",
                  "queryStringParameters", "pathParameters", "stageVariables", "multiValueHeaders"}
ROUTES = {path for spec in function_specs() for _, path in spec.routes}
COMMITTED = sorted(p for p in EVENTS_DIR.glob("*/*.json") if p.parent.name != "generated" and p.name != "expected.json")


def test_there_are_committed_events():
    assert len(COMMITTED) >= 10


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(EVENTS_DIR)))
def test_committed_event_is_a_proxy_event_with_an_expectation(path):
    event = json.loads(path.read_text())
    assert SAM_EVENT_KEYS <= set(event)
    assert event["requestContext"]["resourcePath"] == event["resource"]
    expected = json.loads((path.parent / "expected.json").read_text())
    assert path.name in expected and 200 <= expected[path.name]["status"] < 600
    if expected[path.name]["status"] != 404:
        assert event["resource"] in ROUTES


@pytest.mark.parametrize("task", sorted(make_events.STATIC))
def test_committed_events_match_the_generator(task, tmp_path):
    make_events.write_cases(tmp_path, make_events.STATIC[task](), with_bodies=False)
    for generated in tmp_path.iterdir():
        committed = EVENTS_DIR / task / generated.name
        assert committed.is_file(), f"run `make events`: {committed.name} missing"
        assert json.loads(committed.read_text()) == json.loads(generated.read_text()), committed.name
