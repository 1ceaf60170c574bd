"""Decision thresholds, always chosen on validation outputs (of the artifact that ships)."""

from __future__ import annotations

from typing import Any

import numpy as np

from train.core.metrics import binary_metrics, confusion_counts


def choose_threshold(y_true: np.ndarray, p_positive: np.ndarray, *, min_sensitivity: float | None = None) -> dict[str, Any]:
    """Pick the decision threshold on validation data.

    With ``min_sensitivity``: the *highest* threshold whose sensitivity reaches it (the most
    specificity that sensitivity allows). Without: the threshold maximising Youden's J
    (sensitivity + specificity - 1).
    """
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(y_true, p_positive)
    thresholds = np.clip(thresholds, 0.0, 1.0)
    if min_sensitivity is not None:
        reaching = np.flatnonzero(tpr >= min_sensitivity)
        index = int(reaching[0])  # roc_curve orders thresholds high → low
        rule = f"highest threshold with validation sensitivity >= {min_sensitivity}"
    else:
        index = int(np.argmax(tpr - fpr))
        rule = "maximum Youden's J on validation"
    return {"threshold": float(thresholds[index]), "rule": rule,
            "val_sensitivity": float(tpr[index]), "val_specificity": float(1 - fpr[index])}


def sensitivity_by_group(y_true: np.ndarray, p_positive: np.ndarray, groups: np.ndarray,
                         threshold: float) -> dict[str, dict[str, Any]]:
    """Sensitivity and specificity at ``threshold`` within each group (e.g. image source): a threshold that
    meets its target over all images can miss it within one group."""
    y_true, p_positive, groups = np.asarray(y_true), np.asarray(p_positive), np.asarray(groups)
    out = {}
    for group in np.unique(groups):
        c = confusion_counts(y_true[groups == group], p_positive[groups == group], threshold)
        positives, negatives = c["tp"] + c["fn"], c["fp"] + c["tn"]
        out[str(group)] = {"positives": positives, "negatives": negatives,  # None, not NaN: model.json stays JSON
                           "sensitivity": c["tp"] / positives if positives else None,
                           "specificity": c["tn"] / negatives if negatives else None}
    return out


def choose_threshold_within_every_group(y_true: np.ndarray, p_positive: np.ndarray, groups: np.ndarray, *,
                                        min_sensitivity: float, group_name: str = "group") -> dict[str, Any]:
    """The highest threshold whose validation sensitivity reaches ``min_sensitivity`` within every group
    (sensitivity only rises as the threshold falls, so the first candidate from the top that passes)."""
    y_true, p_positive = np.asarray(y_true).astype(int), np.asarray(p_positive)
    for threshold in np.unique(p_positive[y_true == 1])[::-1]:
        per_group = sensitivity_by_group(y_true, p_positive, groups, float(threshold))
        if all(g["sensitivity"] >= min_sensitivity for g in per_group.values() if g["positives"]):
            break
    overall = binary_metrics(y_true, p_positive, float(threshold))
    return {"threshold": float(threshold),
            "rule": f"highest threshold with validation sensitivity >= {min_sensitivity} within every {group_name}",
            "val_sensitivity": overall["sensitivity"], "val_specificity": overall["specificity"],
            "val_by_group": per_group}
