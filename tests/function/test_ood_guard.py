"""The out-of-distribution guard through the function path, on the committed models: a photograph,
noise or a profile on another scale is refused with 422 ``out_of_distribution`` and its score; with
``"ood": "report"`` it is answered, flagged; in-distribution test inputs keep their answers; the
region route leaves refused tiles blank; the committed figures hold for what the functions answer."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from conftest import FUNCTIONS_DIR, FakeLambdaContext, load_function_app
from image_helpers import post_file, split_rows
from local.events import json_event

PHOTOGRAPH = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def call(app, route, body):
    response = app.lambda_handler(json_event(route, body), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def png(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def guarded(task: str) -> bool:
    return "ood" in json.loads((FUNCTIONS_DIR / task / "model" / "model.json").read_text())


@pytest.fixture(scope="module")
def brain():
    if not guarded("brain"):
        pytest.skip("brain model without a guard")
    return load_function_app("brain")


def test_a_photograph_sent_to_the_brain_model_is_refused_with_its_score(brain):
    status, body = post_file(brain, "/brain/predict", PHOTOGRAPH, FakeLambdaContext())
    assert status == 422 and body["error"]["code"] == "out_of_distribution"
    ood = body["error"]["details"]["ood"]
    assert ood["score"] > ood["threshold"] == brain.MODEL.get().contract.ood.refuse_threshold
    assert "label" not in body


def test_report_answers_the_photograph_with_the_flag(brain):
    status, body = post_file(brain, "/brain/predict", PHOTOGRAPH, FakeLambdaContext(), ood="report")
    assert status == 200 and body["label"] in ("tumor", "healthy")
    assert body["ood"]["status"] == "out_of_distribution" and body["ood"]["score"] > body["ood"]["threshold"]


def test_in_distribution_test_slices_keep_their_answers(brain, shared_data):
    # GIVEN test slices, WHEN sent with and without "report", THEN every one the guard lets through
    # gets the same answer both ways, and at most 2% are refused (<= 1% on validation by construction)
    rows = split_rows(shared_data, "brain").iloc[::10]
    refused = 0
    for row in rows.itertuples():
        path = shared_data / "brain" / row.path
        status, guarded_answer = post_file(brain, "/brain/predict", path, FakeLambdaContext(), modality=row.modality)
        _, reported = post_file(brain, "/brain/predict", path, FakeLambdaContext(), modality=row.modality, ood="report")
        if status == 422:
            assert guarded_answer["error"]["code"] == "out_of_distribution"
            assert reported["ood"]["status"] == "out_of_distribution"
            refused += 1
            continue
        assert status == 200 and guarded_answer == reported
        assert guarded_answer["ood"]["status"] in ("in_distribution", "atypical")
    assert refused <= max(1, 0.02 * len(rows))


def guarded_app(task):
    if not guarded(task):
        pytest.skip(f"{task} model without a guard")
    return load_function_app(task)


@pytest.fixture(scope="module")
def histopathology():
    return guarded_app("histopathology")


def test_a_noise_patch_is_refused_and_a_test_patch_is_not(histopathology, shared_data):
    noise = np.random.default_rng(0).integers(0, 256, (50, 50, 3), dtype=np.uint8)
    status, body = call(histopathology, "/histopathology/predict", {"image": png(noise)})
    assert status == 422 and body["error"]["code"] == "out_of_distribution"
    row = split_rows(shared_data, "histopathology").iloc[0]
    status, body = post_file(histopathology, "/histopathology/predict", shared_data / "histopathology" / row.path,
                             FakeLambdaContext(), ood="report")
    assert status == 200 and body["ood"]["status"] in ("in_distribution", "atypical", "out_of_distribution")


@pytest.mark.parametrize("colour", [(0, 0, 0), (128, 128, 128), (230, 190, 160)])
def test_a_one_colour_patch_is_refused_with_the_farthest_score(histopathology, colour):
    status, body = call(histopathology, "/histopathology/predict", {"image": png(np.full((50, 50, 3), colour, np.uint8))})
    assert status == 422 and body["error"]["code"] == "out_of_distribution"
    assert body["error"]["details"]["ood"]["score"] == 2.0


def test_the_region_route_leaves_refused_tiles_blank(histopathology, shared_data):
    from train.histopathology.data import load_splits, stitched_region

    images, labels, _ = load_splits(limit=200)["test"]
    region, _ = stitched_region(images, labels, 4, 4, seed=7)
    clean_status, clean = call(histopathology, "/histopathology/region", {"image": png(region), "ood": "report"})
    noisy = region.copy()
    noisy[:50] = np.random.default_rng(1).integers(0, 256, noisy[:50].shape, dtype=np.uint8)  # the top row: noise
    status, body = call(histopathology, "/histopathology/region", {"image": png(noisy)})
    assert clean_status == status == 200
    assert body["grid"]["probabilities"][0] == [None] * 4 and body["tiles"]["out_of_distribution"] >= 4
    assert body["tiles"]["scored"] == clean["tiles"]["scored"] - body["tiles"]["out_of_distribution"]
    reported = call(histopathology, "/histopathology/region", {"image": png(noisy), "ood": "report"})[1]
    assert None not in reported["grid"]["probabilities"][0] and reported["tiles"]["out_of_distribution"] >= 4
    noise_only = np.random.default_rng(2).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    status, body = call(histopathology, "/histopathology/region", {"image": png(noise_only)})
    assert status == 422 and body["error"]["code"] == "out_of_distribution"


def test_a_dermoscopy_image_sent_whole_to_the_region_route_is_refused_as_a_whole(histopathology, shared_data):
    # GIVEN a dermoscopy image (the patch route refuses its size): its tiles are each merely atypical H&E
    region_guard = histopathology.MODEL.get().contract.ood.region
    if region_guard is None:
        pytest.skip("histopathology model without a region guard")
    row = split_rows(shared_data, "skin").iloc[0]
    status, body = post_file(histopathology, "/histopathology/region", shared_data / "skin" / row.path, FakeLambdaContext())
    assert status == 422 and body["error"]["code"] == "out_of_distribution"
    ood = body["error"]["details"]["ood"]
    count = min(ood["tissue_tiles"], len(region_guard.refuse_thresholds))
    assert ood["score"] > ood["threshold"] == region_guard.refuse_thresholds[count - 1] and ood["tissue_tiles"] >= 4
    # "report" answers it, flagged as a whole
    status, body = post_file(histopathology, "/histopathology/region", shared_data / "skin" / row.path,
                             FakeLambdaContext(), ood="report")
    assert status == 200 and body["ood"]["status"] == "out_of_distribution"
    assert body["ood"]["tissue_tiles"] == ood["tissue_tiles"]


def test_a_blank_region_is_refused_not_answered_non_idc(histopathology):
    if histopathology.MODEL.get().contract.ood.region is None:
        pytest.skip("histopathology model without a region guard")
    white = np.full((200, 200, 3), 255, np.uint8)
    status, body = call(histopathology, "/histopathology/region", {"image": png(white)})
    assert status == 422 and body["error"]["code"] == "out_of_distribution"
    assert body["error"]["details"]["ood"]["tissue_tiles"] == 0 and body["error"]["details"]["ood"]["score"] is None
    status, body = call(histopathology, "/histopathology/region", {"image": png(white), "ood": "report"})
    assert status == 200 and body["tiles"]["scored"] == 0 and body["ood"]["status"] == "out_of_distribution"


def test_a_region_of_test_patches_is_answered_with_its_region_block(histopathology, shared_data):
    from train.histopathology.data import load_splits, stitched_region

    if histopathology.MODEL.get().contract.ood.region is None:
        pytest.skip("histopathology model without a region guard")
    images, labels, _ = load_splits(limit=200)["test"]
    region, _ = stitched_region(images, labels, 4, 4, seed=7)
    status, body = call(histopathology, "/histopathology/region", {"image": png(region)})
    # (5% of validation regions lie above the atypical threshold by construction: either is an answer)
    assert status == 200 and body["ood"]["status"] in ("in_distribution", "atypical")
    assert body["ood"]["tissue_tiles"] == body["tiles"]["scored"] + body["tiles"]["out_of_distribution"] == 16


@pytest.fixture(scope="module")
def skin():
    return guarded_app("skin")


def test_a_brain_slice_a_blank_image_and_a_photograph_sent_to_the_skin_model_are_refused(skin, shared_data):
    row = split_rows(shared_data, "brain").iloc[0]
    blank = np.full((300, 300, 3), 255, dtype=np.uint8)
    for sent in (shared_data / "brain" / row.path, PHOTOGRAPH):
        status, body = post_file(skin, "/skin/predict", sent, FakeLambdaContext())
        assert (status, body["error"]["code"]) == (422, "out_of_distribution"), sent.name
    status, body = call(skin, "/skin/predict", {"image": png(blank)})
    assert (status, body["error"]["code"]) == (422, "out_of_distribution")


def test_skin_test_images_are_answered_the_same_with_and_without_report(skin, shared_data):
    rows = split_rows(shared_data, "skin").iloc[::40]
    refused = 0
    for row in rows.itertuples():
        path = shared_data / "skin" / row.path
        status, answer = post_file(skin, "/skin/predict", path, FakeLambdaContext())
        _, reported = post_file(skin, "/skin/predict", path, FakeLambdaContext(), ood="report")
        if status == 422:
            refused += 1
            assert reported["ood"]["status"] == "out_of_distribution"
            continue
        assert answer == reported and answer["ood"]["status"] in ("in_distribution", "atypical")
    assert refused <= max(1, 0.02 * len(rows))


def test_a_log_transformed_golub_profile_is_refused(shared_data):
    from train.leukemia.data import load_golub

    if not guarded("leukemia"):
        pytest.skip("leukemia model without a guard")
    app = load_function_app("leukemia")
    genes, _, independent = load_golub()
    raw = independent.expression[0]
    status, body = call(app, "/leukemia/predict", {"genes": list(genes), "values": raw.tolist()})
    assert status == 200 and body["ood"]["status"] in ("in_distribution", "atypical")
    logged = np.log2(np.clip(raw, 1, None)).tolist()
    status, body = call(app, "/leukemia/predict", {"genes": list(genes), "values": logged})
    assert status == 422 and body["error"]["code"] == "out_of_distribution"


def test_raw_intensities_sent_as_metabric_z_scores_are_refused(shared_data):
    from train.breast_survival.data import load_metabric

    if not guarded("breast_survival"):
        pytest.skip("breast survival model without a guard")
    app = load_function_app("breast_survival")
    test = load_metabric().subset("test")
    status, body = call(app, "/breast-survival/predict", {"genes": list(test.genes), "values": (8 + 2 * test.expression[0]).tolist()})
    assert status == 422 and body["error"]["code"] == "out_of_distribution"


@pytest.mark.parametrize("task", ["brain", "histopathology", "skin", "leukemia", "breast_survival"])
def test_the_committed_evaluation_used_the_committed_thresholds(task):
    metadata = json.loads((FUNCTIONS_DIR / task / "model" / "model.json").read_text())
    if "ood" not in metadata:
        pytest.skip(f"{task} model without a guard")
    figures = json.loads((FUNCTIONS_DIR / task / "ood_evaluation.json").read_text())
    assert figures["in_distribution"]["refused"] <= 0.02
    assert figures["goals"]["far_auroc_min"] > 0.9
    assert figures["goals"]["in_distribution_refused"] == figures["in_distribution"]["refused"]


@pytest.mark.parametrize("task", ["brain", "histopathology", "skin"])
def test_the_shipped_artifact_keeps_its_score_in_float(task):
    from ai_edge_litert.interpreter import Interpreter

    metadata = json.loads((FUNCTIONS_DIR / task / "model" / "model.json").read_text())
    if "ood" not in metadata:
        pytest.skip(f"{task} model without a guard")
    interpreter = Interpreter(model_path=str(FUNCTIONS_DIR / task / "model" / "model.tflite"))
    scored = [t for t in interpreter.get_tensor_details() if "/ood" in t["name"]]
    # float32, or float16 constants in a float16 artifact (dequantized to float32 when it loads); never quantised
    # integers (a shape's int32 and a mask's bool are bookkeeping, not values)
    assert scored and not any(t["dtype"] in (np.int8, np.uint8, np.int16) for t in scored)
    assert any(t["dtype"] == np.float32 for t in scored)
