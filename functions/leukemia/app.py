"""POST /leukemia/predict — ALL vs AML from a Golub (Hu6800) expression profile.

Body: ``{"expression": {"<Gene Accession Number>": <raw intensity>, ...}}`` with all 7,129 probes,
or the compact form ``{"genes": [...], "values": [...]}`` (fastest in the model's own order, as
``GET /leukemia/model`` lists it).
Preprocessing (clip, log10, standardisation, PCA) is inside the TFLite graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oncoserve_runtime import (
    EXPRESSION_REQUEST_SCHEMA,
    BinaryOutput,
    ExpressionProfile,
    ModelBundle,
    ModelHandle,
    Route,
    binary_prediction,
    build_lambda_handler,
    contract,
    error_codes,
    guard,
    with_ood,
    expression_vector,
    response_schemas,
)

MODEL = ModelHandle(Path(__file__).parent / "model", contract.contract_type("leukemia", "expression", BinaryOutput))
MODEL.warm()  # the cold start pays for loading, not the first request


def predict(body: dict[str, Any], model: ModelBundle) -> dict[str, Any]:
    spec = model.contract.input
    vector, coverage = expression_vector(
        ExpressionProfile.from_body(body), spec.features, min_coverage=spec.missing.min_coverage
    )
    outputs = model.run(vector)
    ood = guard(model, outputs, body)
    return with_ood({**binary_prediction(model, model.class_output(outputs)[0]), "input": coverage}, ood)


ANSWER = response_schemas.binary_answer(
    "leukemia", ["ALL", "AML"], "ALL vs AML at the model's threshold.",
    input=response_schemas.EXPRESSION_COVERAGE)

lambda_handler = build_lambda_handler("leukemia", MODEL, [
    Route("/leukemia/predict", EXPRESSION_REQUEST_SCHEMA, predict, response=ANSWER, errors=(*error_codes.EXPRESSION, *error_codes.GUARDED),
          summary="ALL vs AML from a Golub (Hu6800) expression profile"),
])
