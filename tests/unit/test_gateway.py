"""The local front door: API-key enforcement and HTTP ⇄ proxy-event translation (loopback only)."""

import json
import threading
import urllib.error
import urllib.request

import pytest

from local.gateway import Gateway

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

    server = Gateway(0, {("POST", "/echo/predict"): echo, ("POST", "/crash/predict"): crash}, [KEY])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def call(url, body=b"{}", key=KEY, method="POST"):
    headers = {"Content-Type": "application/json"}
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
    base, seen = gateway
    status, body, _ = call(base + "/echo/predict", key=key)
    assert (status, body) == (403, {"message": "Forbidden"})
    assert seen == []


def test_unknown_routes_answer_like_api_gateway(gateway):
    base, _ = gateway
    assert call(base + "/nope/predict")[:2] == (403, {"message": "Missing Authentication Token"})
    assert call(base + "/echo/predict", method="GET")[:2] == (403, {"message": "Missing Authentication Token"})


def test_a_keyed_request_becomes_a_proxy_event_and_back(gateway):
    base, seen = gateway
    status, body, headers = call(base + "/echo/predict?x=1", body=b'{"a": 1}')
    assert status == 201 and body == {"got": '{"a": 1}', "path": "/echo/predict"}
    assert headers["X-Echo"] == "1"
    event = seen[0]
    assert event["httpMethod"] == "POST" and event["resource"] == "/echo/predict"
    assert event["requestContext"]["identity"]["apiKey"] == KEY
    assert event["isBase64Encoded"] is False


def test_binary_bodies_travel_base64(gateway):
    base, seen = gateway
    call(base + "/echo/predict", body=b"\xff\xfe\x00binary")
    assert seen[0]["isBase64Encoded"] is True


def test_a_crashed_function_is_a_502(gateway):
    base, _ = gateway
    assert call(base + "/crash/predict")[:2] == (502, {"message": "Internal server error"})


def test_bodies_over_10_mb_are_413(gateway):
    base, seen = gateway
    status, body, _ = call(base + "/echo/predict", body=b"x" * (10 * 1024 * 1024 + 1))
    assert (status, body) == (413, {"message": "Request Too Long"}) and seen == []
