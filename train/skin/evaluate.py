"""
## Threshold on validation, evaluate on test, per source (through the TFLite artifact)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train import core
from train.skin.data import SOURCES

MIN_SENSITIVITY = 0.90


def evaluate_variant(content: bytes, data: dict[str, Any], per_call: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """A converted variant's test AUC per source, and its validation and test p(melanoma) (and the
    validation out-of-distribution scores, which set the guard's thresholds, as ``ood_val``)."""
    y, source, split = data["y"], data["source"], data["split"]
    test = split == "test"
    outputs = {name: core.tflite_outputs(content, data["images"], split == name, per_call=per_call)
               for name in ("val", "test")}
    scores = {name: outputs[name]["melanoma"][:, 1] for name in ("val", "test")}
    if "ood_score" in outputs["val"]:
        scores["ood_val"] = outputs["val"]["ood_score"]
    auc = {s: core.binary_metrics(y[test][source[test] == s], scores["test"][source[test] == s], 0.5)["roc_auc"]
           for s in SOURCES}
    return {f"test_auc_{s}": a for s, a in auc.items()}, scores


def operating_points(data: dict[str, Any], p_val: np.ndarray, p_test: np.ndarray) -> tuple[dict, dict]:
    """(the shipped threshold: validation sensitivity >= MIN_SENSITIVITY pooled over both sources, with
    its sensitivity per source; the alternative that holds it within every source, with its test figures)."""
    y, source, split = data["y"], data["source"], data["split"]
    val, test = split == "val", split == "test"
    threshold = core.choose_threshold(y[val], p_val, min_sensitivity=MIN_SENSITIVITY)
    threshold["val_by_source"] = core.sensitivity_by_group(y[val], p_val, source[val], threshold["threshold"])
    print(f"threshold {threshold}", flush=True)
    # Not shipped (the pooled rule is the contract since v1.0.0), but documented for clients, who get
    # the probabilities and can apply it: the operating point that holds sensitivity on each source.
    every_source = core.choose_threshold_within_every_group(y[val], p_val, source[val],
                                                            min_sensitivity=MIN_SENSITIVITY, group_name="source")
    every_source["test"] = core.binary_metrics(y[test], p_test, every_source["threshold"])
    every_source["test_by_source"] = core.sensitivity_by_group(y[test], p_test, source[test], every_source["threshold"])
    print(f"alternative operating point (each source): {every_source['threshold']:.4f}, validation sensitivity "
          f"{every_source['val_sensitivity']:.3f} specificity {every_source['val_specificity']:.3f}", flush=True)
    return threshold, every_source


def test_metrics(data: dict[str, Any], p_val: np.ndarray, p_test: np.ndarray, threshold: dict[str, Any],
                 seed: int) -> dict[str, Any]:
    """Test figures over both sources and per source, with bootstrap AUC intervals; validation at the threshold."""
    y, source, split = data["y"], data["source"], data["split"]
    val, test = split == "val", split == "test"
    metrics = {}
    for name, rows in (("test", np.ones(test.sum(), bool)), *((f"test_{s}", source[test] == s) for s in SOURCES)):
        m = core.binary_metrics(y[test][rows], p_test[rows], threshold["threshold"])
        ci = core.bootstrap_auc(y[test][rows], p_test[rows], seed=seed)
        metrics[name] = {**m, **ci, "slice": f"test images{'' if name == 'test' else ', ' + name[5:]} (lesion-grouped)"}
        print(f"{name}: AUC {ci['roc_auc']:.4f} [{ci['roc_auc_ci_low']:.3f}, {ci['roc_auc_ci_high']:.3f}], sensitivity "
              f"{m['sensitivity']:.3f}, specificity {m['specificity']:.3f}", flush=True)
    metrics["val"] = {**core.binary_metrics(y[val], p_val, threshold["threshold"]), "slice": "validation images"}
    return metrics
