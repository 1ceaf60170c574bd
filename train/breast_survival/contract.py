"""What model.json tells the breast-survival function: the genes it takes (and how a missing one is
filled), what the graph does, and the survival table of each group it answers with."""

from __future__ import annotations

from typing import Any

import numpy as np

from train.breast_survival.data import GROUP_NAMES, LABELS, Metabric
from train.breast_survival.model import GroupModel
from train.breast_survival.survival_stats import km_table

CURVE_GRID = np.arange(0.0, 301.0, 6.0)  # months; KM tables shipped in model.json


def contract_input(genes: list[str], model: GroupModel) -> dict[str, Any]:
    return {
        "kind": "expression", "dtype": "float32", "shape": [None, len(genes)],
        "value_range": "METABRIC mRNA z-scores (as in the source CSV; re-standardised in-graph)",
        "feature_id": "METABRIC gene symbol (case-insensitive)",
        "features": genes,
        "missing": {"min_coverage": 0.9, "fill_values": model.mean.tolist(),
                    "rule": "at least 90% of the 489 genes; each missing gene is set to its training mean "
                            "(neutral after standardisation); unknown genes are refused"},
    }


def contract_preprocessing(model: GroupModel) -> dict[str, Any]:
    projection = ("PCA projection" if model.method == "kmeans" and model.params["n_components"]
                  else ("identity" if model.method == "kmeans" else "Cox linear predictor"))
    return {"in_graph": ["standardise with training-patient mean/sd", projection, "soft assignment to 4 ordered groups"],
            "in_runtime": {"order": "model.json input.features", "case_insensitive": True}}


def survival_tables(fitted: Metabric, groups: np.ndarray) -> list[dict[str, Any]]:
    """Each group's Kaplan–Meier table (overall and disease-specific) on the patients the model was fitted on."""
    return [{"group": g, "label": LABELS[g], "group_label": GROUP_NAMES[g],
             "overall": km_table(fitted.months[groups == g], fitted.os_event[groups == g], CURVE_GRID),
             "disease_specific": km_table(fitted.months[groups == g], fitted.dss_event[groups == g], CURVE_GRID)}
            for g in range(4)]


def contract_output(model: GroupModel, tables: list[dict[str, Any]], fitted_on: str) -> dict[str, Any]:
    probabilities = ("soft cluster membership, softmax(-d²/2τ) over centroid distances" if model.method == "kmeans"
                     else "soft risk-band membership, softmax(-δ²/2s²) over distances to the quartile bands")
    return {"labels": LABELS, "group_names": GROUP_NAMES,
            "probabilities": probabilities + "; not calibrated probabilities; argmax = group",
            "survival_tables": tables, "survival_tables_from": f"{fitted_on}, Kaplan-Meier, 95% CI"}
