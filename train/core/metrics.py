"""Classification metrics as model.json records them (plain floats and ints, JSON-safe)."""

from __future__ import annotations

from typing import Any

import numpy as np


def binary_metrics(y_true: np.ndarray, p_positive: np.ndarray, threshold: float) -> dict[str, Any]:
    """Accuracy, sensitivity, specificity, balanced accuracy, precision, F1, ROC-AUC, PR-AUC, confusion."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true = np.asarray(y_true).astype(int)
    confusion = confusion_counts(y_true, p_positive, threshold)
    tp, tn, fp, fn = confusion["tp"], confusion["tn"], confusion["fp"], confusion["fn"]
    sensitivity = tp / (tp + fn) if tp + fn else float("nan")
    specificity = tn / (tn + fp) if tn + fp else float("nan")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    f1 = 2 * precision * sensitivity / (precision + sensitivity) if precision + sensitivity else 0.0
    both_classes = len(np.unique(y_true)) == 2
    return {
        "n": int(len(y_true)),
        "threshold": float(threshold),
        "accuracy": (tp + tn) / len(y_true),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "balanced_accuracy": (sensitivity + specificity) / 2,
        "precision": precision,
        "f1": f1,
        "roc_auc": float(roc_auc_score(y_true, p_positive)) if both_classes else None,
        "pr_auc": float(average_precision_score(y_true, p_positive)) if both_classes else None,
        "confusion": confusion,
    }


def confusion_counts(y_true: np.ndarray, p_positive: np.ndarray, threshold: float) -> dict[str, int]:
    """tp / fn / fp / tn, the positive class predicted when its probability reaches ``threshold``."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = (np.asarray(p_positive) >= threshold).astype(int)
    return {"tp": int(((y_pred == 1) & (y_true == 1)).sum()), "fn": int(((y_pred == 0) & (y_true == 1)).sum()),
            "fp": int(((y_pred == 1) & (y_true == 0)).sum()), "tn": int(((y_pred == 0) & (y_true == 0)).sum())}


def auc_by_group(y_true: np.ndarray, p_positive: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """ROC-AUC within each group (e.g. each source dataset), groups in sorted order."""
    return {str(g): binary_metrics(y_true[groups == g], p_positive[groups == g], 0.5)["roc_auc"]
            for g in sorted(set(groups.tolist()))}


def mean_auc_by_group(y_true: np.ndarray, p_positive: np.ndarray, groups: np.ndarray) -> float:
    """The mean of the per-group AUCs: a model must hold up in every group, not only the largest."""
    return float(np.mean(list(auc_by_group(y_true, p_positive, groups).values())))


def mean_accuracy_by_group(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> float:
    """The mean of the per-group accuracies (each group counts the same, whatever its size)."""
    y_true, y_pred, groups = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    return float(np.mean([(y_pred[groups == g] == y_true[groups == g]).mean() for g in sorted(set(groups.tolist()))]))


def bootstrap_auc(y_true: np.ndarray, p_positive: np.ndarray, *, resamples: int = 1000, seed: int = 0) -> dict[str, float]:
    """ROC-AUC with a percentile bootstrap 95% confidence interval (resampling images)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    y_true, p_positive = np.asarray(y_true), np.asarray(p_positive)
    values = []
    for _ in range(resamples):
        rows = rng.integers(0, len(y_true), len(y_true))
        if len(np.unique(y_true[rows])) == 2:
            values.append(roc_auc_score(y_true[rows], p_positive[rows]))
    low, high = np.percentile(values, [2.5, 97.5])
    return {"roc_auc": float(roc_auc_score(y_true, p_positive)), "roc_auc_ci_low": float(low), "roc_auc_ci_high": float(high)}


def balanced_class_weight(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Keras ``class_weight`` that gives every class the same total weight (n / (k * count))."""
    counts = np.bincount(labels, minlength=n_classes)
    return {i: float(len(labels) / (n_classes * max(counts[i], 1))) for i in range(n_classes)}
