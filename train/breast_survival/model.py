"""
## Models

Both produce `scores` in which a higher group is a worse prognosis, and soft memberships:

* **K-Means** (seed): standardise → optional PCA → K-Means (k=4) → clusters renamed 0…3 by
  training 10-year restricted mean survival. Membership = softmax(−d²/2τ) over squared distances
  to the centroids, τ = mean within-cluster squared distance on training patients.
* **Cox** (survival-aware): standardise → Cox model → linear risk score → cut at the training
  quartiles. Two penalties: ridge (lifelines, a fixed grid of strengths) and elastic net
  (scikit-survival, strength chosen by 5-fold cross-validation on training patients). Membership = softmax(−δ²/2s²), δ = distance from the score to each band
  (0 inside it), s = 0.1 × the training score's standard deviation.

Neither membership is a calibrated probability; argmax is the group in both. The serving graph
(``graph.py``) holds the fitted numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import numpy as np

from train.breast_survival.data import Metabric
from train.breast_survival.survival_stats import restricted_mean_survival


@dataclass
class GroupModel:
    method: str
    params: dict[str, Any]
    mean: np.ndarray
    scale: np.ndarray
    projection: np.ndarray  # (genes, d): PCA loadings, identity, or Cox coefficients (d = 1)
    projection_bias: np.ndarray
    centroids: np.ndarray | None  # K-Means, in group order
    temperature: float | None
    cutpoints: np.ndarray | None  # Cox quartile cut points
    band_scale: float | None

    def project(self, expression: np.ndarray) -> np.ndarray:
        return ((expression - self.mean) / self.scale) @ self.projection + self.projection_bias

    def memberships(self, expression: np.ndarray) -> np.ndarray:
        """NumPy twin of the TFLite graph (used for parity and evaluation sanity checks)."""
        projected = self.project(expression)
        if self.method == "kmeans":
            distances = ((projected[:, None, :] - self.centroids[None]) ** 2).sum(-1)
            logits = -distances / (2 * self.temperature)
        else:
            lower, upper = band_edges(self.cutpoints)
            delta = np.maximum(lower - projected, 0) + np.maximum(projected - upper, 0)
            logits = -(delta**2) / (2 * self.band_scale**2)
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def groups(self, expression: np.ndarray) -> np.ndarray:
        return self.memberships(expression).argmax(axis=1)


def band_edges(cutpoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    big = 1e9  # stands for ±infinity in a float32 graph
    return np.concatenate([[-big], cutpoints]), np.concatenate([cutpoints, [big]])


def fit_kmeans(train: Metabric, n_components: int | None, seed: int) -> GroupModel:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    mean, scale, z = train.standardised()
    if n_components:
        pca = PCA(n_components=n_components, random_state=seed).fit(z)
        projection, bias = pca.components_.T, -(pca.mean_ @ pca.components_.T)
    else:
        projection, bias = np.eye(z.shape[1]), np.zeros(z.shape[1])
    projected = z @ projection + bias
    kmeans = KMeans(n_clusters=4, n_init=20, random_state=seed).fit(projected)
    clusters = kmeans.labels_
    # clusters are ordered by 10-year restricted mean survival on training patients
    rmst = [restricted_mean_survival(train.months[clusters == c], train.os_event[clusters == c])
            for c in range(4)]
    order = np.argsort(-np.array(rmst))  # best survival first → group 0
    centroids = kmeans.cluster_centers_[order]
    temperature = float(((projected - kmeans.cluster_centers_[clusters]) ** 2).sum(axis=1).mean())
    return GroupModel("kmeans", {"n_components": n_components, "k": 4}, mean, scale, projection, bias, centroids,
                      temperature, None, None)


def fit_cox(train: Metabric, endpoint: str, penalizer: float) -> GroupModel:
    import pandas as pd
    from lifelines import CoxPHFitter

    mean, scale, z = train.standardised()
    frame = pd.DataFrame(z, columns=[f"g{i}" for i in range(z.shape[1])])
    frame["months"] = positive_months(train)
    frame["event"] = train.events(endpoint)
    cox = CoxPHFitter(penalizer=penalizer).fit(frame, "months", "event")
    return risk_groups({"endpoint": endpoint, "penalizer": penalizer}, mean, scale, z, cox.params_.to_numpy())


def positive_months(data: Metabric) -> np.ndarray:
    return np.maximum(data.months, 1e-3)  # one patient has 0.0 months; Cox fitters need times > 0


def risk_groups(params: dict[str, Any], mean: np.ndarray, scale: np.ndarray, z: np.ndarray,
                coefficients: np.ndarray) -> GroupModel:
    """A Cox linear predictor cut at its training quartiles (band scale: 0.1 × the score's sd)."""
    beta = coefficients[:, None]
    risk = (z @ beta)[:, 0]
    return GroupModel("cox", params, mean, scale, beta, np.zeros(1), None, None,
                      np.quantile(risk, [0.25, 0.5, 0.75]), float(0.1 * risk.std()))


def fit_coxnet(train: Metabric, endpoint: str, l1_ratio: float, seed: int, folds: int = 5) -> GroupModel:
    """Elastic-net Cox (scikit-survival): most of the 489 genes get a zero weight. The penalty strength
    is chosen by k-fold cross-validation (Harrell's C) on training patients, so validation only picks
    between families, as for the other candidates."""
    mean, scale, z = train.standardised()
    coefficients, alpha, cv_c = cross_validated_coxnet(z, train, endpoint, l1_ratio, seed, folds=folds)
    params = {"endpoint": endpoint, "penalty": "elastic_net", "l1_ratio": l1_ratio, "alpha": round(alpha, 4),
              "genes_used": int((coefficients != 0).sum()), "cv_c": round(cv_c, 4)}
    return risk_groups(params, mean, scale, z, coefficients)


def cross_validated_coxnet(x: np.ndarray, train: Metabric, endpoint: str, l1_ratio: float, seed: int, *,
                           penalty_factor: np.ndarray | None = None, folds: int = 5) -> tuple[np.ndarray, float, float]:
    """Elastic-net Cox weights on ``x`` at the strength whose k-fold held-out Harrell's C on ``train`` is
    best: (weights, strength, that C). ``penalty_factor`` 0 leaves a column unpenalised."""
    from lifelines.utils import concordance_index
    from sklearn.model_selection import StratifiedKFold
    from sksurv.linear_model import CoxnetSurvivalAnalysis
    from sksurv.util import Surv

    events = train.events(endpoint)
    target = Surv.from_arrays(events.astype(bool), positive_months(train))
    penalty = {} if penalty_factor is None else {"penalty_factor": penalty_factor}

    def path(alphas=None):
        return CoxnetSurvivalAnalysis(l1_ratio=l1_ratio, alphas=alphas, n_alphas=40, alpha_min_ratio=0.01,
                                      max_iter=100_000, **penalty)

    full = path().fit(x, target)
    alphas = full.alphas_
    held_out_c = np.zeros((folds, len(alphas)))
    for fold, (fit_rows, held_rows) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, events)):
        fold_model = path(alphas).fit(x[fit_rows], target[fit_rows])
        for j, alpha in enumerate(alphas):
            risk = fold_model.predict(x[held_rows], alpha=alpha)
            # an all-zero model ranks nobody: score it as chance, not as an error
            held_out_c[fold, j] = (concordance_index(train.months[held_rows], -risk, events[held_rows])
                                   if np.ptp(risk) > 0 else 0.5)
    best = int(held_out_c.mean(axis=0).argmax())
    return full.coef_[:, best], float(alphas[best]), float(held_out_c.mean(axis=0)[best])


def candidates(seed: int, method: str | None) -> list[Callable[[Metabric], GroupModel]]:
    """Each candidate as a fitting procedure (patients → model), so the one validation chooses can be
    fitted again, the same way, on more patients."""
    fits: list[Callable[[Metabric], GroupModel]] = []
    if method in (None, "kmeans"):
        fits += [partial(fit_kmeans, n_components=k, seed=seed) for k in (None, 10, 50)]
    if method in (None, "cox"):
        fits += [partial(fit_cox, endpoint=endpoint, penalizer=penalizer) for endpoint in ("overall", "disease_specific")
                 for penalizer in (0.2, 1.0, 3.0, 10.0)]
        fits += [partial(fit_coxnet, endpoint=endpoint, l1_ratio=l1_ratio, seed=seed)
                 for endpoint in ("overall", "disease_specific") for l1_ratio in (0.1, 0.5)]
    return fits
