"""
Title: ALL vs AML from the Golub expression profile
Description: Golub-style preprocessing → standardisation → PCA → small dense network, folded into
    one Keras graph that takes raw Affymetrix intensities, converted to TFLite and served.
Accelerator: none (38 training samples; about two minutes on a laptop CPU)

## Introduction

Golub et al. (1999, Science 286:531) separated acute lymphoblastic (ALL) from acute myeloid
leukemia (AML) using 7,129 Affymetrix Hu6800 probes. The seed project runs scaler → PCA → dense
network. This script does the same with two rules the seed broke: everything is fitted on the 38
training samples only (choices by repeated stratified cross-validation), and the 34-sample
independent set is touched once, at the end, for the report.

Data licence: the Golub data carry no licence file; cite Golub et al. 1999 (see PROVENANCE.md).

## Setup
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from train import common

TASK = "leukemia"
LABELS = ["ALL", "AML"]
POSITIVE = "AML"
# Golub / Dudoit et al. (2002) preprocessing of MAS-4 average-difference values.
FLOOR, CEILING = 100.0, 16000.0
MIN_FOLD_CHANGE, MIN_RANGE = 5.0, 500.0
STEPS_PER_EPOCH = 10

"""
## Data

Rows are probes, columns samples; each sample column is followed by an Affymetrix `call` column
(dropped). Sample columns are *not* in numeric order, so labels are joined by id.
"""


@dataclass
class GolubSplit:
    expression: np.ndarray  # (samples, probes) raw intensities
    labels: np.ndarray  # 0 = ALL, 1 = AML
    sample_ids: list[int]


def load_golub() -> tuple[list[str], GolubSplit, GolubSplit]:
    import pandas as pd

    folder = common.task_data_dir(TASK)
    actual = pd.read_csv(folder / "actual.csv")
    label_by_id = {int(p): LABELS.index(c) for p, c in zip(actual["patient"], actual["cancer"])}

    def read(name: str) -> tuple[list[str], GolubSplit]:
        frame = pd.read_csv(folder / name)
        sample_columns = [c for c in frame.columns if c.strip().isdigit()]
        ids = [int(c) for c in sample_columns]
        matrix = frame[sample_columns].to_numpy(dtype=np.float64).T
        return list(frame["Gene Accession Number"]), GolubSplit(matrix, np.array([label_by_id[i] for i in ids]), ids)

    genes, train = read("data_set_ALL_AML_train.csv")
    test_genes, test = read("data_set_ALL_AML_independent.csv")
    if genes != test_genes:
        raise ValueError("train and independent files list different probes")
    return genes, train, test


def golub_preprocess(raw: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """NumPy twin of the in-graph ``GolubPreprocess`` layer (used to fit the scaler and PCA)."""
    logged = np.log10(np.clip(raw, FLOOR, CEILING)) * keep
    centred = (logged - logged.sum(axis=1, keepdims=True) / keep.sum()) * keep
    std = np.sqrt((centred**2).sum(axis=1, keepdims=True) / keep.sum())
    return centred / np.maximum(std, 1e-6)


def variation_filter(raw: np.ndarray) -> np.ndarray:
    """Probes that vary on the training samples (max/min > 5 and max - min > 500 after flooring)."""
    clipped = np.clip(raw, FLOOR, CEILING)
    high, low = clipped.max(axis=0), clipped.min(axis=0)
    return (high / low > MIN_FOLD_CHANGE) & (high - low > MIN_RANGE)


"""
## Model

Three frozen stages fitted with scikit-learn on the training samples, then a trainable head:

1. `GolubPreprocess`: floor 100, ceiling 16,000, log10, then each array standardised over the
   probes that pass the variation filter (Dudoit et al. 2002);
2. `Normalization` with the training mean and variance of each probe;
3. `Dense` without activation = PCA projection (probes that fail the variation filter get zero
   loadings, so the filter is part of the graph too);
