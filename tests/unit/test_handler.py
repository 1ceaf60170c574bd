"""The shared handler: routing, 503 without a model, 4xx shaping, and no 500 for client input."""

import json

import numpy as np
import pytest

from oncoserve_runtime import (EXPRESSION_REQUEST_SCHEMA, BinaryOutput, ModelHandle, Route, UnprocessableEntityError,
                               build_lambda_handler, contract)

from tests.conftest import FUNCTIONS_DIR

LEUKEMIA = contract.contract_type("leukemia", "expression", BinaryOutput)


class StubBundle:
    metadata = {"name": "stub", "version": "0.0.1", "output": {"labels": ["a", "b"]}}
    info = {"name": "stub", "version": "0.0.1", "sha256": "0" * 64}


class StubHandle:
    def get(self):
        return StubBundle()


def event(path="/stub/predict", method="POST", body='{"expression": {"G1": 1.0}}'):
    return {"resource": path, "path": path, "httpMethod": method, "body": body, "isBase64Encoded": False}


def answer(handler, evt, context):
    response = handler(evt, context)
    return response["statusCode"], json.loads(response["body"])


def make(predict, model=None):
    return build_lambda_handler("stub", model or StubHandle(), [Route("/stub/predict", EXPRESSION_REQUEST_SCHEMA, predict)])


def test_success_names_task_and_model(lambda_context):
    handler = make(lambda body, model: {"label": "a", "probabilities": {"a": 0.9, "b": 0.1}})
    status, body = answer(handler, event(), lambda_context)
    assert status == 200
    assert body == {"task": "stub", "model": StubBundle.info, "label": "a", "probabilities": {"a": 0.9, "b": 0.1}}


@pytest.mark.parametrize(
    "evt, status, code",
    [
        (event(path="/other"), 404, "unknown_route"),
        (event(method="GET"), 405, "method_not_allowed"),
        (event(body="{"), 400, "invalid_json"),
        (event(body='{"expression": {"G1": "x"}}'), 422, "invalid_request"),
        (event(body='{"expression": {"G1": NaN}}'), 422, "non_finite_number"),
    ],
)
def test_client_errors_are_shaped(evt, status, code, lambda_context):
    handler = make(lambda body, model: pytest.fail("predict must not run"))
    got_status, body = answer(handler, evt, lambda_context)
    assert (got_status, body["error"]["code"]) == (status, code)
    assert body["error"]["message"]


def test_errors_raised_by_predict_keep_their_status(lambda_context):
    def predict(body, model):
        raise UnprocessableEntityError("missing_genes", "send all genes", details={"missing": ["G2"]})

    status, body = answer(make(predict), event(), lambda_context)
    assert status == 422 and body["error"] == {"code": "missing_genes", "message": "send all genes",
                                               "details": {"missing": ["G2"]}}


def test_a_server_fault_is_a_500_without_internals(lambda_context):
    def predict(body, model):
        raise RuntimeError("secret internal detail")

    status, body = answer(make(predict), event(), lambda_context)
    assert status == 500 and body["error"]["code"] == "internal_error"
    assert "secret" not in json.dumps(body)


def test_nan_in_a_result_is_a_server_fault_not_invalid_json(lambda_context):
    status, body = answer(make(lambda body, model: {"p": float(np.nan)}), event(), lambda_context)
    assert status == 500


def test_missing_model_is_a_503(tmp_path, lambda_context):
    handler = make(lambda body, model: {}, model=ModelHandle(tmp_path / "nothing-here", LEUKEMIA))
    status, body = answer(handler, event(), lambda_context)
    assert (status, body["error"]["code"]) == (503, "model_unavailable")


def _leukemia_contract() -> dict:
    return json.loads((FUNCTIONS_DIR / "leukemia" / "model" / "model.json").read_text())


def test_tampered_model_is_a_503(tmp_path, lambda_context):
    (tmp_path / "model.tflite").write_bytes(b"not the trained model")
    (tmp_path / "model.json").write_text(json.dumps(_leukemia_contract()))
    handler = make(lambda body, model: {}, model=ModelHandle(tmp_path, LEUKEMIA))
    status, body = answer(handler, event(), lambda_context)
    assert (status, body["error"]["code"]) == (503, "model_unavailable")
    assert "sha256" in body["error"]["message"]


def _drop_threshold(document):
    del document["output"]["threshold"]


def _misspell_a_key(document):
    document["output"]["thershold"] = document["output"].pop("threshold")


def _text_for_a_number(document):
    document["input"]["missing"]["min_coverage"] = "all"


def _training_record_in_the_contract(document):
    document["training"] = {"seed": 1}


@pytest.mark.parametrize("break_it, where", [
    (_drop_threshold, "output.threshold: required key missing"),
    (_misspell_a_key, "output: unknown key(s) ['thershold']"),
    (_text_for_a_number, "input.missing.min_coverage: expected a number, got str"),
    (_training_record_in_the_contract, "unknown key(s) ['training']"),
])
def test_a_broken_contract_is_a_503_at_cold_start_naming_the_key(tmp_path, lambda_context, break_it, where):
    document = _leukemia_contract()
    break_it(document)
    (tmp_path / "model.json").write_text(json.dumps(document))
    (tmp_path / "model.tflite").write_bytes((FUNCTIONS_DIR / "leukemia" / "model" / "model.tflite").read_bytes())
    handle = ModelHandle(tmp_path, LEUKEMIA)
    handle.warm()  # what each app does at import: the failure is kept, not raised
    handler = make(lambda body, model: {}, model=handle)
    for evt in (event(), event("/stub/health", "GET", None)):
        status, body = answer(handler, evt, lambda_context)
        assert (status, body["error"]["code"]) == (503, "model_unavailable")
        assert where in body["error"]["message"]


def test_the_committed_contract_loads(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps(_leukemia_contract()))
    (tmp_path / "model.tflite").write_bytes((FUNCTIONS_DIR / "leukemia" / "model" / "model.tflite").read_bytes())
    bundle = ModelHandle(tmp_path, LEUKEMIA).get()
    assert bundle.contract.output.threshold == 0.5 and len(bundle.contract.input.features) == 7129


def test_non_proxy_events_are_refused(lambda_context):
    handler = make(lambda body, model: {})
    status, body = answer(handler, {"expression": {}}, lambda_context)
    assert (status, body["error"]["code"]) == (404, "unknown_route")


def test_every_function_answers_health_and_model_metadata_without_a_body(lambda_context):
    handler = make(lambda body, model: {})
    assert [(r.method, r.path) for r in handler.routes] == [
        ("POST", "/stub/predict"), ("GET", "/stub/model"), ("GET", "/stub/health")]
    status, body = answer(handler, event("/stub/health", "GET", None), lambda_context)
    assert (status, body["status"], body["model"]) == (200, "ready", StubBundle.info)
    status, body = answer(handler, event("/stub/health", "POST", "{}"), lambda_context)
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")


def test_health_is_503_while_the_model_is_unavailable(tmp_path, lambda_context):
    handler = make(lambda body, model: {}, model=ModelHandle(tmp_path, LEUKEMIA))
    status, body = answer(handler, event("/stub/health", "GET", None), lambda_context)
    assert (status, body["error"]["code"]) == (503, "model_unavailable")


def test_a_function_serves_one_prefix():
    with pytest.raises(ValueError, match="one prefix"):
        build_lambda_handler("stub", StubHandle(), [Route("/a/predict", EXPRESSION_REQUEST_SCHEMA, lambda b, m: {}),
                                                    Route("/b/predict", EXPRESSION_REQUEST_SCHEMA, lambda b, m: {})])
