"""
## One patient's prognosis: a risk score, its groups and its survival curves

Every prognosis model here is a linear risk score, r = expression · a + clinical features · c + b
(a = 0 for the clinical-only models). Its curves come from a Cox model on r alone, one per endpoint,
fitted on the same patients: S(t | r) = exp(−H₀(t) · exp(β r)), H₀ the Breslow estimate on a
3-month grid up to 15 years. So every candidate — the Nottingham index, a clinical Cox, clinical +
expression — gets its curves the same way, and r is centred so that 0 is the fitted patients'
average. The groups 0–3 are r cut at the fitted patients' quartiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from train.breast_survival.clinical import clinical_features, imputed, training_medians
from train.breast_survival.data import Metabric
from train.breast_survival.model import GroupModel, positive_months

CURVE_MONTHS = np.arange(0.0, 181.0, 3.0)  # 0 … 15 years
MAX_LOG_HAZARD_RATIO = 30.0  # exp(±30): far beyond any patient, small enough to stay finite in float32
ENDPOINTS = ("overall", "disease_specific")


@dataclass
class RiskModel:
    name: str
    params: dict[str, Any]
    gene_weights: np.ndarray  # on the source z-scores (any standardisation folded in)
    clinical_weights: np.ndarray  # on clinical.FEATURES
    bias: float
    fill_values: np.ndarray  # what stands in for a missing clinical value: training medians
    cutpoints: np.ndarray = field(default_factory=lambda: np.zeros(3))
    band_scale: float = 1.0
    calibration: dict[str, dict[str, Any]] = field(default_factory=dict)

    def risk(self, data: Metabric) -> np.ndarray:
        features = clinical_features(imputed(data.clinical, self.fill_values))
        return data.expression @ self.gene_weights + features @ self.clinical_weights + self.bias

    def survival(self, risk: np.ndarray) -> np.ndarray:
        return endpoint_curves(risk, self.calibration)

    def groups(self, risk: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.cutpoints, risk, side="right")


def endpoint_curves(risk: np.ndarray, calibration: dict[str, dict[str, Any]]) -> np.ndarray:
    """(patients, endpoints, CURVE_MONTHS) predicted survival from each endpoint's curve model."""
    return np.stack([survival_curves(risk, calibration[e]) for e in ENDPOINTS], axis=1)


def survival_curves(risk: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    hazard = np.asarray(calibration["cumulative_hazard"])
    log_ratio = np.clip(calibration["coefficient"] * risk, -MAX_LOG_HAZARD_RATIO, MAX_LOG_HAZARD_RATIO)
    return np.exp(-hazard[None, :] * np.exp(log_ratio)[:, None])


def breslow_cumulative_hazard(months: np.ndarray, events: np.ndarray, linear: np.ndarray,
                              grid: np.ndarray = CURVE_MONTHS) -> np.ndarray:
    """Breslow's baseline cumulative hazard at each grid time (ties: d events over one risk set)."""
    event_times, deaths = np.unique(months[events == 1], return_counts=True)
    order = np.argsort(months)
    sorted_months, weights = months[order], np.exp(linear[order])
    at_risk = np.cumsum(weights[::-1])[::-1]  # Σ exp(η) over patients still followed at each sorted time
    risk_sets = at_risk[np.searchsorted(sorted_months, event_times, side="left")]
    steps = np.cumsum(deaths / risk_sets)
    taken = np.searchsorted(event_times, grid, side="right")
    return np.where(taken > 0, steps[np.maximum(taken - 1, 0)], 0.0)


def calibrate(model: RiskModel, fitted: Metabric) -> RiskModel:
    """Centre the score on ``fitted``, cut its quartiles, and fit each endpoint's curve model."""
    risk = model.risk(fitted)
    model.bias -= float(risk.mean())
    risk = risk - risk.mean()
    model.cutpoints = np.quantile(risk, [0.25, 0.5, 0.75])
    model.band_scale = float(0.1 * risk.std())
    model.calibration = curve_models(risk, fitted)
    return model


def curve_models(risk: np.ndarray, fitted: Metabric) -> dict[str, dict[str, Any]]:
    """Per endpoint: the Cox coefficient of the (centred) score and Breslow's baseline on CURVE_MONTHS."""
    import pandas as pd
    from lifelines import CoxPHFitter

    months = positive_months(fitted)
    models = {}
    for endpoint in ENDPOINTS:
        events = fitted.events(endpoint)
        frame = pd.DataFrame({"risk": risk, "months": months, "event": events})
        coefficient = float(CoxPHFitter().fit(frame, "months", "event").params_["risk"])
        models[endpoint] = {"coefficient": coefficient,
                            "cumulative_hazard": breslow_cumulative_hazard(months, events, coefficient * risk).tolist()}
    return models


def expression_risk(model: GroupModel, expression: np.ndarray) -> np.ndarray:
    """The expression-only model's score: its Cox linear predictor, or (K-Means) the expected group."""
    if model.method == "cox":
        return model.project(expression)[:, 0]
    return model.memberships(expression) @ np.arange(4.0)


@dataclass
class ExpressionCurves:
    """The expression-only model's curves: its score, centred on the fitted patients, and the curve models."""

    centre: float
    calibration: dict[str, dict[str, Any]]

    @classmethod
    def fit(cls, model: GroupModel, fitted: Metabric) -> "ExpressionCurves":
        risk = expression_risk(model, fitted.expression)
        return cls(float(risk.mean()), curve_models(risk - risk.mean(), fitted))

    def risk(self, model: GroupModel, expression: np.ndarray) -> np.ndarray:
        return expression_risk(model, expression) - self.centre

    def survival(self, risk: np.ndarray) -> np.ndarray:
        return endpoint_curves(risk, self.calibration)


def linear_cox(columns: np.ndarray, fitted: Metabric, endpoint: str, penalizer: float = 0.01) -> tuple[np.ndarray, float]:
    """Cox weights on the raw ``columns`` (standardised to fit, folded back) and the matching offset."""
    import pandas as pd
    from lifelines import CoxPHFitter

    mean, scale = columns.mean(axis=0), columns.std(axis=0)
    frame = pd.DataFrame((columns - mean) / scale, columns=[f"x{i}" for i in range(columns.shape[1])])
    frame["months"], frame["event"] = positive_months(fitted), fitted.events(endpoint)
    beta = CoxPHFitter(penalizer=penalizer).fit(frame, "months", "event").params_.to_numpy()
    return beta / scale, float(-(mean / scale) @ beta)


def with_clinical_fill(data: Metabric) -> tuple[np.ndarray, np.ndarray]:
    """(training medians, the clinical features with them filled in) of ``data``."""
    fill = training_medians(data.clinical)
    return fill, clinical_features(imputed(data.clinical, fill))
