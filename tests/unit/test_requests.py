"""Body parsing and schema validation: every malformed body gets its own 4xx code."""

import base64
import json

import pytest

from oncoserve_runtime import EXPRESSION_REQUEST_SCHEMA, ApiError, image_request_schema, parse_json_body, validate_body


def event(body, **extra):
    return {"body": body, **extra}


def error_of(call) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize(
    "body, status, code",
    [
        (None, 400, "missing_body"),
        ("", 400, "missing_body"),
        ('{"a": ', 400, "invalid_json"),
        ("\udcff", 400, "invalid_json"),
        ("[1, 2]", 422, "body_not_object"),
        ('"text"', 422, "body_not_object"),
        ('{"x": NaN}', 422, "non_finite_number"),
        ('{"x": Infinity}', 422, "non_finite_number"),
        ('{"x": -Infinity}', 422, "non_finite_number"),
        ("[" * 100_000 + "]" * 100_000, 400, "invalid_json"),
    ],
)
def test_malformed_bodies_are_refused_with_their_code(body, status, code):
    err = error_of(lambda: parse_json_body(event(body)))
    assert (err.status, err.code) == (status, code)


def test_base64_encoded_bodies_are_decoded():
    raw = base64.b64encode(json.dumps({"a": 1}).encode()).decode()
    assert parse_json_body(event(raw, isBase64Encoded=True)) == {"a": 1}


def test_invalid_base64_body_is_a_400():
    err = error_of(lambda: parse_json_body(event("%%%not base64", isBase64Encoded=True)))
    assert (err.status, err.code) == (400, "invalid_body_encoding")


def test_oversized_body_is_a_413_before_parsing():
    err = error_of(lambda: parse_json_body(event('{"a": "' + "x" * 2000 + '"}'), max_bytes=1000))
    assert (err.status, err.code) == (413, "payload_too_large")


def test_schema_errors_name_the_field_and_rule():
    err = error_of(lambda: validate_body({"expression": {"G1": "high"}}, EXPRESSION_REQUEST_SCHEMA))
    assert (err.status, err.code) == (422, "invalid_request")
    assert "body.expression.G1" in err.message and "number" in err.message
    assert err.details == {"field": "body.expression.G1", "rule": "type"}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"expression": {}},
        {"expression": {"G1": True}},
        {"expression": {"G1": 1e12}},
        {"expression": [1, 2]},
        {"expression": {"G1": 1.0}, "extra": 1},
    ],
)
def test_expression_schema_refuses(body):
    assert error_of(lambda: validate_body(body, EXPRESSION_REQUEST_SCHEMA)).code == "invalid_request"


@pytest.mark.parametrize(
    "body, valid",
    [
        ({"image": "AAAA"}, True),
        ({"url": "https://example.org/a.png"}, True),
        ({"image": "AAAA", "url": "https://example.org/a.png"}, False),
        ({}, False),
        ({"image": 12}, False),
        ({"image": "AAAA", "unknown": 1}, False),
        ({"image": "AAAA", "explain": True}, True),
    ],
)
def test_image_schema_needs_exactly_one_source(body, valid):
    schema = image_request_schema(explain={"type": "boolean"})
    if valid:
        validate_body(body, schema)
    else:
        assert error_of(lambda: validate_body(body, schema)).code == "invalid_request"


@pytest.mark.parametrize(
    "body, field, rule",
    [
        ({"genes": ["G1", "G2"], "values": [1.0, "high"]}, "body.values[1]", "type"),
        ({"genes": ["G1", "G2"], "values": [1.0, True]}, "body.values[1]", "type"),
        ({"genes": ["G1", "G2"], "values": [1.0, 1e12]}, "body.values[1]", "maximum"),
        ({"genes": ["G1", "G2"], "values": [-1e12, 1.0]}, "body.values[0]", "minimum"),
        ({"genes": ["G1", 7], "values": [1.0, 2.0]}, "body.genes[1]", "type"),
        ({"genes": ["G1", ""], "values": [1.0, 2.0]}, "body.genes[1]", "minLength"),
        ({"expression": {"G1": 1.0, "G2": False}}, "body.expression.G2", "type"),
        ({"expression": {"G1": 10**400}}, "body.expression.G1", "maximum"),
    ],
)
def test_bulk_checked_items_are_named_as_the_schema_names_them(body, field, rule):
    err = error_of(lambda: validate_body(body, EXPRESSION_REQUEST_SCHEMA))
    assert (err.code, err.details) == ("invalid_request", {"field": field, "rule": rule})


@pytest.mark.parametrize(
    "body, valid",
    [
        ({"genes": ["G1"], "values": [1]}, True),
        ({"genes": ["G1"]}, False),
        ({"values": [1.0]}, False),
        ({"expression": {"G1": 1.0}, "genes": ["G1"]}, False),
        ({"expression": {"G1": 1.0}, "genes": ["G1"], "values": [1.0]}, False),
        ({"genes": [], "values": []}, False),
    ],
)
def test_one_of_the_two_expression_forms(body, valid):
    if valid:
        validate_body(body, EXPRESSION_REQUEST_SCHEMA)
    else:
        assert error_of(lambda: validate_body(body, EXPRESSION_REQUEST_SCHEMA)).code == "invalid_request"


def test_nan_still_gets_its_own_code_behind_the_fast_parser():
    assert error_of(lambda: parse_json_body(event('{"genes": ["G1"], "values": [NaN]}'))).code == "non_finite_number"
    assert parse_json_body(event('{"x": 1' + "0" * 30 + "}")) == {"x": 1e30}  # beyond 64 bits: parsed, then range-checked


def test_a_query_option_in_non_ascii_digits_is_a_schema_error_not_a_500():
    from oncoserve_runtime.requests import parse_binary_body

    schema = image_request_schema(frame={"type": "integer", "minimum": 0})
    body = parse_binary_body({"body": "AAAA", "isBase64Encoded": True, "queryStringParameters": {"frame": "²"}}, schema)
    assert body["frame"] == "²"
    assert error_of(lambda: validate_body(body, schema)).details == {"field": "body.frame", "rule": "type"}
