"""POST /leukemia/predict — ALL vs AML from a Golub (Hu6800) expression profile.

Body: ``{"expression": {"<Gene Accession Number>": <raw intensity>, ...}}`` with all 7,129 probes.
Preprocessing (clip, log10, standardisation, PCA) is inside the TFLite graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oncoserve_runtime import (
    EXPRESSION_REQUEST_SCHEMA,
    ModelBundle,
    ModelHandle,
    Route,
    binary_prediction,
    build_lambda_handler,
    expression_vector,
)

MODEL = ModelHandle(Path(__file__).parent / "model")
MODEL.warm()  # the cold start pays for loading, not the first request


def predict(body: dict[str, Any], model: ModelBundle) -> dict[str, Any]:
    spec = model.metadata["input"]
    vector, coverage = expression_vector(
        body["expression"], spec["features"], min_coverage=spec["missing"]["min_coverage"]
    )
    return {**binary_prediction(model, model.predict(vector)[0]), "input": coverage}


lambda_handler = build_lambda_handler(
    "leukemia", MODEL, [Route("/leukemia/predict", EXPRESSION_REQUEST_SCHEMA, predict)]
)
