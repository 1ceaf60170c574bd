"""The skin function on its committed model, through the handler, on the test split."""

from __future__ import annotations

import pytest
from sklearn.metrics import roc_auc_score

from conftest import load_function_app
from image_helpers import close_counts, confusion, post_file, split_rows

ROUTE = "/skin/predict"


@pytest.fixture(scope="module")
def app():
    return load_function_app("skin")


@pytest.fixture(scope="module")
def scored(app, shared_data):
    from conftest import FakeLambdaContext

    rows = split_rows(shared_data, "skin")
    answers = []
    for row in rows.itertuples():
        status, body = post_file(app, ROUTE, shared_data / "skin" / row.path, FakeLambdaContext())
        assert status == 200, body
        answers.append(body)
    return rows, answers


@pytest.mark.parametrize("source", [None, "HAM10000", "ISIC2017"])
def test_test_split_reproduces_reported_auc_and_operating_point(app, scored, source):
    rows, answers = scored
    keep = [source is None or s == source for s in rows["source_dataset"]]
    labels = [int(l == "melanoma") for l, k in zip(rows["label"], keep) if k]
    p = [a["probabilities"]["melanoma"] for a, k in zip(answers, keep) if k]
    predicted = [int(a["label"] == "melanoma") for a, k in zip(answers, keep) if k]
    reported = app.MODEL.get().metadata["metrics"]["test" if source is None else f"test_{source}"]
    assert roc_auc_score(labels, p) == pytest.approx(reported["roc_auc"], abs=2e-3)
    assert close_counts(confusion(labels, predicted), reported["confusion"])


def test_answer_names_both_classes_and_threshold(app, scored):
    _, answers = scored
    body = answers[0]
    assert set(body["probabilities"]) == {"benign", "melanoma"}
    assert body["threshold"] == app.MODEL.get().metadata["output"]["threshold"]


def test_explain_adds_a_cam(app, scored, shared_data, lambda_context):
    rows, _ = scored
    status, body = post_file(app, ROUTE, shared_data / "skin" / rows["path"].iloc[0], lambda_context, explain=True)
    assert status == 200 and body["explanation"]["heatmap_png"]
    assert body["explanation"]["method"].startswith("class activation map")
