"""Turn model outputs into response fields, the same way for every classifier."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .model import ModelBundle


def probabilities_by_label(labels: Sequence[str], probabilities: np.ndarray) -> dict[str, float]:
    """``{label: p}`` with plain floats (JSON-ready)."""
    return {label: float(p) for label, p in zip(labels, probabilities)}


def binary_prediction(model: ModelBundle, probabilities: np.ndarray) -> dict[str, Any]:
    """``label``, both ``probabilities`` and the ``threshold`` for a two-class model.

    The positive label wins when its probability reaches ``model.json`` ``output.threshold``,
    which training chose on the validation split (it is not always 0.5).
    """
    output = model.contract.output
    labels = model.labels
    positive = output.positive_label
    negative = next(label for label in labels if label != positive)
    p_positive = float(probabilities[labels.index(positive)])
    return {
        "label": positive if p_positive >= output.threshold else negative,
        "probabilities": probabilities_by_label(labels, probabilities),
        "threshold": output.threshold,
    }