4. `Dense(relu)` → `Dropout` → `Dense(softmax)` over ALL/AML.
"""


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

    def transform(self, raw: np.ndarray) -> np.ndarray:
        standardised = (golub_preprocess(raw, self.array_probes) - self.mean) / np.sqrt(self.variance)
        return standardised @ self.components - self.pca_mean


def build_head(n_components: int, hidden_units: int, dropout_rate: float, l2: float):
    keras, layers, _ = build_layers()
    inputs = keras.Input((n_components,), name="principal_components")
    x = layers.Dense(hidden_units, activation="relu", kernel_regularizer=keras.regularizers.l2(l2), name="hidden")(inputs)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    outputs = layers.Dense(len(LABELS), activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="leukemia_head")


def build_serving_model(projection: FittedProjection, head):
    """Raw intensities in, probabilities out: preprocessing frozen inside the graph."""
    keras, layers, GolubPreprocess = build_layers()
    n_probes, n_components = projection.components.shape
    inputs = keras.Input((n_probes,), name="expression")
    x = GolubPreprocess(projection.array_probes.astype(float).tolist(), name="golub_preprocess")(inputs)
    x = layers.Normalization(mean=projection.mean, variance=projection.variance, name="standardise")(x)
    pca = layers.Dense(n_components, name="pca", trainable=False)
    x = pca(x)
    pca.set_weights([projection.components.astype(np.float32), (-projection.pca_mean).astype(np.float32)])
    outputs = head(x)
    return keras.Model(inputs, outputs, name="leukemia_golub_pca_mlp")


"""
## Train

