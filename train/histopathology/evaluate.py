"""
## Evaluate

Every figure comes from the shipped TFLite variant: test AUC per variant (the shipping rule), the
threshold on the variant's validation outputs, and the per-patient spread a pathologist would see.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train import core

MIN_SENSITIVITY = 0.88


def evaluate_variant(content: bytes, x_test: np.ndarray, y_test: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """A converted variant's test AUC and its test p(IDC) (all patches in one call)."""
    p = core.only_output(content, x_test)[:, 1]
    return {"test_auc": core.binary_metrics(y_test, p, 0.5)["roc_auc"]}, p


def predict_probability(model, images: np.ndarray) -> np.ndarray:
    """p(IDC) from a Keras candidate (a model with an out-of-distribution score outputs a dict)."""
    outputs = model.predict(images.astype(np.float32), batch_size=256, verbose=0)
    return np.asarray(outputs["probabilities"] if isinstance(outputs, dict) else outputs)[:, 1]


def per_patient(labels: np.ndarray, p: np.ndarray, patients: np.ndarray, threshold: float) -> dict[str, Any]:
    """Accuracy per patient (patients with >= 10 patches): the spread a pathologist would see."""
    accuracies = []
    for patient in np.unique(patients):
        rows = patients == patient
        if rows.sum() >= 10:
            accuracies.append(float(((p[rows] >= threshold) == labels[rows]).mean()))
    q = np.percentile(accuracies, [10, 25, 50, 75, 90])
    return {"patients": len(accuracies), "accuracy_p10": q[0], "accuracy_p25": q[1], "accuracy_median": q[2],
            "accuracy_p75": q[3], "accuracy_p90": q[4], "accuracy_min": float(min(accuracies)),
            "values": accuracies}
