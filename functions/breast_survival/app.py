"""POST /breast-survival/predict — one patient's risk, survival curves and group 0 (best) … 3 (worst).

Body: ``{"expression": {"<gene symbol>": z-score, ...}}`` (the 489 METABRIC genes, any letter case;
at least 90% of them — each missing gene is set to its training mean), or the compact form
``{"genes": [...], "values": [...]}``; optionally ``"clinical": {...}`` (``clinical.py``), which
switches the answer from the expression-only model to the clinical + expression one. One graph
computes both; the answer names the model, its risk score, the patient's predicted overall and
breast-cancer-specific survival (5, 10 years, median, curve to 15 years), and the group with its
Kaplan–Meier curves from the model's metadata (training patients, 95% CI).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clinical import CLINICAL_SCHEMA, clinical_values, predicted_survival
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
    guard,
    with_ood,
)


@dataclass(frozen=True, kw_only=True)
class ClinicalModel:
    """The clinical + expression model: its name, parameters and its groups' Kaplan-Meier tables."""

    model: str
    parameters: dict[str, Any]
    survival_tables: tuple[dict[str, Any], ...]
    curve_models: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class SurvivalOutput:
    """Four risk groups, soft memberships, each group's Kaplan-Meier tables, and the curve grid."""

    labels: tuple[str, ...]
    group_names: tuple[str, ...]
    tensor: str
    probabilities: str
    survival_tables: tuple[dict[str, Any], ...]
    survival_tables_from: str
    curve_months: tuple[float, ...]
    curve_endpoints: tuple[str, ...]
    risk: str
    clinical: ClinicalModel


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
    with_clinical = "clinical" in body
    clinical = clinical_values(body["clinical"], spec.clinical) if with_clinical else None
    clinical_row = (clinical.row if clinical is not None
                    else np.asarray([f.fill_value for f in spec.clinical.fields], np.float32))  # outputs not read
    outputs = model.run(np.concatenate([vector[0], clinical_row])[None])
    ood = guard(model, outputs, body)
    prefix = "clinical_" if with_clinical else ""
    memberships = outputs[f"{prefix}membership"][0]
    group = int(memberships.argmax())
    out = model.contract.output
    table = (out.clinical.survival_tables if with_clinical else out.survival_tables)[group]
    curves = outputs[f"{prefix}survival"][0]
    answer = {
        "predictor": "clinical_and_expression" if with_clinical else "expression_only",
        "risk": float(outputs[f"{prefix}risk"][0, 0]),
        "risk_kind": out.risk,
        "survival": predicted_survival(curves[0], out.curve_months, "overall survival (this patient, predicted)"),
        "disease_specific_survival": predicted_survival(curves[1], out.curve_months,
                                                        "breast-cancer-specific survival (this patient, predicted)"),
        "group": group,
        "group_label": table["group_label"],
        "label": model.labels[group],
        "probabilities": probabilities_by_label(model.labels, memberships),
        "probabilities_kind": out.probabilities,
        "group_survival": {"overall": _curve(table["overall"], "overall survival (training patients of this group)"),
                           "disease_specific": _curve(table["disease_specific"], "breast-cancer-specific survival")},
        "input": coverage,
    }
    if clinical is not None:
        answer["clinical"] = {"nottingham_prognostic_index": float(outputs["nottingham_prognostic_index"][0, 0]),
                              "imputed": list(clinical.imputed)}
    return with_ood(answer, ood)


LABELS = ["high", "above_average", "below_average", "very_low"]
_NUMBERS = {"type": "array", "items": {"type": "number"}}
_PROBABILITIES = {"type": "array", "items": response_schemas.PROBABILITY}
GROUP_CURVE = {
    "type": "object",
    "description": "Kaplan-Meier curve of the group's training patients, with its 95% confidence band.",
    "properties": {
        "endpoint": {"type": "string"}, "months": _NUMBERS, "probability": _PROBABILITIES,
        "ci_lower": _PROBABILITIES, "ci_upper": _PROBABILITIES,
        "median_months": {"type": ["number", "null"], "description": "Kaplan-Meier median (the first event time where "
                                                                     "the curve is at or below 0.5); null if never."},
        "at_5_years": response_schemas.PROBABILITY, "at_10_years": response_schemas.PROBABILITY,
    },
    "required": ["endpoint", *_CURVE_FIELDS],
    "additionalProperties": False,
}
PREDICTED = {
    "type": "object",
    "description": "The patient's predicted survival: exp(-H0(t) * exp(beta * risk)), every 3 months to 15 years.",
    "properties": {
        "endpoint": {"type": "string"},
        "five_year": response_schemas.PROBABILITY, "ten_year": response_schemas.PROBABILITY,
        "median_months": {"type": ["number", "null"],
                          "description": "Where the curve crosses 0.5, interpolated linearly between its 3-month "
                                         "points; null while it stays above 0.5."},
        "curve": {"type": "array", "items": {"type": "object", "properties": {
            "months": {"type": "number"}, "probability": response_schemas.PROBABILITY},
            "required": ["months", "probability"], "additionalProperties": False}},
    },
    "required": ["endpoint", "five_year", "ten_year", "median_months", "curve"],
    "additionalProperties": False,
}
REQUEST = {**EXPRESSION_REQUEST_SCHEMA,
           "properties": {**EXPRESSION_REQUEST_SCHEMA["properties"], "clinical": CLINICAL_SCHEMA}}
ANSWER = response_schemas.answer("breast_survival", {
    "predictor": {"enum": ["expression_only", "clinical_and_expression"],
                  "description": "clinical_and_expression when the request has 'clinical'."},
    "risk": {"type": "number", "description": "The model's risk score: 0 = the average training patient, higher = worse."},
    "risk_kind": {"type": "string"},
    "survival": PREDICTED,
    "disease_specific_survival": PREDICTED,
    "group": {"type": "integer", "minimum": 0, "maximum": 3, "description": "0 (best prognosis) … 3 (worst)."},
    "group_label": {"type": "string"},
    "label": response_schemas.label(LABELS),
    "probabilities": response_schemas.probabilities(LABELS, "Soft membership of each survival group."),
    "probabilities_kind": {"type": "string"},
    "group_survival": {"type": "object", "properties": {"overall": GROUP_CURVE, "disease_specific": GROUP_CURVE},
                       "required": ["overall", "disease_specific"], "additionalProperties": False},
    "input": response_schemas.EXPRESSION_COVERAGE,
    "ood": response_schemas.OOD,
    "clinical": {"type": "object", "description": "Present when the request has 'clinical'.", "properties": {
        "nottingham_prognostic_index": {"type": "number", "description": "0.2 x size (cm) + node stage + grade."},
        "imputed": {"type": "array", "items": {"type": "string"},
                    "description": "Fields that were unknown and set to the training median."}},
        "required": ["nottingham_prognostic_index", "imputed"], "additionalProperties": False},
}, ["predictor", "risk", "risk_kind", "survival", "disease_specific_survival", "group", "group_label", "label",
    "probabilities", "probabilities_kind", "group_survival", "input"],
   "The patient's risk and predicted survival, and the survival group with its curves.")

lambda_handler = build_lambda_handler("breast_survival", MODEL, [
    Route("/breast-survival/predict", REQUEST, predict, response=ANSWER, errors=error_codes.EXPRESSION + error_codes.CLINICAL + error_codes.GUARDED,
          summary="Risk, predicted survival and group 0-3 from METABRIC mRNA z-scores (and clinical variables)"),
])
