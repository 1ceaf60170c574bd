"""
## Model

Three frozen stages fitted with scikit-learn on the training samples, then a trainable head:

1. `GolubPreprocess`: floor 100, ceiling 16,000, log10, then each array standardised over the
   probes that pass the variation filter (Dudoit et al. 2002);
2. `Normalization` with the training mean and variance of each probe;
3. `Dense` without activation = PCA projection (probes that fail the variation filter get zero
   loadings, so the filter is part of the graph too);
4. `Dense(relu)` → `Dropout` → `Dense(softmax)` over ALL/AML.

Hyper-parameters (probes kept by |t|, number of components) are chosen by repeated stratified
5-fold cross-validation on the 38 training samples, by mean log-loss; ties go to the simpler model.
Probe selection is refitted inside every fold, so the CV estimate is not flattered by it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from train import core
from train.leukemia.data import CEILING, FLOOR, LABELS, golub_preprocess, variation_filter

STEPS_PER_EPOCH = 10
CONFIG_KEYS = ("n_genes", "n_components", "hidden_units", "dropout_rate", "l2", "learning_rate")


def build_layers():
    import keras
    from keras import layers, ops

    @keras.saving.register_keras_serializable(package="oncoserve")
    class GolubPreprocess(layers.Layer):
        """Clip to [floor, ceiling], log10, then standardise each array over the kept probes.

        The per-array step (Dudoit et al. 2002) removes scanner/batch intensity offsets between
        the two Golub sample sets; probes outside ``keep`` are zeroed.
        """

        def __init__(self, keep: list[float], floor: float = FLOOR, ceiling: float = CEILING, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.keep, self.floor, self.ceiling = list(keep), floor, ceiling
            self._mask = np.asarray(self.keep, dtype="float32")
            self._count = float(self._mask.sum())

        def call(self, inputs):
            logged = ops.log10(ops.clip(inputs, self.floor, self.ceiling)) * self._mask
            mean = ops.sum(logged, axis=-1, keepdims=True) / self._count
            centred = (logged - mean) * self._mask
            std = ops.sqrt(ops.sum(centred * centred, axis=-1, keepdims=True) / self._count)
            return centred / ops.maximum(std, 1e-6)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "keep": self.keep, "floor": self.floor, "ceiling": self.ceiling}

    return keras, layers, GolubPreprocess


def top_genes_by_t(values: np.ndarray, labels: np.ndarray, candidates: np.ndarray, n_genes: int) -> np.ndarray:
    """Mask of the ``n_genes`` candidate probes with the largest |Welch t| between the two classes."""
    a, b = values[labels == 0], values[labels == 1]
    t = (a.mean(axis=0) - b.mean(axis=0)) / np.sqrt(a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b) + 1e-12)
    t = np.where(candidates, np.abs(t), -np.inf)
    chosen = np.zeros_like(candidates)
    chosen[np.argsort(-t, kind="stable")[:n_genes]] = True
    return chosen & candidates


@dataclass
class FittedProjection:
    """Scalers + PCA fitted on training samples only.

    ``array_probes``: probes that pass the variation filter (per-array standardisation runs over
    them); ``loaded``: probes with PCA loadings (the filtered probes, or the ``n_genes`` of them
    that best separate ALL from AML on the training rows).
    """

    array_probes: np.ndarray
    loaded: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    components: np.ndarray  # (n_probes, k), zero rows outside ``loaded``
    pca_mean: np.ndarray  # (k,)

    @classmethod
    def fit(cls, raw: np.ndarray, labels: np.ndarray, n_components: int, n_genes: int | None,
            seed: int) -> "FittedProjection":
        from sklearn.decomposition import PCA

        array_probes = variation_filter(raw)
        logged = golub_preprocess(raw, array_probes)
        loaded = array_probes if n_genes is None else top_genes_by_t(logged, labels, array_probes, n_genes)
        mean, variance = logged.mean(axis=0), logged.var(axis=0)
        variance = np.where(loaded & (variance > 0), variance, 1.0)  # unloaded probes: harmless unit variance
        standardised = (logged - mean) / np.sqrt(variance)
        pca = PCA(n_components=n_components, random_state=seed).fit(standardised[:, loaded])
        components = np.zeros((raw.shape[1], n_components))
        components[loaded] = pca.components_.T
        return cls(array_probes, loaded, mean, variance, components, pca.mean_ @ pca.components_.T)

    def standardise(self, raw: np.ndarray) -> np.ndarray:
        """Every probe after the per-array step and the training standardisation (the PCA's input)."""
        return (golub_preprocess(raw, self.array_probes) - self.mean) / np.sqrt(self.variance)

    def transform(self, raw: np.ndarray) -> np.ndarray:
        return self.standardise(raw) @ self.components - self.pca_mean


def build_head(n_components: int, hidden_units: int, dropout_rate: float, l2: float):
    keras, layers, _ = build_layers()
    inputs = keras.Input((n_components,), name="principal_components")
    x = layers.Dense(hidden_units, activation="relu", kernel_regularizer=keras.regularizers.l2(l2), name="hidden")(inputs)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    outputs = layers.Dense(len(LABELS), activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="leukemia_head")


def build_serving_model(projection: FittedProjection, head, density: dict[str, Any] | None = None):
    """Raw intensities in, probabilities out: preprocessing frozen inside the graph; with ``density``
    (``core.ood`` on ``FittedProjection.standardise``), also the out-of-distribution score."""
    keras, layers, GolubPreprocess = build_layers()
    n_probes, n_components = projection.components.shape
    inputs = keras.Input((n_probes,), name="expression")
    x = GolubPreprocess(projection.array_probes.astype(float).tolist(), name="golub_preprocess")(inputs)
    standardised = layers.Normalization(mean=projection.mean, variance=projection.variance, name="standardise")(x)
    pca = layers.Dense(n_components, name="pca", trainable=False)
    x = pca(standardised)
    pca.set_weights([projection.components.astype(np.float32), (-projection.pca_mean).astype(np.float32)])
    outputs = layers.Identity(name="probabilities")(head(x))
    if density is not None:
        outputs = {"probabilities": outputs, "ood_score": core.ood.score_layer(density, standardised)}
    return keras.Model(inputs, outputs, name="leukemia_golub_pca_mlp")


def fit_head(features: np.ndarray, labels: np.ndarray, config: dict[str, Any], seed: int, epochs: int):
    import keras

    core.seed_everything(seed)
    head = build_head(features.shape[1], config["hidden_units"], config["dropout_rate"], config["l2"])
    head.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    class_weight = core.balanced_class_weight(labels, 2)
    # Keras' per-epoch overhead dwarfs a 38-sample step: show the data STEPS_PER_EPOCH times per
    # epoch (full batches), so `epochs` epochs = epochs x STEPS_PER_EPOCH optimiser steps.
    tiled_x = np.tile(features.astype(np.float32), (STEPS_PER_EPOCH, 1))
    tiled_y = np.tile(labels, STEPS_PER_EPOCH)
    history = head.fit(tiled_x, tiled_y, epochs=epochs, batch_size=len(labels), shuffle=False,
                       class_weight=class_weight, verbose=0)
    return head, history.history


def cross_validate(raw: np.ndarray, labels: np.ndarray, grid: list[dict[str, Any]], seed: int, epochs: int,
                   repeats: int) -> list[dict[str, Any]]:
    from sklearn.model_selection import RepeatedStratifiedKFold

    folds = list(RepeatedStratifiedKFold(n_splits=5, n_repeats=repeats, random_state=seed).split(raw, labels))
    results = []
    for config in grid:
        losses, correct = [], 0
        for fold, (fit_idx, held_idx) in enumerate(folds):
            projection = FittedProjection.fit(raw[fit_idx], labels[fit_idx], config["n_components"], config["n_genes"], seed)
            head, _ = fit_head(projection.transform(raw[fit_idx]), labels[fit_idx], config, seed + fold, epochs)
            p = np.asarray(head(projection.transform(raw[held_idx]).astype(np.float32), training=False))
            p_true = np.clip(p[np.arange(len(held_idx)), labels[held_idx]], 1e-7, 1.0)
            losses.extend(-np.log(p_true))
            correct += int((p.argmax(axis=1) == labels[held_idx]).sum())
        result = {**config, "cv_log_loss": float(np.mean(losses)), "cv_accuracy": correct / (len(folds) * len(raw) / 5)}
        print(f"  cv {config} → log-loss {result['cv_log_loss']:.4f}, accuracy {result['cv_accuracy']:.3f}", flush=True)
        results.append(result)
    return results


def candidate_grid(quick: bool) -> list[dict[str, Any]]:
    """Probes kept by |t| (all filtered, 200, 50) × PCA components (5, 10, 20); ``quick``: the first only."""
    base = {"dropout_rate": 0.3, "l2": 1e-3, "learning_rate": 1e-2}
    grid = [{**base, "n_genes": g, "n_components": k, "hidden_units": 8}
            for g, k in itertools.product((None, 200, 50), (5, 10, 20))]
    return grid[:1] if quick else grid


def choose_config(cv: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the chosen result, its configuration): lowest CV log-loss (to 3 decimals), ties to fewer probes, then components."""
    best = min(cv, key=lambda r: (round(r["cv_log_loss"], 3), r["n_genes"] or 10**6, r["n_components"]))
    return best, {k: best[k] for k in CONFIG_KEYS}


def contract_input(genes: list[str]) -> dict[str, Any]:
    """model.json's ``input``: raw intensities of every probe, in the training files' order."""
    return {
        "kind": "expression",
        "dtype": "float32",
        "shape": [None, len(genes)],
        "value_range": "raw Affymetrix Hu6800 MAS-4 average-difference intensities (may be negative)",
        "feature_id": "Golub 'Gene Accession Number'",
        "features": genes,
        "missing": {"min_coverage": 1.0, "rule": "all probes required; unknown ids refused"},
    }


def contract_preprocessing(config: dict[str, Any], projection: FittedProjection) -> dict[str, Any]:
    """model.json's ``preprocessing``: every step is in the graph; the runtime only orders the values."""
    pca = (f"PCA to {config['n_components']} components on {int(projection.loaded.sum())} probes: those passing "
           "the variation filter (max/min > 5, max - min > 500 on training samples)"
           + (f", then the {config['n_genes']} with the largest |Welch t| ALL vs AML" if config["n_genes"] else ""))
    return {"in_graph": [f"clip to [{FLOOR:g}, {CEILING:g}]", "log10", "per-array standardisation over kept probes",
                         "per-probe standardisation (training mean/variance)", pca],
            "in_runtime": {"order": "model.json input.features"}}
