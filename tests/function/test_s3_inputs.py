"""Images from the input bucket and presigned uploads to it, through the handlers, against moto's
server mode on 127.0.0.1 (a local stand-in for S3: it checks no signature and no IAM policy)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest

from bench.workload import sample_bodies
from conftest import FakeLambdaContext, load_function_app
from local.events import json_event
from local.ports import free_port
from local.s3 import LocalS3
from oncoserve_runtime import s3_objects

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ROUTES = {"brain": "/brain/predict", "skin": "/skin/predict", "histopathology": "/histopathology/region"}


@pytest.fixture(scope="module")
def s3():
    with LocalS3() as running:
        yield running


@pytest.fixture
def bucket_env(s3, monkeypatch):
    for name, value in s3.function_env.items():
        monkeypatch.setenv(name, value)
    s3_objects._client.cache_clear()  # a client keeps the endpoint it was made with
    yield s3
    s3_objects._client.cache_clear()


@pytest.fixture(scope="module")
def bodies(shared_data):
    return {route: json.loads(body) for route, body in sample_bodies().items()}


def call(app, route: str, body: dict) -> tuple[int, dict]:
    response = app.lambda_handler(json_event(route, body), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def upload(app, prefix: str, data: bytes, content_type: str = "image/png") -> dict:
    status, answer = call(app, f"/{prefix}/uploads", {"content_type": content_type, "bytes": len(data)})
    assert status == 200, answer
    put = urllib.request.Request(answer["upload"]["url"], data=data, method="PUT", headers=answer["upload"]["headers"])
    with _OPENER.open(put, timeout=30) as response:
        assert response.status == 200
    return answer


@pytest.mark.parametrize("task", list(ROUTES))
def test_an_uploaded_image_gets_the_same_answer_as_the_same_image_inline(task, bucket_env, bodies):
    import base64

    app, route = load_function_app(task), ROUTES[task]
    inline = bodies[route]
    answer = upload(app, task, base64.b64decode(inline["image"]))
    by_reference = {**{k: v for k, v in inline.items() if k != "image"}, "s3": answer["s3"]}
    (status, by_s3), (_, by_body) = call(app, route, by_reference), call(app, route, inline)
    assert status == 200
    assert {**by_s3, "elapsed_ms": None} == {**by_body, "elapsed_ms": None}  # the region answer times itself


def test_the_upload_url_is_signed_for_that_type_and_size_under_the_tasks_prefix_and_expires(bucket_env):
    app = load_function_app("brain")
    status, answer = call(app, "/brain/uploads", {"content_type": "application/dicom", "bytes": 7_000_000})
    assert status == 200
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(answer["upload"]["url"]).query)
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]  # S3 refuses another size or type
    assert query["X-Amz-Expires"] == [str(answer["upload"]["expires_in_s"])] and answer["upload"]["expires_in_s"] <= 900
    assert answer["upload"]["headers"] == {"Content-Type": "application/dicom", "Content-Length": "7000000"}
    assert answer["s3"]["bucket"] == bucket_env.bucket and answer["s3"]["key"].startswith("uploads/brain/")
    assert answer["s3"]["key"].endswith(".dcm")


def test_another_bucket_is_refused_before_any_call_to_s3(s3, monkeypatch):
    # S3 "lives" on a closed port: a call would answer 502, so a 403 shows none was made.
    monkeypatch.setenv("ONCOSERVE_INPUT_BUCKET", s3.bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    s3_objects._client.cache_clear()
    status, answer = call(load_function_app("skin"), "/skin/predict", {"s3": {"bucket": "someone-elses-bucket", "key": "x.png"}})
    assert (status, answer["error"]["code"]) == (403, "s3_access_denied")
    status, answer = call(load_function_app("skin"), "/skin/predict", {"s3": {"bucket": s3.bucket, "key": "x.png"}})
    assert (status, answer["error"]["code"]) == (502, "s3_unavailable")
    s3_objects._client.cache_clear()


def test_a_missing_key_an_oversized_object_and_a_non_image_are_client_errors(bucket_env, monkeypatch):
    app, client = load_function_app("brain"), bucket_env.client()
    status, answer = call(app, "/brain/predict", {"s3": {"bucket": bucket_env.bucket, "key": "uploads/brain/never.png"}})
    assert (status, answer["error"]["code"]) == (422, "s3_object_not_found")
    client.put_object(Bucket=bucket_env.bucket, Key="big.png", Body=b"\x89PNG" + bytes(2000))
    monkeypatch.setattr(s3_objects, "MAX_OBJECT_BYTES", 1000)
    status, answer = call(app, "/brain/predict", {"s3": {"bucket": bucket_env.bucket, "key": "big.png"}})
    assert (status, answer["error"]["code"]) == (413, "s3_object_too_large")
    monkeypatch.undo()
    for name, value in bucket_env.function_env.items():
        monkeypatch.setenv(name, value)
    text = upload(app, "brain", b"not an image at all")
    status, answer = call(app, "/brain/predict", {"s3": text["s3"]})
    assert (status, answer["error"]["code"]) == (415, "not_an_image")


def test_without_an_input_bucket_both_s3_features_answer_503(monkeypatch):
    monkeypatch.delenv("ONCOSERVE_INPUT_BUCKET", raising=False)
    app = load_function_app("histopathology")
    for route, body in (("/histopathology/uploads", {"content_type": "image/png", "bytes": 10}),
                        ("/histopathology/predict", {"s3": {"bucket": "any-bucket", "key": "k"}})):
        status, answer = call(app, route, body)
        assert (status, answer["error"]["code"]) == (503, "s3_not_configured")


@pytest.mark.parametrize("body", [{"content_type": "image/gif", "bytes": 10}, {"content_type": "image/png", "bytes": 0},
                                  {"content_type": "image/png", "bytes": 5 * 1024 ** 3 + 1},
                                  {"content_type": "image/png"}])
def test_an_upload_request_outside_the_contract_is_422(bucket_env, body):
    status, answer = call(load_function_app("skin"), "/skin/uploads", body)
    assert (status, answer["error"]["code"]) == (422, "invalid_request")


@pytest.mark.parametrize("task, body, field", [
    ("brain", {"content_type": "image/tiff", "bytes": 10}, "body.content_type"),  # no slide route
    ("histopathology", {"content_type": "image/png", "bytes": 64 * 1024 * 1024 + 1}, "body.bytes"),  # read whole: capped
])
def test_only_slides_may_be_tiffs_and_exceed_what_a_route_reads_whole(bucket_env, task, body, field):
    status, answer = call(load_function_app(task), f"/{task}/uploads", body)
    assert (status, answer["error"]["code"], answer["error"]["details"]["field"]) == (422, "invalid_request", field)
    status, answer = call(load_function_app("histopathology"), "/histopathology/uploads",
                          {"content_type": "image/tiff", "bytes": 3 * 1024 ** 3})
    assert status == 200 and answer["s3"]["key"].endswith(".tif")


def test_a_key_over_s3s_1024_bytes_is_refused_before_any_call(bucket_env):
    status, answer = call(load_function_app("brain"), "/brain/predict", {"s3": {"bucket": bucket_env.bucket, "key": "é" * 600}})
    assert (status, answer["error"]["code"]) == (422, "invalid_request")


def test_expression_functions_have_no_upload_route():
    routes = {route.path for route in load_function_app("leukemia").lambda_handler.routes}
    assert "/leukemia/uploads" not in routes
