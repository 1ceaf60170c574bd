"""POST /breast-survival/predict — survival group 0 (best) … 3 (worst) from METABRIC mRNA z-scores.

Body: ``{"expression": {"<gene symbol>": z-score, ...}}`` (the 489 METABRIC genes, any letter case;
at least 90% of them — each missing gene is set to its training mean). The answer carries the
group's Kaplan–Meier curve from the model's metadata (training patients, 95% CI).
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

_CURVE_FIELDS = ("months", "probability", "ci_lower", "ci_upper", "median_months", "at_5_years", "at_10_years")


def _curve(table: dict[str, Any], endpoint: str) -> dict[str, Any]:
    return {"endpoint": endpoint, **{field: table[field] for field in _CURVE_FIELDS}}


def predict(body: dict[str, Any], model: ModelBundle) -> dict[str, Any]:
    spec = model.metadata["input"]
    vector, coverage = expression_vector(
        body["expression"], spec["features"], fill_values=spec["missing"]["fill_values"],
        min_coverage=spec["missing"]["min_coverage"], case_insensitive=True,
    )
    memberships = model.predict(vector)[0]
    group = int(memberships.argmax())
    table = model.metadata["output"]["survival_tables"][group]
    return {
        "group": group,
        "group_label": table["group_label"],
        "label": model.labels[group],
        "probabilities": probabilities_by_label(model.labels, memberships),
        "probabilities_kind": model.metadata["output"]["probabilities"],
        "survival": _curve(table["overall"], "overall survival (training patients of this group)"),
        "disease_specific_survival": _curve(table["disease_specific"], "breast-cancer-specific survival"),
        "input": coverage,
    }


lambda_handler = build_lambda_handler(
    "breast_survival", MODEL, [Route("/breast-survival/predict", EXPRESSION_REQUEST_SCHEMA, predict)]
)
