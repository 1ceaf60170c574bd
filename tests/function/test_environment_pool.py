"""Execution environments under the real emulator: a runtime that crashes or hangs is replaced, and
its request is answered (a tiny stand-in function, so the test needs no model)."""

from __future__ import annotations

import json
import os
import time

import pytest

from local.pool import EnvironmentPool
from local.events import json_event
from local.running import process_ended as gone
from local.template import FunctionSpec

pytestmark = pytest.mark.slow

APP = '''
import json, os, time

def lambda_handler(event, context):
    request = json.loads(event.get("body") or "{}")
    if request.get("crash"):
        os._exit(3)
    time.sleep(request.get("sleep", 0))
    return {"statusCode": 200, "body": json.dumps({"pid": os.getpid()})}
'''


@pytest.fixture
def pool(tmp_path):
    (tmp_path / "standin").mkdir()
    (tmp_path / "standin" / "app.py").write_text(APP)
    spec = FunctionSpec(logical_id="StandInFunction", task="standin", routes=(("POST", "/standin"),),
                        memory_mb=128, timeout_s=2, docker_tag="standin-v1", functions_root=tmp_path)
    lines: list[str] = []
    pool = EnvironmentPool(spec, 2, log_path=tmp_path / "standin.log", say=lines.append).start()
    pool.lines = lines
    yield pool
    pool.stop()


def ask(pool, **body):
    result = pool.invoke(json_event("/standin", body))
    return result.get("statusCode"), json.loads(result["body"]) if "body" in result else result


def test_a_crashed_runtime_is_replaced_and_its_request_answered(pool):
    status, first = ask(pool)
    assert status == 200
    crashed_environment = pool.environments()[0]
    status, _ = ask(pool, crash=True)
    assert status is None  # no proxy response: the gateway turns this into a 502
    assert crashed_environment not in pool.environments() and gone(first["pid"])
    status, after = ask(pool)
    assert status == 200 and after["pid"] != first["pid"]
    assert any("discarded" in line for line in pool.lines)


def test_a_hung_runtime_is_killed_after_the_timeout_and_replaced(pool):
    _, first = ask(pool)
    started = time.monotonic()
    status, _ = ask(pool, sleep=60)
    assert status is None and time.monotonic() - started < 2 + 5
    assert gone(first["pid"])  # the runtime stuck in its handler was killed, not left behind
    status, after = ask(pool)
    assert status == 200 and after["pid"] != first["pid"]


def test_environments_stop_with_their_pool(pool):
    _, answer = ask(pool)
    emulators = [environment.pid for environment in pool.environments()]
    pool.stop()
    assert all(gone(pid) for pid in [answer["pid"], *emulators])
    assert os.getpid()  # the test process itself is untouched
