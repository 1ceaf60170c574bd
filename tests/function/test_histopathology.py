"""The histopathology function on its committed model: patches and a stitched region."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from conftest import load_function_app
from image_helpers import close_counts, confusion, post_file, split_rows
from local.events import json_event


@pytest.fixture(scope="module")
def app():
    return load_function_app("histopathology")


@pytest.fixture(scope="module")
def test_rows(shared_data):
    return split_rows(shared_data, "histopathology")


def test_test_patches_reproduce_the_reported_figures(app, test_rows, shared_data):
    from conftest import FakeLambdaContext

    predicted = []
    for row in test_rows.itertuples():
        status, body = post_file(app, "/histopathology/predict", shared_data / "histopathology" / row.path,
                                 FakeLambdaContext(), ood="report")  # the card counts every test patch
        assert status == 200, body
        predicted.append(int(body["label"] == "idc"))
    got = confusion(list(test_rows["label"]), predicted)
    reported = app.MODEL.get().metadata["metrics"]["test"]
    assert close_counts(got, reported["confusion"], tolerance=2), (got, reported["confusion"])


def test_region_on_a_stitched_image_matches_patch_by_patch(app, test_rows, shared_data, lambda_context):
    # GIVEN a 4x5 mosaic of full-size test patches, WHEN the region route scores it,
    # THEN every cell equals the single-patch answer for that patch (same tiles, same model).
    full = [r for r in test_rows.itertuples() if Image.open(shared_data / "histopathology" / r.path).size == (50, 50)]
    chosen = full[:20]
    mosaic = Image.new("RGB", (250, 200))
    singles = []
    for i, row in enumerate(chosen):
        path = shared_data / "histopathology" / row.path
        mosaic.paste(Image.open(path).convert("RGB"), ((i % 5) * 50, (i // 5) * 50))
        singles.append(post_file(app, "/histopathology/predict", path, lambda_context, ood="report")[1]["probabilities"]["idc"])
    buffer = io.BytesIO()
    mosaic.save(buffer, format="PNG")
    event = json_event("/histopathology/region", {"image": base64.b64encode(buffer.getvalue()).decode()})
    response = app.lambda_handler(event, lambda_context)
    body = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert (body["grid"]["rows"], body["grid"]["cols"]) == (4, 5)
    grid = np.array(body["grid"]["probabilities"], dtype=float).ravel()
    scored = ~np.isnan(grid)
    assert np.allclose(grid[scored], np.array(singles)[scored], atol=2e-4)
    assert body["tiles"]["scored"] + body["tiles"]["background"] == 20
    positive = (grid[scored] >= body["threshold"]).sum()
    assert body["idc_area_fraction"] == pytest.approx(positive / scored.sum())
    heatmap = Image.open(io.BytesIO(base64.b64decode(body["heatmap_png"])))
    assert heatmap.size == (250, 200)


def test_a_large_image_on_the_patch_route_is_redirected(app, lambda_context):
    buffer = io.BytesIO()
    Image.new("RGB", (600, 400), (200, 80, 160)).save(buffer, format="PNG")
    event = json_event("/histopathology/predict", {"image": base64.b64encode(buffer.getvalue()).decode()})
    body = json.loads(app.lambda_handler(event, lambda_context)["body"])
    assert body["error"]["code"] == "image_too_large_for_patch"
