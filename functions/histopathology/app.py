"""POST /histopathology/predict (one 50x50 H&E patch) and /histopathology/region (a larger image).

Until the IDC model is trained and committed (functions/histopathology/model/), both routes answer
503 ``model_unavailable``.
"""

from __future__ import annotations

from pathlib import Path

from oncoserve_runtime import ModelHandle, Route, build_lambda_handler, classify_image, image_request_schema

MODEL = ModelHandle(Path(__file__).parent / "model")
MODEL.warm()

lambda_handler = build_lambda_handler(
    "histopathology",
    MODEL,
    [
        Route("/histopathology/predict", image_request_schema(), classify_image),
        Route("/histopathology/region", image_request_schema(), classify_image),
    ],
)
