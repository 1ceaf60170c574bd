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

A second method, ``nearest_neighbour`` (Sun et al. 2022, "Out-of-distribution detection with deep
nearest neighbors"): the cosine distance of the L2-normalised features to the nearest training
sample's, in the training features' leading directions. It makes no assumption on the features'
shape; where images of another kind sit inside a Gaussian's tail (histopathology's 50-px patches:
dermoscopy photos shrunk to a patch look like unusual H&E) it still finds no training patch near
them. The training features are kept in the graph, one row each.
"""

from __future__ import annotations

from typing import Any

import numpy as np

COMPONENTS = 512  # development look on the brain model (card): 64 directions let other-task images hide in the residual-free basis
OOD_SCOPE = "ood"  # the layer name: its operations stay float in an int8 model
RANK_TOLERANCE = 1e-6  # singular values below this share of the largest are directions the features do not span
SHRINKAGE = 0.05  # covariance shrunk towards its mean variance: a stable inverse from few images
NEIGHBOUR_COMPONENTS = 128  # histopathology's screen: skin refused 88.7% in 128 directions, 90.0% in all 384, at a third of the bank
METHODS = ("mahalanobis", "nearest_neighbour")
METHOD = ("Mahalanobis distance of the features to the nearest training group mean "
          "(shared shrunk covariance, {k} principal directions, per direction) + squared residual "
          "off those directions (over its training mean)")


def fit(method: str, features: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """The constants of ``method``'s score (one of ``METHODS``) from training ``features`` and ``groups``."""
    if method == "nearest_neighbour":
        return fit_nearest_neighbour(features, groups)
    if method == "mahalanobis":
        return fit_feature_density(features, groups)
    raise ValueError(f"unknown out-of-distribution method {method!r}; one of {METHODS}")


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
    return {"kind": "mahalanobis", "mean": mean, "basis": basis, "whitening": whitening, "group_means": group_means,
            "groups": [str(g) for g in names], "residual_scale": scale, "components": k}


def fit_nearest_neighbour(features: np.ndarray, groups: np.ndarray, *,
                          components: int = NEIGHBOUR_COMPONENTS) -> dict[str, Any]:
    """The nearest-neighbour score's constants: the ``components`` leading directions of the
    (uncentred: cosine geometry is about the origin) training features, and every training sample
    projected onto them and normalised to unit length (the bank, (n, k))."""
    x = features.astype(np.float64)
    _, singular, directions = np.linalg.svd(x, full_matrices=False)
    rank = int((singular > RANK_TOLERANCE * singular[0]).sum())
    k = max(1, min(components, rank))
    basis = directions[:k].T  # (d, k)
    return {"kind": "nearest_neighbour", "basis": basis, "bank": unit_rows(x @ basis),
            "groups": [str(g) for g in np.unique(groups)], "components": k}


def fit_either_of(parts: list[dict[str, Any]], val_features: np.ndarray) -> dict[str, Any]:
    """Several scores as one: the largest of them, each divided by its own 99% quantile on the validation
    ``val_features`` (so each is in units of what would refuse it alone; the thresholds are then set on the
    combined score like any other). For scores that see different things: the density sees a profile on
    another scale, the cosine to the nearest training profile sees its values in the wrong genes."""
    scales = [float(np.quantile(score(part, val_features), 0.99)) for part in parts]
    return {"kind": "either_of", "parts": parts, "scales": scales, "groups": parts[0]["groups"],
            "components": max(part["components"] for part in parts)}


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), NORM_FLOOR)


NORM_FLOOR = 1e-6  # an all-zero feature vector (a black image's dead channels) keeps a zero direction, not NaN


def score(params: dict[str, Any], features: np.ndarray) -> np.ndarray:
    """The score of pooled ``features`` (n, d), in NumPy (what the graph computes from features; a graph
    that also sees the pixels gives a one-colour image ``FARTHEST`` instead, ``blank_layer``)."""
    if params.get("kind") == "either_of":
        return np.max([score(part, features) / scale for part, scale in zip(params["parts"], params["scales"])], axis=0)
    if params.get("kind") == "nearest_neighbour":
        similarity = unit_rows(features.astype(np.float64) @ params["basis"]) @ params["bank"].T
        return 1.0 - similarity.max(axis=1)
    centred = features.astype(np.float64) - params["mean"]
    z = centred @ params["basis"]
    whitened = z @ params["whitening"]
    anchors = params["group_means"] @ params["whitening"]
    distances = ((whitened[:, None, :] - anchors[None]) ** 2).sum(axis=-1).min(axis=1)
    residual = (centred ** 2).sum(axis=1) - (z ** 2).sum(axis=1)
    return distances / params["components"] + np.maximum(residual, 0) / params["residual_scale"]