Hyper-parameters (probes kept by |t|, number of components) are chosen by repeated stratified
5-fold cross-validation on the 38 training samples, by mean log-loss; ties go to the simpler model.
Probe selection is refitted inside every fold, so the CV estimate is not flattered by it.
"""


def fit_head(features: np.ndarray, labels: np.ndarray, config: dict[str, Any], seed: int, epochs: int):
    import keras

    common.seed_everything(seed)
    head = build_head(features.shape[1], config["hidden_units"], config["dropout_rate"], config["l2"])
    head.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    class_weight = common.balanced_class_weight(labels, 2)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--seed", type=int)
    parser.add_argument("--epochs", type=int, help=f"epochs of {STEPS_PER_EPOCH} full-batch steps")
    parser.add_argument("--cv-repeats", type=int)
    parser.add_argument("--quick", action="store_true", help="one small config, one CV repeat (smoke run)")
    parser.add_argument("--card-only", action="store_true", help="re-render MODEL_CARD.md from model.json")
    args = common.parse_shipped_args(parser, TASK, argv)
    if args.card_only:
        return write_card(common.read_model_json(TASK))
    started = time.time()

    genes, train, test = load_golub()
    print(f"train: {len(train.labels)} samples ({np.bincount(train.labels).tolist()} ALL/AML), "
          f"independent: {len(test.labels)}; {len(genes)} probes, "
          f"{int(variation_filter(train.expression).sum())} pass the variation filter", flush=True)

    base = {"dropout_rate": 0.3, "l2": 1e-3, "learning_rate": 1e-2}
    grid = [{**base, "n_genes": g, "n_components": k, "hidden_units": 8}
            for g, k in itertools.product((None, 200, 50), (5, 10, 20))]
    if args.quick:
        grid = grid[:1]
    cv = cross_validate(train.expression, train.labels, grid, args.seed, args.epochs, 1 if args.quick else args.cv_repeats)
    best = min(cv, key=lambda r: (round(r["cv_log_loss"], 3), r["n_genes"] or 10**6, r["n_components"]))
    config = {k: best[k] for k in ("n_genes", "n_components", "hidden_units", "dropout_rate", "l2", "learning_rate")}
    print(f"chosen on cross-validation: {config}", flush=True)

    projection = FittedProjection.fit(train.expression, train.labels, config["n_components"], config["n_genes"], args.seed)
    head, history = fit_head(projection.transform(train.expression), train.labels, config, args.seed, args.epochs)
    model = build_serving_model(projection, head)
    common.export_saved_model(model, TASK)  # for `make bench` (TensorFlow and ONNX Runtime baselines)

    """
    ## Convert and evaluate

    The float32 TFLite model must match Keras within 1e-4 on every training and test profile;
    metrics below are computed from the TFLite model, the artifact that is served.
    """
    from convert.convert import convert_model, run_tflite

    samples = np.concatenate([train.expression, test.expression]).astype(np.float32)
    converted = convert_model(model, samples, variants=("float32",), float_bound=1e-4)["float32"]
    artifact = converted.write(common.function_dir(TASK) / "model" / "model.tflite")
    print(f"TFLite float32: {len(converted.content)} bytes, max |Δ| vs Keras {converted.max_abs_diff:.2e}", flush=True)

    p_train = next(iter(run_tflite(converted.content, train.expression.astype(np.float32)).values()))[:, 1]
    p_test = next(iter(run_tflite(converted.content, test.expression.astype(np.float32)).values()))[:, 1]
    train_metrics = common.binary_metrics(train.labels, p_train, 0.5)
    test_metrics = common.binary_metrics(test.labels, p_test, 0.5)
    correct = int(round(test_metrics["accuracy"] * len(test.labels)))
    print(f"independent set: {correct}/{len(test.labels)} correct, confusion {test_metrics['confusion']}", flush=True)

    plots = write_plots(projection, train, test, p_test, test_metrics, history)
    metadata = {
        "name": "oncoserve-leukemia-golub-pca-mlp",
        "task": TASK,
        "version": "1.0.0",
        "changelog": {"1.0.0": "First release: Golub preprocessing, scaler and PCA in-graph, dense head."},
        "artifact": {"file": artifact.name, "sha256": converted.sha256, "bytes": len(converted.content),
                     "variant": "float32", "max_abs_diff_vs_keras": converted.max_abs_diff},
        "input": {
            "kind": "expression",
            "dtype": "float32",
            "shape": [None, len(genes)],
            "value_range": "raw Affymetrix Hu6800 MAS-4 average-difference intensities (may be negative)",
            "feature_id": "Golub 'Gene Accession Number'",
            "features": genes,
            "missing": {"min_coverage": 1.0, "rule": "all probes required; unknown ids refused"},
        },
        "preprocessing": {
            "in_graph": [f"clip to [{FLOOR:g}, {CEILING:g}]", "log10", "per-array standardisation over kept probes",
                         "per-probe standardisation (training mean/variance)",
                         f"PCA to {config['n_components']} components on {int(projection.loaded.sum())} probes: those passing "
                         "the variation filter (max/min > 5, max - min > 500 on training samples)"
                         + (f", then the {config['n_genes']} with the largest |Welch t| ALL vs AML" if config["n_genes"] else "")],
            "in_runtime": {"order": "model.json input.features"},
        },
        "output": {"labels": LABELS, "positive_label": POSITIVE, "threshold": 0.5,
                   "rule": "label = AML when p(AML) >= threshold"},
        "training": {"seed": args.seed, "epochs": args.epochs, "steps_per_epoch": STEPS_PER_EPOCH, "config": config, "cross_validation": cv,
                     "command": "make train-leukemia", "seconds": round(time.time() - started, 1)},
        "metrics": {
            "train": {**train_metrics, "slice": "Golub training set (38), resubstitution"},
            "cv": {"log_loss": best["cv_log_loss"], "accuracy": best["cv_accuracy"],
                   "slice": f"training set, repeated stratified 5-fold ({args.cv_repeats}x)"},
            "test": {**test_metrics, "correct": correct, "slice": "Golub independent set (34), never used for selection"},
        },
        "test_predictions": [{"sample": s, "true": LABELS[t], "p_aml": float(p)}
                             for s, t, p in zip(test.sample_ids, test.labels, p_test)],
        "data": {
            "source": "Golub et al. 1999 ALL/AML (Broad Institute release; Kaggle mirror crawford/gene-expression)",
            "citation": "Golub TR et al. Science 1999;286(5439):531-537. doi:10.1126/science.286.5439.531",
            "license": "No licence file in any source; cite Golub et al. 1999. Research use.",
            "version": {"train_sha256": "697e46bc396878dcd735a28cf56f04dd7be82d7e35a05c96a104a314c15b6f0b",
                        "independent_sha256": "d89649c714ae356ff3f9ea79aef024e3932096d71b72600592c0baaef830de6c"},
            "splits": {"train": 38, "test": 34, "test_definition": "the official independent set (ids 39-72)"},
        },
        "plots": plots,
        "intended_use": "Research and teaching: reproduce the Golub ALL/AML class prediction on Hu6800 profiles.",
        "out_of_scope": "Diagnosis or treatment decisions; other array platforms, RNA-seq, or normalisations "
                        "other than MAS-4 average difference.",
        "limitations": "72 samples from 1999; one platform; batch and lab effects untested. Research software, "
                       "not a medical device.",
    }
    write_card(common.write_model_json(TASK, metadata))
    print(f"done in {time.time() - started:.0f} s", flush=True)


def write_card(metadata: dict[str, Any]) -> None:
    """Render MODEL_CARD.md from model.json alone (``--card-only`` re-renders without training)."""
    config, cv = metadata["training"]["config"], metadata["training"]["cross_validation"]
    correct = metadata["metrics"]["test"]["correct"]
    wrong = [f"sample {r['sample']} ({r['true']}, p(AML) = {r['p_aml']:.2f})" for r in metadata["test_predictions"]
             if (r["p_aml"] >= metadata["output"]["threshold"]) != (r["true"] == POSITIVE)]
    cv_rows = "\n".join(f"| {r['n_genes'] or 'all filtered'} | {r['n_components']} | {r['cv_log_loss']:.3f} | "
                         f"{r['cv_accuracy']:.3f} |" for r in cv)
    overview = f"""
