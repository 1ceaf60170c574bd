"""The leukemia model card and its plots, rendered from model.json and training.json alone
(``python -m train.leukemia --card-only`` re-renders without training)."""

from __future__ import annotations

from typing import Any

import numpy as np

from train import core
from train.leukemia.data import LABELS, POSITIVE, TASK


def write_card(metadata: dict[str, Any]) -> None:
    """MODEL_CARD.md from the merged model.json + training.json."""
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
    core.write_model_card(TASK, metadata, overview=overview, evaluation=evaluation)


def write_plots(projection, train, test, p_test, test_metrics, history) -> list[str]:
    plt = core.pyplot()
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
    fig.savefig(core.plots_dir(TASK) / "pca.png", dpi=110)
    plt.close(fig)
    names.append("plots/pca.png")

    fig, ax = plt.subplots(figsize=(6, 3))
    order = np.argsort(p_test)
    colours = np.where(test.labels[order] == 1, "tab:red", "tab:blue")
    ax.bar(range(len(order)), p_test[order], color=colours)
    ax.axhline(0.5, color="k", linestyle=":", linewidth=0.8)
    ax.set(xlabel="independent samples (sorted)", ylabel="p(AML)", title="Independent set: red = AML, blue = ALL")
    fig.tight_layout()
    fig.savefig(core.plots_dir(TASK) / "test_probabilities.png", dpi=110)
    plt.close(fig)
    names.append("plots/test_probabilities.png")

    c = test_metrics["confusion"]
    core.plot_confusion(TASK, core.confusion_grid(c), LABELS,
                          "Independent set (34)", "confusion_test")
    names.append("plots/confusion_test.png")
    core.plot_history(TASK, history)
    names.append("plots/training_curves.png")
    return names
