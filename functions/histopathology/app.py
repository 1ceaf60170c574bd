"""POST /histopathology/predict — one 50x50 H&E patch → IDC or not.
POST /histopathology/region — a larger H&E image → grid of p(IDC), IDC area fraction, heatmap PNG.

Body: ``{"image": "<base64 PNG/JPEG>"}`` or ``{"url": "https://…"}``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from region import score_tiles, tile_region

from oncoserve_runtime import (
    ImagePreprocessing,
    ModelBundle,
    ModelHandle,
    Route,
    UnprocessableEntityError,
    binary_prediction,
    build_lambda_handler,
    image_from_body,
    image_request_schema,
    overlay_png_base64,
)

MODEL = ModelHandle(Path(__file__).parent / "model")
MODEL.warm()

MAX_PATCH_SIDE = 100  # a "patch" bigger than this belongs on /region, not squashed to 50x50


def _idc_probability(model: ModelBundle, batch: np.ndarray) -> np.ndarray:
    return model.predict(batch)[:, model.labels.index(model.metadata["output"]["positive_label"])]


def predict_patch(body: dict[str, Any], model: ModelBundle) -> dict[str, Any]:
    image = image_from_body(body)
    if max(image.size) > MAX_PATCH_SIDE:
        raise UnprocessableEntityError(
            "image_too_large_for_patch",
            f"A patch is ~50x50 px; this image is {image.width}x{image.height}. POST it to /histopathology/region.",
        )
    preprocessing = ImagePreprocessing.for_model(model)
    return binary_prediction(model, model.predict(preprocessing.to_array(image))[0])


def predict_region(body: dict[str, Any], model: ModelBundle) -> dict[str, Any]:
    started = time.perf_counter()
    image = image_from_body(body)
    spec = model.metadata["output"]["region"]
    preprocessing = ImagePreprocessing.for_model(model)
    grid = tile_region(image, preprocessing, tile=spec["tile"], min_edge_tile=spec["min_edge_tile"])
    p = score_tiles(lambda batch: _idc_probability(model, batch), grid.tiles)
    threshold = float(model.metadata["output"]["threshold"])
    heat = np.full((grid.rows, grid.cols), np.nan)
    for (row, col), value in zip(grid.cells, p):
        heat[row, col] = value
    positive = int((p >= threshold).sum())
    most_suspicious = float(p.max()) if len(p) else 0.0
    return {
        # Region label: IDC when any tissue tile reaches the threshold; the probabilities are those
        # of the most suspicious tile (a region is as positive as its worst tile).
        "label": "idc" if positive else "non_idc",
        "probabilities": {"non_idc": 1.0 - most_suspicious, "idc": most_suspicious},
        "threshold": threshold,
        "grid": {
            "rows": grid.rows, "cols": grid.cols, "tile": spec["tile"], "stride": spec["stride"],
            "probabilities": [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in heat],
        },
        "tiles": {"scored": len(p), "idc_positive": positive, "background": grid.background, "edge_slivers": grid.slivers},
        "idc_area_fraction": positive / len(p) if len(p) else 0.0,
        "heatmap_png": overlay_png_base64(image, heat, max_side=768),
        "elapsed_ms": round((time.perf_counter() - started) * 1000.0, 1),
    }


lambda_handler = build_lambda_handler(
    "histopathology",
    MODEL,
    [
        Route("/histopathology/predict", image_request_schema(), predict_patch),
        Route("/histopathology/region", image_request_schema(), predict_region),
    ],
)