Classifies a bone-marrow or blood expression profile (Affymetrix Hu6800, 7,129 probes, raw MAS-4
average-difference values as in the Golub CSVs) as acute lymphoblastic (**ALL**) or acute myeloid
(**AML**) leukemia. One Keras graph holds the whole method, so the TFLite model takes raw values:
floor/ceiling and log10, per-array standardisation, per-probe standardisation, PCA
({config['n_components']} components over {int(len(metadata['input']['features']))} inputs, of which only
the probes chosen on the training samples load), then {config['hidden_units']} ReLU units and softmax.
"""
    evaluation = f"""
**Independent set: {correct}/34 correct** (target 34/34, floor 33/34).
{'Misclassified: ' + '; '.join(wrong) + '.' if wrong else 'No sample misclassified.'}
The independent set was used once, for this report; every choice was made by repeated stratified
5-fold cross-validation on the 38 training samples (mean log-loss; ties to the smaller model):

| probes (by \\|t\\|) | PCA components | CV log-loss | CV accuracy |
|---|---|---|---|
{cv_rows}

Metrics come from the TFLite artifact (float32; max |Δ| vs Keras
{metadata['artifact']['max_abs_diff_vs_keras']:.1e} over all 72 profiles), not from Keras.
"""
    common.write_model_card(TASK, metadata, overview=overview, evaluation=evaluation)


def write_plots(projection, train, test, p_test, test_metrics, history) -> list[str]:
    plt = common._pyplot()
    names = []
    fig, ax = plt.subplots(figsize=(5, 4))
    for split, marker in ((train, "o"), (test, "^")):
        pcs = projection.transform(split.expression)
        for label, colour in ((0, "tab:blue"), (1, "tab:red")):
            chosen = split.labels == label
            ax.scatter(pcs[chosen, 0], pcs[chosen, 1], c=colour, marker=marker, alpha=0.75,
                       label=f"{'train' if split is train else 'independent'} {LABELS[label]}")
    ax.set(xlabel="PC1", ylabel="PC2", title="Golub samples in the training PCA space")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(common.plots_dir(TASK) / "pca.png", dpi=110)
    plt.close(fig)
    names.append("plots/pca.png")

    fig, ax = plt.subplots(figsize=(6, 3))
    order = np.argsort(p_test)
    colours = np.where(test.labels[order] == 1, "tab:red", "tab:blue")
    ax.bar(range(len(order)), p_test[order], color=colours)
    ax.axhline(0.5, color="k", linestyle=":", linewidth=0.8)
    ax.set(xlabel="independent samples (sorted)", ylabel="p(AML)", title="Independent set: red = AML, blue = ALL")
    fig.tight_layout()
    fig.savefig(common.plots_dir(TASK) / "test_probabilities.png", dpi=110)
    plt.close(fig)
    names.append("plots/test_probabilities.png")

    c = test_metrics["confusion"]
    common.plot_confusion(TASK, common.confusion_grid(c), LABELS,
                          "Independent set (34)", "confusion_test")
    names.append("plots/confusion_test.png")
    common.plot_history(TASK, history)
    names.append("plots/training_curves.png")
    return names


if __name__ == "__main__":
    main()
