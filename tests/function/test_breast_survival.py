"""The breast-survival function on its committed model, through the handler."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import load_function_app
from local.events import json_event

PATH = "/breast-survival/predict"


@pytest.fixture(scope="module")
def app():
    return load_function_app("breast_survival")


@pytest.fixture(scope="module")
def metabric(shared_data):
    from train.breast_survival.data import load_metabric

    return load_metabric()


def call(app, expression, context):
    # "report": the card's figures count every test patient; refusals are tested in test_ood_guard
    response = app.lambda_handler(json_event(PATH, {"expression": expression, "ood": "report"}), context)
    return response["statusCode"], json.loads(response["body"])


def test_test_split_through_the_handler_reproduces_reported_separation(app, metabric, lambda_context):
    from lifelines.utils import concordance_index

    from train.breast_survival.survival_stats import group_separation

    test = metabric.subset("test")
    groups = []
    for row in test.expression:
        status, body = call(app, dict(zip(test.genes, row.tolist())), lambda_context)
        assert status == 200
        groups.append(body["group"])
    groups = np.array(groups)
    reported = app.MODEL.get().metadata["metrics"]["test"]
    assert concordance_index(test.months, -groups, test.os_event) == pytest.approx(reported["harrell_c_overall"], abs=1e-3)
    assert concordance_index(test.months, -groups, test.dss_event) == pytest.approx(
        reported["harrell_c_disease_specific"], abs=1e-3)
    assert [int((groups == g).sum()) for g in range(4)] == [g["n"] for g in reported["per_group_overall"]]
    for endpoint, events in (("overall", test.os_event), ("disease_specific", test.dss_event)):
        assert group_separation(test.months, events, groups)["monotone"] == reported[f"monotone_{endpoint}"]


def test_response_carries_group_curve_and_memberships(app, metabric, lambda_context):
    test = metabric.subset("test")
    status, body = call(app, dict(zip(test.genes, test.expression[3].tolist())), lambda_context)
    assert status == 200 and body["predictor"] == "expression_only" and "clinical" not in body
    assert body["group"] in range(4) and body["label"] == ["high", "above_average", "below_average", "very_low"][body["group"]]
    assert body["group_label"] and abs(sum(body["probabilities"].values()) - 1) < 1e-5
    assert max(body["probabilities"], key=body["probabilities"].get) == body["label"]
    curve = body["group_survival"]["overall"]
    assert len(curve["months"]) == len(curve["probability"]) == len(curve["ci_lower"]) == len(curve["ci_upper"])
    assert all(lo <= p <= hi for lo, p, hi in zip(curve["ci_lower"], curve["probability"], curve["ci_upper"]))
    assert np.all(np.diff(curve["probability"]) <= 1e-12), "a survival curve never rises"
    assert 0 <= curve["at_10_years"] <= curve["at_5_years"] <= 1


def assert_predicted_curve(curve):
    months = [point["months"] for point in curve["curve"]]
    probability = np.array([point["probability"] for point in curve["curve"]])
    assert months[0] == 0 and months[-1] == 180 and probability[0] == pytest.approx(1.0)
    assert np.all(np.diff(probability) <= 1e-7), "a survival curve never rises"
    assert curve["five_year"] == pytest.approx(probability[months.index(60)])
    assert curve["ten_year"] == pytest.approx(probability[months.index(120)])
    if curve["median_months"] is None:
        assert probability.min() > 0.5
    else:
        assert np.interp(curve["median_months"], months, probability) == pytest.approx(0.5, abs=1e-6)


def test_expression_only_risk_orders_the_predicted_curves(app, metabric, lambda_context):
    test = metabric.subset("test")
    answers = [call(app, dict(zip(test.genes, test.expression[i].tolist())), lambda_context)[1] for i in range(12)]
    for body in answers:
        assert_predicted_curve(body["survival"])
        assert_predicted_curve(body["disease_specific_survival"])
    by_risk = sorted(answers, key=lambda body: body["risk"])
    ten_year = [body["survival"]["ten_year"] for body in by_risk]
    assert ten_year == sorted(ten_year, reverse=True), "a higher risk never predicts better survival"


def clinical_of(test, row):
    from local.make_events import clinical_value
    from train.breast_survival.clinical import NAMES

    return {name: clinical_value(name, v) for name, v in zip(NAMES, test.clinical[row]) if not np.isnan(v)}


def call_clinical(app, test, row, context, clinical=None):
    # "report": the card's figures count every test patient; refusals are tested in test_ood_guard
    body = {"expression": dict(zip(test.genes, test.expression[row].tolist())),
            "clinical": clinical_of(test, row) if clinical is None else clinical, "ood": "report"}
    response = app.lambda_handler(json_event(PATH, body), context)
    return response["statusCode"], json.loads(response["body"])


def test_test_split_with_clinical_values_reproduces_reported_figures(app, metabric, lambda_context):
    from lifelines.utils import concordance_index

    test = metabric.subset("test")
    answers = [call_clinical(app, test, row, lambda_context) for row in range(len(test.months))]
    assert {status for status, _ in answers} == {200}
    assert {body["predictor"] for _, body in answers} == {"clinical_and_expression"}
    risk = np.array([body["risk"] for _, body in answers])
    reported = app.MODEL.get().metadata["metrics"]["test_clinical"]
    assert concordance_index(test.months, -risk, test.os_event) == pytest.approx(reported["harrell_c_overall"], abs=1e-3)
    assert concordance_index(test.months, -risk, test.dss_event) == pytest.approx(
        reported["harrell_c_disease_specific"], abs=1e-3)
    groups = np.array([body["group"] for _, body in answers])
    assert [int((groups == g).sum()) for g in range(4)] == [g["n"] for g in reported["groups"]["per_group_overall"]]
    unknown = [body["clinical"]["imputed"] for _, body in answers]
    assert sum(map(len, unknown)) == int(np.isnan(test.clinical).sum()), "each unknown value is named"


def test_clinical_answer_states_the_index_and_the_imputed_values(app, metabric, lambda_context):
    test = metabric.subset("test")
    row = next(i for i in range(len(test.months)) if not np.isnan(test.clinical[i]).any())
    clinical = clinical_of(test, row)
    status, body = call_clinical(app, test, row, lambda_context)
    nodes = clinical["lymph_nodes_examined_positive"]
    expected_index = 0.02 * clinical["tumor_size"] + (1 if nodes == 0 else 2 if nodes <= 3 else 3) \
        + clinical["neoplasm_histologic_grade"]
    assert status == 200 and body["clinical"] == {"nottingham_prognostic_index": pytest.approx(expected_index, abs=1e-4),
                                                  "imputed": []}
    assert_predicted_curve(body["survival"])
    assert_predicted_curve(body["disease_specific_survival"])
    status, body = call_clinical(app, test, row, lambda_context, {**clinical, "tumor_size": None, "her2_status": None})
    assert status == 200 and body["clinical"]["imputed"] == ["tumor_size", "her2_status"]
    status, body = call_clinical(app, test, row, lambda_context,
                                 {k: v for k, v in clinical.items() if k not in ("tumor_size", "pr_status", "her2_status")})
    assert (status, body["error"]["code"]) == (422, "clinical_incomplete")
    assert body["error"]["details"] == {"unknown": ["tumor_size", "pr_status", "her2_status"], "max_imputed": 2}


@pytest.mark.parametrize("field, value, rule", [
    ("age_at_diagnosis", 300, "maximum"), ("tumor_size", -1, "minimum"), ("neoplasm_histologic_grade", 4, "maximum"),
    ("neoplasm_histologic_grade", True, "type"), ("lymph_nodes_examined_positive", 2.5, "type"),
    ("er_status", "positive", "enum"), ("age_at_diagnosis", "sixty", "type")])
def test_out_of_range_clinical_values_are_refused_by_name(app, metabric, lambda_context, field, value, rule):
    test = metabric.subset("test")
    status, body = call_clinical(app, test, 0, lambda_context, {**clinical_of(test, 0), field: value})
    assert (status, body["error"]["code"]) == (422, "invalid_request")
    assert body["error"]["details"] == {"field": f"body.clinical.{field}", "rule": rule}


def test_request_schema_states_what_the_model_was_trained_on(app):
    fields = app.MODEL.get().metadata["input"]["clinical"]["fields"]
    schema = app.CLINICAL_SCHEMA["properties"]
    assert list(schema) == [f["name"] for f in fields]
    for f in fields:
        if f["kind"] == "status":
            assert schema[f["name"]]["enum"] == ["Positive", "Negative", None]
        else:
            assert (schema[f["name"]]["minimum"], schema[f["name"]]["maximum"]) == (f["minimum"], f["maximum"])
            assert schema[f["name"]]["type"] == [f["kind"], "null"]


def test_group_curves_are_ordered_best_to_worst(app):
    tables = app.MODEL.get().metadata["output"]["survival_tables"]
    ten_year = [t["overall"]["at_10_years"] for t in tables]
    assert ten_year == sorted(ten_year, reverse=True), ten_year


def test_missing_gene_rule(app, metabric, lambda_context):
    test = metabric.subset("test")
    profile = dict(zip(test.genes, test.expression[0].tolist()))
    items = list(profile.items())
    status, body = call(app, dict(items[: int(len(items) * 0.92)]), lambda_context)
    assert status == 200 and body["input"]["genes_missing"] == len(items) - int(len(items) * 0.92)
    status, body = call(app, dict(items[: int(len(items) * 0.85)]), lambda_context)
    assert (status, body["error"]["code"]) == (422, "missing_genes")
    assert body["error"]["details"]["missing"][0] == items[int(len(items) * 0.85)][0]


def test_gene_symbols_are_case_insensitive(app, metabric, lambda_context):
    test = metabric.subset("test")
    profile = dict(zip(test.genes, test.expression[1].tolist()))
    upper = {gene.upper(): value for gene, value in profile.items()}
    assert call(app, profile, lambda_context)[1]["probabilities"] == call(app, upper, lambda_context)[1]["probabilities"]


@pytest.mark.parametrize("value", [1e6, -1e6])
def test_absurd_profiles_get_a_flat_finite_curve_not_an_error(app, metabric, lambda_context, value):
    test = metabric.subset("test")
    status, body = call(app, {gene: value for gene in test.genes}, lambda_context)
    assert status == 200
    for curve in (body["survival"], body["disease_specific_survival"]):
        probability = [point["probability"] for point in curve["curve"]]
        assert probability[0] == 1.0 and all(0.0 <= p <= 1.0 for p in probability)
