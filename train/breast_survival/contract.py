"""What model.json tells the breast-survival function: the genes and clinical values it takes (and how
a missing one is filled), what the graph does, and the survival table of each group it answers with."""

from __future__ import annotations

from typing import Any

import numpy as np

from train.breast_survival.clinical import CLINICAL_FIELDS, MAX_IMPUTED
from train.breast_survival.data import GROUP_NAMES, LABELS, Metabric
from train.breast_survival.model import GroupModel
from train.breast_survival.prognosis import CURVE_MONTHS, ENDPOINTS, RiskModel
from train.breast_survival.prognosis_stage import PrognosisChoice
from train.breast_survival.survival_stats import km_table

CURVE_GRID = np.arange(0.0, 301.0, 6.0)  # months; KM tables shipped in model.json


def contract_input(genes: list[str], model: GroupModel, prognosis: RiskModel) -> dict[str, Any]:
    return {
        "kind": "expression", "dtype": "float32", "shape": [None, len(genes) + len(CLINICAL_FIELDS)],
        "value_range": "METABRIC mRNA z-scores (as in the source CSV; re-standardised in-graph)",
        "feature_id": "METABRIC gene symbol (case-insensitive)",
        "features": genes,
        "missing": {"min_coverage": 0.9, "fill_values": model.mean.tolist(),
                    "rule": "at least 90% of the 489 genes; each missing gene is set to its training mean "
                            "(neutral after standardisation); unknown genes are refused"},
        "clinical": {
            "fields": [{"name": f.name, "kind": f.kind, "unit": f.unit, "minimum": f.minimum, "maximum": f.maximum,
                        "fill_value": float(v)} for f, v in zip(CLINICAL_FIELDS, prognosis.fill_values)],
            "max_imputed": MAX_IMPUTED,
            "rule": f"appended after the genes in this order (status: Positive = 1, Negative = 0); up to {MAX_IMPUTED} "
                    "missing values are each set to the training median and named in the answer; more are refused",
        },
    }


def contract_preprocessing(model: GroupModel) -> dict[str, Any]:
    projection = ("PCA projection" if model.method == "kmeans" and model.params["n_components"]
                  else ("identity" if model.method == "kmeans" else "Cox linear predictor"))
    return {"in_graph": ["standardise with training-patient mean/sd", projection, "soft assignment to 4 ordered groups",
                         "risk score and per-endpoint Cox curves (Breslow baseline)",
                         "clinical: Nottingham Prognostic Index, clinical + expression linear risk, its groups and curves"],
            "in_runtime": {"order": "model.json input.features", "case_insensitive": True}}


def survival_tables(fitted: Metabric, groups: np.ndarray) -> list[dict[str, Any]]:
    """Each group's Kaplan–Meier table (overall and disease-specific) on the patients the model was fitted on."""
    return [{"group": g, "label": LABELS[g], "group_label": GROUP_NAMES[g],
             "overall": km_table(fitted.months[groups == g], fitted.os_event[groups == g], CURVE_GRID),
             "disease_specific": km_table(fitted.months[groups == g], fitted.dss_event[groups == g], CURVE_GRID)}
            for g in range(4)]


def contract_output(model: GroupModel, tables: list[dict[str, Any]], fitted_on: str, prognosis: PrognosisChoice,
                    clinical_tables: list[dict[str, Any]]) -> dict[str, Any]:
    probabilities = ("soft cluster membership, softmax(-d²/2τ) over centroid distances" if model.method == "kmeans"
                     else "soft risk-band membership, softmax(-δ²/2s²) over distances to the quartile bands")
    return {"labels": LABELS, "group_names": GROUP_NAMES, "tensor": "membership",
            "probabilities": probabilities + "; not calibrated probabilities; argmax = group",
            "survival_tables": tables, "survival_tables_from": f"{fitted_on}, Kaplan-Meier, 95% CI",
            "curve_months": CURVE_MONTHS.tolist(), "curve_endpoints": list(ENDPOINTS),
            "risk": ("the expression model's Cox linear predictor" if model.method == "cox"
                     else "the expression model's expected group (K-Means)")
                    + " or, with clinical values, the clinical model's linear score; 0 = the average fitted patient, "
                      "higher = worse; each curve is exp(-H0(t) · exp(β · risk)), H0 Breslow's baseline on the "
                      "fitted patients",
            "clinical": {"model": prognosis.chosen_key, "parameters": prognosis.shipped.params,
                         "survival_tables": clinical_tables,
                         "curve_models": {e: {"coefficient": prognosis.shipped.calibration[e]["coefficient"]}
                                          for e in ENDPOINTS}}}
