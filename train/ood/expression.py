"""
## Profiles the expression models must not score silently

Each family is built from the task's own test profiles, so only the form changes, not the patient:

* ``log_transformed``: log2 of the values (a model expecting raw intensities sent log data);
* ``z_scored``: each gene standardised over the test profiles (z-scores sent where raw values are expected);
* ``raw_scale``: z-scores mapped to a log2 intensity scale (8 ± 2), for a model expecting z-scores;
* ``shuffled_genes``: each profile's values permuted across genes (columns in the wrong order);
* ``scaled_x3``: z-scores tripled (another normalisation's spread).

A family applies only where it changes the input's form for that model (``FAMILIES``).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

FAMILIES: dict[str, tuple[str, ...]] = {
    "leukemia": ("log_transformed", "z_scored", "shuffled_genes"),
    "breast_survival": ("raw_scale", "shuffled_genes", "scaled_x3"),
}


def transformed(name: str, profiles: np.ndarray, rng) -> np.ndarray:
    x = profiles.astype(np.float64)
    transforms: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "log_transformed": lambda v: np.log2(np.clip(v, 1, None)),
        "z_scored": lambda v: (v - v.mean(axis=0)) / np.maximum(v.std(axis=0), 1e-6),
        "raw_scale": lambda v: 8 + 2 * v,
        "shuffled_genes": lambda v: np.stack([row[rng.permutation(len(row))] for row in v]),
        "scaled_x3": lambda v: 3 * v,
    }
    return transforms[name](x).astype(np.float32)


def evaluate_expression_model(task: str, score: Callable[[np.ndarray], np.ndarray], test_profiles: np.ndarray,
                              ood: dict[str, Any], *, seed: int = 0, id_slice: str) -> dict[str, Any]:
    """``ood_evaluation.json`` for an expression model: ``score`` maps profiles (n, genes) to scores."""
    from train.ood.evaluate import summary

    rng = np.random.default_rng(seed)
    in_scores = score(test_profiles)
    result = {"in_distribution": {**summary(in_scores, ood), "slice": id_slice},
              "families": {name: summary(score(transformed(name, test_profiles, rng)), ood, in_scores)
                           for name in FAMILIES[task]}}
    far = result["families"].values()
    result["goals"] = {"far_auroc_min": min(f["auroc"] for f in far), "far_refused_min": min(f["refused"] for f in far),
                       "in_distribution_refused": result["in_distribution"]["refused"],
                       "met": bool(all(f["auroc"] >= 0.99 and f["refused"] >= 0.95 for f in far)
                                   and result["in_distribution"]["refused"] <= 0.01)}
    return result
