"""The brain function on its committed model, through the handler, on the test split."""

from __future__ import annotations

import pytest
from PIL import Image

from conftest import load_function_app
from image_helpers import close_counts, confusion, post_file, split_rows

ROUTE = "/brain/predict"


@pytest.fixture(scope="module")
def app():
    return load_function_app("brain")


MRI_SOURCES = ["multimodal_ct_mri", "nickparvar_training"]


@pytest.fixture(scope="module")
def test_rows(shared_data, app):
    # The card reports on the sources the model was trained on (model.json): both MRI sources.
    rows = split_rows(shared_data, "brain")
    assert app.MODEL.get().metadata["data"]["sources"] == MRI_SOURCES
    return rows[rows["source_dataset"].isin(MRI_SOURCES)]


@pytest.fixture(scope="module")
def answers(app, test_rows, shared_data):
    from conftest import FakeLambdaContext

    out = []
    for row in test_rows.itertuples():
        # "report": the card's figures count every test image; the guard's refusals are tested in test_ood_guard
        status, body = post_file(app, ROUTE, shared_data / "brain" / row.path, FakeLambdaContext(), modality=row.modality,
                                 ood="report")
        assert status == 200, body
        out.append(body)
    return out


@pytest.mark.parametrize("modality", ["ct", "mri"])
def test_test_split_reproduces_reported_recall_and_specificity(app, test_rows, answers, modality):
    rows = (test_rows["modality"] == modality).to_numpy()
    labels = [int(l != "healthy") for l, keep in zip(test_rows["label"], rows) if keep]
    predicted = [int(a["label"] == "tumor") for a, keep in zip(answers, rows) if keep]
    got = confusion(labels, predicted)
    reported = app.MODEL.get().metadata["metrics"][f"test_{modality}"]["confusion"]
    assert close_counts(got, reported), (got, reported)
    assert got["tp"] / (got["tp"] + got["fn"]) >= 0.97  # recall first


@pytest.mark.parametrize("source", MRI_SOURCES)
def test_each_mri_source_reproduces_its_reported_figures(app, test_rows, answers, source):
    # GIVEN one MRI source's test images, WHEN sent with modality "mri", THEN the confusion counts and
    # the type accuracy are the card's per-source figures (the threshold holds recall within each source).
    rows = ((test_rows["modality"] == "mri") & (test_rows["source_dataset"] == source)).to_numpy()
    labels = [l for l, keep in zip(test_rows["label"], rows) if keep]
    picked = [a for a, keep in zip(answers, rows) if keep]
    got = confusion([int(l != "healthy") for l in labels], [int(a["label"] == "tumor") for a in picked])
    reported = app.MODEL.get().metadata["metrics"]["test_mri_by_source"][source]
    assert close_counts(got, reported["confusion"]), (got, reported["confusion"])
    assert got["tp"] / (got["tp"] + got["fn"]) >= 0.97  # recall first, within each source
    typed = [(l, a) for l, a in zip(labels, picked) if l != "healthy" and l != "tumor" and "tumor_type" in a]
    assert len(typed) >= reported["type_n"] - reported["confusion"]["fn"]  # a missed tumour gets no type
    accuracy = sum(l == a["tumor_type"]["label"] for l, a in typed) / len(typed)
    assert abs(accuracy - reported["type_accuracy"]) <= 0.03, (accuracy, reported["type_accuracy"])


def test_mri_type_accuracy_is_as_reported(app, test_rows, answers):
    typed = [(row.label, a) for row, a in zip(test_rows.itertuples(), answers)
             if row.label in ("glioma", "meningioma", "pituitary") and "tumor_type" in a]
    accuracy = sum(label == a["tumor_type"]["label"] for label, a in typed) / len(typed)
    assert accuracy >= app.MODEL.get().metadata["metrics"]["test_mri_type"]["accuracy"] - 0.05


def test_modality_is_predicted_when_absent(app, test_rows, shared_data, lambda_context):
    row = test_rows[test_rows["modality"] == "ct"].iloc[0]
    status, body = post_file(app, ROUTE, shared_data / "brain" / row["path"], lambda_context)
    assert status == 200
    assert body["modality"]["source"] == "predicted" and body["modality"]["value"] == "ct"
    assert 0.5 <= body["modality"]["probability"] <= 1.0


def test_explain_returns_a_heatmap_png(app, test_rows, shared_data, lambda_context, tmp_path):
    import base64
    import io

    row = test_rows[test_rows["label"] == "glioma"].iloc[0]
    status, body = post_file(app, ROUTE, shared_data / "brain" / row["path"], lambda_context, modality="mri", explain=True)
    assert status == 200 and body["label"] == "tumor"
    heatmap = Image.open(io.BytesIO(base64.b64decode(body["explanation"]["heatmap_png"])))
    assert heatmap.format == "PNG" and max(heatmap.size) <= 512
    assert body["explanation"]["grid"] == [7, 7]


def test_colour_alone_does_not_flip_the_answer(app, test_rows, shared_data, lambda_context, tmp_path):
    # GIVEN test images, WHEN only their colour changes (a strong tint), THEN the label holds:
    # inputs are greyscale by construction, so colour cannot carry the source.
    import numpy as np

    flips = 0
    sample = test_rows.sample(40, random_state=3)
    for row in sample.itertuples():
        original = shared_data / "brain" / row.path
        tinted = tmp_path / "tinted.png"
        pixels = np.asarray(Image.open(original).convert("RGB"), dtype=np.float32) * np.array([1.0, 0.7, 0.4])
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(tinted)
        a = post_file(app, ROUTE, original, lambda_context, modality=row.modality, ood="report")[1]["label"]
        b = post_file(app, ROUTE, tinted, lambda_context, modality=row.modality, ood="report")[1]["label"]
        flips += a != b
    assert flips <= 4, f"{flips}/40 labels flipped by a colour tint"
