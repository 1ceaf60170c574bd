"""The local front door: API-key enforcement and HTTP ⇄ proxy-event translation (loopback only)."""

import base64
import json
import threading
import urllib.error
import urllib.request

import pytest

from local.gateway import Gateway
from local.usage_plan import Limits, UsagePlan

KEY = "test-key-0123456789"


@pytest.fixture
def gateway():
    seen = []

    def echo(event):
        seen.append(event)
        return {"statusCode": 201, "headers": {"Content-Type": "application/json", "X-Echo": "1"},
                "body": json.dumps({"got": event["body"], "path": event["path"]})}

    def crash(event):
        return {"errorType": "RuntimeError", "errorMessage": "boom"}

    def slow(event):
        raise TimeoutError("no environment came free")

    def broken(event):
        raise KeyError("a bug behind the gateway")

    routes = {("POST", "/echo/predict"): echo, ("GET", "/echo/jobs/{id}"): echo, ("POST", "/crash/predict"): crash,
              ("POST", "/slow/predict"): slow, ("POST", "/broken/predict"): broken}
    # A plan nobody reaches here (tests of the plan set their own below).
    server = Gateway(0, routes, [KEY], UsagePlan(Limits(rate=1000.0, burst=1000, quota_per_day=10**6)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen, server
    server.shutdown()
    server.server_close()


def call(url, body=b"{}", key=KEY, method="POST", content_type="application/json"):
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["x-api-key"] = key
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


@pytest.mark.parametrize("key", [None, "", "wrong-key", KEY[:-1], KEY + "x"])
def test_requests_without_the_key_are_forbidden(gateway, key):
    base, seen, _ = gateway
    status, body, _ = call(base + "/echo/predict", key=key)
    assert (status, body) == (403, {"message": "Forbidden"})
    assert seen == []


def test_unknown_routes_answer_like_api_gateway(gateway):
    base, _, _ = gateway
    assert call(base + "/nope/predict")[:2] == (403, {"message": "Missing Authentication Token"})
    assert call(base + "/echo/predict", method="GET")[:2] == (403, {"message": "Missing Authentication Token"})


def test_a_keyed_request_becomes_a_proxy_event_and_back(gateway):
    base, seen, _ = gateway
    status, body, headers = call(base + "/echo/predict?x=1", body=b'{"a": 1}')
    assert status == 201 and body == {"got": '{"a": 1}', "path": "/echo/predict"}
    assert headers["X-Echo"] == "1"
    event = seen[0]
    assert event["httpMethod"] == "POST" and event["resource"] == "/echo/predict"
    assert event["requestContext"]["identity"]["apiKey"] == KEY
    assert event["isBase64Encoded"] is False


def test_binary_bodies_travel_base64(gateway):
    base, seen, _ = gateway
    call(base + "/echo/predict", body=b"\xff\xfe\x00binary")
    assert seen[0]["isBase64Encoded"] is True


def test_a_crashed_function_is_a_502(gateway):
    base, _, _ = gateway
    assert call(base + "/crash/predict")[:2] == (502, {"message": "Internal server error"})


def test_bodies_over_10_mb_are_413(gateway):
    base, seen, _ = gateway
    status, body, _ = call(base + "/echo/predict", body=b"x" * (10 * 1024 * 1024 + 1))
    assert (status, body) == (413, {"message": "Request Too Long"}) and seen == []


def test_an_integration_timeout_is_a_504(gateway):
    base, _, _ = gateway
    assert call(base + "/slow/predict")[:2] == (504, {"message": "Endpoint request timed out"})


def test_a_failure_behind_the_gateway_is_answered_502_not_dropped(gateway):
    base, _, _ = gateway
    assert call(base + "/broken/predict")[:2] == (502, {"message": "Internal server error"})
    assert call(base + "/echo/predict")[0] == 201  # and the gateway goes on serving


def test_past_the_burst_the_usage_plan_answers_429_as_api_gateway_does(gateway):
    base, seen, server = gateway
    server.usage_plan = UsagePlan(Limits(rate=0.001, burst=2, quota_per_day=100))
    statuses = [call(base + "/echo/predict") for _ in range(3)]
    assert [s[0] for s in statuses] == [201, 201, 429]
    assert statuses[2][1] == {"message": "Too Many Requests"}
    assert statuses[2][2]["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert len(seen) == 2  # the throttled request never reached the function


def test_past_the_daily_quota_the_answer_is_limit_exceeded(gateway):
    base, _, server = gateway
    server.usage_plan = UsagePlan(Limits(rate=1000.0, burst=1000, quota_per_day=1))
    assert call(base + "/echo/predict")[0] == 201
    assert call(base + "/echo/predict")[:2] == (429, {"message": "Limit Exceeded"})


def test_requests_without_the_key_do_not_use_the_plan(gateway):
    base, _, server = gateway
    server.usage_plan = UsagePlan(Limits(rate=0.001, burst=1, quota_per_day=100))
    for _ in range(3):
        assert call(base + "/echo/predict", key=None)[0] == 403
    assert call(base + "/echo/predict")[0] == 201


def test_binary_media_types_travel_base64_with_the_query_string(gateway):
    base, seen, server = gateway
    server.binary_media_types = ("application/dicom",)
    call(base + "/echo/predict?explain=true&frame=2", body=b"plain ascii, still binary", content_type="application/dicom")
    event = seen[-1]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"plain ascii, still binary"
    assert event["queryStringParameters"] == {"explain": "true", "frame": "2"}
    assert event["multiValueQueryStringParameters"] == {"explain": ["true"], "frame": ["2"]}
    call(base + "/echo/predict", body=b'{"a": 1}')
    assert seen[-1]["isBase64Encoded"] is False and seen[-1]["queryStringParameters"] is None


def test_the_local_api_takes_the_templates_binary_media_types():
    from local.template import binary_media_types

    assert binary_media_types() == ("application/dicom",)


def test_a_path_parameter_reaches_the_function_as_api_gateway_sends_it(gateway):
    url, seen, _ = gateway
    status, _, _ = call(f"{url}/echo/jobs/ab%20c", body=None, method="GET")
    assert status == 201
    assert (seen[-1]["resource"], seen[-1]["path"], seen[-1]["pathParameters"]) == ("/echo/jobs/{id}", "/echo/jobs/ab%20c", {"id": "ab c"})
    assert seen[-1]["requestContext"]["resourcePath"] == "/echo/jobs/{id}"


@pytest.mark.parametrize("path", ["/echo/jobs/", "/echo/jobs/a/b", "/echo/jobs"])
def test_a_parameter_is_one_whole_segment(gateway, path):
    url, seen, _ = gateway
    status, body, _ = call(url + path, body=None, method="GET")
    assert (status, body) == (403, {"message": "Missing Authentication Token"}) and seen == []
