"""The local API as users and supervisors run it: concurrent clients, the usage plan, two APIs side
by side, and no process left behind however it is stopped."""

from __future__ import annotations

import base64
import collections
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from bench.workload import SAMPLE_BODIES, sample_bodies
from conftest import REPO_ROOT
from local.running import LocalApi, wait_until_ended
from local.template import function_specs

pytestmark = pytest.mark.slow
KEY = "local-api-test-key"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(url: str, body: bytes, key: str | None = KEY) -> tuple[int | str, dict]:
    """(status, JSON body), or ("dropped", {}) when the connection closed without an answer."""
    headers = {"Content-Type": "application/json", **({"x-api-key": key} if key else {})}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _OPENER.open(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError):
        return "dropped", {}


@pytest.fixture(scope="module")
def bodies(shared_data):
    try:
        return sample_bodies()
    except FileNotFoundError:
        subprocess.run([sys.executable, "-m", "local.make_events"], cwd=REPO_ROOT, check=True)
        return sample_bodies()


@pytest.fixture(scope="module")
def api(bodies, tmp_path_factory):
    # A rate the functions can beat on this machine, so that both 200s and 429s occur.
    running = LocalApi(env={"API_KEY": KEY, "ONCOSERVE_THROTTLE_RATE_LIMIT": "40", "ONCOSERVE_THROTTLE_BURST_LIMIT": "20"},
                       log_path=tmp_path_factory.mktemp("api") / "serve.log").start()
    yield running
    running.kill()


def test_the_sample_bodies_cover_every_prediction_route():
    assert set(SAMPLE_BODIES) == {path for spec in function_specs() for method, path in spec.routes
                                  if method == "POST" and not path.endswith(("/uploads", "/slide", "/jobs"))}  # S3 only


def test_eight_concurrent_clients_are_all_answered_and_the_functions_live_on(api, bodies):
    routes = list(bodies)
    statuses: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def client(number: int) -> None:
        for i in range(40):
            route = routes[(number + i) % len(routes)]
            status, _ = post(api.url + route, bodies[route])
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(statuses.values()) == 320
    assert set(statuses) <= {200, 429}, statuses  # nothing dropped, no 5xx
    assert statuses[200] >= len(routes)
    time.sleep(1.0)  # let the bucket refill
    for route in routes:
        status, answer = post(api.url + route, bodies[route])
        assert status == 200, (route, answer)
    assert len(api.runtime_processes()) >= len(function_specs())


def test_a_file_uploaded_to_the_local_s3_is_predicted_by_reference(api, bodies):
    # The local API starts moto's server mode as its S3 (a stand-in for tests and local use only).
    image = json.loads(bodies["/skin/predict"])["image"]
    size = len(base64.b64decode(image))
    assert post(api.url + "/skin/uploads", json.dumps({"content_type": "image/png", "bytes": size}).encode(),
                key=None) == (403, {"message": "Forbidden"})
    status, answer = post(api.url + "/skin/uploads", json.dumps({"content_type": "image/png", "bytes": size}).encode())
    assert status == 200, answer
    assert answer["upload"]["url"].startswith("http://127.0.0.1:")
    put = urllib.request.Request(answer["upload"]["url"], data=base64.b64decode(image), method="PUT",
                                 headers=answer["upload"]["headers"])
    with _OPENER.open(put, timeout=30) as response:
        assert response.status == 200
    by_reference = post(api.url + "/skin/predict", json.dumps({"s3": answer["s3"]}).encode())
    assert by_reference == post(api.url + "/skin/predict", bodies["/skin/predict"])
    assert by_reference[0] == 200


def test_a_second_local_api_answers_beside_the_first_and_enforces_its_quota(api, bodies, tmp_path):
    route = "/leukemia/predict"
    second = LocalApi([sys.executable, "-m", "local.serve", "leukemia"],
                      env={"API_KEY": KEY, "ONCOSERVE_QUOTA_PER_DAY": "2"}, log_path=tmp_path / "second.log").start()
    try:
        assert second.url != api.url
        assert [post(second.url + route, bodies[route])[0] for _ in range(2)] == [200, 200]
        assert post(second.url + route, bodies[route]) == (429, {"message": "Limit Exceeded"})
        assert post(api.url + route, bodies[route])[0] == 200  # the first API is untouched
        assert post(second.url + route, bodies[route], key=None) == (403, {"message": "Forbidden"})
    finally:
        second.kill()


def test_a_supervisors_sigterm_to_make_serve_leaves_no_process_behind(bodies, tmp_path):
    served = LocalApi(["make", "--no-print-directory", "serve"], env={"API_KEY": KEY},
                      log_path=tmp_path / "make-serve.log").start()
    try:
        for route in ("/leukemia/predict", "/brain/predict"):  # runtimes exist below the emulators
            assert post(served.url + route, bodies[route])[0] == 200
        processes = served.descendants()
        assert set(served.runtime_processes().values()) == {"leukemia", "brain"}
        assert len(processes) >= 1 + len(function_specs()) + 2  # serve, one emulator each, two runtimes
        served.signal_group(signal.SIGTERM)
        assert wait_until_ended([served.pid, *processes], timeout_s=10) == []
    finally:
        served.kill()


@pytest.mark.parametrize("round_", range(2))  # one burst caught the old lock-taking handler 8 times in 10
def test_a_burst_of_sigterms_still_stops_the_local_api(round_, tmp_path):
    # make passes a group's SIGTERM on to its child, so signals can land inside the handler's run.
    served = LocalApi([sys.executable, "-m", "local.serve", "leukemia"], env={"API_KEY": KEY},
                      log_path=tmp_path / "serve.log").start()
    try:
        for _ in range(3000):
            try:
                os.kill(served.pid, signal.SIGTERM)
            except ProcessLookupError:
                break
        assert served.wait(timeout_s=10) == 0
    finally:
        served.kill()


def test_a_killed_local_api_takes_its_functions_with_it(bodies, tmp_path):
    served = LocalApi([sys.executable, "-m", "local.serve", "leukemia", "brain"], env={"API_KEY": KEY},
                      log_path=tmp_path / "serve.log").start()
    try:
        assert post(served.url + "/brain/predict", bodies["/brain/predict"])[0] == 200
        processes = served.descendants()
        served.process.send_signal(signal.SIGKILL)  # the parent alone dies, no handler runs
        assert wait_until_ended(processes, timeout_s=10) == []
    finally:
        served.kill()


def test_serve_exits_non_zero_with_a_message_when_its_port_is_taken(api):
    port = api.url.rsplit(":", 1)[1]
    result = subprocess.run([sys.executable, "-m", "local.serve", "leukemia"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60, env={**api.env, "PORT": port})
    assert result.returncode != 0 and f"127.0.0.1:{port} is already in use" in result.stderr
