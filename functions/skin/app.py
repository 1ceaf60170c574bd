"""POST /skin/predict — melanoma vs benign on a dermoscopy image.

Until the model is trained and committed (functions/skin/model/), the route answers 503
``model_unavailable``.
"""

from __future__ import annotations

from pathlib import Path

from oncoserve_runtime import ModelHandle, Route, build_lambda_handler, classify_image, image_request_schema

MODEL = ModelHandle(Path(__file__).parent / "model")
MODEL.warm()

lambda_handler = build_lambda_handler(
    "skin", MODEL, [Route("/skin/predict", image_request_schema(explain={"type": "boolean"}), classify_image)]
)
