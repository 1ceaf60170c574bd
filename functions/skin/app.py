"""POST /skin/predict — melanoma vs benign on a dermoscopy image; optional class-activation map.

Body: ``{"image": "<base64>"}`` or ``{"url": "https://…"}`` of a PNG, JPEG or DICOM file (colour
or greyscale; ``"frame": N`` picks a multi-frame file's frame), optional ``"explain": true``. The
threshold was chosen on validation for melanoma sensitivity >= 0.90 (see MODEL_CARD.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oncoserve_runtime import (
    DICOM_MEDIA_TYPES,
    BinaryOutput,
    FRAME_SCHEMA,
    ImagePreprocessing,
    ModelBundle,
    ModelHandle,
    Route,
    binary_prediction,
    build_lambda_handler,
    cam_overlay,
    contract,
    error_codes,
    guard,
    with_ood,
    image_request_schema,
    response_schemas,
    scan_from_body,
)



@dataclass(frozen=True, kw_only=True)
class SkinOutput(BinaryOutput):
    """Melanoma probability and its class-activation map; thresholds a client may apply instead."""

    tensor: str
    cam_tensor: str
    alternative_thresholds: dict[str, Any] | None = None


MODEL = ModelHandle(Path(__file__).parent / "model", contract.contract_type("skin", "image", SkinOutput))
MODEL.warm()


def predict(body: dict[str, Any], model: ModelBundle) -> dict[str, Any]:
    output = model.contract.output
    scan = scan_from_body(body, min_side=16, colour_dicom=True)
    image = scan.image
    batch = ImagePreprocessing.for_model(model).to_array(image)
    outputs = model.run(batch)
    ood = guard(model, outputs, body)
    response = binary_prediction(model, outputs[output.tensor][0])
    if body.get("explain"):
        response["explanation"] = cam_overlay(image, outputs[output.cam_tensor][0])
    if scan.dicom:
        response["dicom"] = scan.dicom
    return with_ood(response, ood)


ANSWER = response_schemas.binary_answer(
    "skin", ["benign", "melanoma"], "Melanoma or benign at the model's threshold.",
    explanation=response_schemas.EXPLANATION, dicom=response_schemas.DICOM_INFO)

lambda_handler = build_lambda_handler("skin", MODEL, [
    Route("/skin/predict", image_request_schema(explain={"type": "boolean"}, frame=FRAME_SCHEMA), predict,
          binary_types=DICOM_MEDIA_TYPES, response=ANSWER, errors=(*error_codes.IMAGE, *error_codes.DICOM, *error_codes.GUARDED),
          summary="Melanoma vs benign on a dermoscopy image (PNG, JPEG or DICOM)"),
])
