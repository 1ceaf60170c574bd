"""POST /skin/predict — melanoma vs benign on a dermoscopy image; optional class-activation map.

Body: ``{"image": "<base64>"}`` or ``{"url": "https://…"}``, optional ``"explain": true``. The
threshold was chosen on validation for melanoma sensitivity >= 0.90 (see MODEL_CARD.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oncoserve_runtime import (
    ImagePreprocessing,
    ModelBundle,
    ModelHandle,
    Route,
    binary_prediction,
    build_lambda_handler,
    cam_overlay,
    image_from_body,
    image_request_schema,
)

MODEL = ModelHandle(Path(__file__).parent / "model")
MODEL.warm()


def predict(body: dict[str, Any], model: ModelBundle) -> dict[str, Any]:
    output = model.metadata["output"]
    image = image_from_body(body, min_side=16)
    batch = ImagePreprocessing.for_model(model).to_array(image)
    outputs = model.run(batch)
    response = binary_prediction(model, outputs[output["tensor"]][0])
    if body.get("explain"):
        response["explanation"] = cam_overlay(image, outputs[output["cam_tensor"]][0])
    return response


lambda_handler = build_lambda_handler(
    "skin", MODEL, [Route("/skin/predict", image_request_schema(explain={"type": "boolean"}), predict)]
)
