"""
## Prognosis candidates: two anchors and two ways of adding expression

* **npi**: the Nottingham Prognostic Index itself (the classic anchor).
* **clinical_cox**: a Cox model on the seven clinical variables (the PREDICT-like anchor).
* **clinical_with_expression_risk**: the same Cox model plus one covariate, the expression-only
  model's risk score, refitted within the candidate's patients.
* **clinical_and_genes**: an elastic-net Cox on the clinical variables (unpenalised) and the 489
  genes (penalised), strength by 5-fold cross-validation on the candidate's patients.

Each is a fitting procedure (patients → calibrated RiskModel), fitted for each endpoint where it has
one, so the one validation chooses can be fitted again, the same way, on more patients.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import numpy as np

from train.breast_survival.clinical import FEATURES
from train.breast_survival.data import Metabric
from train.breast_survival.model import GroupModel, cross_validated_coxnet
from train.breast_survival.prognosis import RiskModel, calibrate, linear_cox, with_clinical_fill

ANCHORS = ("npi", "clinical_cox")
WITHOUT_INDEX = slice(1, None)  # clinical.FEATURES without the Nottingham index: the seven variables


def fit_npi(fitted: Metabric) -> RiskModel:
    fill, _ = with_clinical_fill(fitted)
    weights = np.zeros(len(FEATURES))
    weights[0] = 1.0
    return calibrate(RiskModel("npi", {}, np.zeros(len(fitted.genes)), weights, 0.0, fill), fitted)


def fit_clinical_cox(fitted: Metabric, endpoint: str) -> RiskModel:
    fill, features = with_clinical_fill(fitted)
    weights, bias = linear_cox(features[:, WITHOUT_INDEX], fitted, endpoint)
    return calibrate(RiskModel("clinical_cox", {"endpoint": endpoint}, np.zeros(len(fitted.genes)),
                               np.r_[0.0, weights], bias, fill), fitted)


def fit_clinical_with_expression_risk(fitted: Metabric, endpoint: str,
                                      expression_fit: Callable[[Metabric], GroupModel]) -> RiskModel:
    expression = expression_fit(fitted)
    gene_weights = expression.projection[:, 0] / expression.scale  # its linear predictor on source z-scores
    gene_offset = float(expression.projection_bias[0] - (expression.mean / expression.scale) @ expression.projection[:, 0])
    fill, features = with_clinical_fill(fitted)
    expression_risk = fitted.expression @ gene_weights + gene_offset
    weights, bias = linear_cox(np.column_stack([features[:, WITHOUT_INDEX], expression_risk]), fitted, endpoint)
    return calibrate(RiskModel("clinical_with_expression_risk",
                               {"endpoint": endpoint, "expression_model": expression.params,
                                "expression_risk_weight": round(float(weights[-1]), 4)},
                               weights[-1] * gene_weights, np.r_[0.0, weights[:-1]], bias + weights[-1] * gene_offset,
                               fill), fitted)


def fit_clinical_and_genes(fitted: Metabric, endpoint: str, l1_ratio: float, seed: int) -> RiskModel:
    fill, features = with_clinical_fill(fitted)
    columns = np.column_stack([features[:, WITHOUT_INDEX], fitted.expression])
    mean, scale = columns.mean(axis=0), columns.std(axis=0)
    penalty = np.r_[np.zeros(7), np.ones(len(fitted.genes))]
    beta, alpha, cv_c = cross_validated_coxnet((columns - mean) / scale, fitted, endpoint, l1_ratio, seed,
                                               penalty_factor=penalty)
    weights = beta / scale
    return calibrate(RiskModel("clinical_and_genes",
                               {"endpoint": endpoint, "l1_ratio": l1_ratio, "alpha": round(alpha, 4),
                                "genes_used": int((beta[7:] != 0).sum()), "cv_c": round(cv_c, 4)},
                               weights[7:], np.r_[0.0, weights[:7]], float(-(mean / scale) @ beta), fill), fitted)


def prognosis_candidates(seed: int, expression_fit: Callable[[Metabric], GroupModel] | None
                         ) -> list[Callable[[Metabric], RiskModel]]:
    """``expression_fit``: the expression-only procedure validation chose, when it is a Cox model (a
    K-Means grouping has no risk score to add)."""
    return [fit_npi,
            *(partial(fit_clinical_cox, endpoint=e) for e in ("overall", "disease_specific")),
            *(partial(fit_clinical_with_expression_risk, endpoint=e, expression_fit=expression_fit)
              for e in ("overall", "disease_specific") if expression_fit is not None),
            *(partial(fit_clinical_and_genes, endpoint=e, l1_ratio=l1, seed=seed)
              for e in ("overall", "disease_specific") for l1 in (0.1, 0.5))]
