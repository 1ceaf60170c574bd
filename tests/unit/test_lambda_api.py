"""The local Lambda Invoke API, driven by boto3's own Lambda client as a function drives it (loopback only)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from local.lambda_api import ASYNC_RETRIES, LocalLambdaApi
from local.pool import QueueTimeout


@pytest.fixture
def api():
    server = LocalLambdaApi()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.stop()


@pytest.fixture
def lambda_client(api):
    import boto3
    from botocore.config import Config

    return boto3.client("lambda", endpoint_url=api.endpoint, region_name="us-east-1", aws_access_key_id="local",
                        aws_secret_access_key="local", config=Config(proxies={}, retries={"max_attempts": 1}))


def wait_for(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_an_event_invocation_is_accepted_at_once_and_runs_in_the_background(api, lambda_client):
    release, ran = threading.Event(), []

    def slow(event):
        release.wait(5)
        ran.append(event)
        return {"ok": True}

    api.invokers["Fn"] = slow
    answer = lambda_client.invoke(FunctionName="Fn", InvocationType="Event", Payload=json.dumps({"chunk": 3}).encode())
    assert answer["StatusCode"] == 202 and ran == []  # answered before the function finished
    release.set()
    wait_for(lambda: ran == [{"chunk": 3}] and api.background() == 0)


def test_a_failed_event_invocation_is_retried_twice_as_lambda_does(api, lambda_client):
    attempts = []
    api.invokers["Fn"] = lambda event: attempts.append(event) or {"errorType": "Runtime.ExitError", "errorMessage": "x"}
    lambda_client.invoke(FunctionName="Fn", InvocationType="Event", Payload=b"{}")
    wait_for(lambda: api.background() == 0 and len(attempts) == 1 + ASYNC_RETRIES)
    time.sleep(0.1)
    assert len(attempts) == 1 + ASYNC_RETRIES


def test_an_event_waits_for_a_free_environment_instead_of_being_dropped(api, lambda_client):
    busy, ran = [QueueTimeout("Fn"), QueueTimeout("Fn")], []

    def pool(event):
        if busy:
            raise busy.pop()
        ran.append(event)
        return {"ok": True}

    api.invokers["Fn"] = pool
    lambda_client.invoke(FunctionName="Fn", InvocationType="Event", Payload=b'{"n": 1}')
    wait_for(lambda: ran == [{"n": 1}])


def test_a_request_response_invocation_answers_the_result_and_an_unknown_function_is_404(api, lambda_client):
    api.invokers["Fn"] = lambda event: {"echo": event}
    answer = lambda_client.invoke(FunctionName="Fn", Payload=b'{"a": 1}')
    assert answer["StatusCode"] == 200 and json.loads(answer["Payload"].read()) == {"echo": {"a": 1}}
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.invoke(FunctionName="Nobody", InvocationType="Event", Payload=b"{}")
