"""POST /breast-survival/predict — survival group 0 (best) … 3 (worst) from METABRIC mRNA z-scores.

Body: ``{"expression": {"<gene symbol>": z-score, ...}}`` (the 489 METABRIC genes, any letter case;
at least 90% of them — each missing gene is set to its training mean), or the compact form
``{"genes": [...], "values": [...]}``. The answer carries the
group's Kaplan–Meier curve from the model's metadata (training patients, 95% CI).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oncoserve_runtime import (
    EXPRESSION_REQUEST_SCHEMA,
    ExpressionProfile,
    ModelBundle,
    ModelHandle,
    Route,
    build_lambda_handler,
    contract,
    error_codes,
    expression_vector,
    probabilities_by_label,
    response_schemas,
)



@dataclass(frozen=True, kw_only=True)
class SurvivalOutput:
    """Four risk groups, soft memberships, and each group's Kaplan-Meier tables (overall, disease-specific)."""

    labels: tuple[str, ...]
    group_names: tuple[str, ...]
    probabilities: str
    survival_tables: tuple[dict[str, Any], ...]
    survival_tables_from: str


MODEL = ModelHandle(Path(__file__).parent / "model",
                    contract.contract_type("breast_survival", "expression", SurvivalOutput))
MODEL.warm()

_CURVE_FIELDS = ("months", "probability", "ci_lower", "ci_upper", "median_months", "at_5_years", "at_10_years")


def _curve(table: dict[str, Any], endpoint: str) -> dict[str, Any]:
    return {"endpoint": endpoint, **{field: table[field] for field in _CURVE_FIELDS}}


def predict(body: dict[str, Any], model: ModelBundle) -> dict[str, Any]:
    spec = model.contract.input
    vector, coverage = expression_vector(
        ExpressionProfile.from_body(body), spec.features, fill_values=spec.missing.fill_values,
        min_coverage=spec.missing.min_coverage, case_insensitive=model.contract.preprocessing.in_runtime.case_insensitive,
    )
    memberships = model.predict(vector)[0]
    group = int(memberships.argmax())
    table = model.contract.output.survival_tables[group]
    return {
        "group": group,
        "group_label": table["group_label"],
        "label": model.labels[group],
        "probabilities": probabilities_by_label(model.labels, memberships),
        "probabilities_kind": model.contract.output.probabilities,
        "survival": _curve(table["overall"], "overall survival (training patients of this group)"),
        "disease_specific_survival": _curve(table["disease_specific"], "breast-cancer-specific survival"),
        "input": coverage,
    }


LABELS = ["high", "above_average", "below_average", "very_low"]
_NUMBERS = {"type": "array", "items": {"type": "number"}}
_PROBABILITIES = {"type": "array", "items": response_schemas.PROBABILITY}
CURVE = {
    "type": "object",
    "description": "Kaplan-Meier curve of the group's training patients, with its 95% confidence band.",
    "properties": {
        "endpoint": {"type": "string"}, "months": _NUMBERS, "probability": _PROBABILITIES,
        "ci_lower": _PROBABILITIES, "ci_upper": _PROBABILITIES,
        "median_months": {"type": ["number", "null"], "description": "null while the curve stays above 0.5."},
        "at_5_years": response_schemas.PROBABILITY, "at_10_years": response_schemas.PROBABILITY,
    },
    "required": ["endpoint", *_CURVE_FIELDS],
    "additionalProperties": False,
}
ANSWER = response_schemas.answer("breast_survival", {
    "group": {"type": "integer", "minimum": 0, "maximum": 3, "description": "0 (best prognosis) … 3 (worst)."},
    "group_label": {"type": "string"},
    "label": response_schemas.label(LABELS),
    "probabilities": response_schemas.probabilities(LABELS, "Soft membership of each survival group."),
    "probabilities_kind": {"type": "string"},
    "survival": CURVE,
    "disease_specific_survival": CURVE,
    "input": response_schemas.EXPRESSION_COVERAGE,
}, ["group", "group_label", "label", "probabilities", "probabilities_kind", "survival", "disease_specific_survival",
    "input"], "The survival group and its curves.")

lambda_handler = build_lambda_handler("breast_survival", MODEL, [
    Route("/breast-survival/predict", EXPRESSION_REQUEST_SCHEMA, predict, response=ANSWER,
          errors=error_codes.EXPRESSION, summary="Survival group 0-3 and its curves from METABRIC mRNA z-scores"),
])
