"""Execution-environment pools, with stand-in environments: queueing, growth, replacement."""

import threading
import time
from pathlib import Path

import pytest

from local.pool import ENVIRONMENT_FAILED, EnvironmentPool, QueueTimeout
from local.template import FunctionSpec

SPEC = FunctionSpec(logical_id="FakeFunction", task="fake", routes=(("POST", "/fake"),), memory_mb=128,
                    timeout_s=1, docker_tag="fake-v1", functions_root=Path("/nonexistent"))


class FakeEnvironment:
    """Answers 200 after ``hold`` seconds; ``behaviour`` can make it crash or fail."""

    created: list["FakeEnvironment"] = []

    def __init__(self, spec, port, *, runtime_api_port, env, log_path):
        self.port, self.alive, self.stopped, self.busy = port, False, False, 0
        self.behaviour, self.hold = "ok", 0.0
        FakeEnvironment.created.append(self)

    def start(self):
        self.alive = True
        return self

    def invoke(self, event, timeout_s):
        self.busy += 1
        assert self.busy == 1, "two invocations at once in one environment"
        try:
            time.sleep(event.get("hold", 0.0))
            if event.get("do") == "drop":
                self.alive = False
                raise ConnectionResetError("peer reset")
            if event.get("do") == "error":
                return {"errorType": "Runtime.ExitError", "errorMessage": "exit status 3"}
            return {"statusCode": 200, "body": str(id(self))}
        finally:
            self.busy -= 1

    def stop(self, grace_s=2.0):
        self.alive, self.stopped = False, True


@pytest.fixture(autouse=True)
def fresh_environments():
    FakeEnvironment.created = []


def pool(concurrency=2, timeout_s=1):
    spec = FunctionSpec(**{**SPEC.__dict__, "timeout_s": timeout_s})
    return EnvironmentPool(spec, concurrency, make_environment=FakeEnvironment, say=lambda line: None)


def run_concurrently(function, count):
    results, threads = [None] * count, []
    for i in range(count):
        threads.append(threading.Thread(target=lambda i=i: results.__setitem__(i, function())))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_start_opens_one_environment():
    p = pool().start()
    assert len(p.environments()) == 1 and FakeEnvironment.created[0].alive


def test_concurrent_requests_queue_and_the_pool_grows_only_to_its_concurrency():
    p = pool(concurrency=2, timeout_s=5)
    results = run_concurrently(lambda: p.invoke({"hold": 0.05}), 8)
    assert all(r["statusCode"] == 200 for r in results)
    assert len(FakeEnvironment.created) == 2 and len({r["body"] for r in results}) == 2


def test_a_dropped_connection_discards_the_environment_and_the_next_request_gets_a_new_one():
    p = pool(concurrency=1)
    first = p.invoke({})
    assert p.invoke({"do": "drop"}) == ENVIRONMENT_FAILED
    assert FakeEnvironment.created[0].stopped and p.environments() == []
    after = p.invoke({})
    assert after["statusCode"] == 200 and after["body"] != first["body"]


def test_a_function_error_is_passed_on_and_its_environment_replaced():
    p = pool(concurrency=1)
    assert p.invoke({"do": "error"})["errorType"] == "Runtime.ExitError"
    assert FakeEnvironment.created[0].stopped
    assert p.invoke({})["statusCode"] == 200 and len(FakeEnvironment.created) == 2


def test_a_request_that_waits_past_the_function_timeout_is_a_queue_timeout():
    p = pool(concurrency=1, timeout_s=0.2)
    holder = threading.Thread(target=p.invoke, args=({"hold": 0.6},))
    holder.start()
    time.sleep(0.05)
    with pytest.raises(QueueTimeout):
        p.invoke({})
    holder.join()
    assert p.invoke({})["statusCode"] == 200  # the environment came back


def test_a_stopped_pool_stops_every_environment_and_refuses_new_work():
    p = pool(concurrency=2)
    run_concurrently(lambda: p.invoke({"hold": 0.05}), 2)
    p.stop()
    assert all(e.stopped for e in FakeEnvironment.created)
    assert p.invoke({}) == ENVIRONMENT_FAILED


def test_concurrency_below_one_is_refused():
    with pytest.raises(ValueError):
        pool(concurrency=0)
