"""Plots for the model cards (matplotlib, headless). Each writes ``functions/<task>/plots/<name>.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from train.core.paths import function_dir


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plots_dir(task: str) -> Path:
    path = function_dir(task) / "plots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def plot_confusion(task: str, confusion: np.ndarray, labels: Sequence[str], title: str, name: str) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3.6 + 0.4 * len(labels), 3.2 + 0.4 * len(labels)))
    ax.imshow(confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, str(int(count)), ha="center", va="center",
                color="white" if count > confusion.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    path = plots_dir(task) / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion_grid(confusion: dict[str, int]) -> np.ndarray:
    """binary_metrics' confusion dict as a 2x2 grid: rows true (negative, positive), columns predicted."""
    return np.array([[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]])


def plot_roc_pr(task: str, curves: dict[str, tuple[np.ndarray, np.ndarray]], name: str) -> Path:
    """ROC and PR curves side by side; ``curves`` maps a slice name to (y_true, p_positive)."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    plt = pyplot()
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(9, 4))
    for label, (y_true, p) in curves.items():
        fpr, tpr, _ = roc_curve(y_true, p)
        ax_roc.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
        precision, recall, _ = precision_recall_curve(y_true, p)
        ax_pr.plot(recall, precision, label=label)
    ax_roc.plot([0, 1], [0, 1], "k:", linewidth=0.8)
    ax_roc.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC")
    ax_pr.set(xlabel="recall (sensitivity)", ylabel="precision", title="Precision-recall")
    ax_roc.legend(loc="lower right", fontsize=8)
    ax_pr.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path = plots_dir(task) / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_history(task: str, history: dict[str, list[float]], name: str = "training_curves") -> Path:
    plt = pyplot()
    # One panel per quantity: "x" with its "val_x" beside it; a "val_x" without "x" gets its own.
    keys = [k for k in history if not k.startswith("val_") or k[4:] not in history]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot(history[key], label="val" if key.startswith("val_") else "train")
        if f"val_{key}" in history:
            ax.plot(history[f"val_{key}"], label="val")
        ax.set(title=key, xlabel="epoch")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = plots_dir(task) / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
