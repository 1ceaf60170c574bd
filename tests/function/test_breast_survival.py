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
    response = app.lambda_handler(json_event(PATH, {"expression": expression}), context)
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
    assert status == 200
    assert body["group"] in range(4) and body["label"] == ["high", "above_average", "below_average", "very_low"][body["group"]]
    assert body["group_label"] and abs(sum(body["probabilities"].values()) - 1) < 1e-5
    assert max(body["probabilities"], key=body["probabilities"].get) == body["label"]
    curve = body["survival"]
    assert len(curve["months"]) == len(curve["probability"]) == len(curve["ci_lower"]) == len(curve["ci_upper"])
    assert all(lo <= p <= hi for lo, p, hi in zip(curve["ci_lower"], curve["probability"], curve["ci_upper"]))
    assert np.all(np.diff(curve["probability"]) <= 1e-12), "a survival curve never rises"
    assert 0 <= curve["at_10_years"] <= curve["at_5_years"] <= 1


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
