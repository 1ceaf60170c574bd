"""The leukemia function on its committed model: handler, emulator, and the local API with keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest

from conftest import REPO_ROOT, load_function_app
from local.emulator import EmulatedFunction
from local.events import json_event, load_event
from local.replay import replay_function
from local.running import LocalApi
from local.template import function_specs

PATH = "/leukemia/predict"


@pytest.fixture(scope="module")
def app():
    return load_function_app("leukemia")


@pytest.fixture(scope="module")
def golub(shared_data):
    from train.leukemia.data import load_golub

    return load_golub()


def call(app, event, context):
    response = app.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def test_the_committed_model_reproduces_its_reported_test_figures(app, golub, lambda_context):
    # GIVEN the 34 independent Golub samples, WHEN each goes through the real handler,
    # THEN the answers match the metrics in model.json (measured on the same TFLite file).
    genes, _, independent = golub
    labels = []
    for row in independent.expression:
        status, body = call(app, json_event(PATH, {"expression": dict(zip(genes, row.tolist()))}), lambda_context)
        assert status == 200
        labels.append(body["label"])
        assert set(body["probabilities"]) == {"ALL", "AML"}
        assert abs(sum(body["probabilities"].values()) - 1.0) < 1e-5
    correct = int((np.array(labels) == np.array(["ALL", "AML"])[independent.labels]).sum())
    reported = app.MODEL.get().metadata["metrics"]["test"]
    assert correct == reported["correct"]
    assert correct >= 33, f"{correct}/34 on the independent set"


def test_response_follows_the_contract(app, golub, lambda_context):
    genes, _, independent = golub
    status, body = call(app, json_event(PATH, {"expression": dict(zip(genes, independent.expression[0].tolist()))}),
                        lambda_context)
    assert status == 200
    assert body["task"] == "leukemia"
    assert set(body["model"]) == {"name", "version", "sha256"} and len(body["model"]["sha256"]) == 64
    assert body["label"] in ("ALL", "AML") and body["threshold"] == 0.5
    assert body["input"] == {"genes_used": 7129, "genes_missing": 0, "coverage": 1.0}


def test_prediction_does_not_depend_on_key_order(app, golub, lambda_context):
    genes, _, independent = golub
    forward = dict(zip(genes, independent.expression[5].tolist()))
    backward = dict(reversed(list(forward.items())))
    assert call(app, json_event(PATH, {"expression": forward}), lambda_context)[1]["probabilities"] == \
        call(app, json_event(PATH, {"expression": backward}), lambda_context)[1]["probabilities"]


@pytest.mark.parametrize("name", ["bad_missing_genes.json", "bad_nan_value.json", "bad_string_value.json",
                                  "bad_unknown_gene.json", "bad_invalid_json.json"])
def test_committed_bad_events_get_their_expected_answer(app, name, lambda_context):
    expected = json.loads((REPO_ROOT / "events" / "leukemia" / "expected.json").read_text())[name]
    status, body = call(app, load_event(f"leukemia/{name}"), lambda_context)
    assert (status, body["error"]["code"]) == (expected["status"], expected["code"])


@pytest.mark.slow
def test_every_event_replays_through_the_runtime_interface_emulator(shared_data):
    # The real Lambda runtime path: RIE + awslambdaric in a separate process, JSON over loopback.
    generated = REPO_ROOT / "events" / "generated" / "leukemia" / "expected.json"
    if not generated.is_file():
        subprocess.run([sys.executable, "-m", "local.make_events", "leukemia"], cwd=REPO_ROOT, check=True)
    spec = next(s for s in function_specs() if s.task == "leukemia")
    with EmulatedFunction(spec, 9391) as function:
        outcomes = replay_function(spec, function.invoke)
    assert len(outcomes) >= 12
    assert [o.event for o in outcomes if not o.ok] == []


def _request(url, body, key):
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **({"x-api-key": key} if key else {})})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_local_api_serves_with_key_enforcement(golub, tmp_path):
    # `make serve` as a user runs it: every function up, the key enforced, the model answering.
    key = "ci-key-" + os.urandom(6).hex()
    server = LocalApi(env={"API_KEY": key}, log_path=tmp_path / "serve.log").start()
    try:
        genes, _, independent = golub
        aml = int(np.flatnonzero(independent.labels == 1)[0])
        body = json.dumps({"expression": dict(zip(genes, independent.expression[aml].tolist()))}).encode()
        url = f"{server.url}{PATH}"
        assert _request(url, body, None) == (403, {"message": "Forbidden"})
        assert _request(url, body, "not-the-key") == (403, {"message": "Forbidden"})
        status, answer = _request(url, body, key)
        assert status == 200 and answer["label"] == "AML"
        status, answer = _request(url, b'{"expression": {"AFFX-BioB-5_at": 1}}', key)
        assert status == 422 and answer["error"]["code"] == "missing_genes"
        # Functions whose model is not committed yet answer 503, they do not crash.
        for spec in function_specs():
            if not (spec.directory / "model" / "model.json").is_file():
                status, answer = _request(f"{server.url}{spec.routes[0][1]}", b'{"image": "AAAA"}', key)
                assert (status, answer["error"]["code"]) == (503, "model_unavailable"), spec.task
    finally:
        server.stop()
