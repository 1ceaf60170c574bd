"""POST /brain/predict — tumour vs healthy on one CT or MRI slice; MRI tumour type; optional CAM.

Body: ``{"image": "<base64>"}`` or ``{"url": "https://…"}`` of a PNG, JPEG or DICOM file, optional
``"modality": "ct" | "mri"`` (from a DICOM file's Modality, else predicted when absent), ``"frame": N``
(a multi-frame DICOM's frame; default the middle one) and ``"explain": true`` (class-activation
heatmap PNG). Thresholds are per
modality, chosen on validation for tumour recall >= 0.99, a margin over the 0.98 goal (see MODEL_CARD.md).
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
    build_lambda_handler,
    UnprocessableEntityError,
    cam_overlay,
    contract,
    error_codes,
    guard,
    with_ood,
    image_request_schema,
    probabilities_by_label,
    response_schemas,
    scan_from_body,
    to_grey_rgb,
)



@dataclass(frozen=True, kw_only=True)
class BrainOutput(BinaryOutput):
    """Three heads on one backbone (tumour, modality, MRI tumour type), a CAM, a threshold per modality."""

    tensor: str
    thresholds_by_modality: dict[str, float]
    modality_labels: tuple[str, ...]
    modality_tensor: str
    type_labels: tuple[str, ...]
    type_tensor: str
    cam_tensor: str


MODEL = ModelHandle(Path(__file__).parent / "model", contract.contract_type("brain", "image", BrainOutput))
MODEL.warm()

SCHEMA = image_request_schema(modality={"enum": ["ct", "mri"]}, explain={"type": "boolean"}, frame=FRAME_SCHEMA)


def predict(body: dict[str, Any], model: ModelBundle) -> dict[str, Any]:
    output = model.contract.output
    scan = scan_from_body(body, min_side=16)
    if scan.modality and body.get("modality", scan.modality) != scan.modality:
        raise UnprocessableEntityError(
            "modality_mismatch", f"The request says {body['modality']!r} but the DICOM file is {scan.dicom['modality']}.")
    image = to_grey_rgb(scan.image)
    batch = ImagePreprocessing.for_model(model).to_array(image)
    outputs = model.run(batch)
    ood = guard(model, outputs, body)

    modality_p = outputs[output.modality_tensor][0]
    if "modality" in body:
        modality = {"value": body["modality"], "source": "request"}
    elif scan.modality:
        modality = {"value": scan.modality, "source": "dicom"}
    else:
        best = int(modality_p.argmax())
        modality = {"value": output.modality_labels[best], "source": "predicted", "probability": float(modality_p[best])}

    tumor_p = outputs[output.tensor][0]
    threshold = output.thresholds_by_modality[modality["value"]]
    is_tumor = float(tumor_p[model.labels.index("tumor")]) >= threshold
    response: dict[str, Any] = {
        "label": "tumor" if is_tumor else "healthy",
        "probabilities": probabilities_by_label(model.labels, tumor_p),
        "threshold": threshold,
        "modality": modality,
    }
    if modality["value"] == "mri" and is_tumor:
        type_p = outputs[output.type_tensor][0]
        response["tumor_type"] = {"label": output.type_labels[int(type_p.argmax())],
                                  "probabilities": probabilities_by_label(output.type_labels, type_p)}
    if body.get("explain"):
        response["explanation"] = cam_overlay(image, outputs[output.cam_tensor][0])
    if scan.dicom:
        response["dicom"] = scan.dicom
    return with_ood(response, ood)


TYPES = ["glioma", "meningioma", "pituitary"]
ANSWER = response_schemas.binary_answer(
    "brain", ["healthy", "tumor"], "Tumour or healthy at the modality's threshold; the tumour type of an MRI tumour.",
    modality={"type": "object", "description": "The modality whose threshold was used, and where it came from.",
              "properties": {"value": {"enum": ["ct", "mri"]}, "source": {"enum": ["request", "dicom", "predicted"]},
                             "probability": response_schemas.PROBABILITY},
              "required": ["value", "source"], "additionalProperties": False},
    tumor_type={"type": "object", "description": "MRI tumours only.",
                "properties": {"label": response_schemas.label(TYPES), "probabilities": response_schemas.probabilities(TYPES)},
                "required": ["label", "probabilities"], "additionalProperties": False},
    explanation=response_schemas.EXPLANATION, dicom=response_schemas.DICOM_INFO, required=("modality",))

lambda_handler = build_lambda_handler("brain", MODEL, [
    Route("/brain/predict", SCHEMA, predict, binary_types=DICOM_MEDIA_TYPES, response=ANSWER,
          errors=(*error_codes.IMAGE, *error_codes.DICOM, *error_codes.GUARDED, "modality_mismatch"),
          summary="Tumour vs healthy on a CT or MRI slice (PNG, JPEG or DICOM); MRI tumour type"),
])
