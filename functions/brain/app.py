"""POST /brain/predict — tumour vs healthy on a CT or MRI slice.

Until the model is trained and committed (functions/brain/model/), the route answers 503
``model_unavailable``.
"""

from __future__ import annotations

from pathlib import Path

from oncoserve_runtime import ModelHandle, Route, build_lambda_handler, classify_image, image_request_schema

MODEL = ModelHandle(Path(__file__).parent / "model")
MODEL.warm()

lambda_handler = build_lambda_handler(
    "brain",
    MODEL,
    [Route("/brain/predict", image_request_schema(modality={"enum": ["ct", "mri"]}, explain={"type": "boolean"}),
           classify_image)],
)
