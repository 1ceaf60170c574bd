"""
## The out-of-distribution score, inside the serving graph

How far an input's pooled features lie from the training features, as one number per input
(Lee et al. 2018, "A simple unified framework for detecting out-of-distribution samples";
feature-space Mahalanobis ranks above softmax confidence on medical images, e.g. Berger et al.
2021, Cao et al. 2020). Fitted on training features only:

* a principal basis of ``components`` directions of the centred features;
* in that basis, one mean per group (class, or class × modality) and one shared, shrunk covariance:
  the distance to the nearest group mean, in whitened units, divided by ``components``;
* off the basis, the squared residual, divided by its training mean (features a scanner or a
  photograph puts where no training image has variance show up here, not in the basis).

The score is the sum of the two terms (≈ 2 for a typical training image); the graph computes it
with two matrix products per input (``score_layer``), NumPy the same (``score``) for fitting and tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np

COMPONENTS = 512  # development look on the brain model (card): 64 directions let other-task images hide in the residual-free basis
OOD_SCOPE = "ood"  # the layer name: its operations stay float in an int8 model
RANK_TOLERANCE = 1e-6  # singular values below this share of the largest are directions the features do not span
SHRINKAGE = 0.05  # covariance shrunk towards its mean variance: a stable inverse from few images
METHOD = ("Mahalanobis distance of the features to the nearest training group mean "
          "(shared shrunk covariance, {k} principal directions, per direction) + squared residual "
          "off those directions (over its training mean)")


def fit_feature_density(features: np.ndarray, groups: np.ndarray, *, components: int = COMPONENTS) -> dict[str, Any]:
    """The score's constants from training ``features`` (n, d) and their ``groups`` (n,) labels."""
    x = features.astype(np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    # At most half the directions the features span and a quarter of the samples: the residual off the
    # basis must keep variance in training (a tuned backbone leaves most channels dead: histopathology's
    # 1,280 features span 190 directions), the covariance be estimable.
    _, singular, directions = np.linalg.svd(centred, full_matrices=False)
    rank = int((singular > RANK_TOLERANCE * singular[0]).sum())
    k = max(1, min(components, rank // 2, x.shape[0] // 4))
    basis = directions[:k].T  # (d, k), orthonormal columns
    z = centred @ basis
    names = np.unique(groups)
    group_means = np.stack([z[groups == g].mean(axis=0) for g in names])
    within = z - group_means[np.searchsorted(names, groups)]
    covariance = np.cov(within, rowvar=False)
    covariance = (1 - SHRINKAGE) * covariance + SHRINKAGE * np.trace(covariance) / k * np.eye(k)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    whitening = eigenvectors @ np.diag(eigenvalues ** -0.5) @ eigenvectors.T
    total = (centred ** 2).sum(axis=1)
    residual = total - (z ** 2).sum(axis=1)
    scale = max(float(residual.mean()), RANK_TOLERANCE * float(total.mean()))  # never a float32 rounding error
    return {"mean": mean, "basis": basis, "whitening": whitening, "group_means": group_means,
            "groups": [str(g) for g in names], "residual_scale": scale, "components": k}


def score(params: dict[str, Any], features: np.ndarray) -> np.ndarray:
    """The score of pooled ``features`` (n, d), in NumPy (what the graph computes)."""
    centred = features.astype(np.float64) - params["mean"]
    z = centred @ params["basis"]
    whitened = z @ params["whitening"]
    anchors = params["group_means"] @ params["whitening"]
    distances = ((whitened[:, None, :] - anchors[None]) ** 2).sum(axis=-1).min(axis=1)
    residual = (centred ** 2).sum(axis=1) - (z ** 2).sum(axis=1)
    return distances / params["components"] + np.maximum(residual, 0) / params["residual_scale"]


def score_layer(params: dict[str, Any], features, *, views: int = 1):
    """The graph's ``ood_score`` (batch,) from pooled features (batch, d) or a feature map (batch, h,
    w, d; pooled here, and averaged over ``views`` stacked views of each image). One layer named
    ``ood``, so the int8 conversion can find its operations and keep them in float (``convert.convert``)."""
    from keras import layers

    return layers.Identity(name="ood_score")(feature_density_layer(params, views)(features))


def feature_density_layer(params: dict[str, Any], views: int = 1):
    """A Keras layer computing ``score`` with float32 constants: matrix products with the (d, k) basis
    (in and back out) and the (k, k) whitening, the distances to the group means and their minimum."""
    from keras import layers, ops

    k = params["components"]
    mean = params["mean"].astype(np.float32)
    basis = params["basis"].astype(np.float32)  # (d, k): the one large matrix
    whitening = params["whitening"].astype(np.float32)  # (k, k)
    anchors = (params["group_means"] @ params["whitening"]).astype(np.float32)  # (groups, k)
    anchor_norms = (anchors.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)[None, :]

    class FeatureDensityScore(layers.Layer):
        def call(self, features):
            pooled = ops.mean(features, axis=(1, 2)) if len(features.shape) == 4 else features
            if views > 1:
                pooled = ops.mean(ops.stack(ops.split(pooled, views, axis=0)), axis=0)
            centred = pooled - mean
            in_basis = ops.matmul(centred, basis)
            whitened = ops.matmul(in_basis, whitening)
            # ||w - a||² = ||w||² - 2 w·a + ||a||², for every group a at once
            distances = (ops.sum(whitened * whitened, axis=-1, keepdims=True)
                         - 2.0 * ops.matmul(whitened, anchors.T) + anchor_norms)
            # the residual vector itself, not ||c||² - ||z||²: that difference of two large numbers loses
            # float32 digits where the features leave little variance off the basis (histopathology)
            off_basis = centred - ops.einsum("bk,dk->bd", in_basis, basis)
            residual = ops.sum(off_basis * off_basis, axis=-1)
            return ops.min(distances, axis=-1) / float(k) + residual / params["residual_scale"]

    return FeatureDensityScore(name=OOD_SCOPE)


def out_of_fold_scores(features: np.ndarray, groups: np.ndarray, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Each sample's score under the density fitted without its fold: a validation stand-in for a
    task with no validation split (leukemia's 38 training samples), stratified by group."""
    from sklearn.model_selection import StratifiedKFold

    scores = np.empty(len(features))
    for fit_rows, held_out in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, groups):
        scores[held_out] = score(fit_feature_density(features[fit_rows], groups[fit_rows]), features[held_out])
    return scores


def thresholds(val_scores: np.ndarray, *, refuse_quantile: float = 0.99, atypical_quantile: float = 0.95) -> dict[str, Any]:
    """Refusal and atypical thresholds on in-distribution validation scores: at most 1% (5%) of
    them lie above (``method="higher"``: an observed score, so the share above is never more)."""
    return {"refuse": float(np.quantile(val_scores, refuse_quantile, method="higher")),
            "atypical": float(np.quantile(val_scores, atypical_quantile, method="higher")),
            "rule": f"refuse above the {refuse_quantile:.0%} quantile of in-distribution validation scores, "
                    f"flag as atypical above the {atypical_quantile:.0%} quantile"}


REGION_MAX_TILES = 16  # thresholds for 1..16 tissue tiles; a larger image uses the last pair


def neighbour_region_medians(scores: np.ndarray, groups: np.ndarray, positions: np.ndarray, tiles: int) -> np.ndarray:
    """For every tile of every group (patient) with at least ``tiles`` tiles, the median score of the
    ``tiles`` tiles of that group nearest to it (``positions``: (n, 2), itself included): what a tiled
    image of that much of one patient's tissue scores as a whole."""
    medians = []
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        if len(members) < tiles:
            continue
        where = positions[members].astype(np.float64)
        distances = ((where[:, None, :] - where[None, :, :]) ** 2).sum(axis=-1)
        nearest = np.argsort(distances, axis=1, kind="stable")[:, :tiles]
        medians.append(np.median(scores[members][nearest], axis=1))
    return np.concatenate(medians) if medians else np.zeros(0)


def region_block(val_scores: np.ndarray, val_groups: np.ndarray, val_positions: np.ndarray) -> dict[str, Any] | None:
    """model.json's ``ood.region``: per tissue-tile count n = 1..REGION_MAX_TILES, the quantiles of
    ``thresholds`` over validation regions of n neighbouring tiles of one patient, made non-increasing
    in n (a median of more tiles varies less; a few patients set each quantile). None when no patient
    has REGION_MAX_TILES tiles."""
    per_count = [neighbour_region_medians(val_scores, val_groups, val_positions, n) for n in range(1, REGION_MAX_TILES + 1)]
    if not len(per_count[-1]):
        return None
    chosen = [thresholds(medians) for medians in per_count]
    refuse = np.maximum.accumulate([c["refuse"] for c in chosen][::-1])[::-1]
    atypical = np.maximum.accumulate([c["atypical"] for c in chosen][::-1])[::-1]
    patients = len(np.unique(val_groups))
    return {"statistic": "median tile score", "refuse_thresholds": [float(v) for v in refuse],
            "atypical_thresholds": [float(v) for v in atypical],
            "threshold_rule": f"per tissue-tile count n = 1..{REGION_MAX_TILES}: validation regions of each patient's n "
                              f"spatially nearest tissue patches around each of them ({len(per_count[0])} regions of "
                              f"{patients} patients at n = 1, {len(per_count[-1])} at n = {REGION_MAX_TILES}); "
                              + chosen[0]["rule"].replace("scores", "region scores")
                              + "; made non-increasing in n"}


def contract_block(params: dict[str, Any], val_scores: np.ndarray, *, features: str,
                   region: dict[str, Any] | None = None) -> dict[str, Any]:
    """model.json's ``ood``: the tensor, the two thresholds, the method (the runtime reads it)."""
    chosen = thresholds(val_scores)
    return {"tensor": "ood_score", "refuse_threshold": chosen["refuse"],
            "atypical_threshold": chosen["atypical"], "threshold_rule": chosen["rule"],
            "method": METHOD.format(k=params["components"]) + f"; features: {features}",
            "groups": params["groups"], "fitted_on": "training split only",
            # the basis twice: TFLite stores it once per layout, into the basis and back out
            "graph_parameters": int(2 * params["basis"].size + params["whitening"].size + params["group_means"].size
                                    + params["mean"].size),
            **({"region": region} if region else {})}