def score_layer(params: dict[str, Any], features, *, views: int = 1, images=None, name: str = "ood_score"):
    """The graph's score output ``name`` (batch,) from pooled features (batch, d) or a feature map (batch, h,
    w, d; pooled here, and averaged over ``views`` stacked views of each image). Layers named
    ``ood``…, so the int8 conversion can find their operations and keep them in float (``convert.convert``).
    ``images``: the graph's input pixels; an image of one colour then gets the farthest score (``blank_layer``)."""
    from keras import layers

    scope = name.removesuffix("_score")
    value = score_tensor(params, features, views, scope)
    if images is not None:
        value = blank_layer(FARTHEST.get(params.get("kind"), float("inf")), f"{scope}_blank")(images, value)
    return layers.Identity(name=name)(value)


def score_tensor(params: dict[str, Any], features, views: int, scope: str):
    """The score of ``params`` (any kind) on ``features``, in layers named ``scope``…"""
    from keras import layers, ops

    if params.get("kind") == "either_of":
        parts = [score_tensor(part, features, views, f"{scope}_{index}") for index, part in enumerate(params["parts"])]
        scales = params["scales"]

        class LargestScaledScore(layers.Layer):
            def call(self, *scores):
                return ops.max(ops.stack([value / scale for value, scale in zip(scores, scales)]), axis=0)

        return LargestScaledScore(name=scope)(*parts)
    make = nearest_neighbour_layer if params.get("kind") == "nearest_neighbour" else feature_density_layer
    return make(params, views, scope)(features)


BLANK_PIXEL_STD = 2.0  # grey levels; histopathology's least varied patch has 2.7 (training), 9.5 (validation, test)
FARTHEST = {"nearest_neighbour": 2.0}  # a cosine distance's largest value; unbounded scores get infinity


def blank_layer(far_score: float, name: str = f"{OOD_SCOPE}_blank"):
    """(images, score) → score, with ``far_score`` for an image of one colour (in every channel, the
    pixels' standard deviation < ``BLANK_PIXEL_STD``): a blank, black or one-colour upload has nothing
    for the features to describe, and a nearest-neighbour score can find such a square close to a
    dark or empty training patch."""
    from keras import layers, ops

    class BlankImageIsFar(layers.Layer):
        def call(self, images, score):
            per_channel = ops.reshape(images, (ops.shape(images)[0], -1, ops.shape(images)[-1]))
            spread = ops.max(ops.std(per_channel, axis=1), axis=-1)
            return ops.where(spread < BLANK_PIXEL_STD, far_score, score)

    return BlankImageIsFar(name=name)


def pooled_views(features, views: int):
    """(batch, d) pooled features of a feature map (or pooled features), averaged over ``views``."""
    from keras import ops

    pooled = ops.mean(features, axis=(1, 2)) if len(features.shape) == 4 else features
    if views > 1:
        pooled = ops.mean(ops.stack(ops.split(pooled, views, axis=0)), axis=0)
    return pooled


def nearest_neighbour_layer(params: dict[str, Any], views: int = 1, name: str = OOD_SCOPE):
    """A Keras layer computing the nearest-neighbour ``score``: one product with the (d, k) basis,
    a normalisation, one product with the (k, n) bank and the largest similarity."""
    from keras import layers, ops

    basis = params["basis"].astype(np.float32)
    bank = params["bank"].T.astype(np.float32)  # (k, n): the large matrix

    class NearestNeighbourScore(layers.Layer):
        def call(self, features):
            projected = ops.matmul(pooled_views(features, views), basis)
            norm = ops.sqrt(ops.sum(projected * projected, axis=-1, keepdims=True))
            similarity = ops.matmul(projected / ops.maximum(norm, NORM_FLOOR), bank)
            return 1.0 - ops.max(similarity, axis=-1)

    return NearestNeighbourScore(name=name)


def feature_density_layer(params: dict[str, Any], views: int = 1, name: str = OOD_SCOPE):
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
            centred = pooled_views(features, views) - mean
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

    return FeatureDensityScore(name=name)


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


