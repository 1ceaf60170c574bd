"""POST /breast-survival/predict — survival group 0 (best) … 3 (worst) from METABRIC mRNA z-scores.

Until the model is trained and committed (functions/breast_survival/model/), the route answers 503
``model_unavailable``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oncoserve_runtime import (
    EXPRESSION_REQUEST_SCHEMA,
    ModelBundle,
    ModelHandle,
    Route,
    build_lambda_handler,
    expression_vector,
    probabilities_by_label,
)

MODEL = ModelHandle(Path(__file__).parent / "model")
MODEL.warm()


def predict(body: dict[str, Any], model: ModelBundle) -> dict[str, Any]:
    spec = model.metadata["input"]
    vector, coverage = expression_vector(body["expression"], spec["features"],
                                         fill_values=spec["missing"].get("fill_values"),
                                         min_coverage=spec["missing"]["min_coverage"])
    probabilities = model.predict(vector)[0]
    group = int(probabilities.argmax())
    return {"group": group, "label": model.labels[group],
            "probabilities": probabilities_by_label(model.labels, probabilities), "input": coverage}


lambda_handler = build_lambda_handler(
    "breast_survival", MODEL, [Route("/breast-survival/predict", EXPRESSION_REQUEST_SCHEMA, predict)]
)