def neighbour_region_medians(scores: np.ndarray, groups: np.ndarray, positions: np.ndarray, tiles: int,
                             statistic=np.median) -> np.ndarray:
    """For every tile of every group (patient) with at least ``tiles`` tiles, the median (``statistic``)
    score of the ``tiles`` tiles of that group nearest to it (``positions``: (n, 2), itself included): what a
    tiled image of that much of one patient's tissue scores as a whole."""
    values = []
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        if len(members) < tiles:
            continue
        where = positions[members].astype(np.float64)
        distances = ((where[:, None, :] - where[None, :, :]) ** 2).sum(axis=-1)
        nearest = np.argsort(distances, axis=1, kind="stable")[:, :tiles]
        values.append(statistic(scores[members][nearest], axis=1))
    return np.concatenate(values) if values else np.zeros(0)


def region_block(val_scores: np.ndarray, val_groups: np.ndarray, val_positions: np.ndarray, *,
                 own_score: tuple[str, dict[str, Any], str] | None = None, blank_images: bool = False) -> dict[str, Any] | None:
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
    # its own score output (histopathology: a density where the per-tile score is a nearest neighbour), else the guard's
    own = ({"tensor": own_score[0], "method": method_text(own_score[1]) + f"; features: {own_score[2]}"
                                              + (blank_text(own_score[1]) if blank_images else ""),
            "graph_parameters": graph_parameters(own_score[1])} if own_score else {})
    return {"statistic": "median tile score", **own, "refuse_thresholds": [float(v) for v in refuse],
            "atypical_thresholds": [float(v) for v in atypical],
            "threshold_rule": f"per tissue-tile count n = 1..{REGION_MAX_TILES}: validation regions of each patient's n "
                              f"spatially nearest tissue patches around each of them ({len(per_count[0])} regions of "
                              f"{patients} patients at n = 1, {len(per_count[-1])} at n = {REGION_MAX_TILES}); "
                              + chosen[0]["rule"].replace("scores", "region scores")
                              + "; made non-increasing in n"}


NEIGHBOUR_METHOD = ("cosine distance of the features to the nearest training sample's ({n} samples, in the "
                    "training features' {k} leading directions)")


def blank_text(params: dict[str, Any]) -> str:
    """What ``blank_layer`` does, for model.json's method."""
    return (f"; an image of one colour (in every channel, pixel standard deviation < {BLANK_PIXEL_STD:g} grey levels) "
            f"scores {FARTHEST.get(params.get('kind'), float('inf')):g}")


def method_text(params: dict[str, Any]) -> str:
    if params.get("kind") == "either_of":
        parts = "; ".join(f"({index + 1}) {method_text(part)}, over {scale:.4g}"
                          for index, (part, scale) in enumerate(zip(params["parts"], params["scales"])))
        return f"the larger of {len(params['parts'])} scores, each over its validation 99% quantile: {parts}"
    if params.get("kind") == "nearest_neighbour":
        return NEIGHBOUR_METHOD.format(n=len(params["bank"]), k=params["components"])
    return METHOD.format(k=params["components"])


def graph_parameters(params: dict[str, Any]) -> int:
    """The score's constants as the TFLite graph stores them."""
    if params.get("kind") == "either_of":
        return sum(graph_parameters(part) for part in params["parts"])
    if params.get("kind") == "nearest_neighbour":
        return int(params["basis"].size + params["bank"].size)
    # the basis twice: TFLite stores it once per layout, into the basis and back out
    return int(2 * params["basis"].size + params["whitening"].size + params["group_means"].size + params["mean"].size)


def contract_block(params: dict[str, Any], val_scores: np.ndarray, *, features: str,
                   region: dict[str, Any] | None = None, blank_images: bool = False) -> dict[str, Any]:
    """model.json's ``ood``: the tensor, the two thresholds, the method (the runtime reads it).
    ``blank_images``: the graph gives a one-colour image the farthest score (``score_layer(images=…)``)."""
    chosen = thresholds(val_scores)
    blank = blank_text(params) if blank_images else ""
    return {"tensor": "ood_score", "refuse_threshold": chosen["refuse"],
            "atypical_threshold": chosen["atypical"], "threshold_rule": chosen["rule"],
            "method": method_text(params) + f"; features: {features}" + blank,
            "groups": params["groups"], "fitted_on": "training split only",
            "graph_parameters": graph_parameters(params), **({"region": region} if region else {})}
